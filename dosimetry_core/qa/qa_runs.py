"""QA analyses as one call each, with progress and cancel, and the QA record table.

What ``mrtdose qa calibrate | recovery | list`` do, as functions a worker can
call (``progress(fraction, message)`` and ``cancel()`` per
:mod:`dosimetry_core.progress`) and that return typed results:

* :func:`run_camera_calibration` -- :func:`~dosimetry_core.qa.calibration.calibrate_camera`
  (factor stored under the camera key) plus the constancy trend of that key.
* :func:`run_recovery` -- the steps of ``mrtdose qa recovery``: read the scan,
  decay the entered concentrations to the scan start
  (``C(t_scan) = C(t) exp(-lambda (t_scan - t))``, Cherry, Sorenson & Phelps,
  Physics in Nuclear Medicine, 4th ed. 2012, ch. 4), convert a count image to
  Bq/mL with the valid camera calibration when there is no background, measure
  the recovery coefficients and fit RC(V)
  (:func:`~dosimetry_core.qa.recovery.measure_recovery`), store the record.
* :func:`qa_record_rows` -- the rows of ``mrtdose qa list`` with a validity
  state (valid / expired / superseded) and the hash check of
  :func:`~dosimetry_core.qa.records.verify_record`.

Nothing here is new physics; the formulas are those of the modules named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "VALIDITY_STATES",
    "CalibrationRun",
    "QaRecordRow",
    "RecoveryRun",
    "qa_record_rows",
    "run_camera_calibration",
    "run_recovery",
]

VALIDITY_STATES = ("valid", "expired", "superseded")
"""``expired``: past its valid-until; ``superseded``: a later measurement of the same
kind, device and nuclide exists (the look-up uses that one); else ``valid``."""


@dataclass
class CalibrationRun:
    """A stored camera calibration and the constancy trend of its camera key."""

    calibration: Any
    """:class:`~dosimetry_core.qa.calibration.CameraCalibration`."""
    record: Any
    """The stored :class:`~dosimetry_core.qa.records.QaRecord`."""
    trend: list[dict[str, Any]]
    """:func:`~dosimetry_core.qa.records.constancy_trend` of the key (oldest first), this
    record included; ``value`` in cps/MBq."""
    tolerance_percent: float

    @property
    def cps_per_mbq(self) -> float:
        return float(self.calibration.cps_per_mbq)

    @property
    def cps_per_mbq_sd(self) -> float:
        return float(self.calibration.cps_per_mbq_sd)

    @property
    def constancy(self) -> dict[str, Any]:
        """The record's constancy check (``status``, deviations in %, tolerance in %)."""
        return dict(self.record.payload.get("constancy") or {})


