"""Dose statistics and dose-volume histograms (DVH) per volume of interest.

Definitions (every voxel of the VOI is a point dose with a weight: its
volume, or its mass with ``mass_weighted=True``)
-----------------------------------------------------------------------------
* ``V(d)``: fraction of the VOI (volume, or mass) receiving a dose ``>= d``.
* ``D_x`` (x in percent): the minimum dose received by the hottest x % of the
  VOI, i.e. ``D_x = max{ d : V(d) >= x / 100 }``.  With the voxel doses sorted
  in decreasing order and their weights accumulated, ``D_x`` is the dose of the
  first voxel at which the accumulated fraction reaches ``x / 100``.  There is
  **no interpolation** between voxels: ``D_x`` is always one of the voxel doses
  (a relative tolerance of 1e-9 on the accumulated fraction absorbs rounding).
  So ``D_0`` is the maximum and ``D_100`` the minimum.  Example: 100 equal
  voxels with doses 1, 2, ..., 100 Gy give D2 = 99 Gy, D50 = 51 Gy,
  D98 = 3 Gy, V(50 Gy) = 0.51.
* ``median_gy``: ``numpy.median`` of the voxel doses (midpoint of the two
  central values for an even count); with mass weighting, the mass-weighted
  ``D_50`` defined above.
* ``sd_gy``: population standard deviation (weights normalised, no Bessel
  correction).

DVHs follow the same conventions (cumulative: ``V(d)`` at each bin edge).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.dose.convolution import _as_spacing
from dosimetry_core.dose.units import CM3_PER_MM3
from dosimetry_core.errors import InvalidInputError

_REL_TOL = 1e-9
DEFAULT_N_BINS = 1000


@dataclass(frozen=True)
class DoseStatistics:
    """Dose statistics of one VOI (definitions in the module docstring)."""

    n_voxels: int
    volume_ml: float
    mass_g: float | None
    """Mass from the density map, or None without one."""
    mean_gy: float
    median_gy: float
    min_gy: float
    max_gy: float
    sd_gy: float
    d2_gy: float
    d50_gy: float
    d98_gy: float
    v_gy: dict[float, float] = field(default_factory=dict)
    """Threshold (Gy) -> fraction of the VOI (volume, or mass if mass-weighted)
    receiving a dose >= threshold."""
    v_ml: dict[float, float] = field(default_factory=dict)
    """Threshold (Gy) -> volume (mL) receiving a dose >= threshold."""
    mass_weighted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; keys carry units (``V20Gy`` = volume >= 20 Gy)."""
        return {
            "n_voxels": self.n_voxels,
            "volume_ml": self.volume_ml,
            "mass_g": self.mass_g,
            "mass_weighted": self.mass_weighted,
            "mean_gy": self.mean_gy,
            "median_gy": self.median_gy,
            "min_gy": self.min_gy,
            "max_gy": self.max_gy,
            "sd_gy": self.sd_gy,
            "d2_gy": self.d2_gy,
            "d50_gy": self.d50_gy,
            "d98_gy": self.d98_gy,
            "v_fraction": {f"V{t:g}Gy": v for t, v in self.v_gy.items()},
            "v_ml": {f"V{t:g}Gy": v for t, v in self.v_ml.items()},
        }


