"""``mrtdose protocols`` (list) and ``mrtdose run CASE --protocol ID`` (headless run)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from dosimetry_core.errors import DosimetryError


def cmd_protocols(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.protocols.registry import list_protocols, load_protocol

    if args.id:
        p = load_protocol(args.id)
        s = p.summary()
        if args.case:
            from dosimetry_core.cli.main import _open_store
            from dosimetry_core.protocols.planning import run_readiness
            from dosimetry_core.protocols.registry import checklist

            case = _open_store(args).load_case(args.case)
            s["checklist"] = checklist(case, p)
            s["readiness"] = [dataclasses.asdict(i) for i in run_readiness(case, p)]
        lines = [f"{p.id}: {p.name} ({p.nuclide or 'any nuclide'})"]
        for level, text in p.eanm_levels.items():
            lines.append(f"  EANM level {level}: {text}")
        for m in p.expected_measurements:
            times = m.get("times_h")
            when = f" at {', '.join(f'{t:g}' for t in times)} h" if times else ""
            lines.append(
                f"  measure: {m.get('kind')}{when}{' (required)' if m.get('required') else ''}"
            )
        for o in p.organs:
            lims = "; ".join(
                f"{lim.quantity} <= {lim.value:g} ({lim.scope}"
                + (f", {lim.when})" if lim.when else ")")
                for lim in o.limits
            )
            lines.append(f"  {o.role} {o.label}: {lims or 'no limit'}")
        for i in s.get("checklist", []):
            mark = "x" if i["present"] else ("!" if i["required"] else " ")
            lines.append(f"  [{mark}] {i['item']}: {i['detail']}")
        if s.get("readiness"):
            lines.append("  readiness for a run:")
        for r in s.get("readiness", []):
            mark = {"ok": "x", "missing": "!", "warning": "!"}.get(r["state"], " ")
            state = f" ({r['state']})" if r["state"] in ("warning", "missing") else ""
            lines.append(f"  [{mark}] {r['item']}{state}: {r['detail']}")
        _emit(args, s, "\n".join(lines))
        return 0
    ps = list_protocols()
    _emit(
        args,
        [p.summary() for p in ps],
        "\n".join(f"{p.id:<22} {p.nuclide or 'any':<8} {p.name}" for p in ps),
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.access import acting_user_name
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.protocol_run import run_protocol

    store = _open_store(args)
    user = acting_user_name(store, args.user)  # --user names nobody but the logged-in user
    bar = TextProgress(not args.json)
    try:
        res = run_protocol(
            store,
            args.case,
            args.protocol,
            method=args.method,
            dose_method=args.dose_method,
            recovery_fwhm_mm=args.recovery_fwhm_mm,
            risk_factors=args.risk_factors,
            stp_time_point=args.stp_time_point,
            user=user,
            progress=bar,
        )
    finally:
        bar.done()
    from dosimetry_core.protocols.planning import run_summary
    from dosimetry_core.protocols.registry import load_protocol

    d = res.to_dict()
    # the run panel's tables (Gy/GBq, limit rows, next cycle in GBq): same numbers, added key
    try:
        protocol = load_protocol(res.protocol_id)
    except DosimetryError:  # the run's own labels then
        protocol = None
    d["summary"] = dataclasses.asdict(run_summary(res, protocol))
    lines = [
        f"case {res.case_id}, protocol {res.protocol_id}, {res.method} ({res.dose_method}), "
        f"{res.nuclide} {res.administered_activity_mbq:g} MBq (net administered)",
        f"{'VOI':<14} {'DOSE Gy':>9} {'SD':>7} {'BED Gy':>8} {'EQD2':>7} {'TIA MBq h':>10}",
    ]

    def f(x: float | None, w: int, p: int) -> str:
        return f"{x:{w}.{p}f}" if x is not None else f"{'-':>{w}}"

    for v in res.vois:
        lines.append(
            f"{v.voi_name[:14]:<14} {f(v.dose_gy, 9, 3)} {f(v.dose_sd_gy, 7, 3)} "
            f"{f(v.bed_gy, 8, 2)} {f(v.eqd2_gy, 7, 2)} {f(v.tia_mbq_h, 10, 0)}  "
            f"{v.role}  {v.review_flag}"
        )
    lines.append("limits:")
    for c in res.limit_checks:
        state = "ok" if c.passed else "EXCEEDED"
        lines.append(
            f"  {c.organ_id:<12} {c.quantity} {c.value:.2f} of {c.limit:g} ({c.scope}, "
            f"{100 * c.fraction_of_limit:.0f} %) {state}  [{c.source}]"
        )
    nc = res.next_cycle
    if nc.activity_mbq is not None:
        lines.append(
            f"next cycle: at most {nc.activity_mbq:.0f} MBq net administered "
            f"(bound by {nc.binding})"
        )
    elif nc.reason:
        lines.append(f"next cycle: {nc.reason}")
    lines += [f"warning: {w}" for w in res.warnings]
    _emit(args, d, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("protocols", parents=[common], help="list the therapy protocols")
    p.add_argument("id", nargs="?", default=None, help="show one protocol in full")
    p.add_argument(
        "--case", default=None, help="with ID: what this case has and still lacks for it"
    )
    p.set_defaults(func=cmd_protocols)

    q = sub.add_parser(
        "run",
        parents=[common],
        help="run a case end to end under a protocol: kinetics, dose, BED, uncertainty, limits",
    )
    q.add_argument("case", metavar="CASE")
    q.add_argument("--protocol", default=None, help="protocol id (default: the case's)")
    q.add_argument("--method", choices=["auto", "multi-point", "single-time-point"], default="auto")
    q.add_argument(
        "--dose-method",
        choices=["led", "vsv", "vsv-density", "mc"],
        default=None,
        help="voxel dose method (default: the protocol's)",
    )
    q.add_argument(
        "--recovery-fwhm-mm",
        type=float,
        default=None,
        help="SPECT resolution (FWHM, mm) for the partial-volume correction of VOIs",
    )
    q.add_argument(
        "--risk-factors",
        action="store_true",
        help="apply the stricter limits for patients with risk factors (e.g. kidney BED 28 Gy)",
    )
    q.add_argument("--stp-time-point", type=int, default=None, help="1-based, single time point")
    q.add_argument(
        "--user",
        default=None,
        help="who runs it, on a single-user store (recorded); with accounts always "
        "the logged-in user, and another name is refused",
    )
    q.set_defaults(func=cmd_run)
