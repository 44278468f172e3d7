"""``mrtdose bed``: BED and EQD2 of one absorbed dose delivered by a radionuclide.

JSON (public contract): ``bed_gy``, ``eqd2_gy``, ``dose_gy``, ``t_eff_h``,
``alpha_beta_gy``, ``t_repair_h``, ``t_uptake_h`` (or null),
``relative_effectiveness``, ``source`` (of the tissue parameters, or null when
alpha/beta and T_repair were both given); in addition ``tissue``, ``g_factor``,
``model``, ``verification``.

The computation is :mod:`dosimetry_core.radiobiology.bed_calculator` (the
workstation's BED form calls the same function: one tissue lookup, one set of
overrides and plausible ranges).  ``--bed-gy`` instead of ``--dose-gy`` asks the
inverse (``dose_for_bed_calculation``): the JSON then adds ``target_bed_gy`` and
``dose_for_bed_gy`` (equal to ``dose_gy``; ``bed_gy`` is that dose's BED).
"""

from __future__ import annotations

import argparse
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.limits import MIB, read_bytes_limited

TISSUE_TABLE_MAX_BYTES = 4 * MIB
"""Largest tissue parameter table read (the shipped one is a few kB)."""


_OPTIONS = ("dose_gy", "bed_gy", "t_eff_h", "alpha_beta_gy", "t_repair_h", "t_uptake_h")
"""Inputs of :mod:`dosimetry_core.radiobiology.bed_calculator` that are ``--options`` here."""


def __getattr__(name: str) -> Any:
    # ``RANGES`` lives in the calculator (one source of truth); kept importable from here
    # without loading the radiobiology at parser build time
    if name == "RANGES":
        from dosimetry_core.radiobiology.bed_calculator import RANGES

        return RANGES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _as_cli_error(exc: InvalidInputError) -> InvalidInputError:
    """The calculator's refusal with its inputs named as this command's ``--options``."""
    msg = str(exc)
    if exc.field in _OPTIONS and msg.startswith(f"{exc.field} ") and "plausible" in msg:
        msg = _option(exc.field) + msg[len(exc.field) :]
    elif msg.startswith("give ") and msg.endswith(" or a tissue"):
        msg = msg[: -len(" or a tissue")] + " or --tissue NAME"
        for name in _OPTIONS:
            msg = msg.replace(name, _option(name))
    else:
        return exc
    return InvalidInputError(msg, field=exc.field)


def cmd_bed(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.radiobiology.bed_calculator import (
        bed_calculation,
        dose_for_bed_calculation,
    )

    if args.tissue_table is not None:
        # a bounded look first: the table reader would read /dev/zero until memory runs out
        read_bytes_limited(args.tissue_table, TISSUE_TABLE_MAX_BYTES, "tissue_table")
    kw: dict[str, Any] = {
        "tissue": args.tissue,
        "alpha_beta_gy": args.alpha_beta_gy,
        "t_repair_h": args.t_repair_h,
        "t_uptake_h": args.t_uptake_h,
        "tissue_table": args.tissue_table,
    }
    bed_gy = getattr(args, "bed_gy", None)
    try:
        if bed_gy is not None:
            res = dose_for_bed_calculation(bed_gy, args.t_eff_h, **kw)
        else:
            res = bed_calculation(args.dose_gy, args.t_eff_h, **kw)
    except InvalidInputError as exc:
        err = _as_cli_error(exc)
        if err is exc:
            raise
        raise err from exc
    data = res.to_dict()
    if bed_gy is not None:
        # the inverse: the dose giving --bed-gy (``bed_gy`` is that dose's BED, = the target)
        data["target_bed_gy"] = bed_gy
        data["dose_for_bed_gy"] = res.dose_gy
    uptake = "instantaneous" if res.t_uptake_h is None else f"T_uptake {res.t_uptake_h:g} h"
    lines = []
    if bed_gy is not None:
        lines.append(f"dose for BED {bed_gy:g} Gy: {res.dose_gy:.3f} Gy")
    lines += [
        f"BED  {res.bed_gy:.3f} Gy    EQD2 {res.eqd2_gy:.3f} Gy    "
        f"(RE {res.relative_effectiveness:.4f}, G {res.g_factor:.4f})",
        f"dose {res.dose_gy:g} Gy, T_eff {res.t_eff_h:g} h, uptake {uptake}, "
        f"alpha/beta {res.alpha_beta_gy:g} Gy, T_repair {res.t_repair_h:g} h "
        f"[{res.model}]",
    ]
    if res.tissue is not None:
        lines.append(f"tissue {res.tissue}: {res.source or 'both parameters given by the user'}")
    _emit(args, data, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``mrtdose bed`` to the sub-command parsers of ``mrtdose``."""
    p = sub.add_parser(
        "bed",
        parents=[common],
        help="biologically effective dose (BED) and EQD2 of a radionuclide absorbed dose",
        description="Lea-Catcheside BED for mono-exponential clearance (or uptake and "
        "washout with --t-uptake-h). With --tissue, alpha/beta and T_repair come from "
        "the tissue table; explicit values override.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dose-gy", type=float, metavar="D", help="absorbed dose (Gy)")
    what.add_argument(
        "--bed-gy",
        type=float,
        metavar="BED",
        help="the inverse: the absorbed dose that gives this BED (Gy) with this time course",
    )
    p.add_argument(
        "--t-eff-h", type=float, required=True, metavar="T", help="effective half-life (h)"
    )
    p.add_argument("--alpha-beta-gy", type=float, default=None, metavar="AB")
    p.add_argument("--t-repair-h", type=float, default=None, metavar="TR")
    p.add_argument(
        "--t-uptake-h",
        type=float,
        default=None,
        metavar="TU",
        help="uptake half-time (h); default instantaneous uptake",
    )
    p.add_argument("--tissue", default=None, metavar="NAME", help="e.g. kidney, red-marrow")
    p.add_argument(
        "--tissue-table",
        default=None,
        metavar="PATH",
        help="user-edited copy of resources/radiobiology/tissue_parameters.json",
    )
    p.set_defaults(func=cmd_bed)
