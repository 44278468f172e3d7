"""VOI fractions and the CT on a dose grid, computed once and kept with the case.

Every dose calculation needs, on the dose grid, the fraction of each voxel that
each VOI covers (:func:`dosimetry_core.dose._fractions.mask_fraction_on_grid`)
and the CT in HU (for densities and masses).  Both depend only on the mask (or
CT) and the two grids, so they are computed once and kept in the case as
derived maps of kind :attr:`~dosimetry_core.model.DerivedKind.VOI_FRACTION` and
:attr:`~dosimetry_core.model.DerivedKind.CT_ON_GRID`, and read back (a few
compressed blobs) the next time.  They are stored like every other derived map:
content-addressed blobs checked on read, referenced by the case (so garbage
collection keeps them) and covered by the case document that audited saves sign.

Identity
--------
Each map's provenance holds ``cache_key``: the SHA-256 of the canonical JSON of
what it was computed from (the kind, the algorithm version, the source blob key
and grid, the target grid, and for the CT the interpolation order and fill
value).  A map is used only when its key matches the key of the current inputs
and its volume is exactly the sub-grid of the target grid it claims; anything
else is recomputed.  A VOI fraction map holds only the box of non-zero fractions
(its volume's geometry is that box on the target grid, ``corner_zyx`` in the
provenance).  Only VOIs drawn on the reference CT grid are cached; a VOI carried
through a registration is computed each time.

Keeping and pruning
-------------------
:meth:`GridCache.keep` is called in the ``apply`` step of a save (on the newest
stored case): it adds the maps computed since and removes cache maps whose
source is gone (an edited or deleted VOI, a replaced reference CT) or that are
superseded, so the case holds at most one map per source and grid.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model import VOI, Case, DerivedKind, DerivedMap, Geometry, ImageUnits, Volume
from dosimetry_core.store.repository import CaseRepository

FRACTION_ALGORITHM = "mask-fraction/1: exact on a coinciding or aligned grid, else 3^3 sub-samples"
"""Version of the fraction computation; a change of method must change this text."""

CT_FILL_HU = -1000.0
CT_RESAMPLING: dict[str, Any] = {"order": 1, "fill_hu": CT_FILL_HU, "dtype": "float32"}
"""How the reference CT is carried to the dose grid (linear, -1000 HU outside)."""

CACHE_KINDS = (DerivedKind.VOI_FRACTION, DerivedKind.CT_ON_GRID)

# fractions already computed or read in this process, by cache key: (full shape,
# corner, box); bounded so that a long GUI session does not grow without limit
_IN_PROCESS: OrderedDict[str, tuple[tuple[int, ...], tuple[int, ...], NDArray[np.float32]]] = (
    OrderedDict()
)
_IN_PROCESS_BYTES = 256 * 2**20


def grid_key(g: Geometry) -> dict[str, Any]:
    """The grid as plain JSON (shape, spacing, origin, direction)."""
    return {
        "shape_zyx": [int(n) for n in g.shape_zyx],
        "spacing_mm": [float(v) for v in g.spacing_mm],
        "origin_mm": [float(v) for v in g.origin_mm],
        "direction": [[float(v) for v in row] for row in g.direction],
    }


def _key(what: dict[str, Any]) -> str:
    text = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fraction_cache_key(mask_key: str, mask_grid: Geometry, target: Geometry) -> str:
    """Cache key of one VOI mask's fractions on ``target``."""
    return _key(
        {
            "kind": str(DerivedKind.VOI_FRACTION),
            "algorithm": FRACTION_ALGORITHM,
            "mask": mask_key,
            "mask_grid": grid_key(mask_grid),
            "target": grid_key(target),
        }
    )


def ct_cache_key(ct_key: str, ct_grid: Geometry, target: Geometry) -> str:
    """Cache key of the reference CT on ``target``."""
    return _key(
        {
            "kind": str(DerivedKind.CT_ON_GRID),
            "ct": ct_key,
            "ct_grid": grid_key(ct_grid),
            "target": grid_key(target),
            **CT_RESAMPLING,
        }
    )


def box_geometry(target: Geometry, corner_zyx: Sequence[int], shape_zyx: Sequence[int]) -> Geometry:
    """The sub-grid of ``target`` starting at voxel ``corner_zyx`` with ``shape_zyx`` voxels."""
    origin = target.index_to_world(np.asarray(corner_zyx, dtype=float))
    return Geometry(
        shape_zyx=tuple(int(n) for n in shape_zyx),  # type: ignore[arg-type]
        spacing_mm=target.spacing_mm,
        origin_mm=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=target.direction,
        frame_of_reference_uid=target.frame_of_reference_uid,
    )


