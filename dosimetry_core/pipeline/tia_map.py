"""Case-level voxel-wise TIA map: registered SPECTs on one grid, fitted voxel by voxel.

:func:`compute_tia_map` brings every time point's SPECT onto the *dosimetry
grid* through the accepted (or proposed) registrations, fits every voxel inside
a body mask (:func:`dosimetry_core.kinetics.voxelwise.fit_voxelwise`), and keeps
the TIA map (MBq*h/mL) and the model map as :class:`~dosimetry_core.model.DerivedMap`
records of the case.  Earlier TIA maps of the case are marked superseded.  The
maps are saved onto the newest stored case only if its administrations and time
points (series, calibration, registrations) are still those the fit read
(:mod:`dosimetry_core.store.case_inputs`: no stale saves).

Dosimetry grid
    ``"spect"`` (default): the reference time point's SPECT grid, the usual
    grid for voxel dosimetry (kernels are made for the SPECT voxel size).
    ``"ct"``: the reference CT grid.

Body mask
    Reference CT resampled onto the grid (linear, -1000 HU outside), voxels
    above ``body_threshold_hu`` (default -500 HU: excludes air, keeps lung),
    largest connected component, holes filled slice by slice, then grown by
    ``body_margin_mm`` (default 15 mm, about 1.5 x the SPECT FWHM) so that the
    counts the camera's blur spreads just outside the skin are kept (with 0 mm
    the small demo loses 3-4 % of the activity).  Voxels outside the mask get
    TIA 0 (their activity is not counted: a warning gives the fraction of the
    total activity left outside at each time point).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import (
    Case,
    DerivedKind,
    DerivedMap,
    Geometry,
    ImageUnits,
    TimePoint,
    Volume,
)
from dosimetry_core.pipeline.grid_cache import GridCache
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)
from dosimetry_core.store.case_inputs import fingerprint, save_results
from dosimetry_core.store.repository import CaseRepository

GRIDS = ("spect", "ct")
DEFAULT_BODY_THRESHOLD_HU = -500.0
DEFAULT_BODY_MARGIN_MM = 15.0


@dataclass
class TiaMapResult:
    """What :func:`compute_tia_map` made and kept in the case."""

    tia_map: DerivedMap
    model_map: DerivedMap
    total_tia_mbq_h: float
    n_voxels: int
    counts: dict[str, int]
    time_h: tuple[float, ...]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tia_map_id": self.tia_map.derived_id,
            "model_map_id": self.model_map.derived_id,
            "total_tia_mbq_h": self.total_tia_mbq_h,
            "n_voxels": self.n_voxels,
            "model_counts": dict(self.counts),
            "time_h": list(self.time_h),
            "grid": self.tia_map.volume.geometry.to_dict(),
            "warnings": list(self.warnings),
        }


def reference_time_point(case: Case) -> TimePoint:
    """The time point the others are registered to (the first in time if none is)."""
    refs = {
        t.registration.reference_time_point_id
        for t in case.time_points
        if t.registration is not None
    }
    for tp in case.sorted_time_points():
        if tp.time_point_id in refs:
            return tp
    if not case.time_points:
        raise InvalidInputError(f"case {case.case_id} has no time points")
    return case.sorted_time_points()[0]


def dosimetry_grid(case: Case, grid: str = "spect") -> Geometry:
    """The grid voxel dosimetry runs on (module docstring)."""
    if grid not in GRIDS:
        raise InvalidInputError(f"unknown grid {grid!r}; choose one of {', '.join(GRIDS)}")
    ref = reference_time_point(case)
    series = ref.functional if grid == "spect" else ref.anatomical
    if series is None or series.volume is None:
        what = "SPECT" if grid == "spect" else "CT"
        raise InvalidInputError(f"the reference time point has no {what} for the {grid} grid")
    return series.volume.geometry


def ct_on_grid(store: CaseRepository, case: Case, geometry: Geometry) -> Volume:
    """The reference CT (HU) resampled onto ``geometry`` (linear, -1000 HU outside)."""
    from dosimetry_core.imaging.resample import resample

    ref = reference_time_point(case)
    if ref.anatomical is None or ref.anatomical.volume is None:
        raise InvalidInputError("the reference time point has no CT")
    ct = store.load_volume(ref.anatomical.volume)
    if ct.geometry.same_grid(geometry):
        return ct
    return resample(ct, geometry, order=1, fill_value=-1000.0, dtype=np.float32)


def body_mask(
    ct_hu: Volume,
    threshold_hu: float = DEFAULT_BODY_THRESHOLD_HU,
    margin_mm: float = 0.0,
) -> NDArray[np.bool_]:
    """Body outline from a CT: threshold, largest component, holes filled per slice, grown."""
    from dosimetry_core.segmentation.operations import (
        fill_holes,
        grow,
        keep_largest_component,
    )

    m = np.asarray(ct_hu.array) > threshold_hu
    if not m.any():
        raise InvalidInputError(
            f"no CT voxel above {threshold_hu:g} HU: cannot find the body outline"
        )
    body = fill_holes(keep_largest_component(m), plane="axial")
    if margin_mm > 0:
        body = grow(body, ct_hu.geometry, margin_mm)
    return body


def _resample_workers(n: int) -> int:
    """Threads for the time points' resamples (``scipy.ndimage`` releases the GIL)."""
    return max(1, min(n, 2, os.cpu_count() or 1))


