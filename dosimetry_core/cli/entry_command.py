"""``mrtdose administration``, ``measurement`` and ``scan-time``: technologist data entry.

::

    mrtdose administration CASE add --activity-mbq 7400 --time 2026-01-05T09:00 --nuclide Lu-177
                                    [--residual-mbq 150 --residual-time 2026-01-05T09:10] ...
    mrtdose administration CASE edit ADMIN_ID [same options]
    mrtdose administration CASE list
    mrtdose measurement CASE add --kind dose-rate|probe|blood|urine|weight|height [values]
    mrtdose measurement CASE list [--kind KIND]
    mrtdose measurement CASE delete MEASUREMENT_ID [--reason TEXT]
    mrtdose scan-time CASE TIME_POINT --acquired-at TIME --reason TEXT

Every command takes ``--json``.  The options are the fields of
:class:`~dosimetry_core.pipeline.entry.AdministrationEntry` and
:class:`~dosimetry_core.pipeline.entry.MeasurementEntry` with dashes.  Times are
ISO 8601 local wall-clock times (``2026-01-05T09:00`` or ``2026-01-05 09:00``).
A refused value prints one line naming the field and its option and exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from datetime import datetime
from typing import Any

from dosimetry_core.errors import InvalidInputError

_ADMIN_OPTIONS: dict[str, tuple[str, str]] = {
    # field -> (option, kind)
    "activity_mbq": ("--activity-mbq", "float"),
    "time": ("--time", "time"),
    "nuclide": ("--nuclide", "str"),
    "residual_activity_mbq": ("--residual-mbq", "float"),
    "residual_time": ("--residual-time", "time"),
    "cycle": ("--cycle", "int"),
    "radiopharmaceutical": ("--radiopharmaceutical", "str"),
    "route": ("--route", "str"),
    "measured_by": ("--measured-by", "str"),
    "calibrator": ("--calibrator", "str"),
}


def _measurement_options() -> dict[str, tuple[str, str]]:
    from dosimetry_core.pipeline.entry import MeasurementEntry

    out: dict[str, tuple[str, str]] = {}
    for f in dataclasses.fields(MeasurementEntry):
        if f.name == "kind":
            continue
        kind = "str"
        if "datetime" in str(f.type):
            kind = "time"
        elif "float" in str(f.type):
            kind = "float"
        out[f.name] = ("--" + f.name.replace("_", "-"), kind)
    return out


def _option_of(field: str | None) -> str | None:
    if field is None:
        return None
    if field in _ADMIN_OPTIONS:
        return _ADMIN_OPTIONS[field][0]
    return "--" + field.replace("_", "-")


def parse_time(text: str, field: str) -> datetime:
    """An ISO 8601 date-time; with a UTC offset it is converted to local wall-clock time."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{field}: {text!r} is not a date and time (use e.g. 2026-01-05T09:30)", field=field
        ) from None
    if t.tzinfo is not None:
        t = t.astimezone().replace(tzinfo=None)
    return t


def _convert(field: str, kind: str, text: str) -> Any:
    if kind == "time":
        return parse_time(text, field)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise InvalidInputError(f"{field}: {text!r} is not a number", field=field) from None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InvalidInputError(
                f"{field}: {text!r} is not a whole number", field=field
            ) from None
    return text


