"""Cumulative DVHs of VOIs on a stored dose map, read-only (nothing is saved).

:func:`dosimetry_core.pipeline.dose.compute_dose` stores DVHs only when asked
(``dvh_bins``); a dose summary made without them (``mrtdose dose`` without
``--dvh-bins``, the protocol run) has none.  :func:`dvh_of_dose_map` computes them
afterwards from the kept dose map, with the same VOI masks on the dose grid and
the same histogram as ``compute_dose``: a dose voxel belongs to the VOI when at
least half of it is covered (a VOI smaller than half a voxel: the voxels it covers
at least half as much as its best-covered one), densities from the reference CT
through the HU-to-density calibration for the mass, and
:func:`dosimetry_core.dose.dvh.dose_volume_histogram` with ``n_bins`` equal bins.
On the same dose map the curves equal the ones ``compute_dose(dvh_bins=n_bins)``
stores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Case, DerivedKind
from dosimetry_core.model.results import DvhCurve
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report
from dosimetry_core.store.repository import CaseRepository

__all__ = ["dvh_of_dose_map"]


def dvh_of_dose_map(
    store: CaseRepository,
    case: Case,
    dose_map_id: str,
    vois: Sequence[str] | None = None,
    *,
    n_bins: int = 200,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> dict[str, DvhCurve]:
    """Cumulative and differential DVH of each VOI on the dose map ``dose_map_id`` (by VOI id).

    Parameters
    ----------
    store, case
        The store and the (loaded) case holding the dose map; nothing is saved.
    dose_map_id
        A ``dose`` derived map of the case (current or superseded).
    vois
        VOI ids or names (default: every VOI of the case).
    n_bins
        Equal dose bins from ``min(0, min dose)`` to just above the VOI's maximum.

    Returns
    -------
    dict
        VOI id -> :class:`~dosimetry_core.model.results.DvhCurve` (dose in Gy);
        a VOI that does not overlap the dose grid is left out.

    Raises
    ------
    InvalidInputError
        Unknown dose map or VOI, or no CT for the densities.
    """
    from dosimetry_core.dose.dvh import dose_volume_histogram
    from dosimetry_core.physics.density import HuDensityCalibration
    from dosimetry_core.pipeline.dose import voi_fractions_on_grid
    from dosimetry_core.pipeline.grid_cache import GridCache
    from dosimetry_core.pipeline.voi_review import find_voi

    try:
        dmap = case.find_derived(dose_map_id)
    except KeyError as exc:
        raise InvalidInputError(f"case {case.case_id} has no dose map {dose_map_id}") from exc
    if dmap.kind != DerivedKind.DOSE:
        raise InvalidInputError(f"{dose_map_id} is a {dmap.kind} map, not a dose map")
    if int(n_bins) < 1:
        raise InvalidInputError(f"n_bins must be >= 1, got {n_bins!r}")
    selected = list(case.vois) if vois is None else [find_voi(case, v) for v in vois]
    report(progress, 0.05, "reading the dose map")
    dose_vol = store.load_volume(dmap.volume)
    geom = dose_vol.geometry
    dose = np.asarray(dose_vol.array, dtype=np.float32)
    check_cancel(cancel)
    grids = GridCache(store, case)
    report(progress, 0.2, "densities from the CT")
    hu = np.asarray(grids.ct_hu(geom).array, dtype=np.float32)
    density = np.asarray(HuDensityCalibration.load().density_g_cm3(hu), dtype=np.float32)
    check_cancel(cancel)
    report(progress, 0.4, "VOIs on the dose grid")
    fractions = voi_fractions_on_grid(store, case, selected, geom, grids) if selected else {}
    out: dict[str, DvhCurve] = {}
    for n, voi in enumerate(selected):
        check_cancel(cancel)
        frac = fractions[voi.voi_id]
        mask = frac >= 0.5
        if not mask.any():
            top = float(frac.max())
            if top <= 0:
                continue
            mask = frac >= 0.5 * top  # the rule of compute_dose for a VOI under half a voxel
        h = dose_volume_histogram(
            dose, mask, geom.spacing_mm, n_bins=int(n_bins), density_g_cm3=density
        )
        out[voi.voi_id] = DvhCurve.from_dict(h.to_dict())
        report(progress, 0.5 + 0.5 * (n + 1) / len(selected), f"DVH of {voi.name}")
    return out