def _nonzero_box(frac: NDArray[np.float32]) -> tuple[tuple[int, int, int], NDArray[np.float32]]:
    """Corner and copy of the smallest box holding every non-zero fraction (1 voxel if none)."""
    nz = [np.flatnonzero(frac.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(idx.size == 0 for idx in nz):
        return (0, 0, 0), np.zeros((1, 1, 1), dtype=np.float32)
    lo = tuple(int(idx[0]) for idx in nz)
    hi = tuple(int(idx[-1]) + 1 for idx in nz)
    box = frac[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].copy()
    return (lo[0], lo[1], lo[2]), box


def _expand(shape: tuple[int, ...], corner: tuple[int, ...], box: NDArray[np.float32]) -> NDArray:
    out = np.zeros(shape, dtype=np.float32)
    out[tuple(slice(c, c + n) for c, n in zip(corner, box.shape, strict=True))] = box
    return out


def _remember(key: str, shape: tuple[int, ...], corner: tuple[int, ...], box: NDArray) -> None:
    _IN_PROCESS[key] = (shape, corner, box)
    _IN_PROCESS.move_to_end(key)
    while sum(e[2].nbytes for e in _IN_PROCESS.values()) > _IN_PROCESS_BYTES:
        _IN_PROCESS.popitem(last=False)


def clear_in_process_cache() -> None:
    """Forget the fractions kept in this process (the stored maps stay)."""
    _IN_PROCESS.clear()


class GridCache:
    """Reads and computes VOI fractions and the CT on a dose grid for one case.

    Maps computed here are collected in :attr:`new`; :meth:`keep` adds them to a
    case about to be saved.  Without a save they are still reused within the
    process (fractions only).
    """

    def __init__(self, store: CaseRepository, case: Case, *, user: str = "") -> None:
        self.store = store
        self.case = case
        self.user = user
        self.new: list[DerivedMap] = []
        self._unusable: set[str] = set()  # derived ids of kept maps found not to fit
        self._stored: dict[str, DerivedMap] = {
            str(d.provenance.get("cache_key")): d
            for d in case.derived
            if d.kind in CACHE_KINDS and not d.superseded and d.provenance.get("cache_key")
        }

    # ------------------------------------------------------------ fractions
    def fractions(self, vois: Sequence[VOI], target: Geometry) -> dict[str, NDArray[np.float32]]:
        """Fraction of each ``target`` voxel covered by each VOI (float32, by VOI id)."""
        from dosimetry_core.kinetics.tac import tac_reference_time_point

        ref = tac_reference_time_point(self.case)
        ref_ct = ref.anatomical.volume if ref.anatomical is not None else None
        out: dict[str, NDArray[np.float32]] = {}
        for voi in vois:
            on_ref = (voi.time_point_id or ref.time_point_id) == ref.time_point_id
            key = None
            if on_ref and ref_ct is not None and voi.mask.geometry.same_grid(ref_ct.geometry):
                key = fraction_cache_key(voi.mask.key, voi.mask.geometry, target)
            frac = self._cached_fraction(key, target) if key is not None else None
            if frac is None:
                frac = self._compute_fraction(voi, ref, target)
                if key is not None:
                    self._record_fraction(key, voi, target, frac)
            elif key is not None and key not in self._stored:
                # known in this process (another case with the same mask, or a save that was
                # refused) but not kept with this case yet: keep it with the next save
                _shape, corner, box = _IN_PROCESS[key]
                self._record_box(key, voi, target, corner, box)
            out[voi.voi_id] = frac
        return out

    def _cached_fraction(self, key: str, target: Geometry) -> NDArray[np.float32] | None:
        hit = _IN_PROCESS.get(key)
        if hit is not None:
            _IN_PROCESS.move_to_end(key)
            return _expand(*hit)
        d = self._stored.get(key)
        if d is None or d.kind != DerivedKind.VOI_FRACTION:
            return None
        corner = tuple(int(c) for c in d.provenance.get("corner_zyx", ()))
        shape = tuple(int(n) for n in target.shape_zyx)
        box_shape = tuple(int(n) for n in d.volume.geometry.shape_zyx)
        if (
            len(corner) != 3
            or any(c < 0 or c + n > s for c, n, s in zip(corner, box_shape, shape, strict=True))
            or not d.volume.geometry.same_grid(box_geometry(target, corner, box_shape), 1e-4)
        ):
            self._unusable_map(key, d)
            return None
        box = np.asarray(self.store.load_volume(d.volume).array, dtype=np.float32)
        if not (np.isfinite(box).all() and box.min() >= 0.0 and box.max() <= 1.0):
            self._unusable_map(key, d)
            return None
        _remember(key, shape, corner, box)
        return _expand(shape, corner, box)

    def _unusable_map(self, key: str, d: DerivedMap) -> None:
        """Forget a kept map that does not fit its grid: recomputed now, dropped at the save."""
        self._unusable.add(d.derived_id)
        self._stored.pop(key, None)

    def _compute_fraction(self, voi: VOI, ref: Any, target: Geometry) -> NDArray[np.float32]:
        from dosimetry_core.dose._fractions import mask_fraction_on_grid
        from dosimetry_core.kinetics.tac import mask_on_reference

        mask, geom = mask_on_reference(self.store, self.case, voi, ref)
        return mask_fraction_on_grid(mask, geom, target)

    def _record_fraction(
        self, key: str, voi: VOI, target: Geometry, frac: NDArray[np.float32]
    ) -> None:
        corner, box = _nonzero_box(frac)
        shape = tuple(int(n) for n in target.shape_zyx)
        _remember(key, shape, corner, box)
        if key not in self._stored:
            self._record_box(key, voi, target, corner, box)

    def _record_box(
        self,
        key: str,
        voi: VOI,
        target: Geometry,
        corner: tuple[int, ...],
        box: NDArray[np.float32],
    ) -> None:
        """Store the box of fractions and add its derived map to :attr:`new`."""
        ref = self.store.put_volume(
            Volume(box, box_geometry(target, corner, box.shape), ImageUnits.UNKNOWN,
                   f"fraction of each dose voxel covered by {voi.name}"),
        )  # fmt: skip
        d = DerivedMap(
            kind=DerivedKind.VOI_FRACTION,
            volume=ref,
            label=f"{voi.name} on the dose grid",
            provenance={
                "cache_key": key,
                "algorithm": FRACTION_ALGORITHM,
                "source_key": voi.mask.key,
                "voi_id": voi.voi_id,
                "corner_zyx": list(corner),
                "target_grid": grid_key(target),
                "unit": "fraction of the voxel (0-1)",
            },
            created_by=self.user,
        )
        self._stored[key] = d
        self.new.append(d)

    # ------------------------------------------------------------------- CT
    def ct_hu(self, target: Geometry) -> Volume:
        """The reference CT (HU) on ``target``: itself, the kept map, or resampled now."""
        from dosimetry_core.errors import InvalidInputError
        from dosimetry_core.pipeline.tia_map import reference_time_point

        ref = reference_time_point(self.case)
        if ref.anatomical is None or ref.anatomical.volume is None:
            raise InvalidInputError("the reference time point has no CT")
        ct_ref = ref.anatomical.volume
        if ct_ref.geometry.same_grid(target):
            return self.store.load_volume(ct_ref)
        key = ct_cache_key(ct_ref.key, ct_ref.geometry, target)
        d = self._stored.get(key)
        if d is not None and not (
            d.kind == DerivedKind.CT_ON_GRID and d.volume.geometry.same_grid(target, 1e-4)
        ):
            self._unusable_map(key, d)
        elif d is not None:
            vol = self.store.load_volume(d.volume)
            return Volume(np.asarray(vol.array, dtype=np.float32), target, ImageUnits.HU,
                          vol.description)  # fmt: skip
        from dosimetry_core.imaging.resample import resample

        ct = self.store.load_volume(ct_ref)
        on_grid = resample(ct, target, order=1, fill_value=CT_FILL_HU, dtype=np.float32)
        stored = self.store.put_volume(
            Volume(np.asarray(on_grid.array, dtype=np.float32), target, ImageUnits.HU,
                   "reference CT on the dose grid"),
        )  # fmt: skip
        d = DerivedMap(
            kind=DerivedKind.CT_ON_GRID,
            volume=stored,
            label="reference CT on the dose grid",
            provenance={
                "cache_key": key,
                "source_key": ct_ref.key,
                "target_grid": grid_key(target),
                **CT_RESAMPLING,
            },
            created_by=self.user,
        )
        self._stored[key] = d
        self.new.append(d)
        return on_grid

    # ----------------------------------------------------------------- save
    def keep(self, latest: Case) -> None:
        """Add the maps made here to ``latest``; drop cache maps whose source is gone."""
        from dosimetry_core.errors import InvalidInputError
        from dosimetry_core.pipeline.tia_map import reference_time_point

        mask_keys = {v.mask.key for v in latest.vois}
        try:
            ref = reference_time_point(latest)
            ct_key = ref.anatomical.volume.key if ref.anatomical and ref.anatomical.volume else None
        except InvalidInputError:  # no time point left: no CT map is current
            ct_key = None

        def current(d: DerivedMap) -> bool:
            src = d.provenance.get("source_key")
            if d.superseded or d.derived_id in self._unusable:
                return False
            if d.kind == DerivedKind.VOI_FRACTION:
                return src in mask_keys
            return src == ct_key

        have: set[str] = set()
        kept: list[DerivedMap] = []
        for d in latest.derived:
            if d.kind in CACHE_KINDS:
                key = str(d.provenance.get("cache_key"))
                if not current(d) or key in have:
                    continue
                have.add(key)
            kept.append(d)
        for d in self.new:
            key = str(d.provenance.get("cache_key"))
            if current(d) and key not in have:
                have.add(key)
                kept.append(d)
        latest.derived = kept
