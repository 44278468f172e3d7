"""Case-level absorbed-dose maps and VOI dose statistics.

:func:`compute_dose` takes the case's current voxel-wise TIA map (see
:mod:`dosimetry_core.pipeline.tia_map`), computes an absorbed-dose map (Gy) on
the same grid by one method, keeps it as a :class:`~dosimetry_core.model.DerivedMap`
(with a Monte Carlo uncertainty map when there is one), and returns dose
statistics for every VOI, each with the VOI's review flag.  The results are
saved onto the newest stored case only if the TIA map, VOIs, administrations and
time points it read are unchanged (:mod:`dosimetry_core.store.case_inputs`).

Methods
-------
``led``
    Local energy deposition: ``D = N E / m`` per voxel with ``m = rho V``
    (:mod:`dosimetry_core.dose.led`).  ``E`` is by default the energy of the
    non-penetrating radiations of the chain (electrons, alphas, recoils;
    ``led_energy="non-penetrating"``) or all emitted energy (``"all"``), the
    latter being the right number only inside a volume much larger than the
    photons' mean free path.
``vsv``
    Voxel S-value convolution with our kernel for the nuclide (chain), the
    grid's voxel size and ``medium`` (:mod:`dosimetry_core.dose.kernels`),
    FFT convolution (:mod:`dosimetry_core.dose.convolution`).
``vsv-density``
    ``vsv`` scaled by ``rho_kernel / rho`` voxel by voxel (density from the CT
    through the HU-to-density calibration).
``mc``
    Photon Monte Carlo through the CT converted to materials and densities
    (:mod:`dosimetry_core.dose.monte_carlo`); electrons, alphas and recoils are
    deposited locally (``mc_electrons="local"``) or by the electron part of the
    kernel (``"kernel"``), with the per-voxel statistical uncertainty.  Per VOI
    the provenance (``mc_voi_components``) gives the mean of the photon and of
    the (deterministic) electron component and the 1-SD uncertainty of the
    photon component's VOI mean; ``mc_target_uncertainty`` stops on the
    ``mc_target_component`` of the target VOI's mean (default ``"photon"``: the
    electron part has no statistical uncertainty).

Decays per voxel: ``N = TIA [MBq*h/mL] * V [mL] * 3.6e9`` (Bq*s).

VOI masks are carried to the dose grid as the fraction of each dose voxel they
cover (3 x 3 x 3 sub-samples per voxel; exact where the grids coincide or are
aligned integer multiples; :mod:`dosimetry_core.dose._fractions`); a dose voxel
belongs to the VOI when at least half of it is covered.  Statistics:
:func:`dosimetry_core.dose.dvh.dose_statistics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.dose.units import BQ_S_PER_MBQ_H
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import (
    VOI,
    Case,
    DerivedKind,
    DerivedMap,
    Geometry,
    ImageUnits,
    Volume,
)
from dosimetry_core.model.results import (
    DOSE_FORMAT,
    DoseStatistics,
    DoseSummary,
    DvhCurve,
    VoiDose,
    json_clean,
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

METHODS = ("led", "vsv", "vsv-density", "mc")

__all__ = ["METHODS", "DoseResult", "VoiDose", "compute_dose", "voi_masks_on_grid"]


@dataclass
class DoseResult:
    """What :func:`compute_dose` made and kept in the case: the maps and the typed summary.

    ``summary`` is the :class:`~dosimetry_core.model.results.DoseSummary` record
    stored in ``case.results`` (VOI statistics, DVHs, review flags).
    """

    dose_map: DerivedMap
    uncertainty_map: DerivedMap | None
    summary: DoseSummary

    @property
    def method(self) -> str:
        return self.summary.method

    @property
    def vois(self) -> tuple[VoiDose, ...]:
        return self.summary.vois

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.summary.provenance)

    @property
    def warnings(self) -> list[str]:
        return list(self.summary.warnings)

    def to_dict(self) -> dict[str, Any]:
        """The ``mrt-dose/1`` object of ``mrtdose dose --json``."""
        d = self.summary.to_dict()
        return {
            "format": d["format"],
            "dose_map_id": self.dose_map.derived_id,
            "uncertainty_map_id": None
            if self.uncertainty_map is None
            else self.uncertainty_map.derived_id,
            "method": self.method,
            "unit": "Gy",
            "provenance": d["provenance"],
            "vois": d["vois"],
            "warnings": d["warnings"],
            "result_id": self.summary.result_id,
        }


def _current_tia_map(case: Case, tia_map_id: str | None) -> DerivedMap:
    if tia_map_id is not None:
        try:
            d = case.find_derived(tia_map_id)
        except KeyError as exc:
            raise InvalidInputError(f"case {case.case_id} has no derived map {tia_map_id}") from exc
        if d.kind != DerivedKind.TIA_MAP:
            raise InvalidInputError(f"{tia_map_id} is a {d.kind} map, not a TIA map")
        return d
    maps = case.derived_maps(DerivedKind.TIA_MAP)
    if not maps:
        raise InvalidInputError(
            f"case {case.case_id} has no TIA map: compute one first (mrtdose tia-map)"
        )
    return maps[0]


def voi_fractions_on_grid(
    store: CaseRepository,
    case: Case,
    vois: Sequence[VOI],
    target: Geometry,
    cache: GridCache | None = None,
) -> dict[str, NDArray[np.float32]]:
    """Fraction of each dose voxel covered by each VOI (see module docstring), by VOI id.

    A VOI drawn on the reference CT is read from the case's kept fraction map
    when there is one, else computed (and, through ``cache``, kept with the next
    save): :mod:`dosimetry_core.pipeline.grid_cache`.  A VOI carried through a
    registration is computed each time.  Each call returns fresh arrays.
    """
    return (cache or GridCache(store, case)).fractions(vois, target)


def _has_ct(tp: Any) -> bool:
    return tp.anatomical is not None and tp.anatomical.volume is not None


def voi_masks_on_grid(
    store: CaseRepository,
    case: Case,
    vois: Sequence[VOI],
    target: Geometry,
    cache: GridCache | None = None,
) -> dict[str, NDArray[np.bool_]]:
    """Each VOI's mask on the dose grid (covered fraction >= 0.5), by VOI id."""
    fractions = voi_fractions_on_grid(store, case, vois, target, cache)
    return {k: f >= 0.5 for k, f in fractions.items()}


