"""Technologist data entry: administrations, scan-time corrections and measurements.

Every change is one function ``fn(store, case, ...)`` that

1. checks the role (``enter-administration`` or ``enter-measurement``,
   :mod:`dosimetry_core.store.permissions`; a store with accounts needs a
   logged-in user),
2. validates every value (:func:`check_administration`,
   :func:`check_measurement`, :func:`check_scan_time`): a refusal is an
   :class:`~dosimetry_core.errors.InvalidInputError` whose ``field`` names the
   value (the model attribute / command-line option without dashes) and whose
   message starts with that name,
3. applies the change to a copy of the case and saves it with one audit entry
   holding the values, in one store transaction.

A refused entry changes nothing: neither the store, nor the audit trail, nor the
``case`` object passed in (it is updated in place only after the save
succeeded).  Unusual but possible values are accepted with *warnings*
(:class:`FieldMessage`), returned to the caller to show.

The checkers take no store and are what a form calls while the user types, so
the GUI and the CLI refuse exactly the same values.

The derived figure is the **net administered activity**: the syringe activity
minus the residual, the residual decay-corrected to the administration time
(:func:`dosimetry_core.physics.decay.net_administered_activity_mbq`), the one
definition used by kinetics, dose per GBq and planning.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.model import Administration, Case, Measurement, MeasurementKind, TimePoint
from dosimetry_core.model.units import MBQ_PER_BQ
from dosimetry_core.physics.decay import decay_activity_mbq, net_administered_activity_mbq
from dosimetry_core.physics.nuclides import half_life_h, normalize_nuclide
from dosimetry_core.store.permissions import ACTIONS, require
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "FUTURE_TOLERANCE",
    "TYPICAL_MAX_ACTIVITY_MBQ",
    "AdministrationEntry",
    "AdministrationRecord",
    "EntryCheck",
    "EntryKind",
    "EntryResult",
    "FieldMessage",
    "MeasurementEntry",
    "add_administration",
    "add_measurement",
    "check_administration",
    "check_measurement",
    "check_scan_time",
    "correct_scan_time",
    "delete_measurement",
    "edit_administration",
    "list_administrations",
    "list_measurements",
    "net_activity_mbq",
]

FUTURE_TOLERANCE = timedelta(minutes=1)
"""A time may be at most this far in the future (clocks of two devices differ a little)."""

TYPICAL_MAX_ACTIVITY_MBQ: dict[str, float] = {
    "Lu-177": 15_000.0,
    "I-131": 30_000.0,
    "Y-90": 10_000.0,
    "Ho-166": 20_000.0,
    "Ra-223": 50.0,
    "Ac-225": 50.0,
    "Tb-161": 15_000.0,
}
"""Activities above which an administration is flagged for a second look (MBq).

Department plausibility limits, not clinical limits: a warning, never a
refusal (e.g. a 7.4 GBq Lu-177 cycle is usual, 15 GBq is not; Ra-223 is given
at 55 kBq/kg, a few MBq).  Nuclides not listed get no activity warning.
"""

HEMATOCRIT_USUAL = (0.2, 0.6)
"""Hematocrit fractions outside this range are possible but unusual: a warning."""
WEIGHT_RANGE_KG = (0.5, 500.0)
WEIGHT_WARN_KG = 200.0
HEIGHT_RANGE_CM = (30.0, 250.0)
RESIDUAL_WARN_FRACTION = 0.10
"""A residual above this fraction of the activity is flagged (a failed injection?)."""

ADMINISTRATION_PERMISSION = "enter-administration"
MEASUREMENT_PERMISSION = "enter-measurement"
SCAN_TIME_AUDIT_ACTION = "correct-scan-time"


# =================================================================== results
@dataclass(frozen=True)
class FieldMessage:
    """A refusal or a warning about one field (``field`` as in the entry dataclasses)."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class EntryCheck:
    """What the checkers found: refusals (``errors``) and warnings, each naming its field."""

    errors: tuple[FieldMessage, ...] = ()
    warnings: tuple[FieldMessage, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_for(self, field_name: str) -> str | None:
        """The first refusal of ``field_name`` (None: the field is fine)."""
        return next((e.message for e in self.errors if e.field == field_name), None)

    def warning_for(self, field_name: str) -> str | None:
        return next((w.message for w in self.warnings if w.field == field_name), None)

    def raise_first(self) -> None:
        """Raise the first refusal as :class:`InvalidInputError` (nothing when ok)."""
        if self.errors:
            first = self.errors[0]
            raise InvalidInputError(first.message, field=first.field)


@dataclass(frozen=True)
class EntryResult:
    """What a saved entry gives back.

    Attributes
    ----------
    record
        The saved record as its ``to_dict`` (administration, measurement, time
        point, or ``{"weight_kg": ...}`` for a patient field).
    warnings
        The plausibility warnings the values raised (accepted anyway).
    case_version
        The case's version after the save.
    net_activity_mbq
        For administrations: the net administered activity (MBq at the
        administration time); else None.
    """

    record: dict[str, Any]
    warnings: tuple[FieldMessage, ...]
    case_version: int
    net_activity_mbq: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.record)
        if self.net_activity_mbq is not None:
            out["net_activity_mbq"] = self.net_activity_mbq
        out["warnings"] = [w.to_dict() for w in self.warnings]
        out["case_version"] = self.case_version
        return out


