"""View-model of the contouring step (no Qt): VOI list rows, threshold preview, strokes, undo.

What the contouring view shows and does is prepared here, so it is tested
without a screen; every number comes from the core:

* :func:`load_rows` -- the VOI list (:func:`dosimetry_core.pipeline.contouring.voi_table`:
  volume in mL, mass in g from the CT density, status) as :class:`VoiListRow`.
* :class:`ThresholdPreview` -- the live preview of a threshold while the
  slider moves: the level is set once from the image (and the optional VOI)
  and each move compares only the three visible slices
  (:func:`~dosimetry_core.segmentation.operations.threshold_absolute` on a
  one-slice volume); Apply runs the core's
  :func:`~dosimetry_core.pipeline.contouring.threshold` on the whole volume.
* :class:`Stroke` -- a brush, eraser or freehand-outline stroke on an
  in-memory mask, each dab one call of
  :func:`~dosimetry_core.segmentation.operations.paint_disc` (or
  :func:`~dosimetry_core.segmentation.operations.fill_polygon` at the end of an
  outline) on the one slice touched, so a dab costs a slice, not a volume.
* :class:`UndoStack` -- per-case undo/redo of whole-mask edits, each mask kept
  as zlib-compressed packed bits, the total capped in MB (oldest dropped);
  undo stores the previous mask exactly (:func:`~dosimetry_core.pipeline.voi_edit.restore_voi_mask`)
  or deletes a VOI the edit created.
* :func:`run_operation` -- one core contour operation (+ save) in a worker,
  returning the :class:`Edit` it made for the undo stack.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Case, Geometry, Volume
from dosimetry_core.segmentation import operations as ops

__all__ = [
    "COLUMNS",
    "KINDS",
    "TOOLS",
    "Edit",
    "PackedMask",
    "Stroke",
    "ThresholdPreview",
    "UndoStack",
    "VoiListRow",
    "load_rows",
    "run_operation",
    "save_mask",
    "standard_names",
]

COLUMNS: tuple[str, ...] = ("", "", "Name", "Kind", "TP", "Status", "Volume (mL)", "Mass (g)")
"""Header of the VOI list: visibility, colour, then the text columns."""
KINDS: tuple[str, ...] = ("organ", "lesion", "reference")
TOOLS: tuple[str, ...] = ("navigate", "brush", "eraser", "outline", "seed")
"""Left-button tools on the planes: crosshair, paint, erase, freehand outline (filled),
region-growing seed."""

UNDO_CAP_MB = 64.0
"""Default memory bound of one case's undo history (compressed masks)."""


def standard_names() -> list[str]:
    """Standard organ names offered for a new VOI (:mod:`dosimetry_core.segmentation.organs`)."""
    from dosimetry_core.segmentation.organs import standard_organs

    return [o.name for o in standard_organs()]


# ------------------------------------------------------------------ VOI list
@dataclass(frozen=True)
class VoiListRow:
    """One VOI as the list shows it (values from ``voi_table``)."""

    voi_id: str
    name: str
    kind: str
    time_point: str
    time_point_id: str
    status: str
    flag: str
    color_rgb: tuple[int, int, int]
    volume_ml: float
    mass_g: float | None

    def cells(self) -> list[str]:
        """Texts of the columns after visibility and colour (units in the header)."""
        mass = "–" if self.mass_g is None else f"{self.mass_g:,.1f}"
        return [
            self.name,
            self.kind,
            self.time_point,
            self.status,
            f"{self.volume_ml:,.2f}",
            mass,
        ]


def load_rows(store: Any, case: Case) -> list[VoiListRow]:
    """The VOI list of ``case`` from :func:`~dosimetry_core.pipeline.contouring.voi_table`."""
    from dosimetry_core.pipeline.contouring import voi_table

    by_id = {v.voi_id: v for v in case.vois}
    rows = []
    for r in voi_table(store, case):
        c = r["color_rgb"]
        rows.append(
            VoiListRow(
                r["voi_id"],
                r["name"],
                r["kind"],
                r["time_point"],
                by_id[r["voi_id"]].time_point_id,
                r["status"],
                r["flag"],
                (int(c[0]), int(c[1]), int(c[2])),
                float(r["volume_ml"]),
                None if r["mass_g"] is None else float(r["mass_g"]),
            )
        )
    return rows


