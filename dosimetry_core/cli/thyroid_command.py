"""``mrtdose thyroid``, ``mrtdose mibg`` and ``mrtdose marrow``: I-131 and marrow protocols.

``mrtdose thyroid --target-gy G --mass-g M --uptake-time-h T1 T2 ... --uptake-percent U1 U2 ...
[--nuclide I-131] [--tia-method fit|sop] [--json]``
    Fits the uptake (% of administered activity at the reading time, not decay
    corrected) and prescribes the activity.  JSON keys: ``u_max_percent``,
    ``t_eff_d``, ``activity_mbq`` (activity to administer), ``marinelli_k``,
    ``model``, ``t_uptake_h``, plus ``activity_sop_mbq``, ``tia_method``, ``fit``, ...

``mrtdose mibg --time-h ... --dose-rate ... --administered-activity-mbq A --body-mass-kg M``
    Whole-body dose from dose-rate readings (first = 100 %); optional
    ``--target-gy`` (with ``--administrations``) and ``--target-total-gy``
    (second administration).

``mrtdose marrow --blood-tia-mbq-h-per-ml C --rmblr sgouros|one|X --patient-mass-kg M
--remainder-tia-mbq-h R [--hematocrit H] [--red-marrow-mass-g G] [--sex M|F]``
    Blood-based red-marrow dose.
"""

from __future__ import annotations

import argparse
from typing import Any

from dosimetry_core.errors import InvalidInputError


def _g(v: float | None, fmt: str = ".4g") -> str:
    return "-" if v is None else f"{v:{fmt}}"


