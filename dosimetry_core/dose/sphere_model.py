"""Sphere model for lesions: absorbed fractions of unit-density spheres, per nuclide.

Absorbed fractions for a uniform source in a sphere of radius ``R`` in an
infinite medium of the same composition are computed from our own radial point
kernels (electrons: :func:`dosimetry_core.dose.electron_transport.electron_point_kernel`;
photons: :func:`dosimetry_core.dose.monte_carlo.photon_point_kernel`) with the
exact distance distribution inside a sphere
(:func:`dosimetry_core.dose.point_kernels.sphere_absorbed_fraction`).  This is
the construction behind the OLINDA/EXM sphere model (Stabin & Konijnenberg,
J Nucl Med 2000;41:149-160), done here with our transport for any nuclide of
ICRP-107.  Alphas and recoils are absorbed (AF = 1).  Medium: soft tissue at
1.0 g/cm^3 unless told otherwise ("unit-density spheres").

The table (radii 1-100 mm, log-spaced) is cached on disk next to the kernels
(:func:`dosimetry_core.dose.kernels.cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError

SPHERE_CODE_VERSION = "1"
DEFAULT_RADII_MM = np.geomspace(1.0, 100.0, 41)


@dataclass(frozen=True)
class SphereAbsorbedFractions:
    """Absorbed-fraction table of one nuclide (chain) in unit-density spheres."""

    nuclide: str
    medium: str
    density_g_cm3: float
    radius_mm: NDArray[np.float64]
    electron_af: NDArray[np.float64]
    """Energy-weighted over the chain's electron emissions."""
    photon_af: NDArray[np.float64]
    electron_mev: float
    photon_mev: float

    def electron(self, radius_mm: float) -> float:
        """Electron AF at ``radius_mm`` (log-radius interpolation; clamped at the ends)."""
        return self._interp(self.electron_af, radius_mm)

    def photon(self, radius_mm: float) -> float:
        """Photon AF at ``radius_mm``; below the table it scales with the radius (AF ~ mu R)."""
        r0 = float(self.radius_mm[0])
        if radius_mm < r0:
            return float(self.photon_af[0]) * radius_mm / r0
        return self._interp(self.photon_af, radius_mm)

    def _interp(self, values: NDArray[np.float64], radius_mm: float) -> float:
        if not radius_mm > 0:
            raise InvalidInputError(f"sphere radius must be positive, got {radius_mm!r} mm")
        x = np.log(self.radius_mm)
        return float(np.interp(np.log(radius_mm), x, values))

    def callables(self) -> tuple[Callable[[float], float], Callable[[float], float]]:
        """``(electron_af, photon_af)`` as used by ``organ_level.sphere_model_dose``."""
        return self.electron, self.photon


def sphere_absorbed_fractions(
    nuclide: str,
    *,
    medium: str = "soft-tissue",
    density_g_cm3: float = 1.0,
    radii_mm: NDArray[np.float64] | None = None,
    include_progeny: bool = True,
    electron_histories: int = 200_000,
    photon_histories: int = 1_000_000,
    seed: int = 0,
    use_cache: bool = True,
) -> SphereAbsorbedFractions:
    """The absorbed-fraction table of ``nuclide`` (module docstring)."""
    from dosimetry_core.dose.electron_transport import electron_point_kernel
    from dosimetry_core.dose.kernels import cache_dir
    from dosimetry_core.dose.monte_carlo import photon_point_kernel
    from dosimetry_core.dose.point_kernels import sphere_absorbed_fraction
    from dosimetry_core.physics.materials import normalize_medium
    from dosimetry_core.physics.nuclides import (
        chain_photon_lines,
        decay_chain,
        energy_per_decay,
        normalize_nuclide,
    )

    nuc = normalize_nuclide(nuclide)
    med = normalize_medium(medium)
    radii = np.asarray(DEFAULT_RADII_MM if radii_mm is None else radii_mm, dtype=float)
    if radii.ndim != 1 or radii.size < 2 or np.any(radii <= 0) or np.any(np.diff(radii) <= 0):
        raise InvalidInputError("sphere radii must be positive and increasing (mm)")
    key_data = {
        "nuclide": nuc,
        "medium": med,
        "density": density_g_cm3,
        "radii": [round(float(r), 6) for r in radii],
        "progeny": include_progeny,
        "eh": electron_histories,
        "ph": photon_histories,
        "seed": seed,
        "code": SPHERE_CODE_VERSION,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / f"sphere_{nuc}_{key}.npz"
    if use_cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return SphereAbsorbedFractions(
                    nuc,
                    med,
                    density_g_cm3,
                    np.asarray(z["radius_mm"]),
                    np.asarray(z["electron_af"]),
                    np.asarray(z["photon_af"]),
                    float(z["electron_mev"]),
                    float(z["photon_mev"]),
                )
        except (OSError, ValueError, KeyError):
            pass
    e_af = np.zeros_like(radii)
    e_total = 0.0
    for m in decay_chain(nuc, include_progeny=include_progeny):
        e = energy_per_decay(m.nuclide).electron_mev * m.decays_per_parent_decay
        if e <= 0:
            continue
        pk = electron_point_kernel(
            m.nuclide,
            med,
            density_g_cm3=density_g_cm3,
            histories=electron_histories,
            seed=seed,
        )
        e_af += e * np.asarray(sphere_absorbed_fraction(pk, radii), dtype=float)
        e_total += e
    if e_total > 0:
        e_af /= e_total
    energies, yields = chain_photon_lines(nuc, include_progeny=include_progeny)
    keep = yields > 0
    p_af = np.zeros_like(radii)
    p_total = float(np.sum(energies[keep] * yields[keep])) if np.any(keep) else 0.0
    if p_total > 0:
        r_max = float(radii[-1]) * 2.0
        edges = np.concatenate([np.arange(0.0, 10.0, 0.1), np.arange(10.0, r_max + 1e-9, 0.5)])
        pk = photon_point_kernel(
            (energies[keep], yields[keep]),
            med,
            r_edges_mm=edges,
            histories=photon_histories,
            seed=seed,
            density_g_cm3=density_g_cm3,
        )
        p_af = np.asarray(sphere_absorbed_fraction(pk, radii), dtype=float)
    table = SphereAbsorbedFractions(nuc, med, density_g_cm3, radii, e_af, p_af, e_total, p_total)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    radius_mm=radii,
                    electron_af=e_af,
                    photon_af=p_af,
                    electron_mev=e_total,
                    photon_mev=p_total,
                )
            os.replace(tmp, path)
        except OSError:
            pass
    return table