# --------------------------------------------------------------- threshold
@dataclass
class ThresholdPreview:
    """Preview of a threshold on the displayed grid (module docstring).

    Parameters
    ----------
    image
        The image thresholded (SPECT on the CT grid, or the CT), ``[k, j, i]``.
    region
        Optional VOI mask restricting the maximum and the result.
    """

    image: Volume
    region: NDArray[np.bool_] | None = None
    mask: NDArray[np.bool_] = field(init=False)
    """The preview shown: only the slices last previewed are filled (or all after ``full``)."""
    _max: float | None = field(init=False, default=None)
    _slices: list[tuple[int, int]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.mask = np.zeros(self.image.geometry.shape_zyx, dtype=bool)

    @property
    def units(self) -> str:
        return str(self.image.units)

    def maximum(self) -> float:
        """Maximum of the image in the region (the 100 % of a relative threshold)."""
        if self._max is None:
            a = self.image.array
            vals = a[self.region] if self.region is not None else a
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                raise InvalidInputError("the region for the relative threshold is empty")
            self._max = float(vals.max())
        return self._max

    def level(self, value: float, percent: bool) -> float:
        """Lower limit in image units: ``value`` % of the maximum, or ``value`` itself."""
        return self.maximum() * value / 100.0 if percent else float(value)

    def preview(self, value: float, percent: bool, slices: dict[int, int]) -> NDArray[np.bool_]:
        """Fill ``mask`` on the given slices (``{axis: index}``) only; returns ``mask``."""
        lower = self.level(value, percent)
        for axis, idx in self._slices:
            np.moveaxis(self.mask, axis, 0)[idx] = False
        self._slices = []
        g = self.image.geometry
        for axis, idx in slices.items():
            sl = np.moveaxis(self.image.array, axis, 0)[idx]
            one = Volume(
                sl[None, ...], dataclasses.replace(g, shape_zyx=(1, *sl.shape)), self.image.units
            )
            m = ops.threshold_absolute(one, lower)[0]
            if self.region is not None:
                m &= np.moveaxis(self.region, axis, 0)[idx]
            np.moveaxis(self.mask, axis, 0)[idx] = m
            self._slices.append((axis, idx))
        return self.mask

    def full(self, value: float, percent: bool) -> NDArray[np.bool_]:
        """The whole volume (for a worker): the core's relative or absolute threshold."""
        if percent:
            out = ops.threshold_relative(self.image, value, within=self.region)
        else:
            out = ops.threshold_absolute(self.image, value)
            if self.region is not None:
                out &= self.region
        return out


# ------------------------------------------------------------------ strokes
def _slab(
    geometry: Geometry, axis: int, index: int, stop: int | None = None
) -> tuple[tuple[slice, ...], Geometry]:
    """Array slices and the grid of slices ``index`` to ``stop`` (default: one) along ``axis``."""
    stop = index + 1 if stop is None else stop
    start = [0, 0, 0]
    start[axis] = index
    shape = list(geometry.shape_zyx)
    shape[axis] = stop - index
    origin = geometry.index_to_world(np.asarray(start, dtype=float))
    sub = dataclasses.replace(
        geometry,
        shape_zyx=(shape[0], shape[1], shape[2]),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
    )
    sl = [slice(None)] * 3
    sl[axis] = slice(index, stop)
    return tuple(sl), sub


_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}