def compute_dose(
    store: CaseRepository,
    case_id: str,
    *,
    method: str,
    tia_map_id: str | None = None,
    medium: str = "soft-tissue",
    include_progeny: bool = True,
    led_energy: str = "non-penetrating",
    mc_histories: int = 2_000_000,
    mc_target_uncertainty: float | None = None,
    mc_target_voi: str | None = None,
    mc_electrons: str = "local",
    mc_target_component: str = "photon",
    mc_scheduler: str | None = None,
    seed: int = 0,
    thresholds_gy: Sequence[float] = (),
    vois: Sequence[str] | None = None,
    dvh_bins: int | None = None,
    density_calibration: Any = None,
    user: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timings: dict[str, float] | None = None,
) -> DoseResult:
    """Dose map of a case by ``method`` and VOI statistics (module docstring).

    ``dvh_bins``: also a DVH per VOI with that many equal dose bins.  The VOI
    statistics are kept in the case as a typed
    :class:`~dosimetry_core.model.results.DoseSummary` (``case.results``; an older
    summary of the same method is superseded).  No figure here is per
    administered activity.  ``timings``, if given, receives the wall time (s) of
    each phase: ``load`` (case, TIA map, CT densities), ``nuclide_data``,
    ``kernel``, ``dose`` (convolution, LED or MC), ``fractions`` (VOIs on the dose
    grid), ``statistics`` and ``save``.

    Raises
    ------
    InvalidInputError
        Unknown method or option, no TIA map, no CT for densities, unknown VOI.
    Cancelled
        If cancelled (nothing is saved).
    """
    from dosimetry_core.physics.density import HuDensityCalibration
    from dosimetry_core.physics.nuclides import chain_energy_per_decay, excluded_progeny
    from dosimetry_core.pipeline.voi_review import find_voi, review_flag

    if method not in METHODS:
        raise InvalidInputError(
            f"unknown dose method {method!r}; choose one of {', '.join(METHODS)}"
        )
    if led_energy not in ("non-penetrating", "all"):
        raise InvalidInputError("led_energy must be 'non-penetrating' or 'all'")
    if mc_electrons not in ("local", "kernel"):
        raise InvalidInputError("mc_electrons must be 'local' or 'kernel'")
    if mc_target_component not in ("photon", "total"):
        raise InvalidInputError("mc_target_component must be 'photon' or 'total'")
    if mc_scheduler is not None:  # refused before the case is loaded
        from dosimetry_core.pipeline.mc_distributed import parse_scheduler

        if method != "mc":
            raise InvalidInputError(
                "--scheduler splits a Monte Carlo run: use it with --method mc", field="scheduler"
            )
        parse_scheduler(mc_scheduler)
    lap = _phase_clock(timings)
    case = store.load_case(case_id)
    tia_d = _current_tia_map(case, tia_map_id)
    nuclide = str(tia_d.provenance.get("nuclide") or "")
    if not nuclide:
        adm = case.first_administration
        if adm is None:
            raise InvalidInputError(f"case {case_id} has no administration")
        nuclide = adm.nuclide
    selected = case.vois if vois is None else [find_voi(case, v) for v in vois]
    inputs = fingerprint(
        case,
        "dose calculation",
        parts=("administrations", "time_points", "vois")
        + (("tia_map",) if tia_map_id is None else ()),
        vois=[v.voi_id for v in selected],
    )
    geom = tia_d.volume.geometry
    grids = GridCache(store, case, user=user)
    # the CT on the dose grid (a kept map, or resampled) is read in a second thread
    # while this one reads the TIA map: both are mostly zlib and SHA-256 (no GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ct_future = pool.submit(grids.ct_hu, geom)
        tia = store.load_volume(tia_d.volume)
        spacing = tuple(float(s) for s in geom.spacing_mm)
        decays = np.asarray(tia.array, dtype=np.float64) * geom.voxel_volume_ml * BQ_S_PER_MBQ_H
        report(progress, 0.02, "densities from the CT")
        calibration = density_calibration or HuDensityCalibration.load()
        ct = ct_future.result()
    hu = np.asarray(ct.array, dtype=np.float32)
    density = np.asarray(calibration.density_g_cm3(hu), dtype=np.float32)
    lap("load")
    energy = chain_energy_per_decay(nuclide, include_progeny=include_progeny)
    lap("nuclide_data")
    warnings: list[str] = []
    skipped = excluded_progeny(nuclide) if include_progeny else []
    if skipped:
        warnings.append(
            f"progeny not counted (they outlive {nuclide} and need their own kinetics): "
            + ", ".join(skipped)
        )
    provenance: dict[str, Any] = {
        "format": DOSE_FORMAT,
        "method": method,
        "nuclide": nuclide,
        "include_progeny": include_progeny,
        "tia_map_id": tia_d.derived_id,
        "tia_map_key": tia_d.volume.key,
        "ct_key": None,
        "density_calibration": calibration.name,
        "energy_per_decay_mev": {
            "electron": energy.electron_mev,
            "photon": energy.photon_mev,
            "alpha": energy.alpha_mev,
            "alpha_recoil": energy.alpha_recoil_mev,
        },
        "total_decays_bq_s": float(decays.sum()),
        "voxel_mm": list(spacing),
    }
    uncertainty: NDArray[np.float32] | None = None
    mc_result: Any = None
    sub = sub_progress(progress, 0.05, 0.9)
    check_cancel(cancel)
    if method == "led":
        from dosimetry_core.dose.led import local_deposition_dose

        e = energy.non_penetrating_mev if led_energy == "non-penetrating" else energy.total_mev
        dose = local_deposition_dose(decays, spacing, e, density)
        provenance.update({"led_energy": led_energy, "energy_deposited_mev": e})
    elif method in ("vsv", "vsv-density"):
        from dosimetry_core.dose.convolution import convolve_dose, density_corrected
        from dosimetry_core.dose.kernels import voxel_kernel

        kernel = voxel_kernel(
            nuclide,
            spacing,
            medium,
            include_progeny=include_progeny,
            progress=sub_progress(sub, 0.0, 0.7),
            cancel=cancel,
        )
        lap("kernel")
        dose = convolve_dose(
            decays,
            kernel.values_gy_per_bq_s,
            progress=sub_progress(sub, 0.7, 1.0),
            cancel=cancel,
        )
        if method == "vsv-density":
            dose = density_corrected(dose, density, kernel.density_g_cm3)
        provenance.update({"kernel": kernel.describe()})
    else:
        from dosimetry_core.dose.ct_materials import ct_to_materials
        from dosimetry_core.dose.monte_carlo import run_monte_carlo

        index, mc_density, mats = ct_to_materials(hu, calibration)
        # the VOIs' masks on the dose grid (cached), so the MC reports each VOI's
        # photon and electron components and the photon uncertainty of its mean
        fractions = voi_fractions_on_grid(store, case, selected, geom, grids) if selected else {}
        voi_masks = {
            v.voi_id: fractions[v.voi_id] >= 0.5 for v in selected if v.voi_id in fractions
        }
        voi_masks = {k: m for k, m in voi_masks.items() if m.any()}
        target_mask = None
        if mc_target_uncertainty is not None:
            if mc_target_voi is None:
                raise InvalidInputError("a target uncertainty needs a target VOI (--target-voi)")
            tvoi = find_voi(case, mc_target_voi)
            target_mask = voi_masks_on_grid(store, case, [tvoi], geom, grids)[tvoi.voi_id]
        electron = None
        if mc_electrons == "kernel":
            from dosimetry_core.dose.convolution import convolve_dose, density_corrected
            from dosimetry_core.dose.kernels import voxel_kernel

            kernel = voxel_kernel(
                nuclide,
                spacing,
                medium,
                include_progeny=include_progeny,
                components=("electron", "alpha"),
                cancel=cancel,
            )
            electron = density_corrected(
                convolve_dose(decays, kernel.values_gy_per_bq_s, cancel=cancel),
                density,
                kernel.density_g_cm3,
            )
            provenance.update({"kernel": kernel.describe()})
        mc_options: dict[str, Any] = {
            "histories": mc_histories,
            "deposit_local": mc_electrons == "local",
            "electron_dose_gy": electron,
            "include_progeny": include_progeny,
            "target_uncertainty": mc_target_uncertainty,
            "target_mask": target_mask,
            "target_component": mc_target_component,
            "voi_masks": voi_masks,
            "seed": seed,
            "progress": sub_progress(sub, 0.0, 0.9),
            "cancel": cancel,
        }
        mc_args = (decays, index, mc_density, mats, spacing, nuclide)
        if mc_scheduler is None:
            mc_result = run_monte_carlo(*mc_args, **mc_options)
        else:
            from dosimetry_core.pipeline.mc_distributed import run_monte_carlo_distributed

            split = run_monte_carlo_distributed(*mc_args, scheduler=mc_scheduler, **mc_options)
            mc_result = split.result
            provenance.update(
                {
                    "mc_scheduler": split.scheduler,
                    "mc_parts": len(split.parts),
                    "mc_workers": len(split.workers),
                }
            )
        dose = np.asarray(mc_result.dose_gy, dtype=np.float32)
        uncertainty = np.asarray(mc_result.rel_uncertainty, dtype=np.float32)
        names = {v.voi_id: v.name for v in selected}
        provenance.update(
            {
                "mc_target_component": mc_target_component,
                "mc_target_photon_uncertainty": mc_result.target_photon_uncertainty,
                "mc_target_total_uncertainty": mc_result.target_total_uncertainty,
                "mc_target_mean_voxel_uncertainty": mc_result.target_mean_voxel_uncertainty,
                "mc_voi_components": {
                    names[c.name]: {
                        "voi_id": c.name,
                        "mean_gy": c.mean_gy,
                        "photon_mean_gy": c.photon_mean_gy,
                        "electron_mean_gy": c.electron_mean_gy,
                        "photon_sd_gy": c.photon_sd_gy,
                        "photon_rel_uncertainty": c.photon_rel_uncertainty,
                        "total_rel_uncertainty": c.total_rel_uncertainty,
                    }
                    for c in mc_result.voi_components
                },
            }
        )
        provenance.update(
            {
                "mc_histories": int(mc_result.histories),
                "mc_seed": int(mc_result.seed),
                "mc_electrons": mc_electrons,
                "mc_stopped_because": mc_result.stopped_because,
                "mc_histories_per_s": float(mc_result.histories_per_s),
                "mc_target_uncertainty": mc_target_uncertainty,
                "mc_target_voi": mc_target_voi,
                "mc_target_uncertainty_reached": mc_result.target_uncertainty_reached,
            }
        )
    check_cancel(cancel)
    lap("dose")
    report(progress, 0.9, "dose statistics per VOI")
    dose = np.asarray(dose, dtype=np.float32)
    if mc_result is None:  # the mc path computed them before the transport
        fractions = voi_fractions_on_grid(store, case, selected, geom, grids) if selected else {}
    lap("fractions")
    voi_rows = _voi_statistics(
        store, case, selected, geom, dose, density, uncertainty, thresholds_gy, review_flag,
        dvh_bins, fractions,
    )  # fmt: skip
    lap("statistics")
    provenance["ct_key"] = _reference_ct_key(case)
    dose_ref = store.put_volume(
        Volume(dose, geom, ImageUnits.GY, f"dose ({method}, {nuclide})"),
        meta={"method": method},
    )
    dose_map = DerivedMap(
        kind=DerivedKind.DOSE,
        volume=dose_ref,
        label=f"dose {method} ({nuclide})",
        provenance=provenance,
        created_by=user,
        parent_id=tia_d.derived_id,
    )
    unc_map = None
    if uncertainty is not None:
        unc_ref = store.put_volume(
            Volume(uncertainty, geom, ImageUnits.UNKNOWN, "relative 1-SD statistical uncertainty")
        )
        unc_map = DerivedMap(
            kind=DerivedKind.DOSE_UNCERTAINTY,
            volume=unc_ref,
            label=f"MC relative uncertainty ({nuclide})",
            provenance={"method": method, "unit": "relative (1 SD)"},
            created_by=user,
            parent_id=dose_map.derived_id,
        )
    summary = DoseSummary(
        dose_map_id=dose_map.derived_id,
        method=method,
        vois=tuple(voi_rows),
        nuclide=nuclide,
        tia_map_id=tia_d.derived_id,
        uncertainty_map_id=None if unc_map is None else unc_map.derived_id,
        warnings=tuple(warnings),
        provenance=json_clean(provenance),
        created_by=user,
    )

    def apply(latest: Case) -> None:
        for d in latest.derived:
            if d.kind in (DerivedKind.DOSE, DerivedKind.DOSE_UNCERTAINTY) and (
                d.provenance.get("method") == method
            ):
                d.superseded = True
        latest.derived.append(dose_map)
        if unc_map is not None:
            latest.derived.append(unc_map)
        latest.add_result(summary)
        grids.keep(latest)  # the VOI fractions and the CT on this grid, for the next dose

    # onto the newest stored case, refused (nothing saved) if the TIA map, a VOI, an
    # administration or a time point (CT, registration) it read changed meanwhile
    save_results(
        store,
        inputs,
        apply,
        audit=store.audit_spec("dose", method=method, dose_map_id=dose_map.derived_id, user=user),
    )
    lap("save")
    report(progress, 1.0, "dose done")
    return DoseResult(dose_map=dose_map, uncertainty_map=unc_map, summary=summary)