class _Problems:
    """Collects refusals and warnings while checking (first refusal of a field wins)."""

    def __init__(self) -> None:
        self.errors: list[FieldMessage] = []
        self.warnings: list[FieldMessage] = []

    def error(self, field_name: str, message: str) -> None:
        if not any(e.field == field_name for e in self.errors):
            self.errors.append(FieldMessage(field_name, f"{field_name}: {message}"))

    def warn(self, field_name: str, message: str) -> None:
        self.warnings.append(FieldMessage(field_name, f"{field_name}: {message}"))

    def has_error(self, field_name: str) -> bool:
        return any(e.field == field_name for e in self.errors)

    def result(self) -> EntryCheck:
        return EntryCheck(tuple(self.errors), tuple(self.warnings))


def _number(
    p: _Problems,
    field_name: str,
    value: float | None,
    what: str,
    *,
    required: bool = True,
    minimum: float | None = None,
    strict_min: bool = False,
    maximum: float | None = None,
    strict_max: bool = False,
) -> float | None:
    """``value`` as a float when it is a finite number within the limits, else None (+ error)."""
    if value is None:
        if required:
            p.error(field_name, f"{what} is missing")
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        p.error(field_name, f"{what} must be a number (got {value!r})")
        return None
    if not math.isfinite(x):
        p.error(field_name, f"{what} must be a finite number (got {value!r})")
        return None
    if minimum is not None and (x < minimum or (strict_min and x == minimum)):
        p.error(field_name, f"{what} must be {'>' if strict_min else '>='} {minimum:g} (got {x:g})")
        return None
    if maximum is not None and (x > maximum or (strict_max and x == maximum)):
        p.error(field_name, f"{what} must be {'<' if strict_max else '<='} {maximum:g} (got {x:g})")
        return None
    return x


def _time(
    p: _Problems,
    field_name: str,
    value: datetime | None,
    what: str,
    now: datetime,
    *,
    required: bool = True,
    not_before: datetime | None = None,
    not_before_what: str = "",
) -> datetime | None:
    if value is None:
        if required:
            p.error(field_name, f"{what} is missing")
        return None
    if not isinstance(value, datetime):
        p.error(field_name, f"{what} must be a date and time (got {value!r})")
        return None
    if value.tzinfo is not None:
        p.error(field_name, f"{what} must be local wall-clock time without a time zone")
        return None
    if value > now + FUTURE_TOLERANCE:
        p.error(field_name, f"{what} {value:%Y-%m-%d %H:%M} is in the future")
        return None
    if not_before is not None and value < not_before:
        p.error(
            field_name,
            f"{what} {value:%Y-%m-%d %H:%M} is before {not_before_what} "
            f"({not_before:%Y-%m-%d %H:%M})",
        )
        return None
    return value


