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


# --------------------------------------------------------------------------------------
# Integration of point kernels: voxel S-value kernels and sphere absorbed fractions
# --------------------------------------------------------------------------------------
#
# Voxel kernel.  With k(r) the absorbed-energy fraction per unit volume at distance r
# (shell fraction / shell volume, constant inside each shell), a source uniform in the
# central voxel (sides a_i) and the target voxel at lattice offset d, the fraction of
# the emitted energy absorbed in the target is
#
#     F(d) = integral k(|d + u|) T(u) du,    T(u) = prod_i (1 - |u_i|/a_i)_+,
#
# T being the autocorrelation of the voxel divided by its volume (the distribution of
# the difference of two uniform points).  Because the tents T(w - d) of all lattice
# offsets sum to 1 at every w, sum_d F(d) is the kernel's absorbed fraction inside the
# grid: energy is conserved exactly by the formulation.
#
# Near offsets (max_i |d_i| <= 3), where k ~ 1/r^2 is steep inside the support of T, use
# the radial form  F(d) = sum_shells fraction_j * <T(r Omega - d)>_{r in shell j, Omega}:
# each shell is split into sub-shells (evaluated at their volume centroid) and the
# spherical mean over Omega uses a Gauss-Legendre (cos theta) x midpoint (phi) product
# rule; the whole sum is one matrix product.  This integrates the singular part of k
# exactly in r.  Far offsets (some |d_i| >= 3) have k smooth over the support of T:
# there a tensor Gauss-Legendre rule on each half of each tent is used.

_N_COS = 64
_N_PHI = 128
_N_TENT_GAUSS = 6
_NEAR = 3
_DISTANT = 8


def _validate_spacing(spacing_mm: tuple[float, float, float]) -> NDArray[np.float64]:
    from dosimetry_core.errors import InvalidInputError

    a = np.asarray(spacing_mm, dtype=float).reshape(-1)
    if a.size != 3 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InvalidInputError(f"spacing_mm must be three positive numbers, got {spacing_mm!r}")
    return a


def _shell_volumes_mm3(edges: NDArray[np.float64]) -> NDArray[np.float64]:
    return 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)


def _reach_mm(pk: PointKernel) -> float:
    """Outer edge of the last shell with absorbed energy (0 if none)."""
    nz = np.nonzero(pk.fraction > 0)[0]
    return float(pk.r_edges_mm[nz[-1] + 1]) if nz.size else 0.0


