"""The synthetic demo patient: Lu-177 DOTATATE, 4 SPECT/CT time points, known answers.

``generate_demo`` builds the images in memory; ``write_demo_dicom`` writes them
as DICOM (CT + NM tomo per time point, an RTSTRUCT with the true outlines) with a
``ground_truth.json`` next to them.  Everything is deterministic from
``DemoConfig.seed``.

Model, step by step
-------------------
1. Anatomy: :func:`~dosimetry_core.phantoms.stylised.adult_male_phantom`, a
   compact MIRD-like stylised adult male (Snyder et al., MIRD Pamphlet 5 revised,
   1978; Cristy & Eckerman, ORNL/TM-8381, 1987).
2. Kinetics: :mod:`dosimetry_core.phantoms._kinetics` -- bi-exponential organ and
   tumour curves, a three-exponential remainder of body, urine in the bladder;
   activities decay-included at scan time; TIAs analytic.
3. Each time point: the patient is placed in a slightly different pose (known
   rigid motion), every compartment is voxelised with partial-volume fractions
   (``supersampling^3`` sub-samples per voxel) and filled with a uniform
   concentration ``A / V`` (V the exact volume).
4. SPECT: 3D Gaussian blur (FWHM ``fwhm_mm``; ``scipy.ndimage.gaussian_filter``,
   ``mode='constant'``), expected counts
   ``N = C[Bq/mL] * 1e-6 * V_voxel[mL] * duration_s * cps_per_mbq``, Poisson noise;
   the Bq/mL image is ``N / (duration_s * cps_per_mbq) * 1e6 / V_voxel``
   (PHYSICS.md section 2).  Partial-volume and resolution losses are therefore
   present in the images, as in a real acquisition.
5. CT: tissue labels at voxel centres, typical HU per tissue, Gaussian noise.

Misalignment convention
-----------------------
``matrix_ref_to_tp`` maps a point of the patient in the reference pose (time
point 1, LPS mm) to the same anatomical point in the scanner coordinates of the
time point: ``p_tp = R (p_ref - c) + c + t`` with ``R = Rz @ Ry @ Rx`` (angles in
degrees about the LPS x, y, z axes), exactly
:func:`dosimetry_core.imaging.resample.rigid_transform`.  It is the transform
that ``resample(volume_tp, geometry_tp1, transform=matrix_ref_to_tp)`` needs to
bring the time point onto time point 1 (the ITK fixed = TP1 -> moving = TPk sense).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.imaging.resample import rigid_transform
from dosimetry_core.model import Administration, Geometry, ImageUnits, Patient, Volume
from dosimetry_core.phantoms._kinetics import (
    DemoKinetics,
    RemainderKinetics,
    UptakeWashout,
    default_uptake_table,
)
from dosimetry_core.phantoms.stylised import (
    Occupancy,
    StylisedPhantom,
    adult_male_phantom,
    compartment_occupancy,
    label_map,
)
from dosimetry_core.physics.nuclides import half_life_h, normalize_nuclide
from dosimetry_core.progress import (
    CancelCheck,
    ProgressCallback,
    check_cancel,
    report,
    sub_progress,
)

STYLES = ("siemens-bqml", "ge-counts")
"""The two demo styles of the CLI; any NM style of :mod:`dosimetry_core.io.dicom_write` works."""
GROUND_TRUTH_FORMAT = "mrt-demo-ground-truth/1"
_UID_ROOT = "mrt-dosimetry demo patient"


# ===================================================================== config
@dataclass(frozen=True)
class RigidMotion:
    """Known rigid motion of the patient at one time point (see the module docstring).

    Parameters
    ----------
    translation_mm
        ``t`` (x, y, z) in LPS mm.
    rotation_deg
        Rotations about the LPS x, y and z axes (degrees), composed ``Rz @ Ry @ Rx``
        about the centre of the phantom.
    """

    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def matrix(self, center_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """4x4 homogeneous matrix mapping reference-pose LPS points to this pose."""
        return rigid_transform(self.rotation_deg, self.translation_mm, center_mm)


def default_misalignment() -> tuple[RigidMotion, ...]:
    """TP1 is the reference; the others moved by 7-8 mm and 2-3 degrees."""
    return (
        RigidMotion(),
        RigidMotion((5.0, -4.0, 3.0), (0.8, -0.6, 2.5)),
        RigidMotion((-6.0, 3.5, 1.5), (-1.0, 1.2, -2.0)),
        RigidMotion((3.5, 7.0, 2.0), (1.2, 0.8, 3.0)),
    )


@dataclass
class DemoConfig:
    """Everything that defines the demo patient; all fields can be overridden.

    Grid shapes are ``(z, y, x)`` = NumPy order; spacings are ``(x, y, z)`` = index
    order (i, j, k), as in :class:`~dosimetry_core.model.geometry.Geometry`.
    """

    seed: int = 20261122
    noise: bool = True
    # administration
    nuclide: str = "Lu-177"
    radiopharmaceutical: str = "Lu-177 DOTATATE"
    injected_activity_mbq: float = 7400.0
    injection_datetime: datetime = datetime(2026, 3, 2, 9, 30, 0)
    scan_hours: tuple[float, ...] = (4.0, 24.0, 96.0, 168.0)
    # SPECT
    spect_shape_zyx: tuple[int, int, int] = (120, 128, 128)
    spect_spacing_mm: tuple[float, float, float] = (4.8, 4.8, 4.8)
    fwhm_mm: float = 11.0
    cps_per_mbq: float = 9.0
    """Camera calibration factor (Lu-177 208 keV window, medium-energy collimators)."""
    n_detectors: int = 2
    views_per_detector: int = 60
    seconds_per_view: float = 20.0
    # CT
    ct_shape_zyx: tuple[int, int, int] = (116, 192, 192)
    ct_spacing_mm: tuple[float, float, float] = (3.2, 3.2, 5.0)
    ct_noise_hu: float = 15.0
    ct_delay_s: float = 60.0
    """The CT starts this long after the end of the SPECT acquisition."""
    # phantom and kinetics
    supersampling: int = 3
    misalignment: tuple[RigidMotion, ...] = field(default_factory=default_misalignment)
    uptake: tuple[UptakeWashout, ...] = field(default_factory=default_uptake_table)
    remainder: RemainderKinetics = field(default_factory=RemainderKinetics)
    void_interval_h: float = 1.0
    """The patient voided this long before each scan (bladder content model)."""
    # identity
    patient_id: str = "MRT-DEMO-001"
    patient_name: str = "Demo^Lutetium"
    patient_sex: str = "M"
    patient_weight_kg: float = 73.0
    patient_height_cm: float = 176.0
    patient_birth_date: date = date(1961, 5, 17)
    institution_name: str = "Demo Hospital"
    manufacturer: str = "MRT Dosimetry Demo"
    manufacturer_model: str = "Stylised phantom simulator"
    station_name: str = "DEMO-SPECTCT"
    device_serial_number: str = "DEMO-0001"

    @property
    def acquisition_duration_s(self) -> float:
        """Total SPECT acquisition time (s): views per detector x time per view.

        The detectors acquire simultaneously, so the default 2 detectors x 60
        views x 20 s take 1200 s; this is the ``duration_s`` of the counts convention.
        """
        return self.views_per_detector * self.seconds_per_view

    @classmethod
    def small(cls) -> DemoConfig:
        """Coarse grids for fast tests (same anatomy, kinetics and field of view)."""
        return cls(
            spect_shape_zyx=(60, 64, 64),
            spect_spacing_mm=(9.6, 9.6, 9.6),
            ct_shape_zyx=(58, 96, 96),
            ct_spacing_mm=(6.4, 6.4, 10.0),
            supersampling=4,
        )

    def motion(self, index: int) -> RigidMotion:
        """Motion of time point ``index`` (0-based); identity beyond the given list."""
        return self.misalignment[index] if index < len(self.misalignment) else RigidMotion()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(asdict(self))
        out["acquisition_duration_s"] = self.acquisition_duration_s
        return out


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


# ==================================================================== results
@dataclass
class DemoTimePoint:
    """One SPECT/CT visit of the demo patient."""

    index: int
    """1-based position in time."""
    label: str
    """Folder name, e.g. ``tp1_004h``."""
    time_h: float
    """Hours after injection at the SPECT acquisition start."""
    acquisition_datetime: datetime
    """SPECT acquisition start (activities are given at this time)."""
    ct_acquisition_datetime: datetime
    ct: Volume
    """CT in HU (int16), this time point's pose."""
    spect_bqml: Volume
    """SPECT activity concentration (Bq/mL, float32)."""
    spect_counts: Volume
    """SPECT counts per voxel for the whole acquisition (float32; integers with noise)."""
    labels: Volume
    """CT-grid tissue labels (uint8; names in ``ground_truth['labels']``)."""
    occupancy: dict[str, Occupancy]
    """Partial-volume fraction of each compartment on the SPECT grid."""
    matrix_ref_to_tp: NDArray[np.float64]
    """4x4 rigid motion, reference pose -> this pose (module docstring)."""
    frame_of_reference_uid: str
    ground_truth: dict[str, Any]
    """This time point's entry of the patient's ground truth."""


