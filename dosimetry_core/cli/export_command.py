"""``mrtdose export CASE OUT_DIR``: RT Dose, RTSTRUCT/SEG, report PDF, anonymised export.

JSON (``--json``): ``out_dir``, ``anonymized``, ``pseudonym``, ``date_shift_days``,
``n_files``, ``files`` (kind -> list of paths; kinds CT, NM, RTDOSE, RTSTRUCT, SEG,
DOC) and ``warnings``, plus ``case_id``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError


def _read_secret(path: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the secret file ({exc.strerror})") from exc
    if not secret:
        raise InvalidInputError(f"{path}: the secret file is empty")
    return secret


def cmd_export(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.export import export_case

    if args.anonymize and not args.secret_file:
        raise InvalidInputError("--anonymize needs --secret-file (the project secret)")
    if args.secret_file and not args.anonymize:
        raise InvalidInputError("--secret-file is only used with --anonymize")
    secret = _read_secret(args.secret_file) if args.anonymize else None
    pdf = None
    if args.report_pdf:
        try:
            pdf = Path(args.report_pdf).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"{args.report_pdf}: cannot read ({exc.strerror})") from exc
    store = _open_store(args)
    bar = TextProgress(not args.json)
    try:
        res = export_case(
            store,
            args.case,
            Path(args.out_dir),
            rtdose=not args.no_rtdose,
            rtstruct=args.rtstruct,
            seg=args.seg,
            report_pdf=pdf,
            anonymize=args.anonymize,
            secret=secret,
            date_shift_days=args.date_shift_days,
            images=True if args.images else None,
            ct_dir=Path(args.ct_dir) if args.ct_dir else None,
            retain_patient_characteristics=args.retain_patient_characteristics,
            retain_structure_names=not args.blank_structure_names,
            progress=bar,
        )
    finally:
        bar.done()
    data = {"case_id": args.case, **res.to_dict()}
    lines = [f"exported {res.n_files} file(s) of case {args.case} to {res.out_dir}"]
    lines += [f"  {kind:<9} {len(paths)}" for kind, paths in sorted(res.files.items())]
    if res.anonymized:
        lines.append(
            f"anonymised: patient pseudonym {res.pseudonym}, dates shifted by "
            f"{res.date_shift_days} days (times kept)"
        )
    lines += [f"warning: {w}" for w in res.warnings]
    _emit(args, data, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="export RT Dose / RTSTRUCT / SEG / report as DICOM, optionally anonymised",
    )
    p.add_argument("case", metavar="CASE")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--no-rtdose", action="store_true", help="do not write the dose maps")
    p.add_argument("--rtstruct", action="store_true", help="the VOIs as RT Structure Sets")
    p.add_argument("--seg", action="store_true", help="the VOIs as DICOM SEG")
    p.add_argument("--report-pdf", default=None, help="a PDF report to file (not anonymised)")
    p.add_argument(
        "--images",
        action="store_true",
        help="re-write the SPECT and CT from the store (default with --anonymize)",
    )
    p.add_argument("--ct-dir", default=None, help="folder of the original CT files (RTSTRUCT/SEG)")
    p.add_argument(
        "--anonymize",
        action="store_true",
        help="DICOM PS3.15 Basic Profile, consistent pseudonyms, dates shifted",
    )
    p.add_argument("--secret-file", default=None, help="file holding the project secret")
    p.add_argument(
        "--date-shift-days",
        type=int,
        default=None,
        help="days added to every date (default: per patient, from the secret)",
    )
    p.add_argument(
        "--retain-patient-characteristics",
        action="store_true",
        help="keep sex, age, size, weight (PS3.15 Retain Patient Characteristics Option)",
    )
    p.add_argument(
        "--blank-structure-names",
        action="store_true",
        help="empty ROI names as the Basic Profile says (default: kept when they hold "
        "no part of the patient's name or ID)",
    )
    p.set_defaults(func=cmd_export)