def _sphere_directions() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit vectors (3, n) and weights (n,) summing to 1 for the spherical mean."""
    ct, wt = np.polynomial.legendre.leggauss(_N_COS)
    phi = (np.arange(_N_PHI) + 0.5) * (2.0 * np.pi / _N_PHI)
    st = np.sqrt(1.0 - ct**2)
    dirs = np.stack(
        [
            (st[:, None] * np.cos(phi)[None, :]).ravel(),
            (st[:, None] * np.sin(phi)[None, :]).ravel(),
            np.repeat(ct, _N_PHI),
        ]
    )
    w = np.repeat(wt / 2.0, _N_PHI) / _N_PHI
    return dirs, w


def _near_fractions(
    pk: PointKernel, a: NDArray[np.float64], h: NDArray[np.int64]
) -> NDArray[np.float64]:
    """F[dz, dy, dx] for 0 <= d_i <= min(h_i, 2) by the radial/spherical rule."""
    m = np.minimum(h, _NEAR) + 1  # offsets per axis (x, y, z)
    edges = pk.r_edges_mm
    frac = pk.fraction
    reach = float(np.sqrt(np.sum(((m - 1) * a + a) ** 2)))
    use = (frac != 0) & (edges[:-1] < reach)
    out = np.zeros((m[2], m[1], m[0]))
    if not np.any(use):
        return out
    lo, hi, f = edges[:-1][use], edges[1:][use], frac[use]
    n_sub = int(np.clip(np.ceil(8.0 * np.max(hi - lo) / np.min(a)), 1, 64))
    t = np.linspace(0.0, 1.0, n_sub + 1)
    s_lo = (lo[:, None] + (hi - lo)[:, None] * t[None, :-1]).ravel()
    s_hi = (lo[:, None] + (hi - lo)[:, None] * t[None, 1:]).ravel()
    vol = s_hi**3 - s_lo**3
    weight = (np.repeat(f / (hi**3 - lo**3), n_sub) * vol).ravel()
    r = 0.75 * (s_hi**4 - s_lo**4) / np.where(vol > 0, vol, 1.0)
    dirs, w_dir = _sphere_directions()
    chunk = max(1, 1_000_000 // dirs.shape[1])
    for start in range(0, r.size, chunk):
        rr = r[start : start + chunk]
        ww = weight[start : start + chunk]
        tents = []
        for axis in range(3):
            d = np.arange(m[axis]) * a[axis]
            proj = rr[:, None] * dirs[axis][None, :]
            tent = np.clip(1.0 - np.abs(proj[None, :, :] - d[:, None, None]) / a[axis], 0, None)
            tents.append(tent.reshape(m[axis], -1))
        tx = tents[0] * (ww[:, None] * w_dir[None, :]).ravel()[None, :]
        zy = (tents[2][:, None, :] * tents[1][None, :, :]).reshape(m[2] * m[1], -1)
        out += (zy @ tx.T).reshape(m[2], m[1], m[0])
    return out


def _far_fractions(
    pk: PointKernel, a: NDArray[np.float64], offsets: NDArray[np.int64], n_gauss: int
) -> NDArray[np.float64]:
    """F for the given (n, 3) offsets in (x, y, z) order by tent-weighted Gauss rules."""
    edges = pk.r_edges_mm
    density = pk.fraction / _shell_volumes_mm3(edges)
    g, gw = np.polynomial.legendre.leggauss(n_gauss)
    half = 0.5 * (g + 1.0)  # nodes on [0, 1]
    nodes = np.concatenate([-half[::-1], half])
    wts = np.concatenate([(gw / 2.0 * (1.0 - half))[::-1], gw / 2.0 * (1.0 - half)])
    out = np.zeros(len(offsets))
    chunk = max(1, 2_000_000 // nodes.size**3)
    for start in range(0, len(offsets), chunk):
        off = offsets[start : start + chunk].astype(float)
        x = (off[:, 0, None] + nodes[None, :]) * a[0]
        y = (off[:, 1, None] + nodes[None, :]) * a[1]
        z = (off[:, 2, None] + nodes[None, :]) * a[2]
        r = np.sqrt(x[:, :, None, None] ** 2 + y[:, None, :, None] ** 2 + z[:, None, None, :] ** 2)
        idx = np.searchsorted(edges, r, side="right") - 1
        inside = (idx >= 0) & (idx < density.size)
        k = np.where(inside, density[np.clip(idx, 0, density.size - 1)], 0.0)
        w3 = wts[:, None, None] * wts[None, :, None] * wts[None, None, :]
        out[start : start + chunk] = np.einsum("nijk,ijk->n", k, w3)
    return out * float(np.prod(a))


def voxel_fractions_from_point_kernel(
    pk: PointKernel,
    spacing_mm: tuple[float, float, float],
    half_width: tuple[int, int, int] | None = None,
) -> NDArray[np.float64]:
    """Fraction of the emitted energy absorbed in each voxel, source uniform in the centre.

    Same geometry as :func:`voxel_kernel_from_point_kernel` (array ``[z, y, x]`` of
    shape ``[2*hz+1, 2*hy+1, 2*hx+1]``); dimensionless.
    """
    from dosimetry_core.errors import InvalidInputError

    a = _validate_spacing(spacing_mm)
    if half_width is None:
        h = np.ceil(_reach_mm(pk) / a - 1e-12).astype(np.int64)
    else:
        h = np.asarray(half_width, dtype=np.int64).reshape(-1)
        if h.size != 3 or np.any(h < 0):
            raise InvalidInputError(f"half_width must be three integers >= 0, got {half_width!r}")
    h = np.maximum(h, 0)
    octant = np.zeros((h[2] + 1, h[1] + 1, h[0] + 1))
    near = _near_fractions(pk, a, h)
    octant[: near.shape[0], : near.shape[1], : near.shape[2]] = near
    iz, iy, ix = np.meshgrid(
        np.arange(h[2] + 1), np.arange(h[1] + 1), np.arange(h[0] + 1), indexing="ij"
    )
    far = (np.maximum(np.maximum(ix, iy), iz) > _NEAR).ravel()
    if np.any(far):
        offs = np.stack([ix.ravel()[far], iy.ravel()[far], iz.ravel()[far]], axis=1)
        # beyond _DISTANT voxels k varies little across a voxel: a 2-point rule per half tent
        distant = offs.max(axis=1) > _DISTANT
        vals = np.empty(len(offs))
        vals[~distant] = _far_fractions(pk, a, offs[~distant], _N_TENT_GAUSS)
        vals[distant] = _far_fractions(pk, a, offs[distant], 2)
        octant.reshape(-1)[np.nonzero(far)[0]] = vals
    # mirror the octant (F is even in each offset component)
    full = np.concatenate([octant[:0:-1], octant], axis=0)
    full = np.concatenate([full[:, :0:-1], full], axis=1)
    full = np.concatenate([full[:, :, :0:-1], full], axis=2)
    return full


def voxel_kernel_from_point_kernel(
    pk: PointKernel,
    spacing_mm: tuple[float, float, float],
    half_width: tuple[int, int, int] | None = None,
) -> NDArray[np.float64]:
    """Voxel S-value kernel in Gy/(Bq*s) from a radial point kernel.

    Parameters
    ----------
    pk : the point kernel (its medium density defines the voxel mass).
    spacing_mm : voxel sides (x, y, z) in mm, anisotropic allowed.
    half_width : (hx, hy, hz) voxels on each side of the source voxel; default:
        enough to hold every shell with absorbed energy, ``ceil(reach / a_i)``.

    Returns
    -------
    ndarray ``[2*hz+1, 2*hy+1, 2*hx+1]`` indexed ``[z, y, x]``: mean absorbed dose per
    decay in each voxel for a source uniformly distributed in the central voxel,
    ``F(d) * E / (rho * V)`` (MIRD Pamphlet 17, Bolch et al., J Nucl Med 40:11S, 1999).
    The energy fractions ``F`` are computed as described in the comment above
    (exact energy conservation: ``F.sum()`` equals the kernel's fraction inside the grid).
    """
    from dosimetry_core.dose.units import CM3_PER_MM3, dose_gy_per_decay

    a = _validate_spacing(spacing_mm)
    frac = voxel_fractions_from_point_kernel(pk, spacing_mm, half_width)
    mass_g = pk.density_g_cm3 * float(np.prod(a)) * CM3_PER_MM3
    return frac * dose_gy_per_decay(pk.energy_mev, mass_g)


def sphere_absorbed_fraction(
    pk: PointKernel, radius_mm: float | NDArray[np.float64]
) -> float | NDArray[np.float64]:
    """Absorbed fraction of a uniform source in a sphere of radius ``radius_mm``.

    ``AF(R) = sum_j fraction_j * <P(r)>_j`` where
    ``P(r) = 1 - 3r/(4R) + r^3/(16R^3)`` (r <= 2R, else 0) is the probability that a
    point at distance r, in a random direction, from a uniform point of the sphere is
    itself inside the sphere (the geometric reduction factor of Berger, J Nucl Med
    12 Suppl 5 (MIRD Pamphlet 7), 1971; used for beta emitters in spheres by
    Bardies & Chatal, Phys Med Biol 39:961, 1994).  ``<P>_j`` is its exact
    volume average over shell j.  Limits: AF -> 1 - escaped_fraction for R >> range;
    AF -> 0 as R -> 0 (``AF = fraction_0 * R^3 / r_1^3`` while ``2R`` is inside the
    first shell).
    """
    from dosimetry_core.errors import InvalidInputError

    r_arr = np.asarray(radius_mm, dtype=float)
    if not np.all(np.isfinite(r_arr)) or np.any(r_arr <= 0):
        raise InvalidInputError("sphere radius must be positive (mm)")
    edges = pk.r_edges_mm
    rr = r_arr.reshape(-1, 1)

    def q(r: NDArray[np.float64]) -> NDArray[np.float64]:
        rc = np.minimum(r, 2.0 * rr)
        return rc**3 / 3.0 - 3.0 * rc**4 / (16.0 * rr) + rc**6 / (96.0 * rr**3)

    mean_p = 3.0 * (q(edges[None, 1:]) - q(edges[None, :-1])) / (edges[1:] ** 3 - edges[:-1] ** 3)
    af = mean_p @ pk.fraction
    if r_arr.ndim == 0:
        return float(af[0])
    return np.asarray(af.reshape(r_arr.shape), dtype=float)
