"""Population effective half-lives per radiopharmaceutical and organ (user-editable table).

The table is ``resources/kinetics/population_effective_half_lives.json``
(``format: mrtdose-population-teff/1``).  Each entry has ``radiopharmaceutical``,
``organ``, ``nuclide``, ``t_eff_h`` (h), ``t_eff_sd_h`` (population SD, h, may be
null), ``statistic`` (``mean`` or ``median`` of the patients' values, as published),
``units`` (``h``), ``n_patients`` and ``source`` (the publication, with the table or
paragraph the number was read from).  The shipped values and the ones that could
not be verified are listed in the file's ``status``; a lookup that finds nothing
says so and names the file to edit.  Another table can be passed as ``path``.

Checks on load (physical bounds): ``0 < t_eff_h <= T_phys`` of the entry's nuclide
(an effective half-life, 1/T_eff = 1/T_phys + 1/T_bio, cannot exceed the physical
half-life; ICRP 107 half-lives via :func:`dosimetry_core.physics.nuclides.half_life_h`),
a non-negative SD, units ``h``, a source.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.physics.nuclides import half_life_h
from dosimetry_core.resources import resource_path

DEFAULT_TABLE = resource_path("kinetics", "population_effective_half_lives.json")

STATISTICS = ("mean", "median")
"""What ``t_eff_h`` of an entry is over the patients of its source."""


@dataclass(frozen=True)
class PopulationTeff:
    """One table entry: population T_eff (h) with its SD and source."""

    radiopharmaceutical: str
    organ: str
    nuclide: str
    t_eff_h: float
    t_eff_sd_h: float | None
    n_patients: int | None
    source: str
    note: str = ""
    statistic: str = "mean"
    """``mean`` or ``median`` of the patients' effective half-lives (as published)."""
    units: str = "h"

    def to_dict(self) -> dict[str, Any]:
        return {
            "radiopharmaceutical": self.radiopharmaceutical,
            "organ": self.organ,
            "nuclide": self.nuclide,
            "t_eff_h": self.t_eff_h,
            "t_eff_sd_h": self.t_eff_sd_h,
            "n_patients": self.n_patients,
            "source": self.source,
            "note": self.note,
            "statistic": self.statistic,
            "units": self.units,
        }


def _key(s: str) -> str:
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def load_table(path: str | Path | None = None) -> list[PopulationTeff]:
    """Read and check the table; bad entries raise :class:`InvalidInputError`."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(f"population half-life table not found: {p}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{p}: not valid JSON ({exc})") from exc
    out = []
    for i, e in enumerate(data.get("entries", [])):
        try:
            t = float(e["t_eff_h"])
            sd = None if e.get("t_eff_sd_h") is None else float(e["t_eff_sd_h"])
            src = str(e["source"]).strip()
            rp, organ = str(e["radiopharmaceutical"]), str(e["organ"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"{p}: entry {i} is incomplete ({exc})") from exc
        if not (math.isfinite(t) and t > 0) or (sd is not None and not sd >= 0):
            raise InvalidInputError(f"{p}: entry {i} has an impossible half-life or SD")
        if not src:
            raise InvalidInputError(f"{p}: entry {i} has no source")
        units = str(e.get("units", "h")).strip()
        statistic = str(e.get("statistic", "mean")).strip().lower()
        if units != "h":
            raise InvalidInputError(f"{p}: entry {i} has units {units!r}; the table is in h")
        if statistic not in STATISTICS:
            raise InvalidInputError(
                f"{p}: entry {i} has statistic {statistic!r}; one of {', '.join(STATISTICS)}"
            )
        nuclide = str(e.get("nuclide", ""))
        if nuclide:
            try:
                t_phys = half_life_h(nuclide)
            except (DosimetryError, KeyError, ValueError) as exc:
                raise InvalidInputError(
                    f"{p}: entry {i} has an unknown nuclide {nuclide!r}"
                ) from exc
            if t > t_phys * (1 + 1e-9):
                raise InvalidInputError(
                    f"{p}: entry {i} ({organ}, {rp}): T_eff {t:g} h exceeds the physical "
                    f"half-life of {nuclide} ({t_phys:.4g} h)"
                )
        n = e.get("n_patients")
        out.append(
            PopulationTeff(
                radiopharmaceutical=rp,
                organ=organ,
                nuclide=nuclide,
                t_eff_h=t,
                t_eff_sd_h=sd,
                n_patients=None if n is None else int(n),
                source=src,
                note=str(e.get("note", "")),
                statistic=statistic,
                units=units,
            )
        )
    return out


def lookup(
    organ: str, radiopharmaceutical: str, *, path: str | Path | None = None
) -> PopulationTeff:
    """The entry for an organ and radiopharmaceutical (case and punctuation ignored).

    Raises
    ------
    InvalidInputError
        When the table has no such entry (the message names the table).
    """
    table = load_table(path)
    for e in table:
        if _key(e.organ) == _key(organ) and _key(e.radiopharmaceutical) == _key(
            radiopharmaceutical
        ):
            return e
    where = Path(path) if path is not None else DEFAULT_TABLE
    raise InvalidInputError(
        f"no population effective half-life for {organ} / {radiopharmaceutical} in {where} "
        "(add a published value to the table, or give --t-eff-h)"
    )
