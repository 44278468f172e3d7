"""``mrtdose worklist`` and ``mrtdose case-new``: the case list with its filters, and a new case.

Commands::

    mrtdose worklist [--filter awaiting-approval|missing-administration|unsigned] [--json]
    mrtdose case-new --patient-id ID [--name N] [--birth-date YYYY-MM-DD] [--sex M|F|O]
                     [--protocol ID] [--description TEXT] [--json]

The acting user comes from ``$MRTDOSE_USER`` / ``$MRTDOSE_PASSWORD`` as for
every command (:func:`dosimetry_core.cli.main._open_store`); the filter
"awaiting-approval" depends on who asks.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.worklist import FILTERS

__all__ = ["add_parsers", "cmd_case_new", "cmd_worklist"]


def _io() -> tuple[Any, Any]:
    from dosimetry_core.cli.main import _emit, _open_store

    return _emit, _open_store


def cmd_worklist(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline.worklist import apply_filter, worklist

    emit, open_store = _io()
    store = open_store(args)
    rows = apply_filter(
        worklist(store, store.actor), args.filter, store.actor, has_accounts=store.has_users()
    )
    lines = [
        f"{r.patient_id:<16} {r.protocol or '-':<20} {r.n_time_points:>3} TP  "
        f"adm {'yes' if r.has_administration else 'NO ':<3}  "
        f"VOIs submitted {r.n_vois_submitted:>2}  report {r.report_status:<10} {r.case_id}"
        for r in rows
    ]
    emit(
        args,
        {"filter": args.filter or "all", "cases": [r.to_dict() for r in rows]},
        "\n".join(lines) if lines else "no case matches",
    )
    return 0


def _birth_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"birth date {text!r} is not a date YYYY-MM-DD", field="birth_date"
        ) from exc


def cmd_case_new(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline.cases import create_case
    from dosimetry_core.protocols.registry import checklist, load_protocol

    emit, open_store = _io()
    store = open_store(args)
    case = create_case(
        store,
        args.patient_id,
        args.name or "",
        _birth_date(args.birth_date),
        args.sex or "",
        args.protocol or "",
        description=args.description or "",
    )
    items = checklist(case, load_protocol(case.protocol)) if case.protocol else []
    lines = [f"created case {case.case_id} for patient {case.patient.patient_id}"]
    if case.protocol:
        lines.append(f"protocol {case.protocol}; still missing:")
        lines += [f"  {i['item']}: {i['detail']}" for i in items if not i["present"]]
    emit(
        args,
        {
            "case_id": case.case_id,
            "patient_id": case.patient.patient_id,
            "protocol": case.protocol,
            "checklist": items,
        },
        "\n".join(lines),
    )
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "worklist", parents=[common], help="the cases with their state, filtered as in the GUI"
    )
    p.add_argument(
        "--filter",
        choices=list(FILTERS),
        default=None,
        help="awaiting-approval (VOIs submitted, you may approve), missing-administration, "
        "unsigned (no report signed by both)",
    )
    p.set_defaults(func=cmd_worklist)

    q = sub.add_parser("case-new", parents=[common], help="create an empty case from a protocol")
    q.add_argument("--patient-id", required=True, help="DICOM patient ID (required)")
    q.add_argument("--name", default="", help="patient name, e.g. 'Family^Given'")
    q.add_argument("--birth-date", default=None, metavar="YYYY-MM-DD")
    q.add_argument("--sex", default="", choices=["", "M", "F", "O"])
    q.add_argument("--protocol", default="", help="protocol id (mrtdose protocols lists them)")
    q.add_argument("--description", default="")
    q.set_defaults(func=cmd_case_new)
