"""``mrtdose fit``: fit a time-activity curve (or a single time point) and print TIA ± SD.

Times are hours after administration; activities are MBq at scan time (not
decay corrected).  ``--json`` prints the object of issue 4 (``model``,
``parameters``, ``covariance``, ``aicc``, ``tia_mbq_h``, ``tia_sd_mbq_h``,
``candidates``, plus diagnostics); ``--stp`` prints ``method``, ``tia_mbq_h``,
``tia_sd_mbq_h``, ...
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from dosimetry_core.errors import InvalidInputError


def _num(v: float | None, fmt: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:{fmt}}"


def _fit_text(d: dict[str, Any]) -> str:
    lines = [
        f"{d['nuclide']} (T1/2 phys {d['physical_half_life_h']:.2f} h), "
        f"{len(d['time_h'])} points, weights: {d['weights']['description']}",
        f"chosen model: {d['model']}  ({d['selection']})",
    ]
    tia, sd, mc = d["tia_mbq_h"], d["tia_sd_mbq_h"], d["tia_sd_mc_mbq_h"]
    lines.append(
        f"TIA = {_num(tia, '.5g')} MBq h  SD {_num(sd)} (Jacobian), {_num(mc)} (Monte Carlo)"
    )
    if "tiac_h" in d:
        lines.append(f"TIAC = {_num(d['tiac_h'])} h  SD {_num(d['tiac_sd_h'])}")
    for name, p in d["parameters"].items():
        lines.append(f"  {name:<8} {_num(p['value'], '.5g'):>12} {p['unit']:<4} SD {_num(p['sd'])}")
    for name, p in d["half_lives_h"].items():
        lines.append(f"  {name:<16} {_num(p['value'], '.4g')} h")
    lines.append("")
    lines.append(
        f"  {'MODEL':<13} {'k':>2} {'AICc':>9} {'chi2':>9} {'R2':>7} {'TIA MBq h':>11} "
        f"{'SD':>9}  STATUS"
    )
    for c in d["candidates"]:
        status = "ok" if c["converged"] and c["well_conditioned"] else "; ".join(c["warnings"])
        lines.append(
            f"  {c['model']:<13} {c['n_params']:>2} {_num(c['aicc'], '9.2f'):>9} "
            f"{_num(c['chi2'], '9.3g'):>9} {_num(c['r2'], '7.4f'):>7} "
            f"{_num(c['tia_mbq_h'], '11.5g'):>11} {_num(c['tia_sd_mbq_h'], '9.3g'):>9}  {status}"
        )
    for w in d["warnings"]:
        lines.append(f"warning: {w}")
    if d["fallback_used"]:
        lines.append("note: fell back to the trapezoid (allowed by --fallback)")
    return "\n".join(lines)


def cmd_fit(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.kinetics.fitting import check_mc_samples

    check_mc_samples(args.mc_samples)  # also with --stp: a wrong option is never ignored
    if args.stp:
        return _cmd_stp(args, _emit)
    from dosimetry_core.kinetics.fitting import fit_tac

    result = fit_tac(
        args.time_h,
        args.activity_mbq,
        model=args.model,
        nuclide=args.nuclide,
        injection_time_h=args.injection_time_h,
        activity_sd_mbq=args.activity_sd_mbq,
        relative_sd=args.relative_sd,
        allow_slower_than_physical=args.allow_slower_than_physical,
        fallback=args.fallback,
        trapezoid_start=args.trapezoid_start,
        trapezoid_tail=args.trapezoid_tail,
        administered_activity_mbq=args.administered_activity_mbq,
        mc_samples=args.mc_samples,
        seed=args.seed,
    )
    data = result.to_dict()
    _emit(args, data, _fit_text(data))
    return 0


def _cmd_stp(args: argparse.Namespace, emit: Any) -> int:
    from dosimetry_core.kinetics.population import lookup
    from dosimetry_core.kinetics.stp import stp_tia

    if len(args.time_h) != 1 or len(args.activity_mbq) != 1:
        raise InvalidInputError(
            "--stp takes exactly one --time-h and one --activity-mbq "
            f"(got {len(args.time_h)} and {len(args.activity_mbq)})"
        )
    sd_a = None
    if args.activity_sd_mbq:
        if len(args.activity_sd_mbq) != 1:
            raise InvalidInputError("--stp takes one --activity-sd-mbq")
        sd_a = args.activity_sd_mbq[0]
    t_eff, t_sd = args.t_eff_h, args.t_eff_sd_h
    pop = None
    if args.organ or args.radiopharmaceutical:
        if not (args.organ and args.radiopharmaceutical):
            raise InvalidInputError("give both --organ and --radiopharmaceutical")
        if t_eff is not None:
            raise InvalidInputError("give either --t-eff-h or --organ/--radiopharmaceutical")
        pop = lookup(args.organ, args.radiopharmaceutical, path=args.population_table)
        t_eff = pop.t_eff_h
        t_sd = pop.t_eff_sd_h if t_sd is None else t_sd
    r = stp_tia(
        args.method,
        args.time_h[0],
        args.activity_mbq[0],
        t_eff_h=t_eff,
        t_eff_sd_h=t_sd,
        injection_time_h=args.injection_time_h,
        activity_sd_mbq=sd_a,
    )
    data = r.to_dict()
    if pop is not None:
        data["population"] = pop.to_dict()
    text = (
        f"{r.method}: TIA = {r.tia_mbq_h:.5g} MBq h  SD {_num(r.tia_sd_mbq_h)}"
        + (f" (T_eff {r.t_eff_h:g} h)" if r.t_eff_h is not None else "")
        + f"  [{r.source}]"
    )
    emit(args, data, text)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``mrtdose fit`` to the sub-command parsers of ``mrtdose``."""
    from dosimetry_core.kinetics.models import MODEL_NAMES, START_RULES, TAIL_RULES

    p = sub.add_parser(
        "fit",
        parents=[common],
        help="fit a time-activity curve (or one time point with --stp): TIA ± SD",
        description="Times are hours after administration; activities are MBq at scan "
        "time (not decay corrected).",
    )
    p.add_argument("--time-h", type=float, nargs="+", required=True, metavar="T")
    p.add_argument("--activity-mbq", type=float, nargs="+", required=True, metavar="A")
    p.add_argument("--model", default="auto", choices=["auto", *MODEL_NAMES])
    p.add_argument("--nuclide", default="Lu-177")
    p.add_argument("--injection-time-h", type=float, default=0.0, metavar="T0")
    p.add_argument(
        "--activity-sd-mbq",
        type=float,
        nargs="+",
        default=None,
        metavar="SD",
        help="absolute SD per point (MBq); default: relative error model",
    )
    p.add_argument(
        "--relative-sd",
        type=float,
        default=0.1,
        metavar="R",
        help="relative SD of the relative error model (default 0.1 = 10%%)",
    )
    p.add_argument("--allow-slower-than-physical", action="store_true")
    p.add_argument("--fallback", action="store_true", help="use the trapezoid when the fit fails")
    p.add_argument("--trapezoid-start", default="linear", choices=list(START_RULES))
    p.add_argument("--trapezoid-tail", default="physical", choices=list(TAIL_RULES))
    p.add_argument("--administered-activity-mbq", type=float, default=None, metavar="A")
    p.add_argument("--mc-samples", type=int, default=2000, metavar="N")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--stp", action="store_true", help="single-time-point estimate")
    p.add_argument("--method", default="haenscheid", choices=["haenscheid", "madsen"])
    p.add_argument("--t-eff-h", type=float, default=None, metavar="T")
    p.add_argument("--t-eff-sd-h", type=float, default=None, metavar="SD")
    p.add_argument("--organ", default=None)
    p.add_argument("--radiopharmaceutical", default=None)
    p.add_argument("--population-table", default=None, metavar="PATH")
    p.set_defaults(func=cmd_fit)