def cmd_thyroid(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.protocols.thyroid import prescribe

    p = prescribe(
        args.target_gy,
        args.mass_g,
        args.uptake_time_h,
        args.uptake_percent,
        nuclide=args.nuclide,
        tia_method=args.tia_method,
        assumed_t_eff_d=args.assumed_t_eff_d,
    )
    d = p.to_dict()
    lines = [
        f"{p.fit.nuclide} thyroid, {p.mass_g:g} g, target {p.target_gy:g} Gy",
        f"uptake fit: {p.fit.model} ({p.fit.rule})",
        f"  U_max = {p.fit.u_max_percent:.4g} %   T_eff = {p.fit.t_eff_d:.4g} d   "
        f"uptake half-time = {_g(p.fit.t_uptake_h)} h",
        f"  peak {p.fit.u_peak_percent:.4g} % at {p.fit.t_peak_h:.3g} h",
        f"K = {p.marinelli_k:.4g} MBq d/(Gy g) (photon AF {p.photon_absorbed_fraction:.3f})",
        f"activity to administer: {p.activity_mbq:.1f} MBq ({p.tia_method} integral); "
        f"SOP integral U_max T_eff/ln2: {p.activity_sop_mbq:.1f} MBq",
    ]
    lines += [f"warning: {w}" for w in p.fit.warnings]
    _emit(args, d, "\n".join(lines))
    return 0


def cmd_mibg(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.protocols.mibg import (
        mibg_activity_for_target,
        mibg_whole_body_dose,
        plan_second_administration,
    )

    if args.administrations < 1:
        raise InvalidInputError(
            f"--administrations must be at least 1, got {args.administrations}",
            field="administrations",
        )
    bg: float | list[float] = 0.0
    if args.background:
        bg = args.background[0] if len(args.background) == 1 else list(args.background)
    r = mibg_whole_body_dose(
        args.time_h,
        args.dose_rate,
        administered_activity_mbq=args.administered_activity_mbq,
        body_mass_kg=args.body_mass_kg,
        nuclide=args.nuclide,
        background=bg,
        model=args.model,
    )
    d = r.to_dict()
    lines = [
        f"{r.nuclide} whole body, {r.body_mass_kg:g} kg, {r.administered_activity_mbq:g} MBq",
        f"retention fit: {r.fit.model}; TIA = {r.tia_mbq_h:.5g} MBq h",
        f"S(WB<-WB) = {r.s_value_gy_per_mbq_h:.4g} Gy/(MBq h) (photon AF "
        f"{r.photon_absorbed_fraction:.3f}, unit-density sphere)",
        f"whole-body dose = {r.dose_gy:.4g} Gy ({r.dose_per_activity_gy_per_mbq * 1e3:.4g} "
        "mGy/MBq)",
    ]
    if args.target_gy is not None:
        a = mibg_activity_for_target(
            args.target_gy,
            r.dose_per_activity_gy_per_mbq,
            n_administrations=args.administrations,
        )
        d["activity_for_target_mbq"] = a
        d["target_gy"] = args.target_gy
        d["administrations"] = args.administrations
        lines.append(
            f"for {args.target_gy:g} Gy in {args.administrations} administration(s): "
            f"{a:.1f} MBq each (same kinetics assumed)"
        )
    if args.target_total_gy is not None:
        plan = plan_second_administration(
            r.administered_activity_mbq, r.dose_gy, args.target_total_gy
        )
        d["second_administration"] = plan.to_dict()
        lines.append(
            f"second administration for {args.target_total_gy:g} Gy total: "
            f"{plan.activity_mbq:.1f} MBq ({plan.assumption})"
        )
    _emit(args, d, "\n".join(lines))
    return 0


def _rmblr_arg(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def cmd_marrow(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.protocols.marrow import marrow_dose_blood_based

    r = marrow_dose_blood_based(
        args.blood_tia_mbq_h_per_ml,
        _rmblr_arg(args.rmblr),
        args.patient_mass_kg,
        args.remainder_tia_mbq_h,
        args.nuclide,
        hematocrit=args.hematocrit,
        red_marrow_mass_g=args.red_marrow_mass_g,
        sex=args.sex,
    )
    text = "\n".join(
        [
            f"{r.nuclide} red marrow (blood-based): {r.dose_gy:.4g} Gy",
            f"  self (electrons) {r.self_gy:.4g} Gy, self photons {r.self_photon_gy:.4g} Gy, "
            f"cross from remainder {r.cross_gy:.4g} Gy",
            f"  RMBLR {r.rmblr:.4g} ({r.rmblr_source})",
            f"  red-marrow mass {r.red_marrow_mass_g:.4g} g ({r.red_marrow_mass_source}); "
            f"marrow TIA {r.marrow_tia_mbq_h:.4g} MBq h",
        ]
    )
    _emit(args, r.to_dict(), text)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``mrtdose thyroid``, ``mibg`` and ``marrow`` to the ``mrtdose`` sub-commands."""
    p = sub.add_parser(
        "thyroid",
        parents=[common],
        help="I-131 benign thyroid: fit the uptake, prescribe the activity (EANM SOP)",
        description="Uptake in %% of the administered activity at the reading time "
        "(not decay corrected); times in h after administration.",
    )
    p.add_argument("--target-gy", type=float, required=True, metavar="G")
    p.add_argument("--mass-g", type=float, required=True, metavar="M")
    p.add_argument("--uptake-time-h", type=float, nargs="+", required=True, metavar="T")
    p.add_argument("--uptake-percent", type=float, nargs="+", required=True, metavar="U")
    p.add_argument("--nuclide", default="I-131")
    p.add_argument(
        "--tia-method",
        default="fit",
        choices=["fit", "sop"],
        help="fit: integral of the fitted curve incl. the uptake phase (default); "
        "sop: U_max T_eff / ln2 as in the Marinelli formula",
    )
    p.add_argument(
        "--assumed-t-eff-d",
        type=float,
        default=None,
        metavar="D",
        help="effective half-life (d) to assume with a single uptake reading",
    )
    p.set_defaults(func=cmd_thyroid)

    m = sub.add_parser(
        "mibg",
        parents=[common],
        help="I-131 mIBG: whole-body dose from dose-rate readings (first = 100 %%)",
    )
    m.add_argument("--time-h", type=float, nargs="+", required=True, metavar="T")
    m.add_argument("--dose-rate", type=float, nargs="+", required=True, metavar="R")
    m.add_argument("--administered-activity-mbq", type=float, required=True, metavar="A")
    m.add_argument("--body-mass-kg", type=float, required=True, metavar="M")
    m.add_argument("--background", type=float, nargs="+", default=None, metavar="B")
    m.add_argument("--nuclide", default="I-131")
    m.add_argument("--model", default="auto")
    m.add_argument("--target-gy", type=float, default=None, metavar="G")
    m.add_argument("--administrations", type=int, default=1, metavar="N")
    m.add_argument("--target-total-gy", type=float, default=None, metavar="G")
    m.set_defaults(func=cmd_mibg)

    r = sub.add_parser(
        "marrow",
        parents=[common],
        help="red-marrow dose by the blood-based method (EANM, Hindorf 2010)",
    )
    r.add_argument("--blood-tia-mbq-h-per-ml", type=float, required=True, metavar="C")
    r.add_argument("--rmblr", required=True, help="sgouros, one, or a number")
    r.add_argument("--patient-mass-kg", type=float, required=True, metavar="M")
    r.add_argument("--remainder-tia-mbq-h", type=float, required=True, metavar="R")
    r.add_argument("--nuclide", required=True)
    r.add_argument("--hematocrit", type=float, default=None, metavar="H")
    r.add_argument("--red-marrow-mass-g", type=float, default=None, metavar="G")
    r.add_argument("--sex", default="M", choices=["M", "F"])
    r.set_defaults(func=cmd_marrow)