@dataclass
class Stroke:
    """A brush, eraser or outline stroke on ``mask`` (changed in place), one slice at a time.

    ``plane``/``slice_index`` name the VOI grid's own plane (axial = k) and slice.
    """

    mask: NDArray[np.bool_]
    geometry: Geometry
    tool: str
    plane: str
    slice_index: int
    radius_mm: float = 5.0
    sphere: bool = False
    """Brush and eraser paint a ball (:func:`~dosimetry_core.segmentation.brush.paint_sphere`)
    instead of a disc on the slice."""
    points: list[NDArray[np.float64]] = field(default_factory=list)

    changed: bool = False
    """Some voxel changed during the stroke."""

    @property
    def _plane(self) -> ops.Plane:
        if self.plane not in _AXIS:
            raise InvalidInputError(f"unknown plane {self.plane!r}")
        return self.plane  # type: ignore[return-value]

    def add(self, world_mm: NDArray[np.float64]) -> bool:
        """A mouse position of the stroke (LPS mm); returns True when the mask changed."""
        p = np.asarray(world_mm, dtype=float).reshape(3)
        self.points.append(p)
        if self.tool not in ("brush", "eraser"):
            return False
        erase = self.tool == "eraser"
        if self.sphere:
            from dosimetry_core.segmentation.brush import paint_sphere

            axis = _AXIS[self.plane]
            reach = int(np.ceil(self.radius_mm / self.geometry.spacing_mm[2 - axis])) + 1
            lo = max(self.slice_index - reach, 0)
            hi = min(self.slice_index + reach + 1, self.geometry.shape_zyx[axis])
            sl, sub = _slab(self.geometry, axis, lo, hi)
            new = paint_sphere(self.mask[sl], sub, p, self.radius_mm, erase=erase)
        else:
            sl, sub = _slab(self.geometry, _AXIS[self.plane], self.slice_index)
            new = ops.paint_disc(self.mask[sl], sub, self._plane, 0, p, self.radius_mm, erase=erase)
        changed = not np.array_equal(new, self.mask[sl])
        self.mask[sl] = new
        self.changed |= changed
        return changed

    def finish(self) -> None:
        """End of the stroke: an outline is filled (closed implicitly) with ``fill_polygon``."""
        if self.tool != "outline":
            return
        sl, sub = _slab(self.geometry, _AXIS[self.plane], self.slice_index)
        new = ops.fill_polygon(self.mask[sl], sub, self._plane, 0, np.array(self.points))
        self.changed |= not np.array_equal(new, self.mask[sl])
        self.mask[sl] = new

    def description(self) -> str:
        what = {"brush": "brush", "eraser": "eraser", "outline": "freehand outline"}[self.tool]
        size = f" {2 * self.radius_mm:g} mm" if self.tool != "outline" else ""
        if self.sphere and self.tool != "outline":
            size += " sphere"
        return f"{what}{size} on {self.plane} slice {self.slice_index + 1}"


# --------------------------------------------------------------------- undo
@dataclass(frozen=True)
class PackedMask:
    """A boolean mask as zlib-compressed packed bits (exact round trip)."""

    shape: tuple[int, int, int]
    data: bytes

    @classmethod
    def pack(cls, mask: NDArray[np.bool_]) -> PackedMask:
        m = np.asarray(mask, dtype=bool)
        return cls(
            (int(m.shape[0]), int(m.shape[1]), int(m.shape[2])),
            zlib.compress(np.packbits(m, axis=None).tobytes(), 6),
        )

    def unpack(self) -> NDArray[np.bool_]:
        n = int(np.prod(self.shape))
        bits = np.unpackbits(np.frombuffer(zlib.decompress(self.data), dtype=np.uint8), count=n)
        return bits.astype(bool).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Edit:
    """One saved change of one VOI: its mask before (None: it did not exist) and after."""

    name: str
    time_point_id: str
    geometry: Geometry
    before: PackedMask | None
    after: PackedMask | None
    description: str

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in (self.before, self.after) if m is not None)


def _find(case: Case, name: str, time_point_id: str) -> Any:
    for v in case.vois:
        if v.name.lower() == name.lower() and v.time_point_id == time_point_id:
            return v
    return None


def _put(store: Any, case: Case, edit: Edit, mask: PackedMask | None, what: str) -> None:
    from dosimetry_core.pipeline import voi_edit

    if mask is None:
        voi = _find(case, edit.name, edit.time_point_id)
        if voi is not None:
            voi_edit.delete_voi(store, case, voi.voi_id)
        return
    voi_edit.restore_voi_mask(
        store, case, edit.name, mask.unpack(), edit.geometry, edit.time_point_id, what
    )


