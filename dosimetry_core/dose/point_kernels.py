"""Radial point kernels: energy deposited around an isotropic point source.

A :class:`PointKernel` is the shared currency between the particle transport
codes (electrons in :mod:`.electron_transport`, photons in :mod:`.monte_carlo`)
and everything built from them: voxel S-value kernels for any voxel size and
sphere absorbed fractions for the lesion sphere model.

Convention: ``fraction[i]`` is the fraction of the *emitted* energy of this
component (``energy_mev`` per decay) that is absorbed in the spherical shell
``r_edges_mm[i] <= r < r_edges_mm[i+1]`` of a homogeneous, infinite medium;
``escaped_fraction`` is what is absorbed beyond the last edge or never absorbed
(bremsstrahlung, fluorescence leaving the scoring sphere).  Thus
``fraction.sum() + escaped_fraction == 1`` up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PointKernel:
    """Energy-deposition point kernel of one radiation component in one medium."""

    r_edges_mm: NDArray[np.float64]
    """Shell edges in mm, increasing, starting at 0 (length n+1)."""
    fraction: NDArray[np.float64]
    """Fraction of the emitted energy absorbed per shell (length n)."""
    energy_mev: float
    """Energy emitted per decay by this component, MeV."""
    medium: str
    density_g_cm3: float
    escaped_fraction: float = 0.0
    component: str = ""
    """``"electron"`` or ``"photon"`` (free text for other uses)."""
    description: str = ""

    def __post_init__(self) -> None:
        edges = np.asarray(self.r_edges_mm, dtype=float)
        frac = np.asarray(self.fraction, dtype=float)
        if edges.ndim != 1 or frac.ndim != 1 or edges.size != frac.size + 1:
            raise ValueError("r_edges_mm must have one more entry than fraction")
        if edges[0] != 0.0 or np.any(np.diff(edges) <= 0):
            raise ValueError("r_edges_mm must start at 0 and increase")
        object.__setattr__(self, "r_edges_mm", edges)
        object.__setattr__(self, "fraction", frac)
