"""``mrtdose kinetics CASE``: TACs, fits and TIAs of a case's VOIs, headless."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_kinetics(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.kinetics.tac import PsfRecovery
    from dosimetry_core.pipeline.kinetics import compute_kinetics

    store = _open_store(args)
    recovery: Any = None
    if args.recovery_fwhm_mm is not None:
        recovery = PsfRecovery(args.recovery_fwhm_mm)
    elif args.recovery is not None:
        recovery = args.recovery
    bar = TextProgress(not args.json)
    try:
        results = compute_kinetics(
            store, args.case, vois=args.voi, model=args.model, recovery=recovery, progress=bar
        )
    finally:
        bar.done()
    rows = [r.to_dict() for r in results]
    lines = [f"{'VOI':<14} {'MODEL':<13} {'TIA (MBq*h)':>14} {'SD':>10} {'TIAC (h)':>9}  NOTE"]
    for r in results:
        if r.error:
            lines.append(f"{r.voi_name[:14]:<14} {'-':<13} {'-':>14} {'-':>10} {'-':>9}  {r.error}")
            continue
        note = r.review_flag
        lines.append(
            f"{r.voi_name[:14]:<14} {r.model or '-':<13} {r.tia_mbq_h or 0:14.1f} "
            f"{r.tia_sd_mbq_h or 0:10.1f} {r.tiac_h or 0:9.2f}  {note}"
        )
    _emit(args, {"case_id": args.case, "vois": rows}, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "kinetics", parents=[common], help="time-activity curves, fits and TIAs of a case's VOIs"
    )
    p.add_argument("case", metavar="CASE")
    p.add_argument("--voi", action="append", default=None, help="only this VOI (repeatable)")
    p.add_argument(
        "--model",
        default="auto",
        choices=["auto", "mono", "biexp-uptake", "biexp", "triexp", "trapezoid"],
    )
    p.add_argument(
        "--recovery-fwhm-mm",
        type=float,
        default=None,
        help="partial-volume (spill-out) correction from each VOI's shape and the SPECT "
        "resolution FWHM in mm (Rousset 1998 GTM diagonal term)",
    )
    p.add_argument(
        "--recovery", type=float, default=None, help="a fixed recovery coefficient (0 < RC <= 1)"
    )
    p.set_defaults(func=cmd_kinetics)
