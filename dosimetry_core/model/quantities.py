"""Units a user may type a quantity in, and their factors to the stored unit.

The records keep one unit per quantity (:mod:`dosimetry_core.model.units`):
activity in MBq, dose rate in uSv/h.  A form may let the user type in another
common unit; the conversion to the stored unit happens here, once, so no view
rescales by hand (STYLE 6).  ``1 Ci = 3.7e10 Bq`` exactly (definition of the
curie), hence ``1 mCi = 37 MBq``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ACTIVITY",
    "DOSE_RATE",
    "Quantity",
    "from_stored",
    "to_stored",
]


@dataclass(frozen=True)
class Quantity:
    """A kind of quantity: its stored unit and the units a user may enter it in.

    Attributes
    ----------
    name
        What it is ("activity").
    stored_unit
        The unit of the records (factor 1).
    factors
        Unit -> factor that converts a value in that unit to ``stored_unit``
        (value_stored = value * factor).  The first entry is the stored unit.
    """

    name: str
    stored_unit: str
    factors: tuple[tuple[str, float], ...]

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(u for u, _ in self.factors)

    def factor(self, unit: str) -> float:
        for u, f in self.factors:
            if u == unit:
                return f
        raise KeyError(f"{self.name} has no unit {unit!r} (units: {', '.join(self.units)})")


ACTIVITY = Quantity(
    "activity",
    "MBq",
    (("MBq", 1.0), ("GBq", 1000.0), ("kBq", 1e-3), ("mCi", 37.0), ("Ci", 37000.0)),
)
"""Activity, stored in MBq (1 mCi = 37 MBq by the definition of the curie)."""

DOSE_RATE = Quantity("dose rate", "uSv/h", (("uSv/h", 1.0), ("mSv/h", 1000.0)))
"""Ambient dose-equivalent rate, stored in uSv/h."""


def to_stored(quantity: Quantity, value: float, unit: str) -> float:
    """``value`` given in ``unit`` expressed in the quantity's stored unit (NaN stays NaN)."""
    if not math.isfinite(value):
        return value
    return value * quantity.factor(unit)


def from_stored(quantity: Quantity, value_stored: float, unit: str) -> float:
    """A value in the stored unit expressed in ``unit`` (inverse of :func:`to_stored`)."""
    if not math.isfinite(value_stored):
        return value_stored
    return value_stored / quantity.factor(unit)