@dataclass
class DemoPatient:
    config: DemoConfig
    phantom: StylisedPhantom
    kinetics: DemoKinetics
    patient: Patient
    administration: Administration
    time_points: list[DemoTimePoint]
    ground_truth: dict[str, Any]
    """JSON-serialisable known answers (units in the key names)."""


@dataclass
class DemoFiles:
    """What :func:`write_demo_dicom` wrote."""

    out_dir: Path
    ground_truth_path: Path
    style: str
    time_point_dirs: list[Path]
    ct_paths: list[list[Path]]
    nm_paths: list[list[Path]]
    rtstruct_path: Path | None

    @property
    def all_paths(self) -> list[Path]:
        out = [p for ps in self.ct_paths + self.nm_paths for p in ps]
        if self.rtstruct_path is not None:
            out.append(self.rtstruct_path)
        out.append(self.ground_truth_path)
        return out


# ================================================================== generator
def _centered_geometry(
    shape_zyx: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    center_mm: NDArray[np.float64],
    frame_of_reference_uid: str = "",
) -> Geometry:
    n_xyz = np.asarray(shape_zyx[::-1], dtype=float)
    origin = np.asarray(center_mm, dtype=float) - np.asarray(spacing_mm) * (n_xyz - 1) / 2.0
    return Geometry(
        shape_zyx,
        spacing_mm,
        (float(origin[0]), float(origin[1]), float(origin[2])),
        frame_of_reference_uid=frame_of_reference_uid,
    )


