"""QA records in the case store: camera keys, constancy checks, validity, look-up.

Every commissioning or QA result (camera calibration factor, recovery curve,
well-counter or probe calibration) is one row of the ``qa_records`` table
(:mod:`dosimetry_core.store.schema`): the device it belongs to, the nuclide,
when it was measured, until when it is valid, who stored it, a constancy
status and the full result as JSON with its SHA-256.

Device key
----------
A count-based SPECT series can only be converted with a calibration of the same
camera **and** the same acquisition and reconstruction set-up.  The key joins,
from the DICOM header:

``Manufacturer | ManufacturerModelName | DeviceSerialNumber (else StationName) |
collimator (Collimator/Grid Name) | energy window (lower-upper keV) |
reconstruction (Convolution Kernel / Reconstruction Method; Corrected Image)``

Constancy
---------
A new record's value (e.g. ``cps_per_mbq``) is compared with the previous
records of the same kind, key and nuclide: relative deviation from the last
record and from the mean of all earlier ones.  Beyond the tolerance (default
5 %, a department setting) the status is ``"warning"``, else ``"ok"``; the
first record of a key is ``"ok"`` (baseline).  Trend data are returned by
:func:`constancy_trend`.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.store import qa_rows
from dosimetry_core.store.permissions import Actor, require
from dosimetry_core.store.repository import CaseRepository

KINDS = ("camera-calibration", "recovery", "well-counter", "probe", "dead-time")
"""Kinds of QA records."""
STATUS_OK = "ok"
STATUS_WARNING = "warning"
DEFAULT_TOLERANCE_PERCENT = 5.0
"""Constancy tolerance (department setting, editable per call)."""
DEFAULT_VALIDITY_DAYS = 365
"""Validity of a new record when none is given (department setting, editable per call)."""
_VALUE_KEYS = {
    "camera-calibration": "cps_per_mbq",
    "recovery": "fwhm_mm",
    "well-counter": "cps_per_bq",
    "probe": "cps_per_mbq",
    "dead-time": "dead_time_s",
}


# ------------------------------------------------------------------ device key
@dataclass(frozen=True)
class DeviceKey:
    """Identity of a camera and its acquisition/reconstruction set-up (module docstring)."""

    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    collimator: str = ""
    energy_window: str = ""
    reconstruction: str = ""

    @property
    def key(self) -> str:
        """The canonical string stored in ``qa_records.device_key``."""
        return " | ".join(
            p.strip() or "-"
            for p in (
                self.manufacturer,
                self.model,
                self.serial,
                self.collimator,
                self.energy_window,
                self.reconstruction,
            )
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial": self.serial,
            "collimator": self.collimator,
            "energy_window": self.energy_window,
            "reconstruction": self.reconstruction,
            "key": self.key,
        }


def _s(ds: Any, keyword: str) -> str:
    value = getattr(ds, keyword, None)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return ",".join(str(v).strip() for v in value)
    return str(value).strip()


def _first(ds: Any, seq_keyword: str) -> Any:
    seq = getattr(ds, seq_keyword, None)
    return seq[0] if seq else None


def device_key_from_dataset(ds: Any) -> DeviceKey:
    """Device key of an NM/PET image from its pydicom dataset (module docstring).

    Parameters
    ----------
    ds
        ``pydicom.Dataset`` of the (first file of the) series.

    Returns
    -------
    DeviceKey
        Empty fields are shown as ``-`` in the key string.
    """
    serial = _s(ds, "DeviceSerialNumber") or _s(ds, "StationName")
    det = _first(ds, "DetectorInformationSequence")
    collimator = ""
    if det is not None:
        collimator = _s(det, "CollimatorGridName") or _s(det, "CollimatorType")
    window = ""
    ew = _first(ds, "EnergyWindowInformationSequence")
    if ew is not None:
        rng = _first(ew, "EnergyWindowRangeSequence")
        if rng is not None:
            try:
                lo = float(getattr(rng, "EnergyWindowLowerLimit", "nan"))
                hi = float(getattr(rng, "EnergyWindowUpperLimit", "nan"))
                if math.isfinite(lo) and math.isfinite(hi):
                    window = f"{lo:g}-{hi:g} keV"
            except (TypeError, ValueError):
                window = ""
        window = window or _s(ew, "EnergyWindowName")
    recon_parts = [
        p for p in (_s(ds, "ReconstructionMethod"), _s(ds, "ConvolutionKernel")) if p and p != "-"
    ]
    corrections = _s(ds, "CorrectedImage")
    recon = " ".join(recon_parts)
    if corrections:
        recon = f"{recon}; {corrections}" if recon else corrections
    return DeviceKey(
        manufacturer=_s(ds, "Manufacturer"),
        model=_s(ds, "ManufacturerModelName"),
        serial=serial,
        collimator=collimator,
        energy_window=window,
        reconstruction=recon,
    )


def device_key_from_file(path: Any) -> DeviceKey:
    """Device key from a DICOM file (headers only)."""
    import pydicom

    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    return device_key_from_dataset(ds)


# -------------------------------------------------------------------- records
@dataclass
class QaRecord:
    """One row of ``qa_records``; ``payload`` is the full result (JSON-serialisable)."""

    record_id: str
    kind: str
    device_key: str
    nuclide: str
    measured_at: datetime
    valid_until: datetime | None
    created_at: datetime
    created_by: str
    status: str
    payload: dict[str, Any] = field(default_factory=dict)
    record_hash: str = ""

    def is_valid_at(self, at: datetime) -> bool:
        """Measured no later than ``at`` and not expired at ``at``."""
        return self.measured_at <= at and (self.valid_until is None or at <= self.valid_until)

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "kind": self.kind,
            "device_key": self.device_key,
            "nuclide": self.nuclide,
            "measured_at": self.measured_at.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "status": self.status,
            "record_hash": self.record_hash,
            "payload": self.payload,
        }


def canonical_json(payload: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys, no spaces, no NaN) hashed into ``record_hash``."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def payload_hash(payload: dict[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _row_to_record(row: qa_rows.QaRow) -> QaRecord:
    return QaRecord(
        record_id=row.record_id,
        kind=row.kind,
        device_key=row.device_key,
        nuclide=row.nuclide,
        measured_at=row.measured_at,
        valid_until=row.valid_until,
        created_at=row.created_at,
        created_by=row.created_by,
        status=row.status,
        payload=json.loads(row.payload_json),
        record_hash=row.record_hash,
    )


def list_records(
    store: CaseRepository,
    *,
    kind: str | None = None,
    device_key: str | None = None,
    nuclide: str | None = None,
) -> list[QaRecord]:
    """QA records of the store, oldest measurement first, optionally filtered."""
    rows = qa_rows.select_qa_rows(store, kind=kind, device_key=device_key, nuclide=nuclide)
    return [_row_to_record(r) for r in rows]


@dataclass(frozen=True)
class Constancy:
    """Comparison of a new value with the earlier records of the same key."""

    value: float
    previous_value: float | None
    baseline_value: float | None
    deviation_from_previous_percent: float | None
    deviation_from_baseline_percent: float | None
    tolerance_percent: float
    status: str
    n_previous: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "previous_value": self.previous_value,
            "baseline_value": self.baseline_value,
            "deviation_from_previous_percent": self.deviation_from_previous_percent,
            "deviation_from_baseline_percent": self.deviation_from_baseline_percent,
            "tolerance_percent": self.tolerance_percent,
            "status": self.status,
            "n_previous": self.n_previous,
        }


def compare_constancy(
    value: float, previous: list[float], tolerance_percent: float = DEFAULT_TOLERANCE_PERCENT
) -> Constancy:
    """Constancy status of ``value`` against earlier values (oldest first).

    ``"warning"`` when the deviation from the last value or from the mean of all
    earlier values exceeds ``tolerance_percent``; ``"ok"`` otherwise and for the
    first record.
    """
    if not (tolerance_percent > 0) or not math.isfinite(tolerance_percent):
        raise InvalidInputError(
            f"the constancy tolerance must be a positive percentage, got {tolerance_percent!r}"
        )
    if not previous:
        return Constancy(value, None, None, None, None, tolerance_percent, STATUS_OK, 0)
    last = previous[-1]
    base = sum(previous) / len(previous)
    d_last = 100.0 * (value - last) / last if last else None
    d_base = 100.0 * (value - base) / base if base else None
    worst = max(abs(d) for d in (d_last, d_base) if d is not None) if last or base else 0.0
    status = STATUS_WARNING if worst > tolerance_percent else STATUS_OK
    return Constancy(value, last, base, d_last, d_base, tolerance_percent, status, len(previous))


def constancy_trend(
    store: CaseRepository, kind: str, device_key: str, nuclide: str
) -> list[dict[str, Any]]:
    """Trend data: measured_at, value, status and author of every record of the key."""
    value_key = _VALUE_KEYS.get(kind, "value")
    return [
        {
            "record_id": r.record_id,
            "measured_at": r.measured_at.isoformat(),
            "value": r.payload.get(value_key),
            "status": r.status,
            "created_by": r.created_by,
        }
        for r in list_records(store, kind=kind, device_key=device_key, nuclide=nuclide)
    ]


def store_record(
    store: CaseRepository,
    kind: str,
    device_key: str,
    nuclide: str,
    measured_at: datetime,
    payload: dict[str, Any],
    *,
    valid_until: datetime | None = None,
    validity_days: float | None = DEFAULT_VALIDITY_DAYS,
    created_by: str = "",
    actor: Actor | None = None,
    tolerance_percent: float = DEFAULT_TOLERANCE_PERCENT,
    now: datetime | None = None,
) -> QaRecord:
    """Store a QA result after a constancy check against earlier records of its key.

    Parameters
    ----------
    store
        The case store (a database-backed :class:`~dosimetry_core.store.CaseStore`).
    kind
        One of :data:`KINDS`.
    device_key
        :attr:`DeviceKey.key` (cameras) or a free identifier (counters, probes).
    nuclide
        Normalised nuclide name ("Lu-177").
    measured_at
        When the measurement was made (acquisition start).
    payload
        The result (JSON-serialisable); its :data:`value key <_VALUE_KEYS>` (e.g.
        ``cps_per_mbq``) is compared for constancy.  A ``constancy`` entry is added.
    valid_until, validity_days
        End of validity; default ``measured_at + validity_days`` (None: no end).
    created_by, actor
        Who stores it.  With an ``actor``
        (:class:`~dosimetry_core.store.permissions.Actor`) the ``"qa"`` permission
        is checked first and its user name recorded.
    tolerance_percent
        Constancy tolerance (%).

    Returns
    -------
    QaRecord
        The stored record with its status (``"ok"`` or ``"warning"``) and hash.
    """
    if kind not in KINDS:
        raise InvalidInputError(f"unknown QA record kind {kind!r}; one of {', '.join(KINDS)}")
    if actor is not None:
        require(actor, "qa")
        created_by = actor.username
    if valid_until is None and validity_days is not None:
        valid_until = measured_at + timedelta(days=float(validity_days))
    if valid_until is not None and valid_until < measured_at:
        raise InvalidInputError(
            f"valid-until {valid_until.isoformat()} is before the measurement "
            f"{measured_at.isoformat()}"
        )
    value_key = _VALUE_KEYS[kind]
    payload = dict(payload)
    with store.transaction():
        earlier = [
            r
            for r in list_records(store, kind=kind, device_key=device_key, nuclide=nuclide)
            if r.measured_at <= measured_at
        ]
        value = payload.get(value_key)
        if isinstance(value, int | float) and math.isfinite(value):
            prev = [
                float(r.payload[value_key])
                for r in earlier
                if isinstance(r.payload.get(value_key), int | float)
            ]
            constancy = compare_constancy(float(value), prev, tolerance_percent)
            payload["constancy"] = constancy.to_dict()
            status = constancy.status
        else:
            status = STATUS_OK
        created = (now or datetime.now()).replace(microsecond=0)
        record = QaRecord(
            record_id=f"qa-{uuid.uuid4().hex[:16]}",
            kind=kind,
            device_key=device_key,
            nuclide=nuclide,
            measured_at=measured_at,
            valid_until=valid_until,
            created_at=created,
            created_by=created_by,
            status=status,
            payload=payload,
        )
        hashed = {
            k: v for k, v in record.to_dict().items() if k not in ("record_hash", "created_at")
        }
        record.record_hash = payload_hash(hashed)
        qa_rows.insert_qa_row(
            store,
            qa_rows.QaRow(
                record_id=record.record_id,
                kind=kind,
                device_key=device_key,
                nuclide=nuclide,
                measured_at=measured_at,
                valid_until=valid_until,
                created_at=created,
                created_by=created_by,
                status=status,
                payload_json=canonical_json(payload),
                record_hash=record.record_hash,
            ),
        )
        _audit(store, record, actor)
        if actor is not None:
            # the QA performer's key signs the audit head: the record is anchored (issue 13)
            qa_rows.sign_checkpoint(store, actor.username)
    return record


def verify_record(record: QaRecord) -> bool:
    """True when the record's hash matches its content (tamper check)."""
    hashed = {k: v for k, v in record.to_dict().items() if k not in ("record_hash", "created_at")}
    return payload_hash(hashed) == record.record_hash


def _audit(store: CaseRepository, record: QaRecord, actor: Actor | None) -> None:
    """Audit-trail entry for a stored QA record (issue 7)."""
    from dosimetry_core.store import audit

    audit.record(
        store,
        actor,
        f"qa-{record.kind}",
        case_id=None,
        details={
            "record_id": record.record_id,
            "created_by": record.created_by,
            "device_key": record.device_key,
            "nuclide": record.nuclide,
            "status": record.status,
            "record_hash": record.record_hash,
        },
    )


def lookup_calibration(
    store: CaseRepository,
    device_key: str,
    nuclide: str,
    at: datetime,
    kind: str = "camera-calibration",
) -> QaRecord | None:
    """The calibration valid for ``device_key`` and ``nuclide`` at ``at``, or None.

    Among the records measured at or before ``at`` and not expired at ``at``, the
    most recent measurement wins (records with status ``"warning"`` are returned
    too: the caller reports the status).
    """
    valid = [
        r
        for r in list_records(store, kind=kind, device_key=device_key, nuclide=nuclide)
        if r.is_valid_at(at)
    ]
    return valid[-1] if valid else None
