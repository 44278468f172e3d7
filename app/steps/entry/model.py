"""View-model of the data-entry step (no Qt): the forms' typed text, checked by the core.

The view hands every keystroke to this model (``set_administration``,
``set_measurement``, ``set_scan_time``); the model turns the text into values
(numbers in the unit the user chose, converted to the stored unit with
:mod:`dosimetry_core.model.quantities`; times as local ``YYYY-MM-DD HH:MM``)
and asks the core's checkers (:func:`dosimetry_core.pipeline.entry.check_administration`
and friends), so the form refuses and warns exactly as the core will on save.
Text that is not a number or a time is passed on as it is: the core's message
says so, naming the field.

The model announces what changed to its listeners (``subscribe``) with a topic:
``"administration"``, ``"measurement"``, ``"scan"`` (a form's checks or derived
figure changed) or ``"case"`` (the open case and its lists changed).  Saving is
the session's: ``*_save_call()`` gives ``(core_fn, args, kwargs)`` for
``session.change``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dosimetry_core.model import Case
from dosimetry_core.model.quantities import ACTIVITY, DOSE_RATE, Quantity, to_stored
from dosimetry_core.pipeline import entry as core
from dosimetry_core.pipeline.entry import (
    AdministrationEntry,
    EntryCheck,
    EntryKind,
    MeasurementEntry,
)

__all__ = [
    "ADMINISTRATION_COLUMNS",
    "ADMINISTRATION_FIELDS",
    "MEASUREMENT_COLUMNS",
    "MEASUREMENT_FIELDS",
    "EntryModel",
    "FieldSpec",
    "Row",
]

TIME_FORMAT = "%Y-%m-%d %H:%M"
DEFAULT_NUCLIDE = "Lu-177"


@dataclass(frozen=True)
class FieldSpec:
    """One input of a form: the core's field name, its label and what it holds.

    ``kind`` is ``"quantity"`` (a number with ``units``; the first unit is the
    stored one, or the quantity's units when ``quantity`` is set), ``"time"``,
    ``"int"`` or ``"text"``.
    """

    name: str
    label: str
    kind: str
    units: tuple[str, ...] = ()
    quantity: Quantity | None = None

    @property
    def unit_choices(self) -> tuple[str, ...]:
        return self.quantity.units if self.quantity is not None else self.units


def _q(name: str, label: str, unit: str = "", quantity: Quantity | None = None) -> FieldSpec:
    return FieldSpec(name, label, "quantity", (unit,) if unit else (), quantity)


ADMINISTRATION_FIELDS: tuple[FieldSpec, ...] = (
    _q("activity_mbq", "Administered activity", quantity=ACTIVITY),
    FieldSpec("time", "Administration time", "time"),
    FieldSpec("nuclide", "Nuclide", "text"),
    FieldSpec("radiopharmaceutical", "Radiopharmaceutical", "text"),
    FieldSpec("route", "Route", "text"),
    FieldSpec("cycle", "Cycle", "int"),
    _q("residual_activity_mbq", "Residual activity", quantity=ACTIVITY),
    FieldSpec("residual_time", "Residual measured at", "time"),
    FieldSpec("measured_by", "Measured by", "text"),
    FieldSpec("calibrator", "Dose calibrator", "text"),
)

_WHO = (
    FieldSpec("measured_by", "Measured by", "text"),
    FieldSpec("instrument", "Instrument", "text"),
    FieldSpec("note", "Note", "text"),
)
_COUNTS = (
    _q("counts", "Counts", "counts"),
    _q("counting_time_s", "Counting time", "s"),
    _q("background_counts", "Background counts", "counts"),
    _q("background_counting_time_s", "Background counting time", "s"),
)
MEASUREMENT_FIELDS: dict[EntryKind, tuple[FieldSpec, ...]] = {
    EntryKind.DOSE_RATE: (
        FieldSpec("time", "Reading time", "time"),
        _q("dose_rate_usv_h", "Dose rate", quantity=DOSE_RATE),
        _q("distance_m", "Distance", "m"),
        _q("background_usv_h", "Background", quantity=DOSE_RATE),
        *_WHO,
    ),
    EntryKind.PROBE: (
        FieldSpec("time", "Reading time", "time"),
        *_COUNTS,
        _q("standard_counts", "Standard counts", "counts"),
        _q("standard_background_counts", "Standard background counts", "counts"),
        _q("standard_counting_time_s", "Standard counting time", "s"),
        _q("standard_activity_mbq", "Standard activity", quantity=ACTIVITY),
        FieldSpec("standard_calibrated_at", "Standard calibrated at", "time"),
        *_WHO,
    ),
    EntryKind.BLOOD: (
        FieldSpec("time", "Sampling time", "time"),
        *_COUNTS,
        _q("sample_volume_ml", "Sample volume", "mL"),
        FieldSpec("counted_at", "Counted at", "time"),
        _q("well_calibration_cps_per_bq", "Well-counter calibration", "cps/Bq"),
        _q("concentration_bq_ml", "or activity concentration", "Bq/mL"),
        _q("hematocrit", "Hematocrit (fraction)", "0-1"),
        *_WHO,
    ),
    EntryKind.URINE: (
        FieldSpec("collection_start", "Collection start", "time"),
        FieldSpec("time", "Collection end", "time"),
        _q("volume_ml", "Volume", "mL"),
        _q("activity_mbq", "Activity", quantity=ACTIVITY),
        _q("concentration_bq_ml", "or concentration", "Bq/mL"),
        *_WHO,
    ),
    EntryKind.WEIGHT: (_q("weight_kg", "Patient weight", "kg"),),
    EntryKind.HEIGHT: (_q("height_cm", "Patient height", "cm"),),
}

KIND_LABELS: dict[EntryKind, str] = {
    EntryKind.DOSE_RATE: "Whole-body dose rate",
    EntryKind.PROBE: "Probe counts",
    EntryKind.BLOOD: "Blood sample (well counter)",
    EntryKind.URINE: "Urine collection",
    EntryKind.WEIGHT: "Patient weight",
    EntryKind.HEIGHT: "Patient height",
}

ADMINISTRATION_COLUMNS = (
    "Time",
    "Nuclide",
    "Activity (MBq)",
    "Residual (MBq)",
    "Net (MBq)",
    "Cycle",
    "Radiopharmaceutical",
    "Entered by",
)
MEASUREMENT_COLUMNS = ("Time", "Kind", "Value", "Unit", "Details", "Entered by")


@dataclass(frozen=True)
class Row:
    """One line of a list: the record's id and the cells shown."""

    record_id: str
    cells: tuple[str, ...]


def _fmt_time(t: datetime | None) -> str:
    return t.strftime(TIME_FORMAT) if t is not None else ""


def _fmt_number(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.10g}"


def _parse_number(text: str) -> Any:
    s = text.strip().replace(" ", "").replace("\u202f", "")
    if not s:
        return None
    try:
        return float(s)
    except ValueError:
        return text.strip()  # the core names the field and says it is not a number


def _parse_time(text: str) -> Any:
    s = text.strip()
    if not s:
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return s  # the core says it is not a date and time
    return t.replace(tzinfo=None) if t.tzinfo is None else t


def _parse_int(text: str) -> Any:
    s = text.strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        return s


class _Form:
    """Text and units of one form's fields."""

    def __init__(self, specs: tuple[FieldSpec, ...]) -> None:
        self.specs = {s.name: s for s in specs}
        self.text: dict[str, str] = {s.name: "" for s in specs}
        self.units: dict[str, str] = {s.name: (s.unit_choices or ("",))[0] for s in specs}
        self.touched: set[str] = set()
        """Fields the user typed into (an empty untouched field is not marked missing yet)."""

    def set(self, name: str, text: str, unit: str | None = None) -> None:
        if name not in self.specs:
            raise KeyError(f"no field {name!r}")
        self.text[name] = text
        self.touched.add(name)
        if unit is not None:
            if unit not in self.specs[name].unit_choices:
                raise KeyError(f"{name} has no unit {unit!r}")
            self.units[name] = unit

    def value(self, name: str) -> Any:
        spec = self.specs[name]
        text = self.text[name]
        if spec.kind == "quantity":
            number = _parse_number(text)
            if spec.quantity is not None and isinstance(number, float):
                return to_stored(spec.quantity, number, self.units[name])
            return number
        if spec.kind == "time":
            return _parse_time(text)
        if spec.kind == "int":
            return _parse_int(text)
        return text


class EntryModel:
    """Forms and lists of the data-entry step for one open case (module docstring).

    Parameters
    ----------
    now
        The clock (tests pass a fixed one); times in the future are refused.
    """

    def __init__(self, now: Callable[[], datetime] = datetime.now) -> None:
        self._now = now
        self.case: Case | None = None
        self._listeners: list[Callable[[str], None]] = []
        self.admin = _Form(ADMINISTRATION_FIELDS)
        self.editing_id: str | None = None
        """Administration being edited (None: the form adds a new one)."""
        self.kind = EntryKind.DOSE_RATE
        self.measure = _Form(MEASUREMENT_FIELDS[self.kind])
        self.scan_time_point: str | None = None
        self.scan_text = ""
        self.scan_reason = ""
        self.scan_touched: set[str] = set()
        self.new_administration()

    # -------------------------------------------------------------- shown
    @staticmethod
    def _shown(form: _Form, check: EntryCheck, name: str) -> tuple[str | None, str | None]:
        error = check.error_for(name)
        if error and not form.text.get(name, "").strip() and name not in form.touched:
            error = None  # "missing" waits until the user typed there or tried to save
        return error, check.warning_for(name)

    def administration_problems(self) -> dict[str, tuple[str | None, str | None]]:
        """Field -> (refusal, warning) to show now on the administration form."""
        check = self.administration_check()
        return {name: self._shown(self.admin, check, name) for name in self.admin.specs}

    def measurement_problems(self) -> dict[str, tuple[str | None, str | None]]:
        check = self.measurement_check()
        return {name: self._shown(self.measure, check, name) for name in self.measure.specs}

    def scan_problems(self) -> dict[str, tuple[str | None, str | None]]:
        check = self.scan_check()
        shown: dict[str, tuple[str | None, str | None]] = {}
        for name, text in (("acquired_at", self.scan_text), ("reason", self.scan_reason)):
            error = check.error_for(name)
            if error and not text.strip() and name not in self.scan_touched:
                error = None
            shown[name] = (error, None)
        return shown

    # ---------------------------------------------------------- announcing
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener(topic)`` after every change (topics in the module docstring)."""
        self._listeners.append(listener)

    def _announce(self, topic: str) -> None:
        for listener in list(self._listeners):
            listener(topic)

    # ---------------------------------------------------------------- case
    def set_case(self, case: Case | None) -> None:
        """A case was opened, saved or closed: lists follow it; a new case resets the forms."""
        old_id = self.case.case_id if self.case is not None else None
        self.case = case
        if case is None or case.case_id != old_id:
            adms = sorted(case.administrations, key=lambda a: a.time) if case else []
            if adms:
                self.load_administration(adms[-1].administration_id, announce=False)
            else:
                self.new_administration(announce=False)
            self.set_measurement_kind(self.kind, announce=False)
            tps = case.sorted_time_points() if case else []
            self.select_time_point(tps[0].time_point_id if tps else None, announce=False)
        elif self.editing_id is not None and not any(
            a.administration_id == self.editing_id for a in case.administrations
        ):
            self.new_administration(announce=False)
        self._announce("case")
        self._announce("administration")
        self._announce("measurement")
        self._announce("scan")

    # ------------------------------------------------------- administration
    def new_administration(self, *, announce: bool = True) -> None:
        """Empty form for a new administration (time: now; nuclide of the case's first)."""
        first = self.case.first_administration if self.case is not None else None
        self.admin = _Form(ADMINISTRATION_FIELDS)
        self.admin.text.update(
            {
                "time": _fmt_time(self._now()),
                "nuclide": first.nuclide if first else DEFAULT_NUCLIDE,
                "radiopharmaceutical": first.radiopharmaceutical if first else "",
                "route": "intravenous",
                "cycle": str(max((a.cycle for a in self._administrations()), default=0) + 1),
                "residual_activity_mbq": "0",
            }
        )
        self.editing_id = None
        if announce:
            self._announce("administration")

    def load_administration(self, administration_id: str, *, announce: bool = True) -> None:
        """Fill the form from a stored administration; Save then edits it."""
        adm = next(a for a in self._administrations() if a.administration_id == administration_id)
        self.admin = _Form(ADMINISTRATION_FIELDS)
        self.admin.text.update(
            {
                "activity_mbq": _fmt_number(adm.activity_mbq),
                "time": _fmt_time(adm.time),
                "nuclide": adm.nuclide,
                "radiopharmaceutical": adm.radiopharmaceutical,
                "route": adm.route,
                "cycle": str(adm.cycle),
                "residual_activity_mbq": _fmt_number(adm.residual_activity_mbq),
                "residual_time": _fmt_time(adm.residual_time),
                "measured_by": adm.measured_by,
                "calibrator": adm.calibrator,
            }
        )
        self.editing_id = administration_id
        if announce:
            self._announce("administration")

    def set_administration(self, name: str, text: str, unit: str | None = None) -> None:
        """The user typed ``text`` (in ``unit``) into field ``name``."""
        self.admin.set(name, text, unit)
        self._announce("administration")

    def administration_entry(self) -> AdministrationEntry:
        v = self.admin.value
        residual = v("residual_activity_mbq")
        cycle = v("cycle")
        return AdministrationEntry(
            activity_mbq=v("activity_mbq"),
            time=v("time"),
            nuclide=self.admin.text["nuclide"].strip(),
            radiopharmaceutical=self.admin.text["radiopharmaceutical"],
            route=self.admin.text["route"],
            cycle=1 if cycle is None else cycle,
            residual_activity_mbq=0.0 if residual is None else residual,
            residual_time=v("residual_time"),
            measured_by=self.admin.text["measured_by"],
            calibrator=self.admin.text["calibrator"],
        )

    def administration_check(self) -> EntryCheck:
        return core.check_administration(
            self.administration_entry(),
            now=self._now(),
            case=self.case,
            administration_id=self.editing_id,
        )

    def net_activity_mbq(self) -> float | None:
        """Net administered activity (MBq) of the form; None while a value is refused."""
        return core.net_activity_mbq(self.administration_entry(), now=self._now())

    def net_activity_text(self) -> str:
        net = self.net_activity_mbq()
        if net is None or not math.isfinite(net):
            return "Net administered activity: – (correct the values marked in red)"
        return f"Net administered activity: {net:,.1f} MBq"

    def administration_save_call(
        self,
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """``(core_fn, args, kwargs)`` for ``session.change``: add, or edit the loaded one."""
        entry = self.administration_entry()
        if self.editing_id is None:
            return core.add_administration, (entry,), {}
        changes = {name: getattr(entry, name) for name in AdministrationEntry.__dataclass_fields__}
        return core.edit_administration, (self.editing_id,), changes

    def administration_saved(self, result: core.EntryResult) -> None:
        """After a save: the form now edits the saved administration."""
        self.editing_id = str(result.record["administration_id"])
        self.admin.touched.clear()
        self._announce("administration")

    def administration_rows(self) -> list[Row]:
        if self.case is None:
            return []
        return [
            Row(
                r.administration.administration_id,
                (
                    _fmt_time(r.administration.time),
                    r.administration.nuclide,
                    f"{r.administration.activity_mbq:,.1f}",
                    f"{r.administration.residual_activity_mbq:,.1f}",
                    f"{r.net_activity_mbq:,.1f}",
                    str(r.administration.cycle),
                    r.administration.radiopharmaceutical,
                    r.administration.entered_by,
                ),
            )
            for r in core.list_administrations(self.case)
        ]

    def _administrations(self) -> list[Any]:
        return list(self.case.administrations) if self.case is not None else []

    # --------------------------------------------------------- measurements
    def set_measurement_kind(self, kind: EntryKind | str, *, announce: bool = True) -> None:
        """Another kind of measurement: its fields, empty (reading time: now)."""
        self.kind = EntryKind(kind)
        self.measure = _Form(MEASUREMENT_FIELDS[self.kind])
        if "time" in self.measure.text:
            self.measure.text["time"] = _fmt_time(self._now())
        if "distance_m" in self.measure.text:
            self.measure.text["distance_m"] = "1"
        if announce:
            self._announce("measurement")

    def set_measurement(self, name: str, text: str, unit: str | None = None) -> None:
        self.measure.set(name, text, unit)
        self._announce("measurement")

    def measurement_entry(self) -> MeasurementEntry:
        values: dict[str, Any] = {}
        for name, spec in self.measure.specs.items():
            value = self.measure.value(name)
            if spec.kind == "text":
                values[name] = value
            elif value is not None:
                values[name] = value
        return MeasurementEntry(kind=self.kind, **values)

    def measurement_check(self) -> EntryCheck:
        if self.case is None:
            return EntryCheck()
        return core.check_measurement(self.case, self.measurement_entry(), now=self._now())

    def measurement_save_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        return core.add_measurement, (self.measurement_entry(),), {}

    def measurement_saved(self) -> None:
        """After a save: an empty form of the same kind for the next reading."""
        self.set_measurement_kind(self.kind)

    def measurement_rows(self) -> list[Row]:
        if self.case is None:
            return []
        rows = []
        for m in core.list_measurements(self.case):
            details = ", ".join(
                f"{k} {v}" for k, v in m.extra.items() if k not in ("measured_by", "instrument")
            )
            rows.append(
                Row(
                    m.measurement_id,
                    (
                        _fmt_time(m.time),
                        str(m.kind),
                        f"{m.value:.6g}",
                        m.unit,
                        details,
                        m.entered_by,
                    ),
                )
            )
        return rows

    def patient_text(self) -> str:
        if self.case is None:
            return ""
        p = self.case.patient
        w = f"{p.weight_kg:g} kg" if p.weight_kg is not None else "–"
        h = f"{p.height_cm:g} cm" if p.height_cm is not None else "–"
        return f"Patient weight {w}, height {h}"

    @staticmethod
    def delete_call(
        measurement_id: str, reason: str = ""
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        return core.delete_measurement, (measurement_id,), {"reason": reason}

    # ------------------------------------------------------------ scan time
    def time_point_choices(self) -> list[tuple[str, str]]:
        """``(time_point_id, "TP1  2026-01-06 09:00")`` in time order."""
        if self.case is None:
            return []
        return [
            (tp.time_point_id, f"{tp.label or tp.time_point_id}  {_fmt_time(tp.acquired_at)}")
            for tp in self.case.sorted_time_points()
        ]

    def select_time_point(self, time_point_id: str | None, *, announce: bool = True) -> None:
        self.scan_time_point = time_point_id
        tp = self._time_point()
        self.scan_text = _fmt_time(tp.acquired_at) if tp is not None else ""
        self.scan_reason = ""
        self.scan_touched = set()
        if announce:
            self._announce("scan")

    def set_scan_time(self, text: str | None = None, reason: str | None = None) -> None:
        if text is not None:
            self.scan_text = text
            self.scan_touched.add("acquired_at")
        if reason is not None:
            self.scan_reason = reason
            self.scan_touched.add("reason")
        self._announce("scan")

    def scan_saved(self) -> None:
        """After a save: the correction is stored, nothing is pending."""
        self.scan_touched = set()
        self._announce("scan")

    def unsaved(self) -> list[str]:
        """What the forms hold that is not saved (for the question on closing)."""
        out = []
        if self.admin.touched:
            out.append("an administration typed in Data entry")
        if self.measure.touched:
            out.append(f"a {self.kind} measurement typed in Data entry")
        if self.scan_touched:
            out.append("a scan-time correction typed in Data entry")
        return out

    def scan_original_text(self) -> str:
        tp = self._time_point()
        if tp is None or tp.acquired_at_original is None:
            return ""
        return (
            f"Corrected from {_fmt_time(tp.acquired_at_original)} (as first recorded): "
            f"{tp.acquired_at_reason}"
        )

    def scan_check(self) -> EntryCheck:
        tp = self._time_point()
        if self.case is None or tp is None:
            return EntryCheck()
        return core.check_scan_time(
            self.case, tp, _parse_time(self.scan_text), self.scan_reason, now=self._now()
        )

    def scan_save_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        return (
            core.correct_scan_time,
            (self.scan_time_point or "", _parse_time(self.scan_text), self.scan_reason),
            {},
        )

    def _time_point(self) -> Any:
        if self.case is None or self.scan_time_point is None:
            return None
        return next(
            (t for t in self.case.time_points if t.time_point_id == self.scan_time_point), None
        )
