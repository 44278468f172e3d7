"""``mrtdose sirt``: Y-90 microsphere partition model, forward (doses) and inverse (activity).

Forward: ``--activity-gbq A`` prints ``tumour_dose_gy``, ``normal_liver_dose_gy``,
``lung_dose_gy`` (+ ``cumulative_lung_dose_gy``, ``inputs``, ``warnings``).
Inverse: ``--target-tumour-gy G`` or ``--target-normal-liver-gy G`` prints
``activity_gbq``, the three doses at that activity, ``binding_constraint`` and
``constraints_gbq`` (activity allowed by each constraint).

``--liver-mass-kg`` is the NON-tumoural perfused liver mass (EANM SOP, Chiesa et
al. 2021); with ``--whole-liver-mass`` it is the whole perfused liver, tumour
included, and the tumour mass is subtracted.  Physics in
:mod:`dosimetry_core.protocols.sirt`.
"""

from __future__ import annotations

import argparse
from typing import Any


def _text(d: dict[str, Any]) -> str:
    inp = d["inputs"]
    lines = []
    if "activity_gbq" in d and "binding_constraint" in d:
        lines.append(
            f"activity {d['activity_gbq']:.3f} GBq for a {d['target']} target of "
            f"{d['target_dose_gy']:g} Gy (binding constraint: {d['binding_constraint']})"
        )
        for name, a in d["constraints_gbq"].items():
            lines.append(f"  {name:<22} {'-' if a is None else f'{a:.3f} GBq'}")
    else:
        lines.append(f"activity {inp['activity_gbq']:g} GBq")
    lines += [
        f"partition model (K = {inp['dose_constant_gy_kg_per_gbq']:.2f} Gy kg/GBq, "
        f"LSF {inp['lsf']:g}, TNR {inp['tnr']:g}, m_N {inp['normal_liver_mass_kg']:g} kg, "
        f"m_T {inp['tumour_mass_kg']:g} kg, m_lung {inp['lung_mass_kg']:g} kg):",
        f"  tumour        {d['tumour_dose_gy']:8.1f} Gy",
        f"  normal liver  {d['normal_liver_dose_gy']:8.1f} Gy",
        f"  lungs         {d['lung_dose_gy']:8.1f} Gy"
        + (
            f"  (cumulative {d['cumulative_lung_dose_gy']:.1f} Gy)"
            if inp["previous_lung_dose_gy"]
            else ""
        ),
    ]
    lines += [f"warning: {w}" for w in d["warnings"]]
    return "\n".join(lines)


def cmd_sirt(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.protocols.sirt import (
        check_liver_mass_kg,
        partition_model,
        plan_partition_activity,
    )

    check_liver_mass_kg(args.liver_mass_kg)
    common: dict[str, Any] = dict(
        lsf=args.lsf,
        tnr=args.tnr,
        liver_mass_kg=args.liver_mass_kg,
        tumour_mass_kg=args.tumour_mass_kg,
        lung_mass_kg=args.lung_mass_kg,
        residual_fraction=args.residual_fraction,
        previous_lung_dose_gy=args.previous_lung_dose_gy,
        liver_mass_includes_tumour=args.whole_liver_mass,
    )
    if args.activity_gbq is not None:
        data = partition_model(args.activity_gbq, **common).to_dict()
    else:
        if args.target_tumour_gy is not None:
            target, dose = "tumour", args.target_tumour_gy
        else:
            target, dose = "normal-liver", args.target_normal_liver_gy
        plan = plan_partition_activity(
            target, dose, normal_liver_limit_gy=args.normal_liver_limit_gy, **common
        )
        data = plan.to_dict()
    _emit(args, data, _text(data))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sirt",
        parents=[common],
        help="Y-90 microspheres: partition-model doses for an activity, or the activity "
        "for a target dose within the lung limits",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--activity-gbq", type=float, default=None, help="administered activity")
    what.add_argument(
        "--target-tumour-gy", type=float, default=None, help="plan: mean tumour dose wanted"
    )
    what.add_argument(
        "--target-normal-liver-gy",
        type=float,
        default=None,
        help="plan: mean non-tumoural liver dose wanted",
    )
    p.add_argument("--lsf", type=float, required=True, help="lung shunt fraction (0-1, not %%)")
    p.add_argument(
        "--tnr", type=float, required=True, help="tumour-to-normal-liver concentration ratio"
    )
    p.add_argument(
        "--liver-mass-kg",
        type=float,
        required=True,
        help="NON-tumoural perfused liver mass m_N in kg (whole perfused liver with "
        "--whole-liver-mass)",
    )
    p.add_argument("--tumour-mass-kg", type=float, required=True, help="perfused tumour mass")
    p.add_argument(
        "--whole-liver-mass",
        action="store_true",
        help="--liver-mass-kg includes the tumour (m_N = liver - tumour)",
    )
    p.add_argument(
        "--lung-mass-kg", type=float, default=None, help="lung mass (default 1.0 kg, Ho 1996)"
    )
    p.add_argument(
        "--residual-fraction",
        type=float,
        default=0.0,
        help="measured fraction left in vial/tubing/catheter (0-1)",
    )
    p.add_argument(
        "--previous-lung-dose-gy",
        type=float,
        default=0.0,
        help="lung dose of earlier treatments (cumulative 50 Gy limit)",
    )
    p.add_argument(
        "--normal-liver-limit-gy",
        type=float,
        default=None,
        help="plan: also keep the non-tumoural liver dose at most this",
    )
    p.set_defaults(func=cmd_sirt)
