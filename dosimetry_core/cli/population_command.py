"""``mrtdose population CASE [--organ ID]``: the organs' Gy/GBq against the protocol's population.

The same figures as the workstation's Exports step (population ranges tab):
:func:`~dosimetry_core.reporting.population.population_ranges` and, per organ,
:func:`~dosimetry_core.reporting.population_histogram.organ_histogram`.

JSON (``--json``): the ``population_ranges`` record (``protocol``, ``quantity``,
``unit``, ``definition``, ``organs``) plus ``case_id`` and ``histograms``
(organ id -> ``organ_histogram(...).to_dict()``: ``edges_gy_per_gbq``,
``counts``, ``value_gy_per_gbq``, ``percentile``, ``n``, ``n_signed``,
``n_unsigned``, ``enough``, ``message``).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "cmd_population"]


def cmd_population(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.reporting.population import population_ranges
    from dosimetry_core.reporting.population_histogram import organ_histogram

    store = _open_store(args)
    ranges = population_ranges(store, args.case)
    organs = [args.organ] if args.organ else sorted(ranges["organs"])
    hists = {o: organ_histogram(ranges, o) for o in organs}
    if args.organ:
        ranges = {**ranges, "organs": {args.organ: ranges["organs"][args.organ]}}
    data: dict[str, Any] = {
        "case_id": args.case,
        **ranges,
        "histograms": {o: h.to_dict() for o, h in hists.items()},
    }
    lines = [f"population of {ranges['protocol'] or '(no protocol)'} for case {args.case}"]
    if not hists:
        lines.append("no organ values (no protocol run, no population)")
    for h in hists.values():
        mine = "-" if h.value_gy_per_gbq is None else f"{h.value_gy_per_gbq:.3g} {h.unit}"
        pct = "-" if h.percentile is None else f"{h.percentile:.0f} %"
        lines.append(f"{h.label}: this patient {mine}, percentile rank {pct} of {h.n}")
        lines.append(f"  {h.message}")
        for lo, hi, c in zip(h.edges_gy_per_gbq, h.edges_gy_per_gbq[1:], h.counts, strict=False):
            lines.append(f"  {lo:.3g} - {hi:.3g} {h.unit}: {c}")
    _emit(args, data, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "population",
        parents=[common],
        help="the case's organ Gy/GBq against other patients of its protocol (histogram)",
    )
    p.add_argument("case", metavar="CASE")
    p.add_argument("--organ", default=None, metavar="ID", help="one organ id (default: all)")
    p.set_defaults(func=cmd_population)
