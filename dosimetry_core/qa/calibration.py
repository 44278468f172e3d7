"""Camera calibration factor (cps/MBq) from a phantom acquisition of known activity.

The factor uses the convention of the importer
(:func:`dosimetry_core.io.dicom_read.read_series`, PHYSICS.md section 2)::

    CF [cps/MBq] = N_VOI / (t_acq [s] * A(t_scan) [MBq])

with ``N_VOI`` the reconstructed counts inside a VOI that holds the whole
phantom plus a margin for the spill-out of the finite resolution, ``t_acq``
the acquisition duration (time per view x views per detector) and
``A(t_scan) = A(t_cal) exp(-lambda (t_scan - t_cal))`` the activity entered by
the user decayed to the acquisition start (``lambda = ln 2 / T_half``; Cherry,
Sorenson & Phelps, Physics in Nuclear Medicine, 4th ed. 2012, ch. 4).  Decay
during the acquisition is neglected, as in the importer, so that the same
convention cancels when patient counts are converted.  This is the
"sensitivity from a large uniform phantom with a generous VOI" approach of the
MIRD/EANM Lu-177 guidance (Ljungberg et al., MIRD Pamphlet No. 26, J Nucl Med
2016;57:151-162).

Uncertainty (1 SD, relative terms in quadrature): counting statistics
``1/sqrt(N_VOI)`` (Poisson) and, when entered, the standard uncertainty of the
activity measurement (dose calibrator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import ImageUnits, Volume
from dosimetry_core.store.repository import CaseRepository

GEOMETRIES = ("cylinder", "point")
DEFAULT_MARGIN_MM = 40.0
"""VOI margin beyond the phantom edge: more than 3 FWHM of a 10-13 mm SPECT resolution."""
_EDGE_FRACTION = 0.5
"""The edge of a uniform object blurred by a symmetric PSF sits at half its plateau."""


@dataclass
class NmScan:
    """An NM series read for QA: counts (or Bq/mL) volume, timing, device and nuclide."""

    volume: Volume
    acquired_at: datetime
    duration_s: float | None
    nuclide: str
    device: Any
    """:class:`~dosimetry_core.qa.records.DeviceKey`."""
    series_instance_uid: str
    source_path: str
    warnings: list[str] = field(default_factory=list)


def read_nm_scan(dicom_dir: str | Path) -> NmScan:
    """Read the single NM (SPECT) series under ``dicom_dir`` without any calibration.

    Raises
    ------
    InvalidInputError
        No NM series, or more than one (name the folder of one series).
    """
    from dosimetry_core.io.dicom_read import read_series
    from dosimetry_core.io.dicom_scan import scan_directory
    from dosimetry_core.qa.records import device_key_from_file

    root = Path(dicom_dir)
    if not root.exists():
        raise InvalidInputError(f"{root}: no such file or folder")
    scan = scan_directory(root)
    nm = [s for s in scan.series if s.modality == "NM"]
    if not nm:
        raise InvalidInputError(f"{root}: no NM (SPECT) series found for the QA analysis")
    if len(nm) > 1:
        raise InvalidInputError(
            f"{root}: {len(nm)} NM series found; give the folder of the one phantom acquisition"
        )
    s = nm[0]
    loaded = read_series(s)
    if loaded.acquired_at is None:  # read_series refuses this already
        raise InvalidInputError(f"{root}: the NM series has no acquisition date/time")
    return NmScan(
        volume=loaded.volume,
        acquired_at=loaded.acquired_at,
        duration_s=loaded.duration_s,
        nuclide=loaded.info.nuclide,
        device=device_key_from_file(s.paths[0]),
        series_instance_uid=loaded.info.series_instance_uid,
        source_path=str(s.paths[0].parent),
        # the phantom is read in counts on purpose: drop the importer's "uncalibrated" notice
        warnings=[w for w in loaded.warnings if "no calibration factor given" not in w],
    )


def check_nuclide(entered: str | None, scan_nuclide: str) -> str:
    """The nuclide of the analysis; refuses a mismatch between entry and DICOM header."""
    from dosimetry_core.physics.nuclides import normalize_nuclide

    entered_n = normalize_nuclide(entered) if entered else ""
    if entered_n and scan_nuclide and entered_n != scan_nuclide:
        raise InvalidInputError(
            f"nuclide mismatch: the source was entered as {entered_n} but the scan header "
            f"says {scan_nuclide}; check the acquisition or the entry"
        )
    nuclide = entered_n or scan_nuclide
    if not nuclide:
        raise InvalidInputError(
            "the scan header names no radionuclide: give it with --nuclide (e.g. Lu-177)"
        )
    return nuclide


# --------------------------------------------------------------------- VOI
@dataclass(frozen=True)
class PhantomVoi:
    """Automatic VOI of a calibration phantom in grid millimetres (z, y, x from voxel 0)."""

    geometry: str
    center_zyx_mm: tuple[float, float, float]
    radius_mm: float
    """Cylinder radius (or 0 for a point source) measured at half the plateau."""
    half_length_mm: float
    """Cylinder half length measured at half the plateau (0 for a point source)."""
    margin_mm: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "geometry": self.geometry,
            "center_zyx_mm": list(self.center_zyx_mm),
            "radius_mm": self.radius_mm,
            "half_length_mm": self.half_length_mm,
            "margin_mm": self.margin_mm,
        }


def _grid_mm(shape: tuple[int, ...], spacing_zyx: NDArray[np.float64]) -> list[NDArray[Any]]:
    return [np.arange(n, dtype=float) * s for n, s in zip(shape, spacing_zyx, strict=True)]


def find_phantom_voi(
    counts: NDArray[Any],
    spacing_zyx_mm: NDArray[np.float64],
    geometry: str = "cylinder",
    margin_mm: float = DEFAULT_MARGIN_MM,
) -> PhantomVoi:
    """Locate a uniform cylinder (axis along the slice axis) or a point/syringe source.

    The object is the largest connected region above half of its plateau (the
    99.5th percentile of the image smoothed over one voxel); its centre is the
    centroid of that region.  Cylinder: radius from the mean transverse area of
    the central half of its slices, ``r = sqrt(area / pi)``; half length from the
    number of slices.  The VOI adds ``margin_mm`` all round.

    Raises
    ------
    InvalidInputError
        Empty image, unknown geometry, or a VOI that leaves the field of view.
    """
    if geometry not in GEOMETRIES:
        raise InvalidInputError(f"unknown phantom geometry {geometry!r}; one of {GEOMETRIES}")
    if not (margin_mm >= 0):
        raise InvalidInputError(f"the VOI margin must be >= 0 mm, got {margin_mm!r}")
    img = np.asarray(counts, dtype=np.float64)
    smooth = ndimage.uniform_filter(img, size=3, mode="constant")
    plateau = float(np.percentile(smooth, 99.5)) if geometry == "cylinder" else float(smooth.max())
    if not (plateau > 0):
        raise InvalidInputError("the phantom image is empty (no counts)")
    above = smooth > _EDGE_FRACTION * plateau
    labels, n = ndimage.label(above)
    if n == 0:
        raise InvalidInputError("no phantom found in the image")
    sizes = ndimage.sum_labels(above, labels, index=np.arange(1, n + 1))
    region = labels == (int(np.argmax(sizes)) + 1)
    idx = np.argwhere(region)
    center = idx.mean(axis=0) * spacing_zyx_mm
    if geometry == "point":
        voi = PhantomVoi("point", (center[0], center[1], center[2]), 0.0, 0.0, float(margin_mm))
    else:
        zs = np.unique(idx[:, 0])
        n_sl = zs.size
        central = zs[n_sl // 4 : max(n_sl // 4 + 1, 3 * n_sl // 4)]
        areas = [float(region[z].sum()) * spacing_zyx_mm[1] * spacing_zyx_mm[2] for z in central]
        radius = math.sqrt(float(np.mean(areas)) / math.pi)
        half_length = 0.5 * n_sl * float(spacing_zyx_mm[0])
        voi = PhantomVoi(
            "cylinder", (center[0], center[1], center[2]), radius, half_length, float(margin_mm)
        )
    _check_in_field(voi, img.shape, spacing_zyx_mm)
    return voi


def _check_in_field(
    voi: PhantomVoi, shape: tuple[int, ...], spacing_zyx_mm: NDArray[np.float64]
) -> None:
    reach_xy = voi.radius_mm + voi.margin_mm
    reach_z = (voi.half_length_mm if voi.geometry == "cylinder" else 0.0) + voi.margin_mm
    reach = (reach_z, reach_xy, reach_xy)
    worst = 0.0
    for c, r, n, s in zip(voi.center_zyx_mm, reach, shape, spacing_zyx_mm, strict=True):
        lo, hi = -0.5 * s, (n - 0.5) * s
        worst = max(worst, lo - (c - r), (c + r) - hi)
    if worst > 0:
        raise InvalidInputError(
            f"phantom VOI outside the field of view by {worst:.0f} mm (object radius "
            f"{voi.radius_mm:.0f} mm, half length {voi.half_length_mm:.0f} mm, margin "
            f"{voi.margin_mm:.0f} mm): centre the phantom in the field, or reduce --margin-mm"
        )


def voi_mask(voi: PhantomVoi, shape: tuple[int, ...], spacing_zyx_mm: NDArray[np.float64]) -> Any:
    """Boolean mask of the VOI (voxel centres inside the enlarged cylinder or sphere)."""
    z, y, x = _grid_mm(shape, spacing_zyx_mm)
    cz, cy, cx = voi.center_zyx_mm
    r2 = (y[None, :, None] - cy) ** 2 + (x[None, None, :] - cx) ** 2
    if voi.geometry == "point":
        return (z[:, None, None] - cz) ** 2 + r2 <= voi.margin_mm**2
    rr = voi.radius_mm + voi.margin_mm
    in_z = np.abs(z - cz) <= voi.half_length_mm + voi.margin_mm
    return in_z[:, None, None] & (r2 <= rr**2)


# ------------------------------------------------------------- calibration
@dataclass
class CameraCalibration:
    """A camera calibration factor with its inputs (units in the names)."""

    cps_per_mbq: float
    cps_per_mbq_sd: float
    nuclide: str
    device: Any
    measured_at: datetime
    activity_mbq: float
    activity_time: datetime
    activity_at_scan_mbq: float
    activity_sd_percent: float | None
    duration_s: float
    counts_in_voi: float
    counts_total: float
    voi: PhantomVoi
    margin_sensitivity_percent: float
    """Change of the factor when the margin is halved (VOI adequacy check)."""
    series_instance_uid: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        return {
            "cps_per_mbq": self.cps_per_mbq,
            "cps_per_mbq_sd": self.cps_per_mbq_sd,
            "nuclide": self.nuclide,
            "device": self.device.to_dict(),
            "measured_at": self.measured_at.isoformat(),
            "activity_mbq": self.activity_mbq,
            "activity_time": self.activity_time.isoformat(),
            "activity_at_scan_mbq": self.activity_at_scan_mbq,
            "activity_sd_percent": self.activity_sd_percent,
            "duration_s": self.duration_s,
            "counts_in_voi": self.counts_in_voi,
            "counts_total": self.counts_total,
            "counts_outside_voi_fraction": 1.0 - self.counts_in_voi / self.counts_total,
            "voi": self.voi.to_dict(),
            "margin_sensitivity_percent": self.margin_sensitivity_percent,
            "series_instance_uid": self.series_instance_uid,
            "convention": (
                "CF = counts in VOI / (acquisition duration s * activity at acquisition start "
                "MBq); duration = time per view x views per detector"
            ),
            "warnings": list(self.warnings),
        }


def calibration_factor(
    scan: NmScan,
    activity_mbq: float,
    activity_time: datetime,
    *,
    nuclide: str | None = None,
    geometry: str = "cylinder",
    margin_mm: float = DEFAULT_MARGIN_MM,
    activity_sd_percent: float | None = None,
) -> CameraCalibration:
    """Calibration factor (cps/MBq) of a phantom scan (module docstring).

    Parameters
    ----------
    scan
        The phantom acquisition (:func:`read_nm_scan`), in counts.
    activity_mbq
        Activity in the phantom (MBq) measured at ``activity_time``.
    activity_time
        When the activity was measured (naive local time); not after the scan.
    nuclide
        Nuclide of the source; must agree with the scan header when both are known.
    geometry
        ``"cylinder"`` (uniform cylinder, axis along the slices) or ``"point"``
        (point or syringe source).
    margin_mm
        VOI margin beyond the phantom edge (mm).
    activity_sd_percent
        Standard uncertainty of the activity measurement (%); None: not entered.

    Raises
    ------
    InvalidInputError
        Non-positive activity, activity time after the scan start, nuclide
        mismatch, a series already in Bq/mL, no acquisition duration, VOI outside
        the field of view.
    """
    from dosimetry_core.physics.decay import decay_factor, hours_between

    if not (isinstance(activity_mbq, int | float) and math.isfinite(activity_mbq)):
        raise InvalidInputError(f"source activity {activity_mbq!r} MBq is not a number")
    if activity_mbq <= 0:
        raise InvalidInputError(f"source activity must be positive, got {activity_mbq} MBq")
    if activity_sd_percent is not None and not (activity_sd_percent >= 0):
        raise InvalidInputError(f"activity uncertainty must be >= 0 %, got {activity_sd_percent!r}")
    nuc = check_nuclide(nuclide, scan.nuclide)
    if activity_time > scan.acquired_at:
        raise InvalidInputError(
            f"activity time {activity_time.isoformat(sep=' ')} is after the scan start "
            f"{scan.acquired_at.isoformat(sep=' ')}: enter the activity measured before the scan"
        )
    if scan.volume.units == ImageUnits.BQML:
        raise InvalidInputError(
            "the phantom series is already in Bq/mL (vendor quantitative reconstruction); a "
            "camera calibration factor applies to count-based series"
        )
    if scan.duration_s is None or not (scan.duration_s > 0):
        raise InvalidInputError(
            "the phantom series has no acquisition duration (time per view x views): "
            "cannot compute counts per second"
        )
    counts = np.asarray(scan.volume.array, dtype=np.float64)
    spacing_zyx = np.asarray(scan.volume.geometry.spacing_mm[::-1], dtype=float)
    voi = find_phantom_voi(counts, spacing_zyx, geometry, margin_mm)
    n_voi = float(counts[voi_mask(voi, counts.shape, spacing_zyx)].sum())
    half = PhantomVoi(
        voi.geometry, voi.center_zyx_mm, voi.radius_mm, voi.half_length_mm, voi.margin_mm / 2
    )
    n_half = float(counts[voi_mask(half, counts.shape, spacing_zyx)].sum())
    total = float(counts.sum())
    if not (n_voi > 0):
        raise InvalidInputError("no counts inside the phantom VOI")
    a_scan = activity_mbq * decay_factor(nuc, hours_between(activity_time, scan.acquired_at))
    cf = n_voi / (scan.duration_s * a_scan)
    rel2 = 1.0 / n_voi + ((activity_sd_percent or 0.0) / 100.0) ** 2
    warnings = list(scan.warnings)
    sens = 100.0 * (n_voi - n_half) / n_voi
    if abs(sens) > 1.0:
        warnings.append(
            f"halving the VOI margin changes the factor by {sens:.1f} %: the margin may be too "
            "small for the resolution, or there is activity outside the phantom"
        )
    return CameraCalibration(
        cps_per_mbq=cf,
        cps_per_mbq_sd=cf * math.sqrt(rel2),
        nuclide=nuc,
        device=scan.device,
        measured_at=scan.acquired_at,
        activity_mbq=float(activity_mbq),
        activity_time=activity_time,
        activity_at_scan_mbq=a_scan,
        activity_sd_percent=activity_sd_percent,
        duration_s=float(scan.duration_s),
        counts_in_voi=n_voi,
        counts_total=total,
        voi=voi,
        margin_sensitivity_percent=sens,
        series_instance_uid=scan.series_instance_uid,
        warnings=warnings,
    )


def calibrate_camera(
    store: CaseRepository,
    dicom_dir: str | Path,
    activity_mbq: float,
    activity_time: datetime,
    *,
    nuclide: str | None = None,
    geometry: str = "cylinder",
    margin_mm: float = DEFAULT_MARGIN_MM,
    activity_sd_percent: float | None = None,
    valid_until: datetime | None = None,
    tolerance_percent: float | None = None,
    created_by: str = "",
    actor: Any = None,
) -> tuple[CameraCalibration, Any]:
    """Compute the calibration of a phantom folder and store it under its device key.

    Everything is checked before anything is stored; a refused input stores nothing.

    Returns
    -------
    (CameraCalibration, QaRecord)
    """
    from dosimetry_core.qa.records import DEFAULT_TOLERANCE_PERCENT, store_record

    scan = read_nm_scan(dicom_dir)
    cal = calibration_factor(
        scan,
        activity_mbq,
        activity_time,
        nuclide=nuclide,
        geometry=geometry,
        margin_mm=margin_mm,
        activity_sd_percent=activity_sd_percent,
    )
    record = store_record(
        store,
        "camera-calibration",
        cal.device.key,
        cal.nuclide,
        cal.measured_at,
        cal.to_payload(),
        valid_until=valid_until,
        created_by=created_by,
        actor=actor,
        tolerance_percent=tolerance_percent or DEFAULT_TOLERANCE_PERCENT,
    )
    return cal, record