def _phase_clock(timings: dict[str, float] | None) -> Callable[[str], None]:
    """``lap(name)`` adds the wall time since the previous lap to ``timings[name]``."""
    last = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + now - last[0]
        last[0] = now

    return lap


def _reference_ct_key(case: Case) -> str | None:
    from dosimetry_core.pipeline.tia_map import reference_time_point

    ref = reference_time_point(case)
    if ref.anatomical is None or ref.anatomical.volume is None:
        return None
    return ref.anatomical.volume.key


def _voi_statistics(
    store: CaseRepository,
    case: Case,
    vois: Sequence[VOI],
    geom: Geometry,
    dose: NDArray[np.float32],
    density: NDArray[np.float32],
    uncertainty: NDArray[np.float32] | None,
    thresholds_gy: Sequence[float],
    review_flag: Any,
    dvh_bins: int | None = None,
    fractions: dict[str, NDArray[np.float32]] | None = None,
) -> list[VoiDose]:
    from dosimetry_core.dose.dvh import dose_statistics, dose_volume_histogram

    if not vois:
        return []
    if fractions is None:
        fractions = voi_fractions_on_grid(store, case, vois, geom)
    rows = []
    for voi in vois:
        frac = fractions[voi.voi_id]
        m = frac >= 0.5
        note = None
        if not m.any():
            top = float(frac.max())
            if top <= 0:
                rows.append(
                    VoiDose(
                        voi.voi_id,
                        voi.name,
                        review_flag(voi),
                        None,
                        error="the VOI does not overlap the dose grid",
                    )
                )
                continue
            # smaller than half a dose voxel: the voxels it covers most (>= half its best cover)
            m = frac >= 0.5 * top
            note = (
                f"VOI smaller than the dose grid resolution (it covers at most {100 * top:.0f} % "
                f"of a dose voxel): statistics from the {int(m.sum())} voxel(s) it covers most, "
                "volume is theirs"
            )
        stats = dose_statistics(
            dose,
            m,
            geom.spacing_mm,
            thresholds_gy=thresholds_gy,
            density_g_cm3=density,
        )
        unc_mean = None
        if uncertainty is not None:
            d = dose[m].astype(np.float64)
            total = float(d.sum())
            if total > 0:
                unc_mean = float(np.sum(uncertainty[m].astype(np.float64) * d) / total)
        stats_d = stats.to_dict()
        if note:
            stats_d["note"] = note
        hist = None
        if dvh_bins:
            hist = DvhCurve.from_dict(
                dose_volume_histogram(
                    dose, m, geom.spacing_mm, n_bins=int(dvh_bins), density_g_cm3=density
                ).to_dict()
            )
        rows.append(
            VoiDose(
                voi.voi_id,
                voi.name,
                review_flag(voi),
                DoseStatistics.from_dict(stats_d),
                mc_mean_voxel_uncertainty=unc_mean,
                dvh=hist,
            )
        )
    return rows
