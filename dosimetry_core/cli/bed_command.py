"""``mrtdose bed``: BED and EQD2 of one absorbed dose delivered by a radionuclide.

JSON (public contract): ``bed_gy``, ``eqd2_gy``, ``dose_gy``, ``t_eff_h``,
``alpha_beta_gy``, ``t_repair_h``, ``t_uptake_h`` (or null),
``relative_effectiveness``, ``source`` (of the tissue parameters, or null when
alpha/beta and T_repair were both given); in addition ``tissue``, ``g_factor``,
``model``, ``verification``.
"""

from __future__ import annotations

import argparse
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.limits import MIB, read_bytes_limited

TISSUE_TABLE_MAX_BYTES = 4 * MIB
"""Largest tissue parameter table read (the shipped one is a few kB)."""


RANGES: dict[str, tuple[float, float, str]] = {
    "dose_gy": (0.0, 10_000.0, "Gy"),
    "t_eff_h": (0.001, 10_000.0, "h"),
    "alpha_beta_gy": (0.1, 1000.0, "Gy"),
    "t_repair_h": (0.001, 10_000.0, "h"),
    "t_uptake_h": (0.001, 10_000.0, "h"),
}
"""Plausible ranges of the positive inputs; beyond them the G factor over- or underflows.
Zero, negative and non-finite values are left to :func:`compute_bed`'s own refusals."""


def _check_ranges(values: dict[str, float | None]) -> None:
    for name, v in values.items():
        lo, hi, unit = RANGES[name]
        if v is not None and v > 0 and v != float("inf") and not lo <= v <= hi:
            raise InvalidInputError(
                f"--{name.replace('_', '-')} {v:g} {unit} is outside the plausible "
                f"{lo:g}-{hi:g} {unit}",
                field=name,
            )


def cmd_bed(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit
    from dosimetry_core.radiobiology.bed import compute_bed
    from dosimetry_core.radiobiology.tissues import tissue_parameters

    ab, tr = args.alpha_beta_gy, args.t_repair_h
    source = verification = tissue = None
    if args.tissue_table is not None:
        # a bounded look first: the table reader would read /dev/zero until memory runs out
        read_bytes_limited(args.tissue_table, TISSUE_TABLE_MAX_BYTES, "tissue_table")
    if args.tissue is not None:
        tp = tissue_parameters(args.tissue, path=args.tissue_table)
        tissue = tp.name
        notes = []
        if ab is None:
            ab = tp.alpha_beta_gy
        else:
            notes.append(f"alpha/beta {ab:g} Gy given by the user")
        if tr is None:
            tr = tp.t_repair_h
        else:
            notes.append(f"T_repair {tr:g} h given by the user")
        if len(notes) < 2:
            source = tp.source + ("" if not notes else f" ({'; '.join(notes)})")
            verification = tp.verification
    if ab is None or tr is None:
        missing = [n for n, v in (("--alpha-beta-gy", ab), ("--t-repair-h", tr)) if v is None]
        raise InvalidInputError(f"give {' and '.join(missing)} or --tissue NAME")
    _check_ranges(
        {
            "dose_gy": args.dose_gy,
            "t_eff_h": args.t_eff_h,
            "alpha_beta_gy": ab,
            "t_repair_h": tr,
            "t_uptake_h": args.t_uptake_h,
        }
    )
    res = compute_bed(args.dose_gy, args.t_eff_h, ab, tr, args.t_uptake_h)
    data: dict[str, Any] = {
        "bed_gy": res.bed_gy,
        "eqd2_gy": res.eqd2_gy,
        "dose_gy": res.dose_gy,
        "t_eff_h": res.t_eff_h,
        "alpha_beta_gy": res.alpha_beta_gy,
        "t_repair_h": res.t_repair_h,
        "t_uptake_h": res.t_uptake_h,
        "relative_effectiveness": res.relative_effectiveness,
        "source": source,
        "tissue": tissue,
        "g_factor": res.g_factor,
        "model": res.model,
        "verification": verification,
    }
    uptake = "instantaneous" if res.t_uptake_h is None else f"T_uptake {res.t_uptake_h:g} h"
    lines = [
        f"BED  {res.bed_gy:.3f} Gy    EQD2 {res.eqd2_gy:.3f} Gy    "
        f"(RE {res.relative_effectiveness:.4f}, G {res.g_factor:.4f})",
        f"dose {res.dose_gy:g} Gy, T_eff {res.t_eff_h:g} h, uptake {uptake}, "
        f"alpha/beta {res.alpha_beta_gy:g} Gy, T_repair {res.t_repair_h:g} h "
        f"[{res.model}]",
    ]
    if tissue is not None:
        lines.append(f"tissue {tissue}: {source or 'both parameters given by the user'}")
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
    p.add_argument("--dose-gy", type=float, required=True, metavar="D", help="absorbed dose (Gy)")
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