def _load_fit_kernel(n_times: int) -> None:
    """Load the voxel-fit kernel (compile or on-disk cache) with one dummy curve."""
    from dosimetry_core.kinetics.voxelwise import fit_tacs

    tau = np.arange(1.0, n_times + 1.0)
    fit_tacs(tau, np.exp(-0.1 * tau)[None, :], lambda_phys_per_h=0.01)


def _tia_input(vol: Volume, geometry: Geometry) -> Volume:
    """A resampled SPECT as the float32 Bq/mL input of the voxel-wise fit."""
    arr = np.asarray(vol.array, dtype=np.float32)
    return Volume(arr, geometry, ImageUnits.BQML, vol.description)


def compute_tia_map(
    store: CaseRepository,
    case_id: str,
    *,
    grid: str = "spect",
    body_threshold_hu: float = DEFAULT_BODY_THRESHOLD_HU,
    body_margin_mm: float = DEFAULT_BODY_MARGIN_MM,
    nuclide: str | None = None,
    models: Sequence[str] | None = None,
    min_r2: float = 0.8,
    user: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> TiaMapResult:
    """Voxel-wise TIA map of a registered case, kept in the case (module docstring).

    Raises
    ------
    InvalidInputError
        No administration, fewer than two time points, unregistered time
        points, non-quantitative SPECT, no CT for the body mask.
    Cancelled
        If cancelled (nothing is saved).
    """
    from dosimetry_core.kinetics.voxelwise import MODEL_CODES, VOXEL_MODELS, fit_voxelwise
    from dosimetry_core.pipeline.registration import spect_on_reference

    case = store.load_case(case_id)
    adm = case.first_administration
    if adm is None:
        raise InvalidInputError(f"case {case_id} has no administration: enter it first")
    tps = case.sorted_time_points()
    if len(tps) < 2:
        raise InvalidInputError(
            "a voxel-wise TIA map needs at least two time points; with one scan use the "
            "single-time-point methods per VOI (mrtdose fit --stp)"
        )
    for tp in tps:
        if tp.functional is None or tp.functional.volume is None:
            raise InvalidInputError(f"time point {tp.label or tp.time_point_id} has no SPECT")
        if tp.functional.volume.units != ImageUnits.BQML:
            raise InvalidInputError(
                f"time point {tp.label or tp.time_point_id} is in "
                f"{tp.functional.volume.units}, not Bq/mL: calibrate the SPECT first"
            )
        reg = tp.registration
        if reg is not None and str(reg.status) == "rejected":
            raise InvalidInputError(
                f"the registration of {tp.label or tp.time_point_id} was rejected: "
                "register it again before computing a TIA map"
            )
    inputs = fingerprint(case, "TIA map", parts=("administrations", "time_points"))
    geometry = dosimetry_grid(case, grid)
    nuc = nuclide or adm.nuclide
    report(progress, 0.0, "bringing the time points onto the dosimetry grid")
    maps: list[Volume] = []
    times: list[float] = []
    warnings: list[str] = []
    # the resamples release the GIL: two at a time (same calls, same results), while
    # this thread brings the CT onto the grid and finds the body outline, and one more
    # loads the fit kernel (numba's on-disk cache, ~1 s in a new process)
    grids = GridCache(store, case, user=user)  # the CT on this grid, kept for the dose step
    with ThreadPoolExecutor(max_workers=_resample_workers(len(tps)) + 1) as pool:
        pool.submit(_load_fit_kernel, len(tps))
        futures = [pool.submit(spect_on_reference, store, case, tp, target=geometry) for tp in tps]
        try:
            ct = grids.ct_hu(geometry)
            mask = body_mask(ct, body_threshold_hu, body_margin_mm)
            for i, (tp, fut) in enumerate(zip(tps, futures, strict=True)):
                check_cancel(cancel)
                maps.append(_tia_input(fut.result(), geometry))
                name = tp.label or tp.time_point_id
                hours = case.hours_after_administration(tp)
                if hours is None:
                    raise InvalidInputError("the administration time is missing")
                times.append(float(hours))
                arr = maps[-1].array
                total = float(arr.sum())
                if total > 0:
                    outside = float(arr[~mask].sum()) / total
                    if outside > 0.02:
                        warnings.append(
                            f"{name}: {100 * outside:.1f} % of the activity "
                            "lies outside the body mask and is not in the TIA map"
                        )
                report(progress, 0.1 * (i + 1) / len(tps), f"resampled {name}")
        finally:
            for fut in futures:  # cancelled or failed: do not start the others
                fut.cancel()
    res = fit_voxelwise(
        times,
        maps,
        nuclide=nuc,
        mask=mask,
        injection_time_h=0.0,
        models=tuple(models) if models else VOXEL_MODELS,
        min_r2=min_r2,
        progress=sub_progress(progress, 0.1, 0.95),
        cancel=cancel,
    )
    check_cancel(cancel)
    provenance = {
        "method": "voxel-wise fit (kinetics.voxelwise.fit_voxelwise)",
        "nuclide": nuc,
        "grid": grid,
        "body_threshold_hu": body_threshold_hu,
        "body_margin_mm": body_margin_mm,
        "time_h": times,
        "models": list(models) if models else list(VOXEL_MODELS),
        "min_r2": min_r2,
        "time_points": [tp.time_point_id for tp in tps],
        "spect_keys": [
            tp.functional.volume.key for tp in tps if tp.functional and tp.functional.volume
        ],
        "registrations": [
            None if tp.registration is None else str(tp.registration.status) for tp in tps
        ],
        "model_counts": dict(res.counts),
        "total_tia_mbq_h": res.total_tia_mbq_h,
        "rules": dict(res.rules),
    }
    for tp in tps:
        if tp.registration is not None and str(tp.registration.status) != "accepted":
            warnings.append(
                f"{tp.label or tp.time_point_id}: registration {tp.registration.status}, "
                "not accepted"
            )
    tia_vol = Volume(
        res.tia_map.array.astype(np.float32),
        geometry,
        ImageUnits.MBQH_PER_ML,
        res.tia_map.description,
    )
    tia_ref = store.put_volume(tia_vol, meta={"nuclide": nuc})
    model_vol = Volume(res.model_map, geometry, ImageUnits.UNKNOWN, "voxel model map")
    model_ref = store.put_volume(model_vol, meta={"codes": dict(MODEL_CODES)})
    tia_map = DerivedMap(
        kind=DerivedKind.TIA_MAP,
        volume=tia_ref,
        label=f"TIA map ({nuc}, {grid} grid)",
        provenance=provenance,
        created_by=user,
    )
    model_map = DerivedMap(
        kind=DerivedKind.TIA_MODEL_MAP,
        volume=model_ref,
        label="voxel model map",
        provenance={"codes": dict(MODEL_CODES)},
        created_by=user,
        parent_id=tia_map.derived_id,
    )

    def apply(latest: Case) -> None:
        for d in latest.derived:
            if d.kind in (DerivedKind.TIA_MAP, DerivedKind.TIA_MODEL_MAP):
                d.superseded = True
        latest.derived.extend([tia_map, model_map])
        grids.keep(latest)

    # refused (nothing saved) if an administration or a time point changed meanwhile
    save_results(store, inputs, apply, audit=store.audit_spec("tia-map", user=user))
    report(progress, 1.0, f"TIA map: {res.total_tia_mbq_h:.4g} MBq*h in {res.n_voxels} voxels")
    return TiaMapResult(
        tia_map=tia_map,
        model_map=model_map,
        total_tia_mbq_h=float(res.total_tia_mbq_h),
        n_voxels=int(res.n_voxels),
        counts=dict(res.counts),
        time_h=tuple(times),
        warnings=warnings,
    )
