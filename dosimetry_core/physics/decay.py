"""Radioactive decay corrections.

``A(t) = A(t_ref) * exp(-lambda (t - t_ref))`` with ``lambda = ln 2 / T_half``
(any textbook; e.g. Cherry, Sorenson & Phelps, Physics in Nuclear Medicine, ch. 4).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from dosimetry_core.model import Administration
from dosimetry_core.physics.nuclides import half_life_h


def decay_factor(nuclide: str, elapsed_h: float) -> float:
    """Fraction of activity remaining after ``elapsed_h`` hours (negative: before)."""
    return float(np.exp(-np.log(2.0) * elapsed_h / half_life_h(nuclide)))


def hours_between(start: datetime, end: datetime) -> float:
    """Elapsed time ``end - start`` in hours."""
    return (end - start).total_seconds() / 3600.0


def decay_activity_mbq(activity_mbq: float, nuclide: str, at: datetime, to: datetime) -> float:
    """Activity known at time ``at`` expressed at time ``to`` (either direction)."""
    return activity_mbq * decay_factor(nuclide, hours_between(at, to))


def net_administered_activity_mbq(adm: Administration) -> float:
    """Administered activity minus the residual, both decay-corrected to ``adm.time`` (MBq)."""
    if adm.residual_activity_mbq and adm.residual_time is not None:
        residual = decay_activity_mbq(
            adm.residual_activity_mbq, adm.nuclide, adm.residual_time, adm.time
        )
    else:
        residual = adm.residual_activity_mbq
    return adm.activity_mbq - residual


def cumulated_activity_fully_decayed_mbq_h(activity_mbq: float, nuclide: str) -> float:
    """TIA of activity left in place to decay: ``A0 * T_half / ln 2`` in MBq*h."""
    return activity_mbq * half_life_h(nuclide) / np.log(2.0)