@dataclass(frozen=True)
class DoseVolumeHistogram:
    """Differential and cumulative DVH of one VOI.

    ``bin_edges_gy`` has ``n + 1`` increasing edges; bin ``i`` is
    ``[edge_i, edge_{i+1})`` and the last edge lies above the maximum dose.
    """

    bin_edges_gy: NDArray[np.float64]
    differential_ml: NDArray[np.float64]
    """Volume (mL) with a dose in each bin (length n)."""
    differential_fraction: NDArray[np.float64]
    """Fraction of the VOI (volume, or mass if mass-weighted) in each bin (length n)."""
    cumulative_fraction: NDArray[np.float64]
    """``V(edge_i)``: fraction receiving a dose >= each edge (length n + 1;
    1 at a lower edge <= the minimum dose, 0 at the last edge)."""
    volume_ml: float
    mass_g: float | None
    mass_weighted: bool = False

    @property
    def bin_centres_gy(self) -> NDArray[np.float64]:
        e = self.bin_edges_gy
        return np.asarray(0.5 * (e[:-1] + e[1:]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (lists), keys with units."""
        return {
            "bin_edges_gy": self.bin_edges_gy.tolist(),
            "differential_ml": self.differential_ml.tolist(),
            "differential_fraction": self.differential_fraction.tolist(),
            "cumulative_fraction": self.cumulative_fraction.tolist(),
            "volume_ml": self.volume_ml,
            "mass_g": self.mass_g,
            "mass_weighted": self.mass_weighted,
        }


def _voi_values(
    dose_gy: ArrayLike,
    mask: ArrayLike,
    spacing_mm: ArrayLike,
    density_g_cm3: ArrayLike | None,
    mass_weighted: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, float, float | None]:
    """Doses in the VOI, weights (mass per voxel in g, or None = equal), volume, mass."""
    d = np.asarray(dose_gy)
    m = np.asarray(mask)
    if d.ndim != 3:
        raise InvalidInputError(f"the dose map must be a 3-D array [z, y, x], got {d.ndim}-D")
    if m.shape != d.shape:
        raise InvalidInputError(f"mask shape {m.shape} differs from the dose grid {d.shape}")
    if m.dtype != np.bool_:
        m = m != 0
    sx, sy, sz = _as_spacing(spacing_mm)
    voxel_ml = sx * sy * sz * CM3_PER_MM3
    values = np.asarray(d[m], dtype=np.float64)
    if values.size == 0:
        raise InvalidInputError("the VOI mask is empty: no voxel to compute dose statistics on")
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("the dose map contains NaN or infinite values inside the VOI")
    volume_ml = values.size * voxel_ml
    weights: NDArray[np.float64] | None = None
    mass_g: float | None = None
    if density_g_cm3 is not None:
        rho = np.asarray(density_g_cm3, dtype=np.float64)
        if rho.ndim == 0:
            rho_voi = np.full(values.size, float(rho))
        elif rho.shape == d.shape:
            rho_voi = rho[m]
        else:
            raise InvalidInputError(
                f"density map shape {rho.shape} differs from the dose grid {d.shape}"
            )
        if not np.all(np.isfinite(rho_voi)) or np.any(rho_voi < 0):
            raise InvalidInputError("densities must be finite and >= 0 g/cm^3")
        voxel_mass_g = rho_voi * voxel_ml
        mass_g = float(voxel_mass_g.sum())
        if mass_weighted:
            if mass_g <= 0:
                raise InvalidInputError("the VOI has zero mass: cannot weight by mass")
            weights = voxel_mass_g
    elif mass_weighted:
        raise InvalidInputError("mass-weighted statistics need density_g_cm3")
    return values, weights, volume_ml, mass_g


def _dx_unweighted(values: NDArray[np.float64], percents: list[float]) -> list[float]:
    """D_x for equal weights by partial sorting (O(n))."""
    n = values.size
    # rank k (1-based, in decreasing order) of the first voxel reaching x %
    ranks = [min(max(math.ceil(p / 100.0 * n * (1.0 - _REL_TOL)), 1), n) for p in percents]
    # the k-th largest is the (n - k)-th smallest (0-based)
    kth = sorted({n - k for k in ranks})
    part = np.partition(values, kth)
    return [float(part[n - k]) for k in ranks]


def _dx_weighted(
    sorted_desc: NDArray[np.float64], cum_fraction: NDArray[np.float64], percents: list[float]
) -> list[float]:
    out = []
    for p in percents:
        idx = int(np.searchsorted(cum_fraction, p / 100.0 * (1.0 - _REL_TOL), side="left"))
        out.append(float(sorted_desc[min(idx, sorted_desc.size - 1)]))
    return out


def _check_percent(p: float) -> float:
    if not (0.0 <= p <= 100.0):
        raise InvalidInputError(f"D_x needs x in [0, 100] %, got {p!r}")
    return float(p)


def dose_at_volume_percent(
    dose_gy: ArrayLike,
    mask: ArrayLike,
    spacing_mm: ArrayLike,
    percents: Iterable[float],
    *,
    density_g_cm3: ArrayLike | None = None,
    mass_weighted: bool = False,
) -> list[float]:
    """``D_x`` in Gy for each ``x`` of ``percents`` (definition in the module docstring)."""
    values, weights, _, _ = _voi_values(dose_gy, mask, spacing_mm, density_g_cm3, mass_weighted)
    ps = [_check_percent(float(p)) for p in percents]
    if weights is None:
        return _dx_unweighted(values, ps)
    order = np.argsort(values)[::-1]  # ties share one dose: order among them is moot
    cum = np.cumsum(weights[order]) / weights.sum()
    return _dx_weighted(values[order], cum, ps)


def dose_statistics(
    dose_gy: ArrayLike,
    mask: ArrayLike,
    spacing_mm: ArrayLike,
    *,
    thresholds_gy: Iterable[float] = (),
    density_g_cm3: ArrayLike | None = None,
    mass_weighted: bool = False,
) -> DoseStatistics:
    """Mean, median, extremes, SD, D2/D50/D98 and V(threshold) of one VOI.

    Parameters
    ----------
    dose_gy
        Dose map ``[z, y, x]`` in Gy.
    mask
        VOI mask of the same shape (bool or non-zero = inside).
    spacing_mm
        Voxel spacing (x, y, z), mm.
    thresholds_gy
        Dose levels for ``v_gy`` (fraction) and ``v_ml`` (mL) receiving ``>=`` them.
    density_g_cm3
        Density map (same shape) or one number, g/cm^3: gives ``mass_g`` and
        allows ``mass_weighted``.
    mass_weighted
        Weight every statistic (mean, median, SD, D_x, V fractions) by voxel
        mass instead of volume; ``v_ml`` stays a geometric volume.

    Raises
    ------
    InvalidInputError
        Empty mask, shape mismatch, NaN dose in the VOI, or mass weighting
        without density.
    """
    values, weights, volume_ml, mass_g = _voi_values(
        dose_gy, mask, spacing_mm, density_g_cm3, mass_weighted
    )
    thresholds = [float(t) for t in thresholds_gy]
    if not all(math.isfinite(t) for t in thresholds):
        raise InvalidInputError("dose thresholds must be finite numbers (Gy)")
    voxel_ml = volume_ml / values.size
    v_ml = {t: float(np.count_nonzero(values >= t)) * voxel_ml for t in thresholds}
    if weights is None:
        mean = float(values.mean())
        sd = float(values.std())
        median = float(np.median(values))
        d2, d50, d98 = _dx_unweighted(values, [2.0, 50.0, 98.0])
        v_frac = {t: float(np.count_nonzero(values >= t)) / values.size for t in thresholds}
    else:
        wsum = float(weights.sum())
        mean = float(np.dot(weights, values) / wsum)
        sd = float(math.sqrt(max(np.dot(weights, (values - mean) ** 2) / wsum, 0.0)))
        order = np.argsort(values)[::-1]  # ties share one dose: order among them is moot
        sorted_desc = values[order]
        cum = np.cumsum(weights[order]) / wsum
        d2, d50, d98 = _dx_weighted(sorted_desc, cum, [2.0, 50.0, 98.0])
        median = d50
        v_frac = {t: float(weights[values >= t].sum() / wsum) for t in thresholds}
    return DoseStatistics(
        n_voxels=int(values.size),
        volume_ml=float(volume_ml),
        mass_g=mass_g,
        mean_gy=mean,
        median_gy=median,
        min_gy=float(values.min()),
        max_gy=float(values.max()),
        sd_gy=sd,
        d2_gy=d2,
        d50_gy=d50,
        d98_gy=d98,
        v_gy=v_frac,
        v_ml=v_ml,
        mass_weighted=bool(mass_weighted),
    )


def dose_volume_histogram(
    dose_gy: ArrayLike,
    mask: ArrayLike,
    spacing_mm: ArrayLike,
    *,
    bin_width_gy: float | None = None,
    n_bins: int = DEFAULT_N_BINS,
    density_g_cm3: ArrayLike | None = None,
    mass_weighted: bool = False,
) -> DoseVolumeHistogram:
    """Differential and cumulative DVH of one VOI.

    Bins start at ``min(0, minimum dose)``.  With ``bin_width_gy`` the bins have
    that width and the last edge is the first multiple above the maximum dose;
    otherwise ``n_bins`` equal bins span up to just above the maximum dose (so
    the maximum falls in the last bin and ``cumulative_fraction[-1] == 0``).
    ``cumulative_fraction[i]`` is exactly ``V(bin_edges_gy[i])``.
    """
    values, weights, volume_ml, mass_g = _voi_values(
        dose_gy, mask, spacing_mm, density_g_cm3, mass_weighted
    )
    lo = min(0.0, float(values.min()))
    dmax = float(values.max())
    if bin_width_gy is not None:
        bw = float(bin_width_gy)
        if not (math.isfinite(bw) and bw > 0):
            raise InvalidInputError(f"bin_width_gy must be > 0, got {bin_width_gy!r}")
        n = int(math.floor((dmax - lo) / bw)) + 1
        if n > 10_000_000:
            raise InvalidInputError(f"bin_width_gy={bw} gives too many bins ({n})")
        edges = lo + bw * np.arange(n + 1, dtype=np.float64)
        if edges[-1] <= dmax:  # rounding in the multiplication
            edges[-1] = np.nextafter(dmax, np.inf)
    else:
        if int(n_bins) < 1:
            raise InvalidInputError(f"n_bins must be >= 1, got {n_bins!r}")
        n = int(n_bins)
        hi = dmax if dmax > lo else lo + 1.0
        edges = np.linspace(lo, hi, n + 1)
        edges[-1] = np.nextafter(max(hi, dmax), np.inf)
    voxel_ml = volume_ml / values.size
    counts, _ = np.histogram(values, bins=edges)
    differential_ml = counts.astype(np.float64) * voxel_ml
    if weights is None:
        differential_fraction = counts.astype(np.float64) / values.size
    else:
        wh, _ = np.histogram(values, bins=edges, weights=weights)
        differential_fraction = wh / weights.sum()
    # every value lies in [edges[0], edges[-1]), so V(edge_i) = sum of bins >= i
    tail = np.cumsum(differential_fraction[::-1])[::-1]
    cumulative = np.concatenate([tail, [0.0]])
    cumulative = np.clip(cumulative, 0.0, 1.0)
    return DoseVolumeHistogram(
        bin_edges_gy=edges,
        differential_ml=differential_ml,
        differential_fraction=differential_fraction,
        cumulative_fraction=cumulative,
        volume_ml=float(volume_ml),
        mass_g=mass_g,
        mass_weighted=bool(mass_weighted),
    )