# ============================================================ administrations
@dataclass(frozen=True)
class AdministrationEntry:
    """The values of an administration as entered (units in the names).

    ``time`` is the administration time, when ``activity_mbq`` was in the
    syringe; ``residual_activity_mbq`` is what was left in the syringe and lines,
    measured at ``residual_time`` (None: at the administration time).
    """

    activity_mbq: float | None
    time: datetime | None
    nuclide: str
    radiopharmaceutical: str = ""
    route: str = "intravenous"
    cycle: int = 1
    residual_activity_mbq: float | None = 0.0
    residual_time: datetime | None = None
    measured_by: str = ""
    calibrator: str = ""

    @classmethod
    def of(cls, adm: Administration) -> AdministrationEntry:
        """The entry that an existing administration holds (start of an edit)."""
        return cls(**{f.name: getattr(adm, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class AdministrationRecord:
    """A stored administration with its net administered activity (MBq)."""

    administration: Administration
    net_activity_mbq: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.administration.to_dict(), "net_activity_mbq": self.net_activity_mbq}


def check_administration(
    entry: AdministrationEntry,
    *,
    now: datetime | None = None,
    case: Case | None = None,
    administration_id: str | None = None,
) -> EntryCheck:
    """Refusals and warnings for an administration (module docstring); no store needed.

    With ``case`` (and ``administration_id`` when the entry replaces one of its
    administrations) the time is also refused when the entry would become the
    case's first administration after one of its scans or measurements.

    Refused: unknown nuclide; activity not a positive finite number of MBq;
    time missing or more than a minute in the future; residual negative, or not
    below the activity once decay-corrected to the administration time;
    residual time before the administration or in the future; cycle below 1.
    Warned: activity above :data:`TYPICAL_MAX_ACTIVITY_MBQ` for the nuclide;
    residual above 10 % of the activity.
    """
    now = now or datetime.now()
    p = _Problems()
    nuclide: str | None = None
    try:
        nuclide = normalize_nuclide(entry.nuclide)
        half_life_h(nuclide)
    except InvalidInputError as exc:
        p.error("nuclide", f"unknown nuclide: {exc}")
        nuclide = None
    activity = _number(
        p,
        "activity_mbq",
        entry.activity_mbq,
        "administered activity (MBq)",
        minimum=0.0,
        strict_min=True,
    )
    t = _time(p, "time", entry.time, "administration time", now)
    cycle = entry.cycle
    if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 1:
        p.error("cycle", f"cycle must be a whole number >= 1 (got {cycle!r})")
    residual = _number(
        p,
        "residual_activity_mbq",
        entry.residual_activity_mbq if entry.residual_activity_mbq is not None else 0.0,
        "residual activity (MBq)",
        minimum=0.0,
    )
    r_time = _time(
        p,
        "residual_time",
        entry.residual_time,
        "residual measurement time",
        now,
        required=False,
        not_before=t,
        not_before_what="the administration",
    )
    if activity is not None and residual:
        residual_at_adm = residual
        if nuclide is not None and t is not None and r_time is not None:
            residual_at_adm = decay_activity_mbq(residual, nuclide, r_time, t)
        if residual_at_adm >= activity:
            p.error(
                "residual_activity_mbq",
                f"residual {residual:g} MBq ({residual_at_adm:.1f} MBq decay-corrected to the "
                f"administration) is not less than the administered activity {activity:g} MBq",
            )
        elif residual_at_adm > RESIDUAL_WARN_FRACTION * activity:
            p.warn(
                "residual_activity_mbq",
                f"residual is {100 * residual_at_adm / activity:.0f} % of the activity "
                "(more than 10 %): check the syringe and lines",
            )
    if case is not None and t is not None:
        work = copy.deepcopy(case)
        work.administrations = [
            a for a in work.administrations if a.administration_id != administration_id
        ]
        work.administrations.append(Administration("", 1.0, t))
        try:
            _check_order(work)
        except InvalidInputError as exc:
            p.errors.append(FieldMessage("time", str(exc)))
    if activity is not None and nuclide is not None:
        limit = TYPICAL_MAX_ACTIVITY_MBQ.get(nuclide)
        if limit is not None and activity > limit:
            p.warn(
                "activity_mbq",
                f"{activity:,.0f} MBq of {nuclide} is more than the usual "
                f"{limit:,.0f} MBq: check the value and its unit",
            )
    return p.result()


def net_activity_mbq(entry: AdministrationEntry, *, now: datetime | None = None) -> float | None:
    """Net administered activity (MBq) of a valid entry; None while the entry is refused."""
    if not check_administration(entry, now=now).ok:
        return None
    return net_administered_activity_mbq(_administration(entry, None, ""))


def _administration(entry: AdministrationEntry, adm_id: str | None, who: str) -> Administration:
    values = {f.name: getattr(entry, f.name) for f in fields(entry)}
    values["nuclide"] = normalize_nuclide(entry.nuclide)
    values["activity_mbq"] = float(entry.activity_mbq or 0.0)
    values["residual_activity_mbq"] = float(entry.residual_activity_mbq or 0.0)
    values["radiopharmaceutical"] = entry.radiopharmaceutical.strip()
    values["route"] = entry.route.strip() or "intravenous"
    values["measured_by"] = entry.measured_by.strip()
    values["calibrator"] = entry.calibrator.strip()
    adm = Administration(**values, entered_by=who)
    if adm_id is not None:
        adm.administration_id = adm_id
    return adm


def list_administrations(case: Case) -> list[AdministrationRecord]:
    """The case's administrations in time order, each with its net activity (MBq)."""
    return [
        AdministrationRecord(a, net_administered_activity_mbq(a))
        for a in sorted(case.administrations, key=lambda a: a.time)
    ]


def add_administration(
    store: CaseRepository,
    case: Case,
    entry: AdministrationEntry,
    *,
    now: datetime | None = None,
) -> EntryResult:
    """Record an administration (role ``enter-administration``; audited with its values).

    Raises
    ------
    PermissionDeniedError
        Nobody logged in on a store with accounts, or a role that may not enter it.
    InvalidInputError
        A refused value (``field`` names it); nothing is saved.
    """
    who = _require(store, ADMINISTRATION_PERMISSION)
    check = check_administration(entry, now=now, case=case)
    check.raise_first()
    adm = _administration(entry, None, who)
    work = copy.deepcopy(case)
    work.administrations.append(adm)
    _check_order(work)
    record = adm.to_dict()
    net = net_administered_activity_mbq(adm)
    _save(
        store,
        case,
        work,
        "enter-administration",
        operation="add",
        administration_id=adm.administration_id,
        values=record,
        net_activity_mbq=net,
        warnings=[w.message for w in check.warnings],
    )
    return EntryResult(record, check.warnings, case.version, net)


def edit_administration(
    store: CaseRepository,
    case: Case,
    administration_id: str,
    *,
    now: datetime | None = None,
    **changes: Any,
) -> EntryResult:
    """Change fields of an administration (names of :class:`AdministrationEntry`).

    The audit entry holds the values before and after.  Unknown field names and
    unknown ids are refused (:class:`InvalidInputError`).
    """
    who = _require(store, ADMINISTRATION_PERMISSION)
    index = _administration_index(case, administration_id)
    old = case.administrations[index]
    allowed = {f.name for f in fields(AdministrationEntry)}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInputError(
            f"{unknown[0]}: an administration has no field {unknown[0]!r} "
            f"(fields: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
    entry = replace(AdministrationEntry.of(old), **changes)
    check = check_administration(entry, now=now, case=case, administration_id=administration_id)
    check.raise_first()
    new = _administration(entry, old.administration_id, old.entered_by or who)
    new.source = old.source  # who changed it is in the audit entry
    work = copy.deepcopy(case)
    work.administrations[index] = new
    _check_order(work)
    record = new.to_dict()
    net = net_administered_activity_mbq(new)
    before = old.to_dict()
    changed = sorted(k for k in record if k != "entered_by" and record[k] != before.get(k))
    _save(
        store,
        case,
        work,
        "enter-administration",
        operation="edit",
        administration_id=old.administration_id,
        changed=changed,
        before=before,
        values=record,
        net_activity_mbq=net,
        warnings=[w.message for w in check.warnings],
    )
    return EntryResult(record, check.warnings, case.version, net)


def _check_order(work: Case) -> None:
    """Scans and measurements must stay after the first administration (their t = 0)."""
    first = work.first_administration
    if first is None:
        return
    for tp in work.sorted_time_points():
        if tp.acquired_at < first.time:
            raise InvalidInputError(
                f"time: the administration at {first.time:%Y-%m-%d %H:%M} would come after "
                f"time point {tp.label or tp.time_point_id} acquired at "
                f"{tp.acquired_at:%Y-%m-%d %H:%M}; correct the scan time or this time",
                field="time",
            )
    for m in work.measurements:
        if m.time < first.time:
            raise InvalidInputError(
                f"time: the administration at {first.time:%Y-%m-%d %H:%M} would come after "
                f"the {m.kind} measurement of {m.time:%Y-%m-%d %H:%M}",
                field="time",
            )


def _administration_index(case: Case, administration_id: str) -> int:
    for i, a in enumerate(case.administrations):
        if a.administration_id == administration_id:
            return i
    ids = ", ".join(a.administration_id for a in case.administrations) or "none"
    raise InvalidInputError(
        f"administration_id: case {case.case_id} has no administration "
        f"{administration_id!r} (administrations: {ids})",
        field="administration_id",
    )


# ========================================================== scan-time fixes
def check_scan_time(
    case: Case,
    time_point: TimePoint,
    acquired_at: datetime | None,
    reason: str,
    *,
    now: datetime | None = None,
) -> EntryCheck:
    """Refusals for a corrected acquisition time: missing, in the future, before the
    first administration, or no reason given."""
    now = now or datetime.now()
    p = _Problems()
    adm = case.first_administration
    _time(
        p,
        "acquired_at",
        acquired_at,
        f"acquisition time of {time_point.label or time_point.time_point_id}",
        now,
        not_before=adm.time if adm is not None else None,
        not_before_what="the administration",
    )
    if not reason or not reason.strip():
        p.error("reason", "say why the acquisition time is corrected")
    return p.result()


def correct_scan_time(
    store: CaseRepository,
    case: Case,
    time_point: str,
    acquired_at: datetime,
    reason: str,
    *,
    now: datetime | None = None,
) -> EntryResult:
    """Set a time point's acquisition time by hand, keeping the original and the reason.

    ``time_point`` is an id, a label (``TP1``) or a 1-based position.  The first
    recorded time stays in ``TimePoint.acquired_at_original`` through later
    corrections; the audit entry holds old and new time and the reason.
    """
    who = _require(store, MEASUREMENT_PERMISSION)
    try:
        tp = case.time_point(time_point)
    except KeyError as exc:
        raise InvalidInputError(f"time_point: {exc.args[0]}", field="time_point") from None
    check_scan_time(case, tp, acquired_at, reason, now=now).raise_first()
    work = copy.deepcopy(case)
    wtp = work.time_point(tp.time_point_id)
    old = wtp.acquired_at
    if wtp.acquired_at_original is None:
        wtp.acquired_at_original = old
    wtp.acquired_at = acquired_at
    wtp.acquired_at_reason = reason.strip()
    record = {
        "time_point_id": wtp.time_point_id,
        "label": wtp.label,
        "acquired_at": acquired_at.isoformat(),
        "previous_acquired_at": old.isoformat(),
        "acquired_at_original": wtp.acquired_at_original.isoformat(),
        "reason": wtp.acquired_at_reason,
        "corrected_by": who,
    }
    _save(store, case, work, SCAN_TIME_AUDIT_ACTION, operation="edit", values=record)
    return EntryResult(record, (), case.version)


# ============================================================== measurements
class EntryKind(StrEnum):
    """What a measurement entry is (the CLI's ``--kind``)."""

    DOSE_RATE = "dose-rate"
    PROBE = "probe"
    BLOOD = "blood"
    URINE = "urine"
    WEIGHT = "weight"
    HEIGHT = "height"


_MODEL_KIND = {
    EntryKind.DOSE_RATE: MeasurementKind.DOSE_RATE,
    EntryKind.PROBE: MeasurementKind.PROBE,
    EntryKind.BLOOD: MeasurementKind.BLOOD_SAMPLE,
    EntryKind.URINE: MeasurementKind.URINE,
}


@dataclass(frozen=True)
class MeasurementEntry:
    """The values of one measurement as entered; which ones apply depends on ``kind``.

    ``time`` is when it was measured: the reading time (dose rate, probe), the
    sampling time (blood), the end of the collection (urine).  Weight and height
    are patient fields (no time).  The keys written to ``Measurement.extra`` are
    the ones :mod:`dosimetry_core.kinetics.measurements` reads
    (``background``, ``counting_time_s``, ``background_counts``,
    ``background_counting_time_s``, ``standard_*``, ``sample_volume_ml``,
    ``counted_at``, ``background_time_s``), so the protocols use what is entered.
    """

    kind: EntryKind
    time: datetime | None = None
    # whole-body dose rate
    dose_rate_usv_h: float | None = None
    distance_m: float | None = None
    background_usv_h: float | None = None
    # probe and well-counter counts
    counts: float | None = None
    counting_time_s: float | None = None
    background_counts: float | None = None
    background_counting_time_s: float | None = None
    standard_counts: float | None = None
    standard_background_counts: float | None = None
    standard_counting_time_s: float | None = None
    standard_activity_mbq: float | None = None
    standard_calibrated_at: datetime | None = None
    # blood sample
    sample_volume_ml: float | None = None
    counted_at: datetime | None = None
    well_calibration_cps_per_bq: float | None = None
    concentration_bq_ml: float | None = None
    hematocrit: float | None = None
    # urine collection
    collection_start: datetime | None = None
    volume_ml: float | None = None
    activity_mbq: float | None = None
    # patient
    weight_kg: float | None = None
    height_cm: float | None = None
    # who and with what
    measured_by: str = ""
    instrument: str = ""
    note: str = ""


def check_measurement(
    case: Case, entry: MeasurementEntry, *, now: datetime | None = None
) -> EntryCheck:
    """Refusals and warnings for a measurement (ranges in the module constants).

    Refused: times missing, in the future or before the first administration;
    negative dose rates, counts or concentrations; non-positive distances,
    counting times and volumes; hematocrit outside (0, 1); weight outside
    0.5-500 kg; height outside 30-250 cm; a blood sample with neither or both of
    counts and concentration; a urine collection ending before it starts.
    Warned: hematocrit outside 0.2-0.6; weight above 200 kg; a reading not
    above its background; a dose rate at another distance than the earlier
    readings; probe counts without background or standard.
    """
    now = now or datetime.now()
    p = _Problems()
    try:
        kind = EntryKind(entry.kind)
    except ValueError:
        p.error("kind", f"unknown measurement kind {entry.kind!r} ({', '.join(EntryKind)})")
        return p.result()
    if kind is EntryKind.WEIGHT:
        w = _number(
            p,
            "weight_kg",
            entry.weight_kg,
            "patient weight (kg)",
            minimum=WEIGHT_RANGE_KG[0],
            maximum=WEIGHT_RANGE_KG[1],
        )
        if w is not None and w > WEIGHT_WARN_KG:
            p.warn("weight_kg", f"{w:g} kg is unusual: check the value and its unit")
        return p.result()
    if kind is EntryKind.HEIGHT:
        _number(
            p,
            "height_cm",
            entry.height_cm,
            "patient height (cm)",
            minimum=HEIGHT_RANGE_CM[0],
            maximum=HEIGHT_RANGE_CM[1],
        )
        return p.result()
    adm = case.first_administration
    if adm is None:
        p.error("time", "enter the administration first: measurement times count from it")
        t = None
    else:
        t = _time(
            p,
            "time",
            entry.time,
            "measurement time",
            now,
            not_before=adm.time,
            not_before_what="the administration",
        )
    if kind is EntryKind.DOSE_RATE:
        rate = _number(p, "dose_rate_usv_h", entry.dose_rate_usv_h, "dose rate (uSv/h)", minimum=0)
        distance = _number(
            p, "distance_m", entry.distance_m, "distance (m)", minimum=0.0, strict_min=True
        )
        bg = _number(
            p,
            "background_usv_h",
            entry.background_usv_h,
            "background dose rate (uSv/h)",
            required=False,
            minimum=0.0,
        )
        if rate is not None and bg is not None and rate <= bg:
            p.warn(
                "dose_rate_usv_h",
                f"reading {rate:g} uSv/h is not above the background {bg:g} uSv/h",
            )
        earlier = {
            float(m.extra["distance_m"])
            for m in case.measurements
            if m.kind == MeasurementKind.DOSE_RATE and m.extra.get("distance_m") is not None
        }
        if distance is not None and earlier and distance not in earlier:
            p.warn(
                "distance_m",
                f"earlier readings were taken at {', '.join(f'{d:g}' for d in sorted(earlier))} m:"
                " the whole-body retention needs one geometry for all readings",
            )
    elif kind is EntryKind.PROBE:
        _counts(p, entry, background_time_field="background_counting_time_s")
        if entry.background_counts is None:
            p.warn(
                "background_counts",
                "without the background counts the probe reading cannot be converted to an uptake",
            )
        std = (
            entry.standard_counts,
            entry.standard_background_counts,
            entry.standard_counting_time_s,
            entry.standard_activity_mbq,
        )
        _number(
            p,
            "standard_counts",
            entry.standard_counts,
            "standard counts",
            required=False,
            minimum=0.0,
        )
        _number(
            p,
            "standard_background_counts",
            entry.standard_background_counts,
            "standard background counts",
            required=False,
            minimum=0.0,
        )
        _number(
            p,
            "standard_counting_time_s",
            entry.standard_counting_time_s,
            "standard counting time (s)",
            required=False,
            minimum=0.0,
            strict_min=True,
        )
        _number(
            p,
            "standard_activity_mbq",
            entry.standard_activity_mbq,
            "standard activity (MBq)",
            required=False,
            minimum=0.0,
            strict_min=True,
        )
        _time(
            p,
            "standard_calibrated_at",
            entry.standard_calibrated_at,
            "standard calibration time",
            now,
            required=False,
        )
        if any(v is None for v in std):
            p.warn(
                "standard_counts",
                "without the standard (counts, background, counting time, activity) "
                "the probe counts cannot be converted to an uptake",
            )
    elif kind is EntryKind.BLOOD:
        if entry.counts is None and entry.concentration_bq_ml is None:
            p.error("counts", "give the sample counts or its activity concentration (Bq/mL)")
        elif entry.counts is not None and entry.concentration_bq_ml is not None:
            p.error(
                "concentration_bq_ml",
                "give either the sample counts or its activity concentration, not both",
            )
        elif entry.counts is not None:
            _counts(p, entry, background_time_field="background_counting_time_s")
            _number(
                p,
                "sample_volume_ml",
                entry.sample_volume_ml,
                "sample volume (mL)",
                minimum=0.0,
                strict_min=True,
            )
            _number(
                p,
                "well_calibration_cps_per_bq",
                entry.well_calibration_cps_per_bq,
                "well-counter calibration (cps/Bq)",
                required=False,
                minimum=0.0,
                strict_min=True,
            )
            _time(
                p,
                "counted_at",
                entry.counted_at,
                "counting time",
                now,
                required=False,
                not_before=t,
                not_before_what="the sampling",
            )
        else:
            _number(
                p,
                "concentration_bq_ml",
                entry.concentration_bq_ml,
                "activity concentration (Bq/mL)",
                minimum=0.0,
            )
        hct = _number(
            p,
            "hematocrit",
            entry.hematocrit,
            "hematocrit (fraction)",
            required=False,
            minimum=0.0,
            strict_min=True,
            maximum=1.0,
            strict_max=True,
        )
        if hct is not None and not HEMATOCRIT_USUAL[0] <= hct <= HEMATOCRIT_USUAL[1]:
            p.warn(
                "hematocrit",
                f"hematocrit {hct:g} is outside the usual {HEMATOCRIT_USUAL[0]:g}-"
                f"{HEMATOCRIT_USUAL[1]:g}: a fraction, not a percentage",
            )
    elif kind is EntryKind.URINE:
        _number(p, "volume_ml", entry.volume_ml, "urine volume (mL)", minimum=0.0, strict_min=True)
        if entry.activity_mbq is None and entry.concentration_bq_ml is None:
            p.error("activity_mbq", "give the activity (MBq) or the concentration (Bq/mL)")
        _number(
            p,
            "activity_mbq",
            entry.activity_mbq,
            "urine activity (MBq)",
            required=False,
            minimum=0.0,
        )
        _number(
            p,
            "concentration_bq_ml",
            entry.concentration_bq_ml,
            "urine concentration (Bq/mL)",
            required=False,
            minimum=0.0,
        )
        start = _time(
            p,
            "collection_start",
            entry.collection_start,
            "collection start",
            now,
            not_before=adm.time if adm else None,
            not_before_what="the administration",
        )
        if start is not None and t is not None and start >= t:
            p.error("collection_start", "the collection must start before it ends (time)")
    return p.result()


def _counts(p: _Problems, entry: MeasurementEntry, *, background_time_field: str) -> None:
    _number(p, "counts", entry.counts, "counts", minimum=0.0)
    _number(
        p,
        "counting_time_s",
        entry.counting_time_s,
        "counting time (s)",
        minimum=0.0,
        strict_min=True,
    )
    _number(
        p,
        "background_counts",
        entry.background_counts,
        "background counts",
        required=False,
        minimum=0.0,
    )
    _number(
        p,
        background_time_field,
        getattr(entry, background_time_field),
        "background counting time (s)",
        required=False,
        minimum=0.0,
        strict_min=True,
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _measurement(entry: MeasurementEntry, who: str) -> Measurement:
    """The model record of a checked entry (extra keys as kinetics/measurements reads them)."""
    kind = EntryKind(entry.kind)
    extra: dict[str, Any] = {}
    if kind is EntryKind.DOSE_RATE:
        value, unit = float(entry.dose_rate_usv_h or 0.0), "uSv/h"
        extra = {"distance_m": entry.distance_m, "background": entry.background_usv_h or 0.0}
    elif kind is EntryKind.PROBE:
        value, unit = float(entry.counts or 0.0), "counts"
        extra = {
            "counting_time_s": entry.counting_time_s,
            "background_counts": entry.background_counts,
            "background_counting_time_s": entry.background_counting_time_s,
            "standard_counts": entry.standard_counts,
            "standard_background_counts": entry.standard_background_counts,
            "standard_counting_time_s": entry.standard_counting_time_s,
            "standard_activity_mbq": entry.standard_activity_mbq,
            "standard_calibrated_at": _iso(entry.standard_calibrated_at),
        }
    elif kind is EntryKind.BLOOD:
        if entry.counts is not None:
            value, unit = float(entry.counts), "counts"
            extra = {
                "counting_time_s": entry.counting_time_s,
                "sample_volume_ml": entry.sample_volume_ml,
                "counted_at": _iso(entry.counted_at),
                "background_counts": entry.background_counts,
                "background_time_s": entry.background_counting_time_s,
                "well_calibration_cps_per_bq": entry.well_calibration_cps_per_bq,
            }
        else:
            value, unit = float(entry.concentration_bq_ml or 0.0), "Bq/mL"
        extra["hematocrit"] = entry.hematocrit
    else:  # urine
        volume = float(entry.volume_ml or 0.0)
        if entry.activity_mbq is not None:
            value = float(entry.activity_mbq)
        else:
            value = float(entry.concentration_bq_ml or 0.0) * volume * MBQ_PER_BQ
        unit = "MBq"
        extra = {
            "collection_start": _iso(entry.collection_start),
            "volume_ml": volume,
            "concentration_bq_ml": entry.concentration_bq_ml,
        }
    extra["measured_by"] = entry.measured_by.strip()
    extra["instrument"] = entry.instrument.strip()
    assert entry.time is not None  # checked
    return Measurement(
        kind=_MODEL_KIND[kind],
        value=value,
        unit=unit,
        time=entry.time,
        entered_by=who,
        note=entry.note.strip(),
        extra={
            k: (float(v) if isinstance(v, int | float) else v)
            for k, v in extra.items()
            if v is not None and v != ""
        },
    )


def add_measurement(
    store: CaseRepository,
    case: Case,
    entry: MeasurementEntry,
    *,
    now: datetime | None = None,
) -> EntryResult:
    """Record a measurement (role ``enter-measurement``; audited with its values).

    Weight and height set ``case.patient.weight_kg`` / ``height_cm`` (the audit
    entry holds old and new value); the other kinds append a
    :class:`~dosimetry_core.model.Measurement`.
    """
    who = _require(store, MEASUREMENT_PERMISSION)
    check = check_measurement(case, entry, now=now)
    check.raise_first()
    kind = EntryKind(entry.kind)
    work = copy.deepcopy(case)
    warnings = [w.message for w in check.warnings]
    if kind in (EntryKind.WEIGHT, EntryKind.HEIGHT):
        name = "weight_kg" if kind is EntryKind.WEIGHT else "height_cm"
        new_value = float(getattr(entry, name))
        old_value = getattr(work.patient, name)
        setattr(work.patient, name, new_value)
        record: dict[str, Any] = {"kind": str(kind), name: new_value, f"previous_{name}": old_value}
        _save(
            store,
            case,
            work,
            "enter-measurement",
            operation="set",
            values=record,
            warnings=warnings,
        )
        return EntryResult(record, check.warnings, case.version)
    m = _measurement(entry, who)
    work.measurements.append(m)
    record = m.to_dict()
    _save(
        store,
        case,
        work,
        "enter-measurement",
        operation="add",
        measurement_id=m.measurement_id,
        values=record,
        warnings=warnings,
    )
    return EntryResult(record, check.warnings, case.version)


def list_measurements(case: Case, kind: MeasurementKind | str | None = None) -> list[Measurement]:
    """The case's measurements in time order (of one kind when given)."""
    k = MeasurementKind(kind) if kind is not None else None
    return sorted((m for m in case.measurements if k is None or m.kind == k), key=lambda m: m.time)


def delete_measurement(
    store: CaseRepository, case: Case, measurement_id: str, *, reason: str = ""
) -> EntryResult:
    """Remove a measurement; the audit entry keeps all its values (and the reason)."""
    _require(store, MEASUREMENT_PERMISSION)
    index = next(
        (i for i, m in enumerate(case.measurements) if m.measurement_id == measurement_id), None
    )
    if index is None:
        ids = ", ".join(m.measurement_id for m in case.measurements) or "none"
        raise InvalidInputError(
            f"measurement_id: case {case.case_id} has no measurement {measurement_id!r} "
            f"(measurements: {ids})",
            field="measurement_id",
        )
    m = case.measurements[index]
    work = copy.deepcopy(case)
    del work.measurements[index]
    record = m.to_dict()
    _save(
        store,
        case,
        work,
        "enter-measurement",
        operation="delete",
        measurement_id=measurement_id,
        values=record,
        reason=reason.strip(),
    )
    return EntryResult(record, (), case.version)


# ================================================================== saving
def _require(store: CaseRepository, permission: str) -> str:
    """Check the role before anything else; return who acts (for ``entered_by``)."""
    actor = store.actor
    if actor is None:
        if store.has_users():
            raise PermissionDeniedError(
                f"this store has user accounts: log in to {ACTIONS[permission]} "
                "(MRTDOSE_USER and MRTDOSE_PASSWORD for the command line)"
            )
        from dosimetry_core.pipeline.contouring import current_user

        return current_user()
    require(actor, permission)
    return actor.username


def _save(store: CaseRepository, case: Case, work: Case, action: str, **details: Any) -> None:
    """Save ``work`` (a changed copy of ``case``) with its audit entry, then adopt it."""
    with store.transaction():
        store.save_case(work, audit=store.audit_spec(action, **details))
    for f in fields(Case):
        setattr(case, f.name, getattr(work, f.name))
