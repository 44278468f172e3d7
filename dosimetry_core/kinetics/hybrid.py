"""Hybrid planar/SPECT kinetics: a planar (whole-body) count sequence scaled by one SPECT.

The shape of the time-activity curve comes from the planar (conjugate-view or
whole-body) VOI counts at several times; its scale from one quantitative SPECT
of the same VOI (MIRD Pamphlet 26, Ljungberg et al. 2016; EANM Lu-177
recommendations, Sjögreen Gleisner et al. 2022; PHYSICS.md section 2)::

    A(t_i) = C(t_i) * A_SPECT(t_s) / C(t_s)

``C`` are planar counts (or count rates; any consistent unit, e.g. geometric
mean of anterior/posterior counts, background corrected), ``A_SPECT(t_s)`` the
SPECT activity (MBq at the SPECT time, not decay corrected).  When the SPECT
time coincides with a planar time (within ``tolerance_h``) that planar value
is used for ``C(t_s)``; otherwise ``C(t_s)`` is interpolated between the two
neighbouring planar times log-linearly (mono-exponential between points, the
natural shape of decaying activity; linear when a value is not positive).  A
SPECT outside the planar time range is refused (no extrapolation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError


@dataclass
class HybridTac:
    """The planar sequence scaled to activity by one SPECT.

    Attributes
    ----------
    time_h
        Planar times (h after administration), sorted.
    activity_mbq
        Scaled activities at those times (MBq, not decay corrected).
    planar_counts
        The planar values used (same order).
    scale_mbq_per_count
        ``A_SPECT(t_s) / C(t_s)``.
    spect_time_h, spect_activity_mbq
        The SPECT used for the scale.
    planar_at_spect
        ``C(t_s)``; ``interpolated`` says whether it was interpolated.
    notes
        One line per choice made.
    """

    time_h: list[float]
    activity_mbq: list[float]
    planar_counts: list[float]
    scale_mbq_per_count: float
    spect_time_h: float
    spect_activity_mbq: float
    planar_at_spect: float
    interpolated: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_h": list(self.time_h),
            "activity_mbq": list(self.activity_mbq),
            "planar_counts": list(self.planar_counts),
            "scale_mbq_per_count": self.scale_mbq_per_count,
            "spect_time_h": self.spect_time_h,
            "spect_activity_mbq": self.spect_activity_mbq,
            "planar_at_spect": self.planar_at_spect,
            "interpolated": self.interpolated,
            "notes": list(self.notes),
            "method": "hybrid planar x SPECT (MIRD Pamphlet 26; Sjogreen Gleisner et al. 2022)",
        }


def planar_at(time_h: Sequence[float], counts: Sequence[float], at_h: float) -> float:
    """Planar value at ``at_h``: log-linear interpolation between neighbours.

    Raises
    ------
    InvalidInputError
        ``at_h`` outside the planar time range.
    """
    t = np.asarray(time_h, dtype=float)
    c = np.asarray(counts, dtype=float)
    if at_h < t[0] or at_h > t[-1]:
        raise InvalidInputError(
            f"the SPECT at {at_h:g} h is outside the planar times {t[0]:g}-{t[-1]:g} h: "
            "no extrapolation"
        )
    j = int(np.searchsorted(t, at_h, side="right"))
    j = min(max(j, 1), t.size - 1)
    t0, t1, c0, c1 = t[j - 1], t[j], c[j - 1], c[j]
    w = (at_h - t0) / (t1 - t0)
    if c0 > 0 and c1 > 0:
        return float(math.exp((1 - w) * math.log(c0) + w * math.log(c1)))
    return float((1 - w) * c0 + w * c1)


def hybrid_tac(
    planar_time_h: Sequence[float],
    planar_counts: Sequence[float],
    *,
    spect_time_h: float,
    spect_activity_mbq: float,
    tolerance_h: float = 0.5,
) -> HybridTac:
    """Scale a planar VOI count sequence to activity with one quantitative SPECT.

    Parameters
    ----------
    planar_time_h
        Planar acquisition times (h after administration); at least 2.
    planar_counts
        VOI counts (or count rates) at those times, >= 0, consistent corrections.
    spect_time_h
        SPECT acquisition time (h after administration).
    spect_activity_mbq
        VOI activity from the SPECT (MBq at ``spect_time_h``), > 0.
    tolerance_h
        A planar time within this of the SPECT time is taken as simultaneous.

    Returns
    -------
    HybridTac

    Raises
    ------
    InvalidInputError
        Fewer than 2 planar points, mismatched lengths, negative or non-finite
        values, repeated times, times before the administration, a SPECT
        outside the planar range, or zero planar counts at the SPECT time.
    """
    t = np.asarray(planar_time_h, dtype=float)
    c = np.asarray(planar_counts, dtype=float)
    if t.ndim != 1 or t.size < 2 or c.shape != t.shape:
        raise InvalidInputError("hybrid: give at least 2 planar times and one count per time")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(c))):
        raise InvalidInputError("hybrid: planar times and counts must be finite numbers")
    if np.any(t < 0) or spect_time_h < 0:
        raise InvalidInputError("hybrid: a time is before the administration")
    if np.any(c < 0):
        raise InvalidInputError("hybrid: planar counts must be >= 0 (background subtracted)")
    if not (math.isfinite(spect_activity_mbq) and spect_activity_mbq > 0):
        raise InvalidInputError(
            f"hybrid: SPECT activity must be positive (got {spect_activity_mbq!r})"
        )
    order = np.argsort(t, kind="stable")
    t, c = t[order], c[order]
    if np.any(np.diff(t) <= 0):
        raise InvalidInputError("hybrid: two planar acquisitions at the same time")
    notes: list[str] = []
    near = int(np.argmin(np.abs(t - spect_time_h)))
    if abs(t[near] - spect_time_h) <= tolerance_h:
        c_s = float(c[near])
        interpolated = False
        notes.append(f"SPECT at {spect_time_h:g} h paired with the planar image at {t[near]:g} h")
    else:
        c_s = planar_at(t.tolist(), c.tolist(), spect_time_h)
        interpolated = True
        notes.append(
            f"planar counts interpolated log-linearly to the SPECT time {spect_time_h:g} h"
        )
    if c_s <= 0:
        raise InvalidInputError("hybrid: the planar counts at the SPECT time are zero")
    scale = spect_activity_mbq / c_s
    return HybridTac(
        time_h=t.tolist(),
        activity_mbq=(c * scale).tolist(),
        planar_counts=c.tolist(),
        scale_mbq_per_count=scale,
        spect_time_h=float(spect_time_h),
        spect_activity_mbq=float(spect_activity_mbq),
        planar_at_spect=c_s,
        interpolated=interpolated,
        notes=notes,
    )
