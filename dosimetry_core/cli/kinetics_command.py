"""``mrtdose kinetics CASE``: TACs, fits and TIAs of a case's VOIs, headless."""

from __future__ import annotations

import argparse
from typing import Any

from dosimetry_core.store.repository import CaseRepository


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
    elif args.recovery_record is not None:
        recovery = _recovery_from_qa(store, args.recovery_record)
    bar = TextProgress(not args.json)
    try:
        results = compute_kinetics(
            store, args.case, vois=args.voi, model=args.model, recovery=recovery, progress=bar
        )
    finally:
        bar.done()
    rows = [r.to_dict() for r in results]
    comparisons = _stp_comparisons(args, results) if args.compare_stp else {}
    for row in rows:
        if row["voi_id"] in comparisons:
            row["stp_comparison"] = comparisons[row["voi_id"]]
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
    if comparisons:
        lines.append("")
        lines.append(
            f"Single-time-point TIA ({args.compare_stp}) from each scan versus the multi-point TIA:"
        )
        for r in results:
            cmp_rows = comparisons.get(r.voi_id)
            if not cmp_rows:
                continue
            cells = "  ".join(
                f"{c['time_h']:.0f} h: {100 * c['relative_difference']:+.1f} %"
                if "relative_difference" in c
                else f"{c['time_h']:.0f} h: {c['error']}"
                for c in cmp_rows
            )
            lines.append(f"  {r.voi_name[:14]:<14} {cells}")
    _emit(args, {"case_id": args.case, "vois": rows}, "\n".join(lines))
    return 0


def _stp_comparisons(
    args: argparse.Namespace, results: list[Any]
) -> dict[str, list[dict[str, Any]]]:
    """Per VOI: the STP TIA from each scan in turn against the multi-point TIA."""
    from dosimetry_core.errors import InvalidInputError
    from dosimetry_core.kinetics.stp import stp_tia

    if args.compare_stp == "madsen" and args.t_eff_h is None:
        raise InvalidInputError("--compare-stp madsen needs --t-eff-h (population T_eff in h)")
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r.error or not r.tia_mbq_h:
            continue
        rows: list[dict[str, Any]] = []
        for t, a in zip(r.tac.time_h, r.tac.activity_mbq, strict=True):
            try:
                stp = stp_tia(args.compare_stp, float(t), float(a), t_eff_h=args.t_eff_h)
            except InvalidInputError as exc:
                rows.append({"time_h": float(t), "error": str(exc)})
                continue
            rows.append(
                {
                    "time_h": float(t),
                    "method": args.compare_stp,
                    "tia_mbq_h": stp.tia_mbq_h,
                    "relative_difference": stp.tia_mbq_h / r.tia_mbq_h - 1.0,
                }
            )
        out[r.voi_id] = rows
    return out


def cmd_tia_map(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.access import acting_user_name
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.tia_map import compute_tia_map

    store = _open_store(args)
    user = acting_user_name(store, args.user)  # --user names nobody but the logged-in user
    bar = TextProgress(not args.json)
    try:
        res = compute_tia_map(
            store,
            args.case,
            grid=args.grid,
            body_threshold_hu=args.body_threshold_hu,
            body_margin_mm=args.body_margin_mm,
            min_r2=args.min_r2,
            user=user,
            progress=bar,
        )
    finally:
        bar.done()
    d = res.to_dict()
    g = res.tia_map.volume.geometry
    lines = [
        f"TIA map {res.tia_map.derived_id}: {res.total_tia_mbq_h:.1f} MBq*h in "
        f"{res.n_voxels} body voxels ({'x'.join(str(n) for n in g.shape_zyx[::-1])} grid, "
        f"{' x '.join(f'{s:.2f}' for s in g.spacing_mm)} mm)",
        "models: " + ", ".join(f"{k} {v}" for k, v in res.counts.items()),
        *[f"warning: {w}" for w in res.warnings],
    ]
    _emit(args, {"case_id": args.case, **d}, "\n".join(lines))
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
    p.add_argument(
        "--recovery-record",
        default=None,
        metavar="QA_RECORD_ID",
        help="RC(volume) curve of a stored sphere-phantom measurement (mrtdose qa list)",
    )
    p.add_argument(
        "--compare-stp",
        choices=["haenscheid", "madsen"],
        default=None,
        help="also compute the single-time-point TIA from each scan and its difference "
        "from the multi-point TIA",
    )
    p.add_argument(
        "--t-eff-h", type=float, default=None, help="population T_eff (h) for --compare-stp madsen"
    )
    p.set_defaults(func=cmd_kinetics)

    q = sub.add_parser(
        "tia-map",
        parents=[common],
        help="voxel-wise TIA map of a registered case (kept in the case for voxel dosimetry)",
    )
    q.add_argument("case", metavar="CASE")
    q.add_argument("--grid", choices=["spect", "ct"], default="spect", help="dosimetry grid")
    q.add_argument(
        "--body-threshold-hu",
        type=float,
        default=-500.0,
        help="CT threshold of the body mask (HU); voxels outside get no TIA",
    )
    q.add_argument(
        "--body-margin-mm",
        type=float,
        default=15.0,
        help="grow the body mask by this margin (mm) to keep counts blurred past the skin",
    )
    q.add_argument("--min-r2", type=float, default=0.8, help="smallest accepted weighted R^2")
    q.add_argument(
        "--user",
        default=None,
        help="who computes it, on a single-user store (recorded); with accounts always "
        "the logged-in user, and another name is refused",
    )
    q.set_defaults(func=cmd_tia_map)


def _recovery_from_qa(store: CaseRepository, record_id: str) -> Any:
    """The fitted RC(volume) curve of a stored recovery record (issue 8), as a recovery model."""
    from dosimetry_core.errors import InvalidInputError
    from dosimetry_core.qa.records import list_records, verify_record
    from dosimetry_core.qa.recovery import recovery_model_from_payload

    rec = next((r for r in list_records(store) if r.record_id == record_id), None)
    if rec is None:
        raise InvalidInputError(f"no QA record {record_id} in this store (mrtdose qa list)")
    if rec.kind != "recovery":
        raise InvalidInputError(f"QA record {record_id} is a {rec.kind} record, not a recovery one")
    if not verify_record(rec):
        raise InvalidInputError(f"QA record {record_id} does not match its hash: tampered with")
    return recovery_model_from_payload(rec.payload)