def run_camera_calibration(
    store: CaseRepository,
    dicom_dir: str | Path,
    activity_mbq: float,
    activity_time: datetime,
    *,
    nuclide: str | None = None,
    geometry: str = "cylinder",
    margin_mm: float | None = None,
    activity_sd_percent: float | None = None,
    valid_until: datetime | None = None,
    tolerance_percent: float | None = None,
    created_by: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> CalibrationRun:
    """``mrtdose qa calibrate`` as a call: compute, store, and return the key's trend.

    Parameters are those of :func:`~dosimetry_core.qa.calibration.calibrate_camera`
    (``margin_mm`` None: its default, 40 mm); the store's logged-in actor (if
    any) is the author and must hold the ``qa`` permission.  Cancel is honoured
    until the record is stored (nothing is stored then).
    """
    from dosimetry_core.qa.calibration import DEFAULT_MARGIN_MM, calibrate_camera
    from dosimetry_core.qa.records import DEFAULT_TOLERANCE_PERCENT, constancy_trend

    tol = DEFAULT_TOLERANCE_PERCENT if tolerance_percent is None else float(tolerance_percent)
    report(progress, 0.05, "Reading the phantom scan and finding the phantom")
    check_cancel(cancel)
    cal, record = calibrate_camera(
        store,
        dicom_dir,
        activity_mbq,
        activity_time,
        nuclide=nuclide,
        geometry=geometry,
        margin_mm=DEFAULT_MARGIN_MM if margin_mm is None else float(margin_mm),
        activity_sd_percent=activity_sd_percent,
        valid_until=valid_until,
        tolerance_percent=tol,
        created_by=created_by,
        actor=getattr(store, "actor", None),
    )
    report(progress, 0.9, "Reading the constancy trend of the camera")
    trend = constancy_trend(store, "camera-calibration", record.device_key, record.nuclide)
    report(progress, 1.0, "Calibration stored")
    return CalibrationRun(cal, record, trend, tol)


@dataclass
class RecoveryRun:
    """The result of ``mrtdose qa recovery`` (its JSON is :meth:`to_cli_dict`)."""

    analysis: Any
    """:class:`~dosimetry_core.qa.recovery.RecoveryAnalysis`."""
    payload: dict[str, Any]
    nuclide: str
    device_key: str
    measured_at: datetime
    record: Any | None
    """The stored record (None when asked not to store)."""
    sphere_kbq_ml_at_scan: float
    background_kbq_ml_at_scan: float
    warnings: list[str] = field(default_factory=list)

    @property
    def curve(self) -> Any | None:
        """The fitted :class:`~dosimetry_core.qa.recovery.RecoveryCurve` (None: no fit)."""
        return self.analysis.curve

    def to_cli_dict(self) -> dict[str, Any]:
        """The fields of ``mrtdose qa recovery --json``."""
        return {
            "spheres": self.payload["spheres"],
            "curve": self.payload["curve"],
            "sphere_to_background_ratio": self.payload["sphere_to_background_ratio"],
            "method": self.analysis.method,
            "nuclide": self.nuclide,
            "device_key": self.device_key,
            "record_id": self.record.record_id if self.record else None,
            "status": self.record.status if self.record else None,
            "measured_at": self.measured_at.isoformat(),
            "warnings": self.warnings,
        }


def run_recovery(
    store: CaseRepository,
    dicom_dir: str | Path,
    sphere_kbq_ml: float,
    background_kbq_ml: float,
    *,
    activity_time: datetime | None = None,
    nuclide: str | None = None,
    diameters_mm: list[float] | None = None,
    centers_lps_mm: list[list[float]] | None = None,
    model: str = "gaussian-psf",
    valid_until: datetime | None = None,
    tolerance_percent: float = 5.0,
    store_result: bool = True,
    created_by: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> RecoveryRun:
    """Recovery coefficients of a NEMA IEC phantom folder and the fitted RC(V) (module docstring).

    Parameters
    ----------
    sphere_kbq_ml, background_kbq_ml
        Concentrations (kBq/mL) at ``activity_time`` (None: at the scan start).
    diameters_mm, centers_lps_mm
        Sphere inner diameters (default NEMA IEC) and known centres (LPS mm; None: found).
    model
        ``"gaussian-psf"`` or ``"logistic"``.
    store_result
        False: analyse only (``--no-store``).

    Raises
    ------
    InvalidInputError
        As ``mrtdose qa recovery``: activity time after the scan, no background
        and no valid camera calibration, impossible concentrations, spheres not found.
    """
    from dosimetry_core.model import ImageUnits
    from dosimetry_core.physics.decay import decay_factor, hours_between
    from dosimetry_core.qa.calibration import check_nuclide, read_nm_scan
    from dosimetry_core.qa.records import lookup_calibration, store_record
    from dosimetry_core.qa.recovery import measure_recovery

    report(progress, 0.02, "Reading the phantom scan")
    scan = read_nm_scan(dicom_dir)
    check_cancel(cancel)
    nuc = check_nuclide(nuclide, scan.nuclide)
    cs, cb = float(sphere_kbq_ml), float(background_kbq_ml)
    if activity_time is not None:
        if activity_time > scan.acquired_at:
            raise InvalidInputError(
                f"activity time {activity_time.isoformat(sep=' ')} is after the scan start "
                f"{scan.acquired_at.isoformat(sep=' ')}"
            )
        f = decay_factor(nuc, hours_between(activity_time, scan.acquired_at))
        cs, cb = cs * f, cb * f
    volume = scan.volume
    calibration_record = None
    if cb == 0 and volume.units == ImageUnits.COUNTS:
        calibration_record = lookup_calibration(store, scan.device.key, nuc, scan.acquired_at)
        if calibration_record is None or not scan.duration_s:
            raise InvalidInputError(
                "spheres without background need a calibrated image and no camera calibration "
                f"is stored for {scan.device.key} ({nuc}): run the camera calibration first "
                "('mrtdose qa calibrate' or the QA step)"
            )
        cf = float(calibration_record.payload["cps_per_mbq"])
        arr = volume.array / (scan.duration_s * cf) * 1e6 / volume.geometry.voxel_volume_ml
        volume = volume.with_array(arr.astype("float32"), ImageUnits.BQML)
    report(progress, 0.15, "Finding the spheres and measuring their recovery")
    check_cancel(cancel)
    analysis = measure_recovery(
        volume, cs, cb, diameters_mm=diameters_mm, centers_lps_mm=centers_lps_mm, model=model
    )
    check_cancel(cancel)
    payload = analysis.to_payload()
    payload["device"] = scan.device.to_dict()
    payload["series_instance_uid"] = scan.series_instance_uid
    payload["calibration_record_id"] = (
        calibration_record.record_id if calibration_record is not None else None
    )
    record = None
    if store_result:
        report(progress, 0.95, "Storing the recovery record")
        record = store_record(
            store,
            "recovery",
            scan.device.key,
            nuc,
            scan.acquired_at,
            payload,
            valid_until=valid_until,
            created_by=created_by,
            actor=getattr(store, "actor", None),
            tolerance_percent=tolerance_percent,
        )
    report(progress, 1.0, "Recovery analysis done")
    return RecoveryRun(
        analysis=analysis,
        payload=payload,
        nuclide=nuc,
        device_key=scan.device.key,
        measured_at=scan.acquired_at,
        record=record,
        sphere_kbq_ml_at_scan=cs,
        background_kbq_ml_at_scan=cb,
        warnings=list(analysis.warnings),
    )


@dataclass(frozen=True)
class QaRecordRow:
    """One QA record as the record list shows it (``mrtdose qa list`` plus validity)."""

    record_id: str
    kind: str
    device_key: str
    nuclide: str
    measured_at: datetime
    valid_until: datetime | None
    created_at: datetime
    created_by: str
    status: str
    """Constancy status stored with the record: ``ok`` or ``warning``."""
    validity: str
    """One of :data:`VALIDITY_STATES` at the time asked."""
    value: float | None
    value_name: str
    """Key of the value (``cps_per_mbq``, ``fwhm_mm``, ...)."""
    value_unit: str
    hash_ok: bool
    """:func:`~dosimetry_core.qa.records.verify_record`: content matches its SHA-256."""


_VALUE_UNITS = {
    "cps_per_mbq": "cps/MBq",
    "fwhm_mm": "mm",
    "cps_per_bq": "cps/Bq",
    "dead_time_s": "s",
}


def qa_record_rows(
    store: CaseRepository,
    *,
    kind: str | None = None,
    nuclide: str | None = None,
    now: datetime | None = None,
) -> list[QaRecordRow]:
    """The QA records of the store (oldest measurement first) with their validity at ``now``."""
    from dosimetry_core.qa.records import _VALUE_KEYS, list_records, verify_record

    at = now or datetime.now()
    every = list_records(store)
    latest: dict[tuple[str, str, str], datetime] = {}
    for r in every:
        key = (r.kind, r.device_key, r.nuclide)
        if key not in latest or r.measured_at > latest[key]:
            latest[key] = r.measured_at
    rows: list[QaRecordRow] = []
    for r in list_records(store, kind=kind, nuclide=nuclide):
        if r.valid_until is not None and at > r.valid_until:
            validity = "expired"
        elif latest[(r.kind, r.device_key, r.nuclide)] > r.measured_at:
            validity = "superseded"
        else:
            validity = "valid"
        name = _VALUE_KEYS.get(r.kind, "value")
        value = r.payload.get(name)
        rows.append(
            QaRecordRow(
                record_id=r.record_id,
                kind=r.kind,
                device_key=r.device_key,
                nuclide=r.nuclide,
                measured_at=r.measured_at,
                valid_until=r.valid_until,
                created_at=r.created_at,
                created_by=r.created_by,
                status=r.status,
                validity=validity,
                value=float(value) if isinstance(value, int | float) else None,
                value_name=name,
                value_unit=_VALUE_UNITS.get(name, ""),
                hash_ok=verify_record(r),
            )
        )
    return rows