def _uid(*parts: object) -> str:
    """Deterministic DICOM UID from the given parts (pydicom, SHA-512 of the entropy)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[_UID_ROOT, *[str(p) for p in parts]]))


def time_point_label(index: int, time_h: float) -> str:
    """Folder name of a time point: ``tp1_004h``."""
    return f"tp{index}_{int(round(time_h)):03d}h"


def _validate(config: DemoConfig) -> None:
    if config.injected_activity_mbq <= 0:
        raise InvalidInputError("the injected activity must be positive")
    if not config.scan_hours or any(t <= 0 for t in config.scan_hours):
        raise InvalidInputError("scan times must be positive hours after injection")
    if list(config.scan_hours) != sorted(config.scan_hours):
        raise InvalidInputError("scan times must be in increasing order")
    if config.supersampling < 1:
        raise InvalidInputError("supersampling must be at least 1")
    if config.cps_per_mbq <= 0 or config.acquisition_duration_s <= 0:
        raise InvalidInputError("calibration factor and acquisition duration must be positive")
    if config.fwhm_mm < 0:
        raise InvalidInputError("the resolution FWHM cannot be negative")


def generate_demo(
    config: DemoConfig | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> DemoPatient:
    """Build the synthetic demo patient in memory.

    Parameters
    ----------
    config
        Demo definition; ``DemoConfig()`` when None.
    progress, cancel
        Progress callback and cancel check (:mod:`dosimetry_core.progress`).

    Returns
    -------
    DemoPatient
        Per time point the CT (HU), the SPECT in Bq/mL and in counts, the label
        map and partial-volume fractions, and the ground truth (compartment
        activities in MBq at the SPECT start, TIAs in MBq*h, volumes in mL,
        masses in g, activity in the field of view, the misalignment).
    """
    config = DemoConfig() if config is None else config
    _validate(config)
    nuclide = normalize_nuclide(config.nuclide)
    phantom = adult_male_phantom()
    kinetics = DemoKinetics(
        config.injected_activity_mbq,
        half_life_h(nuclide),
        tuple(config.uptake),
        config.remainder,
        config.void_interval_h,
        remainder_name="remainder",
        bladder_name="bladder_content",
    )
    missing = set(phantom.names) ^ set(kinetics.compartments)
    if missing:
        raise InvalidInputError(f"kinetics and anatomy disagree on compartments: {sorted(missing)}")

    center = phantom.center_mm()
    n_tp = len(config.scan_hours)
    seeds = np.random.SeedSequence(config.seed).spawn(2 * n_tp)
    duration_s = config.acquisition_duration_s
    sigma_mm = config.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    volumes_ml = {name: phantom.compartment_volume_ml(name) for name in phantom.names}
    hu_table = phantom.hu_table()
    patient = Patient(
        patient_id=config.patient_id,
        name=config.patient_name,
        birth_date=config.patient_birth_date,
        sex=config.patient_sex,
        weight_kg=config.patient_weight_kg,
        height_cm=config.patient_height_cm,
    )
    administration = Administration(
        nuclide=nuclide,
        activity_mbq=config.injected_activity_mbq,
        time=config.injection_datetime,
        radiopharmaceutical=config.radiopharmaceutical,
        administration_id="adm-demo",
        source="synthetic demo",
    )
    uid_key = (config.patient_id, config.seed, config.noise)

    time_points: list[DemoTimePoint] = []
    for idx, scan_h in enumerate(config.scan_hours):
        check_cancel(cancel)
        # acquisition start on whole seconds, as DICOM stores it; activities refer to it
        spect_time = (config.injection_datetime + timedelta(hours=float(scan_h))).replace(
            microsecond=0
        )
        t_h = (spect_time - config.injection_datetime).total_seconds() / 3600.0
        step = sub_progress(progress, idx / n_tp, (idx + 1) / n_tp)
        label = time_point_label(idx + 1, t_h)
        report(step, 0.0, f"demo patient: time point {idx + 1} ({t_h:g} h), anatomy")
        motion = config.motion(idx)
        matrix = motion.matrix(center)
        for_uid = _uid(*uid_key, "frame-of-reference", idx + 1)
        spect_geom = _centered_geometry(
            config.spect_shape_zyx, config.spect_spacing_mm, center, for_uid
        )
        ct_geom = _centered_geometry(config.ct_shape_zyx, config.ct_spacing_mm, center, for_uid)
        voxel_ml = spect_geom.voxel_volume_ml

        # ---- activity image (noise-free, before blur)
        occ = compartment_occupancy(phantom, spect_geom, matrix, config.supersampling, cancel)
        activity = {name: float(kinetics.activity_mbq(name, t_h)) for name in phantom.names}
        conc_bq_ml = {name: activity[name] * 1e6 / volumes_ml[name] for name in phantom.names}
        image = np.zeros(spect_geom.shape_zyx, dtype=np.float64)
        for name, o in occ.items():
            image[o.box] += o.fraction * conc_bq_ml[name]
        phantom_fov_mbq = float(image.sum()) * voxel_ml * 1e-6
        check_cancel(cancel)
        report(step, 0.5, f"demo patient: time point {idx + 1}, SPECT")

        # ---- SPECT: resolution, counts, noise
        if sigma_mm > 0:
            sig_zyx = [sigma_mm / s for s in config.spect_spacing_mm[::-1]]
            image = ndimage.gaussian_filter(
                image, sigma=sig_zyx, mode="constant", cval=0.0, truncate=4.0
            )
        np.maximum(image, 0.0, out=image)
        fov_mbq = float(image.sum()) * voxel_ml * 1e-6
        expected = image * (1e-6 * voxel_ml * duration_s * config.cps_per_mbq)
        rng_spect = np.random.default_rng(seeds[2 * idx])
        counts = (
            rng_spect.poisson(expected).astype(np.float32)
            if config.noise
            else expected.astype(np.float32)
        )
        bqml = counts.astype(np.float64) / (duration_s * config.cps_per_mbq) * 1e6 / voxel_ml
        desc = f"Lu-177 SPECT {t_h:g} h p.i. (demo)"
        spect_bqml = Volume(bqml.astype(np.float32), spect_geom, ImageUnits.BQML, desc)
        spect_counts = Volume(counts, spect_geom, ImageUnits.COUNTS, desc)
        image_mbq = spect_bqml.total_activity_mbq()
        check_cancel(cancel)
        report(step, 0.75, f"demo patient: time point {idx + 1}, CT")

        # ---- CT
        labels = label_map(phantom, ct_geom, matrix)
        hu = hu_table[labels]
        if config.noise and config.ct_noise_hu > 0:
            rng_ct = np.random.default_rng(seeds[2 * idx + 1])
            hu = hu + rng_ct.standard_normal(hu.shape, dtype=np.float32) * np.float32(
                config.ct_noise_hu
            )
        ct_arr = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
        ct_time = spect_time + timedelta(seconds=duration_s + config.ct_delay_s)
        ct = Volume(ct_arr, ct_geom, ImageUnits.HU, f"CT {t_h:g} h p.i. (demo)")
        label_vol = Volume(labels, ct_geom, ImageUnits.MASK, "tissue labels (demo)")

        # ---- ground truth of this time point
        comp_truth = {
            name: {
                "activity_mbq": activity[name],
                "concentration_bq_ml": conc_bq_ml[name],
                "voxelised_volume_ml": occ[name].voxel_sum() * voxel_ml,
                "activity_in_image_before_blur_mbq": occ[name].voxel_sum()
                * voxel_ml
                * conc_bq_ml[name]
                * 1e-6,
            }
            for name in phantom.names
        }
        injected_decayed = float(kinetics.injected_decayed_mbq(t_h))
        excreted = float(kinetics.excreted_activity_mbq(t_h))
        tp_truth: dict[str, Any] = {
            "index": idx + 1,
            "label": label,
            "hours_after_administration": float(t_h),
            "acquired_at": spect_time.isoformat(),
            "ct_acquired_at": ct_time.isoformat(),
            "frame_of_reference_uid": for_uid,
            "injected_decayed_mbq": injected_decayed,
            "excreted_activity_mbq": excreted,
            "body_activity_mbq": injected_decayed - excreted,
            "sum_compartments_activity_mbq": float(sum(activity.values())),
            "phantom_activity_in_fov_mbq": phantom_fov_mbq,
            "fov_activity_mbq": fov_mbq,
            "blur_loss_fraction": 1.0 - fov_mbq / phantom_fov_mbq if phantom_fov_mbq > 0 else 0.0,
            "image_activity_mbq": image_mbq,
            "expected_total_counts": float(expected.sum()),
            "total_counts": float(np.sum(counts, dtype=np.float64)),
            "compartments": comp_truth,
            "misalignment": {
                "translation_mm": list(motion.translation_mm),
                "rotation_deg": list(motion.rotation_deg),
                "center_mm": [float(v) for v in center],
                "matrix_ref_to_tp": matrix.tolist(),
            },
        }
        time_points.append(
            DemoTimePoint(
                index=idx + 1,
                label=label,
                time_h=float(t_h),
                acquisition_datetime=spect_time,
                ct_acquisition_datetime=ct_time,
                ct=ct,
                spect_bqml=spect_bqml,
                spect_counts=spect_counts,
                labels=label_vol,
                occupancy=occ,
                matrix_ref_to_tp=matrix,
                frame_of_reference_uid=for_uid,
                ground_truth=tp_truth,
            )
        )
        report(step, 1.0, f"demo patient: time point {idx + 1} done")

    truth = _ground_truth(config, phantom, kinetics, nuclide, time_points, volumes_ml)
    return DemoPatient(config, phantom, kinetics, patient, administration, time_points, truth)


def _ground_truth(
    config: DemoConfig,
    phantom: StylisedPhantom,
    kinetics: DemoKinetics,
    nuclide: str,
    time_points: list[DemoTimePoint],
    volumes_ml: dict[str, float],
) -> dict[str, Any]:
    a0 = config.injected_activity_mbq
    compartments: dict[str, Any] = {}
    for o in phantom.organs:
        tia = kinetics.tia_mbq_h(o.name)
        compartments[o.name] = {
            "roi_name": o.roi_name,
            "volume_ml": volumes_ml[o.name],
            "mass_g": phantom.compartment_mass_g(o.name),
            "density_g_cm3": o.density_g_cm3,
            "hu": o.hu,
            "tia_mbq_h": tia,
            "tiac_h": tia / a0,
            "hours_after_administration": [tp.time_h for tp in time_points],
            "activity_mbq": [
                tp.ground_truth["compartments"][o.name]["activity_mbq"] for tp in time_points
            ],
            "kinetics": kinetics.to_dict()["compartments"][o.name],
        }
    rois = {
        o.roi_name: {
            "compartment": o.name,
            "kind": o.roi_kind,
            "color_rgb": list(o.color_rgb),
            "shape_volume_ml": o.shape.volume_ml(),
            "includes": [c.name for c in phantom.children(o.name)],
        }
        for o in phantom.organs
    }
    lp = kinetics.decay_constant_per_h
    tia_total = sum(c["tia_mbq_h"] for c in compartments.values())
    tia_body = a0 / lp - a0 * math.exp(-lp * kinetics.void_interval_h) * (
        1.0 / lp
        - sum(
            c / (k + lp)
            for c, k in zip(
                kinetics.retention.amplitudes, kinetics.retention.rates_per_h, strict=True
            )
        )
    )
    spect_geom = time_points[0].spect_bqml.geometry
    ct_geom = time_points[0].ct.geometry
    return {
        "format": GROUND_TRUTH_FORMAT,
        "description": (
            "Synthetic Lu-177 DOTATATE patient: compact MIRD-like stylised phantom, analytic "
            "kinetics, SPECT with Gaussian resolution and Poisson noise, CT with Gaussian noise"
        ),
        "nuclide": nuclide,
        "injected_activity_mbq": a0,
        "injection_datetime": config.injection_datetime.isoformat(),
        "patient": {
            "patient_id": config.patient_id,
            "name": config.patient_name,
            "sex": config.patient_sex,
            "weight_kg": config.patient_weight_kg,
            "height_cm": config.patient_height_cm,
            "birth_date": config.patient_birth_date.isoformat(),
            "phantom_body_mass_g": sum(phantom.compartment_mass_g(n) for n in phantom.names),
            "note": "the stylised phantom has no arms or legs: its mass is below the weight",
        },
        "administration": {
            "nuclide": nuclide,
            "radiopharmaceutical": config.radiopharmaceutical,
            "injected_activity_mbq": a0,
            "injection_datetime": config.injection_datetime.isoformat(),
            "physical_half_life_h": kinetics.physical_half_life_h,
            "route": "intravenous",
        },
        "camera": {
            "cps_per_mbq": config.cps_per_mbq,
            "acquisition_duration_s": config.acquisition_duration_s,
            "n_detectors": config.n_detectors,
            "views_per_detector": config.views_per_detector,
            "seconds_per_view": config.seconds_per_view,
            "counts_convention": (
                "counts = C[Bq/mL] * 1e-6 * voxel_ml * acquisition_duration_s * cps_per_mbq; "
                "C[Bq/mL] = counts / (acquisition_duration_s * cps_per_mbq) * 1e6 / voxel_ml"
            ),
        },
        "spect": {
            "geometry": spect_geom.with_frame_of_reference("").to_dict(),
            "voxel_volume_ml": spect_geom.voxel_volume_ml,
            "fwhm_mm": config.fwhm_mm,
            "resolution_model": (
                "3D Gaussian, scipy.ndimage.gaussian_filter(mode='constant', truncate=4)"
            ),
            "noise": "Poisson (numpy Generator, seeded)" if config.noise else "none",
            "activity_reference_time": (
                "SPECT acquisition start (decay during the acquisition neglected)"
            ),
        },
        "ct": {
            "geometry": ct_geom.with_frame_of_reference("").to_dict(),
            "noise_sigma_hu": config.ct_noise_hu if config.noise else 0.0,
            "labels_at": "voxel centres",
        },
        "labels": {str(k): v for k, v in sorted(phantom.label_names().items())},
        "config": config.to_dict(),
        "phantom": phantom.to_dict(),
        "kinetics": kinetics.to_dict(),
        "compartments": compartments,
        "rois": rois,
        "totals": {
            "tia_all_compartments_mbq_h": tia_total,
            "tia_body_mbq_h": tia_body,
            "tia_fully_decayed_injected_mbq_h": a0 / lp,
            "urinary_excretion_fraction_24h_decay_corrected": float(
                kinetics.urinary_fraction(24.0)
            ),
        },
        "misalignment_convention": (
            "matrix_ref_to_tp maps a point of the patient in the reference pose (time point 1, "
            "LPS mm) to the same anatomical point in this time point's scanner coordinates: "
            "p_tp = R (p_ref - c) + c + t, R = Rz @ Ry @ Rx with rotation_deg about the LPS x, y, "
            "z axes and c = center_mm (dosimetry_core.imaging.resample.rigid_transform). "
            "resample(volume_tp, geometry_tp1, transform=matrix_ref_to_tp) aligns the time point "
            "onto time point 1."
        ),
        "time_points": [tp.ground_truth for tp in time_points],
        "units": {
            "activity": "MBq, decay-included at the SPECT acquisition start",
            "concentration": "Bq/mL",
            "tia": "MBq*h, integral from injection to infinity",
            "tiac": "h",
            "volume": "mL",
            "mass": "g",
            "length": "mm (LPS)",
            "time": "h after injection",
        },
    }


# ===================================================================== writer
def write_demo_dicom(
    out_dir: Path,
    config: DemoConfig | None = None,
    style: str = "siemens-bqml",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> DemoFiles:
    """Write the demo patient as DICOM plus ``ground_truth.json``.

    Layout: ``out_dir/tp1_004h/CT``, ``out_dir/tp1_004h/NM``, ... per time point,
    ``out_dir/tp1_004h/RTSTRUCT/true_outlines.dcm`` (analytic outlines on the CT
    slices of time point 1) and ``out_dir/ground_truth.json``.

    Parameters
    ----------
    out_dir
        Output folder (created).
    config
        Demo definition; ``DemoConfig()`` when None.
    style
        ``"siemens-bqml"``: NM in Bq/mL (Units BQML).  ``"ge-counts"``: NM in
        counts; importing needs the calibration factor
        (``--calibration-cps-per-mbq 9.0`` for the default config).  The other
        NM styles of :mod:`dosimetry_core.io.dicom_write` work too (``*-counts``
        styles get the counts image, the others the Bq/mL image).
    progress, cancel
        Progress callback and cancel check.

    Notes
    -----
    One PatientID for all time points; one StudyInstanceUID per time point (each
    visit is a study); one FrameOfReferenceUID per time point shared by its CT
    and NM.  UIDs are deterministic (seed, noise, style).
    """
    from dosimetry_core.io.dicom_write import (
        NM_STYLES,
        write_ct_series,
        write_nm_tomo,
        write_rtstruct,
    )
    from dosimetry_core.io.types import DicomWriteContext

    if style not in NM_STYLES:
        raise InvalidInputError(f"unknown demo style {style!r}; choose one of {', '.join(STYLES)}")
    counts_style = style.endswith("-counts")

    config = DemoConfig() if config is None else config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    demo = generate_demo(config, sub_progress(progress, 0.0, 0.6), cancel)
    truth = demo.ground_truth
    uid_key = (config.patient_id, config.seed, config.noise)

    tp_dirs: list[Path] = []
    ct_paths: list[list[Path]] = []
    nm_paths: list[list[Path]] = []
    n_tp = len(demo.time_points)
    for tp in demo.time_points:
        check_cancel(cancel)
        report(
            progress, 0.6 + 0.35 * (tp.index - 1) / n_tp, f"writing DICOM of time point {tp.index}"
        )
        tp_dir = out_dir / tp.label
        study_uid = _uid(*uid_key, "study", tp.index)
        hours = f"{tp.time_h:g} h"
        common: dict[str, Any] = {
            "patient_id": config.patient_id,
            "patient_name": config.patient_name,
            "study_instance_uid": study_uid,
            "frame_of_reference_uid": tp.frame_of_reference_uid,
            "study_datetime": tp.acquisition_datetime,
            "study_description": f"{config.radiopharmaceutical} SPECT/CT {hours} p.i. (demo)",
            "study_id": str(tp.index),
            "accession_number": f"DEMO{config.seed % 10000:04d}{tp.index}",
            "patient_birth_date": config.patient_birth_date,
            "patient_sex": config.patient_sex,
            "patient_weight_kg": config.patient_weight_kg,
            "patient_height_cm": config.patient_height_cm,
            "manufacturer": config.manufacturer,
            "manufacturer_model": config.manufacturer_model,
            "station_name": config.station_name,
            "device_serial_number": config.device_serial_number,
            "institution_name": config.institution_name,
        }
        nm_ctx = DicomWriteContext(
            **common,
            acquisition_datetime=tp.acquisition_datetime,
            series_number=1,
            series_description=tp.spect_bqml.description,
            series_instance_uid=_uid(*uid_key, style, "nm", tp.index),
            nuclide=demo.administration.nuclide,
            radiopharmaceutical=config.radiopharmaceutical,
            injected_activity_mbq=config.injected_activity_mbq,
            injection_datetime=config.injection_datetime,
            acquisition_duration_s=config.acquisition_duration_s,
        )
        ct_ctx = DicomWriteContext(
            **common,
            acquisition_datetime=tp.ct_acquisition_datetime,
            series_number=2,
            series_description=tp.ct.description,
            series_instance_uid=_uid(*uid_key, style, "ct", tp.index),
        )
        nm_volume = tp.spect_counts if counts_style else tp.spect_bqml
        nm_paths.append(list(write_nm_tomo(nm_volume, tp_dir / "NM", nm_ctx, style=style)))
        ct_paths.append(list(write_ct_series(tp.ct, tp_dir / "CT", ct_ctx)))
        tp_dirs.append(tp_dir)
        tp.ground_truth["study_instance_uid"] = study_uid
        tp.ground_truth["nm_series_instance_uid"] = nm_ctx.series_instance_uid
        tp.ground_truth["ct_series_instance_uid"] = ct_ctx.series_instance_uid
        tp.ground_truth["folder"] = tp.label

    # ---- RTSTRUCT: true outlines on the CT slices of time point 1 (reference pose)
    check_cancel(cancel)
    report(progress, 0.95, "writing the RTSTRUCT of the true outlines")
    tp1 = demo.time_points[0]
    rt_path: Path | None = None
    if not np.allclose(tp1.matrix_ref_to_tp, np.eye(4)):
        raise InvalidInputError(
            "time point 1 must be the reference pose (no misalignment) for the RTSTRUCT"
        )
    n_slices = tp1.ct.shape[0]
    z_slices = tp1.ct.geometry.index_to_world(
        np.column_stack([np.arange(n_slices), np.zeros(n_slices), np.zeros(n_slices)])
    )[:, 2]
    rois = demo.phantom.roi_contours([float(z) for z in z_slices])
    rt_ctx = DicomWriteContext(
        patient_id=config.patient_id,
        patient_name=config.patient_name,
        study_instance_uid=tp1.ground_truth["study_instance_uid"],
        frame_of_reference_uid=tp1.frame_of_reference_uid,
        study_datetime=tp1.acquisition_datetime,
        acquisition_datetime=tp1.ct_acquisition_datetime,
        series_number=10,
        series_description="True organ outlines (analytic, demo)",
        series_instance_uid=_uid(*uid_key, style, "rtstruct"),
        study_description=f"{config.radiopharmaceutical} SPECT/CT {tp1.time_h:g} h p.i. (demo)",
        study_id="1",
        patient_birth_date=config.patient_birth_date,
        patient_sex=config.patient_sex,
        patient_weight_kg=config.patient_weight_kg,
        patient_height_cm=config.patient_height_cm,
        manufacturer=config.manufacturer,
        manufacturer_model=config.manufacturer_model,
        station_name=config.station_name,
        institution_name=config.institution_name,
    )
    rt_dir = out_dir / tp1.label / "RTSTRUCT"
    rt_dir.mkdir(parents=True, exist_ok=True)
    rt_path = Path(write_rtstruct(rt_dir / "true_outlines.dcm", rt_ctx, ct_paths[0], rois))

    # ---- ground truth
    truth["style"] = style
    truth["nm_image"] = (
        f"counts; import with a calibration factor of {config.cps_per_mbq} cps/MBq"
        if counts_style
        else "Bq/mL"
    )
    truth["rtstruct"] = {
        "path": str(rt_path.relative_to(out_dir)),
        "reference": "CT slices of time point 1 (reference pose)",
        "rois": [r.name for r in rois],
    }
    truth["files"] = {
        tp.label: {"ct": f"{tp.label}/CT", "nm": f"{tp.label}/NM"} for tp in demo.time_points
    }
    gt_path = out_dir / "ground_truth.json"
    gt_path.write_text(json.dumps(_jsonable(truth), indent=1, allow_nan=False))
    report(progress, 1.0, f"demo patient written to {out_dir}")
    return DemoFiles(out_dir, gt_path, style, tp_dirs, ct_paths, nm_paths, rt_path)
