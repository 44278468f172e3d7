"""BED/EQD2 calculator of one absorbed dose: tissue parameters, user overrides, plausible ranges.

What ``mrtdose bed`` computes, as a pure function with a typed result, so that a
form (the workstation's calculators) and the command line refuse and compute
exactly the same: alpha/beta and the repair half-time come from the tissue
table (:mod:`dosimetry_core.radiobiology.tissues`) unless given, explicit values
override the table, every positive input must lie in a plausible range
(:data:`RANGES`), then :func:`~dosimetry_core.radiobiology.bed.compute_bed`
(Lea-Catcheside BED, Dale 1985 Br J Radiol 58:515; Dale 1996 Phys Med Biol
41:1871; EQD2 by Withers et al. 1983 Radiother Oncol 1:187).

:func:`dose_for_bed_calculation` is the inverse: the absorbed dose that gives a
BED with the same time course (:func:`~dosimetry_core.radiobiology.bed.dose_for_bed`,
exact positive root of the LQ quadratic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.radiobiology.bed import compute_bed, dose_for_bed

__all__ = [
    "RANGES",
    "BedCalculation",
    "bed_calculation",
    "check_bed_ranges",
    "dose_for_bed_calculation",
    "resolve_tissue",
]

RANGES: dict[str, tuple[float, float, str]] = {
    "dose_gy": (0.0, 10_000.0, "Gy"),
    "t_eff_h": (0.001, 10_000.0, "h"),
    "alpha_beta_gy": (0.1, 1000.0, "Gy"),
    "t_repair_h": (0.001, 10_000.0, "h"),
    "t_uptake_h": (0.001, 10_000.0, "h"),
    "bed_gy": (0.0, 100_000.0, "Gy"),
}
"""Plausible ranges (low, high, unit) of the positive inputs; beyond them the G factor
over- or underflows.  The first five are those of ``mrtdose bed``
(:data:`dosimetry_core.cli.bed_command.RANGES`); zero, negative and non-finite
values are left to :func:`compute_bed`'s own refusals."""


def check_bed_ranges(values: dict[str, float | None]) -> None:
    """Refuse a positive finite value outside :data:`RANGES` (``field`` names it)."""
    for name, v in values.items():
        lo, hi, unit = RANGES[name]
        if v is not None and v > 0 and v != math.inf and not lo <= v <= hi:
            raise InvalidInputError(
                f"{name} {v:g} {unit} is outside the plausible {lo:g}-{hi:g} {unit}",
                field=name,
            )


@dataclass(frozen=True)
class BedCalculation:
    """BED and EQD2 of one dose, with the parameters used and where they came from.

    ``to_dict`` has the keys of ``mrtdose bed --json`` (its public contract).
    """

    bed_gy: float
    eqd2_gy: float
    dose_gy: float
    t_eff_h: float
    alpha_beta_gy: float
    t_repair_h: float
    t_uptake_h: float | None
    relative_effectiveness: float
    source: str | None
    tissue: str | None
    g_factor: float
    model: str
    verification: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_tissue(
    tissue: str | None,
    alpha_beta_gy: float | None,
    t_repair_h: float | None,
    tissue_table: str | Path | None = None,
) -> tuple[float, float, str | None, str | None, str | None]:
    """alpha/beta (Gy), T_repair (h), tissue id, source and verification.

    Explicit values override the tissue table's; the source is None when both
    were given by the user.  Raises InvalidInputError when a value is missing
    and no tissue is named, or the tissue is unknown.
    """
    from dosimetry_core.radiobiology.tissues import tissue_parameters

    ab, tr = alpha_beta_gy, t_repair_h
    source = verification = name = None
    if tissue:
        tp = tissue_parameters(tissue, path=tissue_table)
        name = tp.name
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
        missing = [n for n, v in (("alpha_beta_gy", ab), ("t_repair_h", tr)) if v is None]
        raise InvalidInputError(
            f"give {' and '.join(missing)} or a tissue", field=missing[0] if missing else None
        )
    return ab, tr, name, source, verification


def bed_calculation(
    dose_gy: float,
    t_eff_h: float,
    *,
    tissue: str | None = None,
    alpha_beta_gy: float | None = None,
    t_repair_h: float | None = None,
    t_uptake_h: float | None = None,
    tissue_table: str | Path | None = None,
) -> BedCalculation:
    """BED and EQD2 (Gy) of ``dose_gy`` delivered with effective half-life ``t_eff_h`` (h).

    Parameters as ``mrtdose bed``: ``tissue`` (e.g. ``"kidney"``) supplies
    alpha/beta (Gy) and the repair half-time (h) unless given; ``t_uptake_h``
    None is instantaneous uptake (mono-exponential), else uptake and washout.
    """
    ab, tr, name, source, verification = resolve_tissue(
        tissue, alpha_beta_gy, t_repair_h, tissue_table
    )
    check_bed_ranges(
        {
            "dose_gy": dose_gy,
            "t_eff_h": t_eff_h,
            "alpha_beta_gy": ab,
            "t_repair_h": tr,
            "t_uptake_h": t_uptake_h,
        }
    )
    res = compute_bed(dose_gy, t_eff_h, ab, tr, t_uptake_h)
    assert res.t_eff_h is not None
    return BedCalculation(
        bed_gy=res.bed_gy,
        eqd2_gy=res.eqd2_gy,
        dose_gy=res.dose_gy,
        t_eff_h=res.t_eff_h,
        alpha_beta_gy=res.alpha_beta_gy,
        t_repair_h=res.t_repair_h,
        t_uptake_h=res.t_uptake_h,
        relative_effectiveness=res.relative_effectiveness,
        source=source,
        tissue=name,
        g_factor=res.g_factor,
        model=res.model,
        verification=verification,
    )


def dose_for_bed_calculation(
    bed_gy: float,
    t_eff_h: float,
    *,
    tissue: str | None = None,
    alpha_beta_gy: float | None = None,
    t_repair_h: float | None = None,
    t_uptake_h: float | None = None,
    tissue_table: str | Path | None = None,
) -> BedCalculation:
    """The absorbed dose (Gy) giving ``bed_gy`` with this time course, as a BedCalculation.

    ``D = 2 BED / (1 + sqrt(1 + 4 G BED / (alpha/beta)))`` (Dale 1985), then the
    BED of that dose is recomputed forward (it equals ``bed_gy`` to round-off).
    """
    ab, tr, _, _, _ = resolve_tissue(tissue, alpha_beta_gy, t_repair_h, tissue_table)
    check_bed_ranges(
        {
            "bed_gy": bed_gy,
            "t_eff_h": t_eff_h,
            "alpha_beta_gy": ab,
            "t_repair_h": tr,
            "t_uptake_h": t_uptake_h,
        }
    )
    dose = float(dose_for_bed(bed_gy, t_eff_h, ab, tr, t_uptake_h))
    return bed_calculation(
        dose,
        t_eff_h,
        tissue=tissue,
        alpha_beta_gy=alpha_beta_gy,
        t_repair_h=t_repair_h,
        t_uptake_h=t_uptake_h,
        tissue_table=tissue_table,
    )
