"""Synthetic QA phantom scans with known answers: a uniform cylinder and a NEMA IEC body phantom.

The SPECT model is the demo patient's (:mod:`dosimetry_core.phantoms.demo`):
partial-volume voxelisation (sub-voxel sampling), a 3D Gaussian blur of FWHM
``fwhm_mm`` (``scipy.ndimage.gaussian_filter``, ``mode='constant'``,
``truncate=4``), expected counts
``N = C[Bq/mL] * 1e-6 * V_voxel[mL] * duration_s * cps_per_mbq`` and Poisson
noise; written as count-based NM (``ge-counts`` style by default) with the
camera identity of :class:`~dosimetry_core.phantoms.demo.DemoConfig`, so that
a calibration measured on these phantoms applies to the demo patient written in
``ge-counts`` style.

``write_cylinder_phantom``: uniform cylinder (axis along the slices), known
activity at a known time before the scan.  Truth: ``cps_per_mbq``.

``write_iec_phantom``: elliptical body (the NEMA IEC body phantom's width and
height; the real body is D-shaped), cold lung insert along the axis, six hot
spheres of the NEMA diameters (``resources/qa/nema_iec_body_phantom.json``) on a
ring in the central transverse plane (sphere walls neglected).  Truth per sphere:
``rc_grid`` = the exact RC of the resolution model on the image grid (the sphere
indicator voxelised with sub-voxel sampling, blurred with the same PSF, averaged
inside the sphere with the same partial-volume weights) and ``rc_continuous`` =
the continuous Gaussian-PSF sphere RC
(:func:`dosimetry_core.qa.recovery.gaussian_sphere_rc`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.phantoms.demo import DemoConfig, _centered_geometry, _jsonable, _uid
from dosimetry_core.physics.nuclides import normalize_nuclide

TRUTH_FORMAT = "mrt-qa-phantom-truth/1"


@dataclass
class QaScanConfig:
    """Camera, grid and acquisition of a synthetic phantom scan (defaults: the demo's)."""

    seed: int = 20261204
    noise: bool = True
    nuclide: str = "Lu-177"
    scan_datetime: datetime = datetime(2026, 2, 23, 10, 0, 0)
    shape_zyx: tuple[int, int, int] = (64, 64, 64)
    spacing_mm: tuple[float, float, float] = (4.8, 4.8, 4.8)
    fwhm_mm: float = field(default_factory=lambda: DemoConfig().fwhm_mm)
    cps_per_mbq: float = field(default_factory=lambda: DemoConfig().cps_per_mbq)
    acquisition_duration_s: float = field(
        default_factory=lambda: DemoConfig().acquisition_duration_s
    )
    supersampling: int = 5
    style: str = "ge-counts"
    center_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Phantom centre relative to the field-of-view centre (x, y, z), mm."""
    manufacturer: str = field(default_factory=lambda: DemoConfig().manufacturer)
    manufacturer_model: str = field(default_factory=lambda: DemoConfig().manufacturer_model)
    station_name: str = field(default_factory=lambda: DemoConfig().station_name)
    device_serial_number: str = field(default_factory=lambda: DemoConfig().device_serial_number)
    institution_name: str = field(default_factory=lambda: DemoConfig().institution_name)


@dataclass
class QaPhantomFiles:
    out_dir: Path
    nm_paths: list[Path]
    truth_path: Path
    truth: dict[str, Any]


def _axis_overlap(centres: Any, step: float, lo: float, hi: float) -> Any:
    """Fraction of each 1D voxel [c - step/2, c + step/2] inside [lo, hi]."""
    a = np.maximum(centres - step / 2, lo)
    b = np.minimum(centres + step / 2, hi)
    return np.clip(b - a, 0.0, None) / step


def _ellipse_fraction(
    geom: Geometry, cx: float, cy: float, ax: float, ay: float, ss: int
) -> NDArray[np.float64]:
    """Fraction of each (y, x) pixel inside the ellipse (semi-axes ax, ay; LPS mm)."""
    _nz, ny, nx = geom.shape_zyx
    sx, sy, _ = geom.spacing_mm
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    x = (geom.origin_mm[0] + np.arange(nx)[:, None] * sx + offs[None, :] * sx).ravel()
    y = (geom.origin_mm[1] + np.arange(ny)[:, None] * sy + offs[None, :] * sy).ravel()
    inside = ((x[None, :] - cx) / ax) ** 2 + ((y[:, None] - cy) / ay) ** 2 <= 1.0
    return inside.reshape(ny, ss, nx, ss).mean(axis=(1, 3))


def _validate(cfg: QaScanConfig) -> None:
    if cfg.cps_per_mbq <= 0 or cfg.acquisition_duration_s <= 0:
        raise InvalidInputError("calibration factor and acquisition duration must be positive")
    if cfg.fwhm_mm < 0:
        raise InvalidInputError("the resolution FWHM cannot be negative")
    if cfg.supersampling < 1:
        raise InvalidInputError("supersampling must be at least 1")


def _geometry(cfg: QaScanConfig, uid_key: tuple[Any, ...]) -> Geometry:
    """Field of view centred on LPS (0, 0, 0); the phantom sits at ``center_offset_mm``."""
    return _centered_geometry(cfg.shape_zyx, cfg.spacing_mm, np.zeros(3), _uid(*uid_key, "for"))


def _blur_and_count(
    bqml: NDArray[np.float64], cfg: QaScanConfig, geom: Geometry
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The demo's SPECT model: Gaussian blur, expected counts, Poisson noise."""
    sigma_mm = cfg.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    image = bqml
    if sigma_mm > 0:
        image = ndimage.gaussian_filter(
            bqml,
            sigma=[sigma_mm / s for s in cfg.spacing_mm[::-1]],
            mode="constant",
            cval=0.0,
            truncate=4.0,
        )
    np.maximum(image, 0.0, out=image)
    expected = image * (1e-6 * geom.voxel_volume_ml * cfg.acquisition_duration_s * cfg.cps_per_mbq)
    rng = np.random.default_rng(cfg.seed)
    counts = rng.poisson(expected).astype(np.float32) if cfg.noise else expected.astype(np.float32)
    return counts, expected


def _write(
    out_dir: Path,
    cfg: QaScanConfig,
    counts: NDArray[np.float32],
    geom: Geometry,
    uid_key: tuple[Any, ...],
    description: str,
    source_activity_mbq: float,
    source_time: datetime,
) -> list[Path]:
    from dosimetry_core.io.dicom_write import write_nm_tomo
    from dosimetry_core.io.types import DicomWriteContext

    counts_style = cfg.style.endswith("-counts")
    if counts_style:
        vol = Volume(counts, geom, ImageUnits.COUNTS, description)
    else:
        bq = counts.astype(np.float64) / (cfg.acquisition_duration_s * cfg.cps_per_mbq)
        vol = Volume(
            (bq * 1e6 / geom.voxel_volume_ml).astype(np.float32), geom, ImageUnits.BQML, description
        )
    ctx = DicomWriteContext(
        patient_id="QA-PHANTOM",
        patient_name="QA^Phantom",
        study_instance_uid=_uid(*uid_key, "study"),
        frame_of_reference_uid=geom.frame_of_reference_uid,
        study_datetime=cfg.scan_datetime,
        acquisition_datetime=cfg.scan_datetime,
        series_description=description,
        series_instance_uid=_uid(*uid_key, "nm"),
        study_description="QA phantom (synthetic)",
        manufacturer=cfg.manufacturer,
        manufacturer_model=cfg.manufacturer_model,
        station_name=cfg.station_name,
        device_serial_number=cfg.device_serial_number,
        institution_name=cfg.institution_name,
        nuclide=normalize_nuclide(cfg.nuclide),
        radiopharmaceutical=f"{normalize_nuclide(cfg.nuclide)} QA source",
        injected_activity_mbq=source_activity_mbq,
        injection_datetime=source_time,
        acquisition_duration_s=cfg.acquisition_duration_s,
    )
    return list(write_nm_tomo(vol, out_dir / "NM", ctx, style=cfg.style))


def _save_truth(out_dir: Path, truth: dict[str, Any]) -> Path:
    path = out_dir / "qa_truth.json"
    path.write_text(json.dumps(_jsonable(truth), indent=1, allow_nan=False))
    return path


def write_cylinder_phantom(
    out_dir: Path,
    *,
    activity_mbq: float = 100.0,
    activity_time: datetime | None = None,
    diameter_mm: float = 200.0,
    length_mm: float = 200.0,
    config: QaScanConfig | None = None,
) -> QaPhantomFiles:
    """Write a uniform-cylinder calibration scan and ``qa_truth.json``.

    Parameters
    ----------
    out_dir
        Output folder; the series goes to ``out_dir/NM``.
    activity_mbq
        Activity in the cylinder (MBq) at ``activity_time``.
    activity_time
        When the activity was measured (default: 2 h before the scan).
    diameter_mm, length_mm
        Inner cylinder size (mm); axis along the slice axis.
    config
        Camera and grid (default :class:`QaScanConfig`).
    """
    from dosimetry_core.physics.decay import decay_factor, hours_between

    cfg = config or QaScanConfig()
    _validate(cfg)
    if activity_mbq <= 0 or diameter_mm <= 0 or length_mm <= 0:
        raise InvalidInputError("activity, diameter and length must be positive")
    nuclide = normalize_nuclide(cfg.nuclide)
    t_act = activity_time or (cfg.scan_datetime - timedelta(hours=2))
    a_scan = activity_mbq * decay_factor(nuclide, hours_between(t_act, cfg.scan_datetime))
    uid_key = ("qa-cylinder", cfg.seed, cfg.noise, activity_mbq, diameter_mm, length_mm)
    geom = _geometry(cfg, uid_key)
    cx, cy, cz = cfg.center_offset_mm
    disk = _ellipse_fraction(geom, cx, cy, diameter_mm / 2, diameter_mm / 2, cfg.supersampling)
    z = geom.origin_mm[2] + np.arange(geom.shape_zyx[0]) * geom.spacing_mm[2]
    zf = _axis_overlap(z, geom.spacing_mm[2], cz - length_mm / 2, cz + length_mm / 2)
    frac = zf[:, None, None] * disk[None, :, :]
    voxel_ml = geom.voxel_volume_ml
    # the phantom holds exactly A(t_scan): scale the voxelised cylinder to it
    bqml = frac * (a_scan * 1e6 / (float(frac.sum()) * voxel_ml))
    counts, expected = _blur_and_count(bqml, cfg, geom)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _write(
        out_dir, cfg, counts, geom, uid_key, f"{nuclide} cylinder calibration", activity_mbq, t_act
    )
    truth = {
        "format": TRUTH_FORMAT,
        "phantom": "uniform cylinder",
        "nuclide": nuclide,
        "cps_per_mbq": cfg.cps_per_mbq,
        "activity_mbq": activity_mbq,
        "activity_time": t_act.isoformat(),
        "scan_datetime": cfg.scan_datetime.isoformat(),
        "activity_at_scan_mbq": a_scan,
        "diameter_mm": diameter_mm,
        "length_mm": length_mm,
        "center_lps_mm": list(cfg.center_offset_mm),
        "expected_counts_total": float(expected.sum()),
        "counts_total": float(counts.sum(dtype=np.float64)),
        "config": asdict(cfg),
        "resolution_model": "3D Gaussian, scipy.ndimage.gaussian_filter(mode='constant', "
        "truncate=4); Poisson noise (numpy Generator, seeded)",
    }
    return QaPhantomFiles(out_dir, paths, _save_truth(out_dir, truth), truth)


def iec_sphere_centres_lps_mm(
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[tuple[float, float, float]]:
    """Centres (LPS mm) of the six spheres: ring radius from the NEMA geometry, 60 deg apart."""
    from dosimetry_core.qa.recovery import nema_iec_phantom

    ring = float(nema_iec_phantom()["sphere_ring_radius_mm"]["value"])
    cx, cy, cz = center_mm
    return [
        (cx + ring * math.cos(math.radians(60 * i)), cy + ring * math.sin(math.radians(60 * i)), cz)
        for i in range(6)
    ]


def write_iec_phantom(
    out_dir: Path,
    *,
    sphere_kbq_ml: float = 800.0,
    background_kbq_ml: float = 100.0,
    lung_insert: bool = True,
    config: QaScanConfig | None = None,
) -> QaPhantomFiles:
    """Write a NEMA IEC body phantom style scan and ``qa_truth.json`` (module docstring).

    Parameters
    ----------
    out_dir
        Output folder; the series goes to ``out_dir/NM``.
    sphere_kbq_ml, background_kbq_ml
        Activity concentrations at the scan start (kBq/mL).
    lung_insert
        Cold cylinder along the axis.
    config
        Camera and grid; default a (56, 80, 80) grid of 4.8 mm voxels.
    """
    from dosimetry_core.qa.recovery import (
        gaussian_sphere_rc,
        nema_iec_phantom,
        nema_sphere_diameters_mm,
        sphere_fraction,
        sphere_volume_ml,
    )

    cfg = config or QaScanConfig(shape_zyx=(56, 80, 80))
    _validate(cfg)
    if sphere_kbq_ml <= 0 or background_kbq_ml < 0:
        raise InvalidInputError("sphere concentration must be > 0 and background >= 0 kBq/mL")
    ref = nema_iec_phantom()
    nuclide = normalize_nuclide(cfg.nuclide)
    uid_key = ("qa-iec", cfg.seed, cfg.noise, sphere_kbq_ml, background_kbq_ml, lung_insert)
    geom = _geometry(cfg, uid_key)
    cx, cy, cz = cfg.center_offset_mm
    ss = cfg.supersampling
    body_xy = _ellipse_fraction(
        geom,
        cx,
        cy,
        float(ref["body_width_mm"]["value"]) / 2,
        float(ref["body_height_mm"]["value"]) / 2,
        ss,
    )
    if lung_insert:
        r_lung = float(ref["lung_insert_diameter_mm"]["value"]) / 2
        body_xy = body_xy - _ellipse_fraction(geom, cx, cy, r_lung, r_lung, ss)
    length = float(ref["body_interior_length_mm"]["value"])
    z = geom.origin_mm[2] + np.arange(geom.shape_zyx[0]) * geom.spacing_mm[2]
    zf = _axis_overlap(z, geom.spacing_mm[2], cz - length / 2, cz + length / 2)
    background = zf[:, None, None] * body_xy[None, :, :]
    sp_zyx = np.asarray(geom.spacing_mm[::-1], dtype=float)
    spheres_frac = np.zeros(geom.shape_zyx)
    diameters = nema_sphere_diameters_mm()
    centres = iec_sphere_centres_lps_mm(cfg.center_offset_mm)
    per_sphere: list[tuple[Any, NDArray[np.float64], NDArray[np.float64]]] = []
    for d, c in zip(diameters, centres, strict=True):
        c_grid = geom.world_to_index(np.asarray(c)) * sp_zyx
        box, frac = sphere_fraction(geom.shape_zyx, sp_zyx, c_grid, d / 2, ss)
        spheres_frac[box] += frac
        per_sphere.append((box, frac, c_grid))
    bqml = (
        np.clip(background - spheres_frac, 0.0, None) * background_kbq_ml * 1e3
        + spheres_frac * sphere_kbq_ml * 1e3
    )
    counts, _expected = _blur_and_count(bqml, cfg, geom)
    # exact RC of the resolution model: blur each sphere indicator alone (same PSF)
    sigma_mm = cfg.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    truth_spheres = []
    for d, c, (box, frac, c_grid) in zip(diameters, centres, per_sphere, strict=True):
        ind = np.zeros(geom.shape_zyx)
        ind[box] = frac
        if sigma_mm > 0:
            ind = ndimage.gaussian_filter(
                ind, sigma=[sigma_mm / s for s in sp_zyx], mode="constant", truncate=4.0
            )
        rc_grid = float((frac * ind[box]).sum() / frac.sum())
        truth_spheres.append(
            {
                "diameter_mm": d,
                "volume_ml": sphere_volume_ml(d),
                "center_lps_mm": list(c),
                "center_grid_zyx_mm": [float(v) for v in c_grid],
                "rc_grid": rc_grid,
                "rc_continuous": float(gaussian_sphere_rc([sphere_volume_ml(d)], cfg.fwhm_mm)[0]),
            }
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _write(
        out_dir, cfg, counts, geom, uid_key, f"{nuclide} NEMA IEC phantom", 0.0, cfg.scan_datetime
    )
    truth = {
        "format": TRUTH_FORMAT,
        "phantom": "NEMA IEC body phantom style (elliptical body, lung insert, 6 spheres)",
        "nuclide": nuclide,
        "cps_per_mbq": cfg.cps_per_mbq,
        "scan_datetime": cfg.scan_datetime.isoformat(),
        "sphere_kbq_ml": sphere_kbq_ml,
        "background_kbq_ml": background_kbq_ml,
        "sphere_to_background_ratio": (
            sphere_kbq_ml / background_kbq_ml if background_kbq_ml > 0 else None
        ),
        "lung_insert": lung_insert,
        "fwhm_mm": cfg.fwhm_mm,
        "spheres": truth_spheres,
        "rc_definition": (
            "rc_grid: sum(f * (G * f)) / sum(f) with f the sphere's sub-voxel fraction on the "
            "image grid and G the Gaussian PSF (same filter as the scan); rc_continuous: mean "
            "over the sphere of the Gaussian-blurred indicator, analytic"
        ),
        "config": asdict(cfg),
    }
    return QaPhantomFiles(out_dir, paths, _save_truth(out_dir, truth), truth)