def _given(args: argparse.Namespace, options: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Field -> converted value of every option given on the command line."""
    values: dict[str, Any] = {}
    for field, (_option, kind) in options.items():
        raw = getattr(args, field, None)
        if raw is not None:
            values[field] = _convert(field, kind, raw)
    return values


def _with_option(exc: InvalidInputError) -> InvalidInputError:
    option = _option_of(exc.field)
    if option is None:
        return exc
    return InvalidInputError(f"{exc} (option {option})", field=exc.field)


def _warning_lines(warnings: list[Any]) -> list[str]:
    return [f"warning: {w.message}" for w in warnings]


def _fmt_mbq(x: float) -> str:
    return f"{x:,.1f} MBq" if math.isfinite(x) else "-"


# ------------------------------------------------------------ administration
def cmd_administration(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.pipeline import entry

    store = _open_store(args)
    case = store.load_case(args.case)
    if args.operation == "list":
        records = entry.list_administrations(case)
        data = {"case_id": case.case_id, "administrations": [r.to_dict() for r in records]}
        lines = [f"Administrations of {case.case_id}:"] if records else ["no administrations"]
        for r in records:
            a = r.administration
            residual = (
                f"  residual {a.residual_activity_mbq:g} MBq"
                + (f" at {a.residual_time:%Y-%m-%d %H:%M}" if a.residual_time else "")
                if a.residual_activity_mbq
                else ""
            )
            lines.append(
                f"  {a.administration_id}  {a.time:%Y-%m-%d %H:%M}  {a.nuclide:<7} "
                f"{_fmt_mbq(a.activity_mbq)}{residual}  net {_fmt_mbq(r.net_activity_mbq)}  "
                f"cycle {a.cycle}  {a.radiopharmaceutical}"
            )
        _emit(args, data, "\n".join(lines))
        return 0
    try:
        values = _given(args, _ADMIN_OPTIONS)
        if args.operation == "add":
            missing = [f for f in ("activity_mbq", "time", "nuclide") if f not in values]
            if missing:
                f = missing[0]
                raise InvalidInputError(f"{f}: {_ADMIN_OPTIONS[f][0]} is required", field=f)
            result = entry.add_administration(store, case, entry.AdministrationEntry(**values))
        else:
            if not values:
                raise InvalidInputError(
                    "nothing to change: give at least one option (e.g. --residual-mbq)"
                )
            result = entry.edit_administration(store, case, args.administration_id, **values)
    except InvalidInputError as exc:
        raise _with_option(exc) from None
    rec = result.record
    lines = [
        f"{'recorded' if args.operation == 'add' else 'changed'} administration "
        f"{rec['administration_id']}: {rec['nuclide']} {_fmt_mbq(rec['activity_mbq'])} at "
        f"{rec['time'].replace('T', ' ')}; net administered activity "
        f"{_fmt_mbq(result.net_activity_mbq or math.nan)} (case version {result.case_version})",
        *_warning_lines(list(result.warnings)),
    ]
    _emit(args, result.to_dict(), "\n".join(lines))
    return 0


# --------------------------------------------------------------- measurement
def _measurement_line(m: Any) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in m.extra.items())
    return (
        f"  {m.measurement_id}  {m.time:%Y-%m-%d %H:%M}  {m.kind:<12} {m.value:g} {m.unit}"
        f"{'  (' + extra + ')' if extra else ''}"
    )


def cmd_measurement(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.pipeline import entry

    store = _open_store(args)
    case = store.load_case(args.case)
    if args.operation == "list":
        kind = _model_kind(args.kind) if args.kind else None
        ms = entry.list_measurements(case, kind)
        p = case.patient
        data = {
            "case_id": case.case_id,
            "patient": {"weight_kg": p.weight_kg, "height_cm": p.height_cm},
            "measurements": [m.to_dict() for m in ms],
        }
        lines = [
            f"Patient weight {p.weight_kg if p.weight_kg is not None else '-'} kg, "
            f"height {p.height_cm if p.height_cm is not None else '-'} cm",
            f"{len(ms)} measurement(s):" if ms else "no measurements",
            *(_measurement_line(m) for m in ms),
        ]
        _emit(args, data, "\n".join(lines))
        return 0
    if args.operation == "delete":
        result = entry.delete_measurement(
            store, case, args.measurement_id, reason=args.reason or ""
        )
        _emit(
            args,
            result.to_dict(),
            f"deleted measurement {args.measurement_id} (kept in the audit trail; "
            f"case version {result.case_version})",
        )
        return 0
    try:
        values = _given(args, _measurement_options())
        result = entry.add_measurement(
            store, case, entry.MeasurementEntry(kind=_entry_kind(args.kind), **values)
        )
    except InvalidInputError as exc:
        raise _with_option(exc) from None
    rec = result.record
    if "measurement_id" in rec:
        head = (
            f"recorded {rec['kind']} measurement {rec['measurement_id']}: "
            f"{rec['value']:g} {rec['unit']} at {rec['time'].replace('T', ' ')}"
        )
    else:
        name = "weight_kg" if "weight_kg" in rec else "height_cm"
        head = f"patient {name.replace('_', ' (')}): {rec[name]:g}"
    lines = [
        f"{head} (case version {result.case_version})",
        *_warning_lines(list(result.warnings)),
    ]
    _emit(args, result.to_dict(), "\n".join(lines))
    return 0


def _entry_kind(kind: str) -> Any:
    from dosimetry_core.pipeline.entry import EntryKind

    try:
        return EntryKind(kind)
    except ValueError:
        raise InvalidInputError(
            f"kind: unknown measurement kind {kind!r} ({', '.join(EntryKind)})", field="kind"
        ) from None


def _model_kind(kind: str) -> Any:
    from dosimetry_core.pipeline.entry import _MODEL_KIND

    k = _entry_kind(kind)
    if k not in _MODEL_KIND:
        raise InvalidInputError(
            f"kind: {kind} is a patient field, not a measurement list", field="kind"
        )
    return _MODEL_KIND[k]


# ----------------------------------------------------------------- scan time
def cmd_scan_time(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.pipeline import entry

    store = _open_store(args)
    case = store.load_case(args.case)
    try:
        acquired_at = parse_time(args.acquired_at, "acquired_at")
        result = entry.correct_scan_time(store, case, args.time_point, acquired_at, args.reason)
    except InvalidInputError as exc:
        raise _with_option(exc) from None
    rec = result.record
    _emit(
        args,
        result.to_dict(),
        f"{rec['label'] or rec['time_point_id']}: acquisition time "
        f"{rec['previous_acquired_at'].replace('T', ' ')} -> {rec['acquired_at'].replace('T', ' ')}"
        f" ({rec['reason']}; first recorded {rec['acquired_at_original'].replace('T', ' ')})",
    )
    return 0


# -------------------------------------------------------------------- parsers
def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``administration``, ``measurement`` and ``scan-time`` on the main parser."""
    from dosimetry_core.cli.main import _ArgumentParser
    from dosimetry_core.pipeline.entry import EntryKind

    p = sub.add_parser(
        "administration", parents=[common], help="record, correct or list administrations"
    )
    p.add_argument("case", metavar="CASE")
    ops = p.add_subparsers(
        dest="operation", metavar="OPERATION", parser_class=_ArgumentParser, required=True
    )
    help_of = {
        "activity_mbq": "activity in the syringe at the administration time (MBq)",
        "time": "administration time (ISO 8601, local)",
        "nuclide": "e.g. Lu-177",
        "residual_activity_mbq": "activity left in syringe and lines (MBq)",
        "residual_time": "when the residual was measured (default: the administration time)",
        "cycle": "therapy cycle (1, 2, ...)",
        "radiopharmaceutical": "e.g. DOTATATE",
        "route": "e.g. intravenous",
        "measured_by": "who measured the activities",
        "calibrator": "dose-calibrator id",
    }
    for name, text in (("add", "record an administration"), ("edit", "change one")):
        q = ops.add_parser(name, parents=[common], help=text)
        if name == "edit":
            q.add_argument("administration_id", metavar="ADMIN_ID")
        for field, (option, _kind) in _ADMIN_OPTIONS.items():
            q.add_argument(option, dest=field, default=None, help=help_of[field])
        q.set_defaults(func=cmd_administration)
    q = ops.add_parser("list", parents=[common], help="list with the net administered activity")
    q.set_defaults(func=cmd_administration)

    p = sub.add_parser(
        "measurement",
        parents=[common],
        help="record, list or delete dose-rate, probe, blood, urine, weight, height",
    )
    p.add_argument("case", metavar="CASE")
    ops = p.add_subparsers(
        dest="operation", metavar="OPERATION", parser_class=_ArgumentParser, required=True
    )
    kinds = [str(k) for k in EntryKind]
    q = ops.add_parser("add", parents=[common], help="record a measurement")
    q.add_argument("--kind", required=True, help=" | ".join(kinds))
    help_of = {"time": "local date-time, ISO 8601", "float": "number, unit as named"}
    for field, (option, kind) in _measurement_options().items():
        q.add_argument(option, dest=field, default=None, help=help_of.get(kind, "text"))
    q.set_defaults(func=cmd_measurement)
    q = ops.add_parser("list", parents=[common], help="list the measurements and patient fields")
    q.add_argument("--kind", default=None, help=" | ".join(kinds[:4]))
    q.set_defaults(func=cmd_measurement)
    q = ops.add_parser("delete", parents=[common], help="delete one (kept in the audit trail)")
    q.add_argument("measurement_id", metavar="MEASUREMENT_ID")
    q.add_argument("--reason", default=None)
    q.set_defaults(func=cmd_measurement)

    p = sub.add_parser(
        "scan-time", parents=[common], help="correct a time point's acquisition time"
    )
    p.add_argument("case", metavar="CASE")
    p.add_argument("time_point", metavar="TIME_POINT", help="id, label (TP1) or 1-based index")
    p.add_argument("--acquired-at", required=True, help="corrected acquisition start (ISO 8601)")
    p.add_argument("--reason", required=True, help="why (kept with the original time)")
    p.set_defaults(func=cmd_scan_time)
