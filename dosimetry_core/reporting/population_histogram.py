"""One organ's population range as a histogram, with the patient placed in it.

:func:`~dosimetry_core.reporting.population.population_ranges` gives, per organ,
the other patients' absorbed dose per administered activity (Gy/GBq) and this
patient's value and percentile rank.  :func:`organ_histogram` turns one organ of
that record into what a plot draws: bin edges (Gy/GBq), counts per bin, the
patient's value and percentile, and whether the population is large enough to be
shown as a distribution at all.

Bins
----
numpy's ``"auto"`` rule: the larger number of bins of Sturges' rule
(``ceil(log2 n) + 1``; H. A. Sturges, "The choice of a class interval",
J. Am. Stat. Assoc. 21 (1926) 65-66) and of the Freedman-Diaconis rule (bin
width ``2 IQR n^(-1/3)``; D. Freedman, P. Diaconis, "On the histogram as a
density estimator: L2 theory", Z. Wahrscheinlichkeitstheorie verw. Gebiete 57
(1981) 453-476), see ``numpy.histogram_bin_edges``.

Too small a population
----------------------
Below :data:`MIN_POPULATION` values a histogram suggests a distribution that
is not there: ``enough`` is False and ``message`` says how many patients there
are (and how many of them come from signed reports) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError

__all__ = ["MIN_POPULATION", "PopulationHistogram", "organ_histogram"]

MIN_POPULATION = 5
"""Fewest other patients' values for which a histogram is drawn."""


@dataclass(frozen=True)
class PopulationHistogram:
    """One organ's population histogram (Gy/GBq) and the patient's place in it."""

    organ_id: str
    label: str
    protocol: str
    edges_gy_per_gbq: tuple[float, ...]
    """Bin edges, ``len(counts) + 1`` of them (empty when not ``enough``)."""
    counts: tuple[int, ...]
    """Patients per bin."""
    value_gy_per_gbq: float | None
    """This patient's value (None: the case has no protocol run value for the organ)."""
    percentile: float | None
    """Mean percentile rank (%) of the value among the population (population module)."""
    n: int
    n_signed: int
    n_unsigned: int
    enough: bool
    """At least :data:`MIN_POPULATION` values: the histogram may be drawn."""
    message: str
    """One line for the user: the population, or why no histogram is drawn."""
    unit: str = "Gy/GBq"

    def to_dict(self) -> dict[str, Any]:
        return {
            "organ_id": self.organ_id,
            "label": self.label,
            "protocol": self.protocol,
            "unit": self.unit,
            "edges_gy_per_gbq": list(self.edges_gy_per_gbq),
            "counts": list(self.counts),
            "value_gy_per_gbq": self.value_gy_per_gbq,
            "percentile": self.percentile,
            "n": self.n,
            "n_signed": self.n_signed,
            "n_unsigned": self.n_unsigned,
            "enough": self.enough,
            "message": self.message,
        }


def organ_histogram(
    ranges: dict[str, Any], organ_id: str, *, min_n: int = MIN_POPULATION
) -> PopulationHistogram:
    """The histogram of one organ of a ``population_ranges`` record (module docstring).

    Parameters
    ----------
    ranges
        The record of :func:`dosimetry_core.reporting.population.population_ranges`.
    organ_id
        One key of ``ranges["organs"]``.
    min_n
        Fewest population values for a histogram (default :data:`MIN_POPULATION`).

    Returns
    -------
    PopulationHistogram

    Raises
    ------
    InvalidInputError
        If the organ is not in the record.
    """
    organs = ranges.get("organs") or {}
    if organ_id not in organs:
        known = ", ".join(sorted(organs)) or "none"
        raise InvalidInputError(f"organ {organ_id!r} has no population range (organs: {known})")
    o = organs[organ_id]
    xs = np.array([float(r["value_gy_per_gbq"]) for r in o.get("population", [])], dtype=float)
    xs = xs[np.isfinite(xs)]
    n = int(xs.size)
    n_signed, n_unsigned = int(o.get("n_signed", 0)), int(o.get("n_unsigned", 0))
    label = str(o.get("label") or organ_id)
    protocol = str(ranges.get("protocol") or "")
    v = o.get("value_gy_per_gbq")
    value = None if v is None else float(v)
    pct = o.get("percentile")
    percentile = None if pct is None else float(pct)
    who = f"{n} other patient(s) of {protocol or 'this protocol'} ({n_signed} from signed reports)"
    enough = n >= min_n
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    if enough:
        c, e = np.histogram(xs, bins="auto")
        edges = tuple(float(x) for x in e)
        counts = tuple(int(x) for x in c)
        message = f"{label}: {who}"
        if value is None:
            message += "; this case has no Gy/GBq value for this organ (no protocol run)"
    else:
        message = (
            f"{label}: population too small for a histogram: {who}; at least {min_n} are needed"
        )
    return PopulationHistogram(
        organ_id=organ_id,
        label=label,
        protocol=protocol,
        edges_gy_per_gbq=edges,
        counts=counts,
        value_gy_per_gbq=value,
        percentile=percentile,
        n=n,
        n_signed=n_signed,
        n_unsigned=n_unsigned,
        enough=enough,
        message=message,
    )
