"""``mrtdose report | sign | amend | verify-report``: the dose report and its sign-off.

The acting user is given as ``--as USERNAME --role ROLE`` for now (roles:
technologist, physicist, physician, admin); the lead will connect it to the login.

* ``mrtdose report CASE --as U --role physicist [--out DIR]``: make (or regenerate the
  unsigned draft of) the case's report; writes ``<report_id>.pdf``, ``.csv``, ``.json``
  to DIR.  JSON keys: report_id, case_id, version, status, content_hash, inputs_hash,
  pdf_blob_key, supersedes, amendment_reason, signatures, files.
* ``mrtdose sign REPORT_ID --as U --role R --role-as mpe|practitioner``.
* ``mrtdose amend REPORT_ID --reason TEXT --as U --role R``.
* ``mrtdose verify-report FILE``: a report PDF or JSON on its own (and, when the store
  holds that report, its database record); exit 0 intact, 1 with problems.  JSON
  keys: file, report_id, intact, problems.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dosimetry_core.io.limits import MIB, read_bytes_limited
from dosimetry_core.store.repository import CaseRepository

REPORT_FILE_MAX_BYTES = 200 * MIB
"""Largest report PDF or JSON that ``verify-report`` reads (a report is a few MB)."""


def _actor(args: argparse.Namespace, store: CaseRepository) -> Any:
    """The acting user: the logged-in one (MRTDOSE_USER), else ``--as``/``--role``.

    ``--as``/``--role`` are accepted only for a store without user accounts (a
    single-user installation); a store with accounts needs a log-in.
    """
    from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
    from dosimetry_core.store.permissions import Actor

    if store.actor is not None:
        if args.as_user and args.as_user != store.actor.username:
            raise PermissionDeniedError(
                f"logged in as {store.actor.username}: cannot act as {args.as_user}"
            )
        return store.actor
    if store.has_users():
        raise PermissionDeniedError(
            "this store has user accounts: log in (MRTDOSE_USER and MRTDOSE_PASSWORD)"
        )
    if not args.as_user or not args.role:
        raise InvalidInputError("give --as USER and --role ROLE (or log in with MRTDOSE_USER)")
    return Actor(args.as_user, args.role)


def _summary(rec: Any) -> str:
    sig = "; ".join(f"{s['signed_as']} by {s['username']} at {s['at']}" for s in rec.signatures)
    return (
        f"report {rec.report_id} version {rec.version} of case {rec.case_id}: {rec.status}"
        f"{' (' + sig + ')' if sig else ''}; content SHA-256 {rec.content_hash[:16]}"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.reporting.csv_export import numbers_csv
    from dosimetry_core.reporting.records import create_report, export_manifest, report_pdf

    store = _open_store(args)
    rec = create_report(store, _actor(args, store), args.case)
    files: dict[str, str] = {}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pdf, csv_p, js = (out / f"{rec.report_id}.{ext}" for ext in ("pdf", "csv", "json"))
        pdf.write_bytes(report_pdf(store, rec.report_id))
        csv_p.write_text(numbers_csv(rec.content), encoding="utf-8")
        js.write_text(
            json.dumps(export_manifest(store, rec.report_id), indent=1, ensure_ascii=False),
            encoding="utf-8",
        )
        files = {"pdf": str(pdf), "csv": str(csv_p), "json": str(js)}
    data = {**rec.to_dict(), "files": files}
    lines = [_summary(rec)] + [f"wrote {f}" for f in files.values()]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.reporting.records import sign

    store = _open_store(args)
    rec = sign(store, _actor(args, store), args.report_id, as_=args.role_as)
    _emit(args, rec.to_dict(), _summary(rec))
    return 0


def cmd_amend(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.reporting.records import amend

    store = _open_store(args)
    rec = amend(store, _actor(args, store), args.report_id, args.reason)
    _emit(args, rec.to_dict(), f"{_summary(rec)}; supersedes {rec.supersedes}")
    return 0


def cmd_verify_report(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.reporting.records import split_pdf, verify, verify_report_file

    # bounded read first: /dev/zero, a FIFO or a huge file is refused before anything reads it
    raw = read_bytes_limited(args.file, REPORT_FILE_MAX_BYTES, "file")
    problems = verify_report_file(args.file)
    report_id = None
    try:
        m = json.loads(raw) if raw.lstrip().startswith(b"{") else split_pdf(raw)[1]
        report_id = ((m or {}).get("report") or {}).get("report_id")
    except (OSError, ValueError):
        pass
    if report_id and args.store:
        db = verify(_open_store(args), report_id)
        if not any("no report" in p for p in db):
            problems += db
    ok = not problems
    data = {"file": args.file, "report_id": report_id, "intact": ok, "problems": problems}
    text = f"{args.file}: intact" if ok else "\n".join(f"PROBLEM: {p}" for p in problems)
    _emit(args, data, text)
    return 0 if ok else 1


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    def who(p: argparse.ArgumentParser) -> None:
        p.add_argument("--as", dest="as_user", default=None, metavar="USERNAME")
        p.add_argument(
            "--role",
            default=None,
            choices=["technologist", "physicist", "physician", "admin"],
            help="role of the acting user (to be taken from the login later)",
        )

    p = sub.add_parser("report", parents=[common], help="make the dose report of a case")
    p.add_argument("case", metavar="CASE")
    who(p)
    p.add_argument("--out", default=None, metavar="DIR", help="write PDF, CSV and JSON here")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "sign", parents=[common], help="sign a report (MPE first, then practitioner)"
    )
    p.add_argument("report_id", metavar="REPORT_ID")
    who(p)
    p.add_argument("--role-as", required=True, choices=["mpe", "practitioner"])
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("amend", parents=[common], help="new version of a signed report")
    p.add_argument("report_id", metavar="REPORT_ID")
    p.add_argument("--reason", required=True)
    who(p)
    p.set_defaults(func=cmd_amend)

    p = sub.add_parser(
        "verify-report", parents=[common], help="check a report PDF or JSON and its signatures"
    )
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_verify_report)