class UndoStack:
    """Undo/redo of one case's VOI edits with bounded memory (module docstring)."""

    def __init__(self, cap_mb: float = UNDO_CAP_MB) -> None:
        self.cap_bytes = int(cap_mb * 1024 * 1024)
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []

    def push(self, edit: Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.cap_bytes:
            self._undo.pop(0)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in (*self._undo, *self._redo))

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_text(self) -> str:
        return f"Undo {self._undo[-1].description}" if self._undo else "Undo"

    def redo_text(self) -> str:
        return f"Redo {self._redo[-1].description}" if self._redo else "Redo"

    def undo(self, store: Any, case: Case) -> Edit:
        """Store the mask before the last edit (``session.change(stack.undo)``); saves."""
        if not self._undo:
            raise InvalidInputError("nothing to undo")
        edit = self._undo[-1]
        _put(store, case, edit, edit.before, f"undo {edit.description}")
        self._redo.append(self._undo.pop())
        return edit

    def redo(self, store: Any, case: Case) -> Edit:
        """Store the mask after the last undone edit again; saves."""
        if not self._redo:
            raise InvalidInputError("nothing to redo")
        edit = self._redo[-1]
        _put(store, case, edit, edit.after, f"redo {edit.description}")
        self._undo.append(self._redo.pop())
        return edit


# --------------------------------------------------------------- operations
def _masks(case: Case) -> dict[str, Any]:
    return {v.voi_id: v.mask for v in case.vois}


def run_operation(
    store: Any,
    case_id: str,
    fn: Callable[..., Any],
    *args: Any,
    description: str = "",
    **kwargs: Any,
) -> list[Edit]:
    """``fn(store, case, *args, **kwargs)`` on a freshly loaded case (saves), and its edits.

    Runs in a worker (``session.run(..., with_progress=False)``).  Every VOI
    whose mask changed or that was created gives one :class:`Edit` (before
    and after, compressed) for the undo stack.
    """
    from dosimetry_core.imaging.case_volumes import load_mask

    case = store.load_case(case_id)
    before = {v.voi_id: (v.name, v.time_point_id, v.mask) for v in case.vois}
    fn(store, case, *args, **kwargs)
    after = store.load_case(case_id)
    edits = []
    for voi in after.vois:
        old = before.get(voi.voi_id)
        if old is not None and old[2].key == voi.mask.key:
            continue
        mask, g = load_mask(store, voi)
        prev = None
        if old is not None:
            prev = PackedMask.pack(store.load_volume(old[2]).array > 0)
        edits.append(
            Edit(
                voi.name,
                voi.time_point_id,
                g,
                prev,
                PackedMask.pack(mask),
                description or getattr(fn, "__name__", "edit"),
            )
        )
    return edits


def save_mask(
    store: Any,
    case_id: str,
    name: str,
    mask: NDArray[np.bool_],
    geometry: Geometry,
    time_point_id: str,
    operation: str,
    before: NDArray[np.bool_] | None = None,
) -> tuple[str, Edit]:
    """Store a drawn mask as VOI ``name`` (one edit) on a freshly loaded case.

    Runs in a worker: compressing and saving a 256³ mask takes longer than a
    frame (:func:`~dosimetry_core.pipeline.voi_edit.restore_voi_mask`).
    Returns the new mask's key and the :class:`Edit` for the undo stack
    (``before`` None: the VOI did not exist).
    """
    from dosimetry_core.pipeline import voi_edit

    case = store.load_case(case_id)
    voi = voi_edit.restore_voi_mask(store, case, name, mask, geometry, time_point_id, operation)
    edit = stroke_edit(name, time_point_id, geometry, before, mask, operation)
    return str(voi.mask.key), edit


def stroke_edit(
    name: str,
    time_point_id: str,
    geometry: Geometry,
    before: NDArray[np.bool_] | None,
    after: NDArray[np.bool_],
    description: str,
) -> Edit:
    """The :class:`Edit` of a stroke (``before`` None: the stroke created the VOI)."""
    return Edit(
        name,
        time_point_id,
        geometry,
        None if before is None else PackedMask.pack(before),
        PackedMask.pack(after),
        description,
    )
