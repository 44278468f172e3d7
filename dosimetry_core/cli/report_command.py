"""``mrtdose report | sign | amend | verify-report``: the dose report and its sign-off.

The acting user is the logged-in one (``MRTDOSE_USER``/``MRTDOSE_PASSWORD``) in a store
with accounts; a single-user store (no accounts) takes ``--as USERNAME --role ROLE``
(roles: technologist, physicist, physician, admin).

* ``mrtdose report CASE --as U --role physicist [--out DIR]``: make (or regenerate the
  unsigned draft of) the case's report; writes ``<report_id>.pdf``, ``.csv``, ``.json``
  to DIR.  JSON keys: report_id, case_id, version, status, content_hash, inputs_hash,
  pdf_blob_key, supersedes, amendment_reason, signatures, files.
* ``mrtdose sign REPORT_ID --role-as mpe|practitioner [--out FILE]``: in a store with
  accounts the logged-in user signs with their personal key (PAdES in the PDF, unlocked
  by the log-in password from ``MRTDOSE_PASSWORD`` or the terminal); ``--out`` writes the
  PDF as signed so far.  ``--as U --role R`` remain for a single-user store (no keys: a
  hash-only record; the PDF says "unsigned (single-user store)").
* ``mrtdose amend REPORT_ID --reason TEXT --as U --role R``.
* ``mrtdose verify-report FILE [--trust CA.pem] [--store STORE]``: every PAdES signature
  validated against the trust anchor (``--trust``, else the CA pinned in the store
  folder), the whole file covered, the content hashes; with ``--store`` also that the file
  is the stored record of its report id.  A file with signatures and no trust anchor is
  a problem.  Exit 0 intact, 1 with problems.  JSON keys: file, report_id, intact,
  problems, signatures (field, signer, role, signed_as, signed_at, certificate_sha256,
  intact, valid, trusted, covers_whole_file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dosimetry_core.io.limits import read_bytes_limited
from dosimetry_core.reporting.file_check import CA_FILE_MAX_BYTES, REPORT_FILE_MAX_BYTES
from dosimetry_core.store.repository import CaseRepository


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
    data = rec.to_dict()
    lines = [_summary(rec)]
    if getattr(args, "out", None):
        from dosimetry_core.reporting.records import report_pdf

        out = Path(args.out)
        if not out.parent.is_dir():
            from dosimetry_core.errors import InvalidInputError

            raise InvalidInputError(f"the folder of --out {out} does not exist", field="out")
        out.write_bytes(report_pdf(store, rec.report_id))
        data["files"] = {"pdf": str(out)}
        lines.append(f"wrote {out}")
    _emit(args, data, "\n".join(lines))
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
    from dosimetry_core.reporting.file_check import verify_report_path

    # bounded reads first: /dev/zero, a FIFO or a huge file is refused before the store
    # is opened (verify_report_path reads them bounded again before parsing)
    read_bytes_limited(args.file, REPORT_FILE_MAX_BYTES, "file")
    if getattr(args, "trust", None):
        read_bytes_limited(args.trust, CA_FILE_MAX_BYTES, "trust")
    store = _open_store(args) if getattr(args, "store", None) else None
    data = verify_report_path(args.file, trust=getattr(args, "trust", None), store=store)
    problems = data["problems"]
    ok = data["intact"]
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
            help="role of the acting user (single-user store only; with accounts: the log-in's)",
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
    p.add_argument("--out", default=None, metavar="FILE", help="write the PDF as signed so far")
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
    p.add_argument(
        "--trust",
        default=None,
        metavar="CA.pem",
        help="CA certificate to trust (mrtdose user ca-cert); default: the store's pinned CA",
    )
    p.set_defaults(func=cmd_verify_report)
