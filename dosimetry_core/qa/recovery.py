"""Recovery coefficients from a NEMA IEC body phantom style scan, and the RC(volume) curve.

Per sphere ``i`` (hot spheres of concentration ``C_S`` in a background ``C_B``,
sphere-to-background ratio ``SBR = C_S / C_B``) the recovery coefficient is the
contrast recovery (NEMA NU 2-2012 section 7; Hoffman, Huang & Phelps, J Comput
Assist Tomogr 1979;3:299-308)::

    RC_i = (m_i / m_B - 1) / (SBR - 1)           (C_B > 0)
    RC_i = m_i / C_S                              (no background; image in Bq/mL)

with ``m_i`` the mean of the image in the sphere VOI and ``m_B`` the mean of a
background VOI.  The sphere VOI is the sphere of the known inner diameter at the
found centre, each voxel weighted by the fraction of its volume inside the
sphere (sub-voxel sampling).  For a linear, shift-invariant system this RC is
the mean over the sphere of the PSF-blurred sphere indicator, i.e. the factor
that :mod:`dosimetry_core.kinetics.tac` divides by (``A_corrected = A / RC``).

Curve ``RC(V)`` (``V`` in mL), fitted by weighted least squares:

* ``"gaussian-psf"`` (default): the RC of a sphere of volume ``V`` blurred by an
  isotropic 3D Gaussian of FWHM ``f`` (one parameter; Kessler, Ellis & Eden,
  J Comput Assist Tomogr 1984;8:514-522)::

      RC(V) = integral_0^{2R} g(r) 4 pi r^2 (1 - 3r/(4R) + r^3/(16 R^3)) dr

  with ``R = (3V / 4 pi)^(1/3)``, ``g`` the normalised Gaussian of
  ``sigma = f / (2 sqrt(2 ln 2))`` and the bracket the overlap volume of two
  spheres of radius R at distance r divided by the sphere volume (the mean of
  ``g * 1_sphere`` over the sphere written as one integral over the distance of
  two points of the sphere).
* ``"logistic"``: ``RC(V) = 1 / (1 + (a / V)^b)`` (two parameters, empirical).

Parameter covariance from the fit (``scipy.optimize.curve_fit``; scaled by the
reduced chi-square when the per-sphere SDs are unknown); the curve SD at any V by
first-order propagation ``sd^2 = J C J^T``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, optimize, signal

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import ImageUnits
from dosimetry_core.resources import resource_path

MODELS = ("gaussian-psf", "logistic")
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_PHANTOM_JSON = resource_path("qa", "nema_iec_body_phantom.json")
BACKGROUND_EDGE_DISTANCE_MM = 15.0
"""Background VOI voxels stay this far from the phantom edge and from the spheres
(NEMA NU 2-2012 section 7.4.1 places background ROIs 15 mm from the edge)."""


@lru_cache(maxsize=1)
def nema_iec_phantom() -> dict[str, Any]:
    """Reference geometry of the NEMA IEC body phantom (``resources/qa``), with sources."""
    data: dict[str, Any] = json.loads(_PHANTOM_JSON.read_text())
    return data


def nema_sphere_diameters_mm() -> list[float]:
    """Inner diameters of the six NEMA IEC spheres (mm): 10, 13, 17, 22, 28, 37."""
    return [float(d) for d in nema_iec_phantom()["sphere_inner_diameters_mm"]["value"]]


def sphere_volume_ml(diameter_mm: float) -> float:
    """Volume of a sphere of inner diameter ``diameter_mm`` (mL)."""
    return math.pi / 6.0 * diameter_mm**3 * 1e-3


# ------------------------------------------------------------ voxelisation
def sphere_fraction(
    shape_zyx: ArrayLike,
    spacing_zyx_mm: ArrayLike,
    center_zyx_mm: ArrayLike,
    radius_mm: float,
    supersampling: int = 5,
) -> tuple[tuple[slice, slice, slice], NDArray[np.float64]]:
    """Fraction of each voxel inside a sphere (``supersampling^3`` sub-samples per voxel).

    Coordinates are grid millimetres: voxel ``(k, j, i)`` has its centre at
    ``(k sz, j sy, i sx)``.  Returns the bounding box (slices) and the fractions in it.
    """
    sp = np.asarray(spacing_zyx_mm, dtype=float)
    c = np.asarray(center_zyx_mm, dtype=float)
    lo = np.maximum(np.floor((c - radius_mm) / sp - 0.5).astype(int), 0)
    hi = np.minimum(np.ceil((c + radius_mm) / sp + 0.5).astype(int) + 1, np.asarray(shape_zyx))
    if np.any(hi <= lo):
        return (slice(0, 0), slice(0, 0), slice(0, 0)), np.zeros((0, 0, 0))
    ss = int(supersampling)
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    axes = []
    for a in range(3):
        centres = np.arange(lo[a], hi[a]) * sp[a]
        axes.append((centres[:, None] + offs[None, :] * sp[a]).ravel() - c[a])
    d2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    inside = (d2 <= radius_mm**2).astype(np.float64)
    n = [hi[a] - lo[a] for a in range(3)]
    frac = inside.reshape(n[0], ss, n[1], ss, n[2], ss).mean(axis=(1, 3, 5))
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    return box, frac


# ------------------------------------------------------------------ models
_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)


def gaussian_sphere_rc(volume_ml: Any, fwhm_mm: float) -> NDArray[np.float64]:
    """RC of spheres of ``volume_ml`` (mL) under an isotropic Gaussian PSF (module docstring).

    Evaluated by 96-point Gauss-Legendre quadrature of the one-dimensional
    integral; exact limits: RC -> 1 for V -> infinity, RC = 1 for FWHM = 0.
    """
    v = np.atleast_1d(np.asarray(volume_ml, dtype=float))
    if fwhm_mm <= 0:
        return np.ones_like(v)
    sigma = fwhm_mm / _FWHM_PER_SIGMA
    radius = np.cbrt(3.0 * v * 1e3 / (4.0 * math.pi))
    r = radius[:, None] * (_GL_X[None, :] + 1.0)  # r in (0, 2R)
    w = radius[:, None] * _GL_W[None, :]
    rr = r / radius[:, None]
    overlap = 1.0 - 0.75 * rr + rr**3 / 16.0
    g = (2.0 * math.pi * sigma**2) ** -1.5 * np.exp(-(r**2) / (2.0 * sigma**2))
    out: NDArray[np.float64] = np.sum(w * g * 4.0 * math.pi * r**2 * overlap, axis=1)
    return out


def _logistic(v: Any, a: float, b: float) -> NDArray[np.float64]:
    v = np.asarray(v, dtype=float)
    out: NDArray[np.float64] = 1.0 / (1.0 + (a / v) ** b)
    return out


@dataclass
class RecoveryCurve:
    """A fitted RC(volume) curve; call it with a volume in mL (a tac recovery model)."""

    model: str
    parameters: dict[str, float]
    covariance: list[list[float]]
    parameter_units: dict[str, str] = field(default_factory=dict)
    chi2: float | None = None
    dof: int = 0

    def _f(self, v: Any, *p: float) -> NDArray[np.float64]:
        if self.model == "gaussian-psf":
            return gaussian_sphere_rc(v, p[0])
        return _logistic(v, p[0], p[1])

    def __call__(self, volume_ml: float) -> float:
        if not (volume_ml > 0):
            raise InvalidInputError(f"RC needs a positive volume, got {volume_ml!r} mL")
        return float(self._f([volume_ml], *self.parameters.values())[0])

    def sd(self, volume_ml: float) -> float:
        """1 SD of the curve at ``volume_ml`` (first-order propagation of the covariance)."""
        p = np.asarray(list(self.parameters.values()), dtype=float)
        cov = np.asarray(self.covariance, dtype=float)
        jac = np.empty(p.size)
        for k in range(p.size):
            h = 1e-6 * max(abs(p[k]), 1e-3)
            up, dn = p.copy(), p.copy()
            up[k] += h
            dn[k] -= h
            jac[k] = (self._f([volume_ml], *up)[0] - self._f([volume_ml], *dn)[0]) / (2 * h)
        return float(math.sqrt(max(float(jac @ cov @ jac), 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "parameters": dict(self.parameters),
            "parameter_units": dict(self.parameter_units),
            "parameter_sd": {
                k: math.sqrt(max(self.covariance[i][i], 0.0)) for i, k in enumerate(self.parameters)
            },
            "covariance": self.covariance,
            "chi2": self.chi2,
            "dof": self.dof,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecoveryCurve:
        return cls(
            model=d["model"],
            parameters={k: float(v) for k, v in d["parameters"].items()},
            covariance=[[float(x) for x in row] for row in d["covariance"]],
            parameter_units=dict(d.get("parameter_units", {})),
            chi2=d.get("chi2"),
            dof=int(d.get("dof", 0)),
        )


def fit_recovery_curve(
    volumes_ml: Sequence[float],
    rc: Sequence[float],
    rc_sd: Sequence[float] | None = None,
    model: str = "gaussian-psf",
) -> RecoveryCurve:
    """Fit RC(V) to per-sphere recovery coefficients (module docstring).

    Parameters
    ----------
    volumes_ml, rc
        Sphere volumes (mL) and their RCs.
    rc_sd
        1 SD of each RC (absolute weights); None: equal weights, covariance scaled
        by the reduced chi-square.
    model
        ``"gaussian-psf"`` (parameter ``fwhm_mm``) or ``"logistic"`` (``a_ml``, ``b``).
    """
    if model not in MODELS:
        raise InvalidInputError(f"unknown recovery model {model!r}; one of {', '.join(MODELS)}")
    v = np.asarray(volumes_ml, dtype=float)
    y = np.asarray(rc, dtype=float)
    n_par = 1 if model == "gaussian-psf" else 2
    ok = np.isfinite(v) & np.isfinite(y) & (v > 0)
    if ok.sum() < n_par + 1:
        raise InvalidInputError(
            f"the {model} recovery curve needs at least {n_par + 1} spheres with a valid RC"
        )
    sd = None if rc_sd is None else np.asarray(rc_sd, dtype=float)[ok]
    if sd is not None and not np.all(sd > 0):
        sd = None
    v, y = v[ok], y[ok]
    if model == "gaussian-psf":

        def f(x: Any, fwhm: float) -> Any:
            return gaussian_sphere_rc(x, fwhm)

        # starting value: invert the curve at the sphere closest to RC = 0.5
        p0 = [10.0]
        names, units = ["fwhm_mm"], {"fwhm_mm": "mm"}
        bounds: tuple[Any, Any] = ([1e-3], [500.0])
    else:
        f = _logistic  # type: ignore[assignment]
        p0 = [float(np.median(v)), 1.0]
        names, units = ["a_ml", "b"], {"a_ml": "mL", "b": "1"}
        bounds = ([1e-6, 0.05], [1e4, 10.0])
    try:
        popt, pcov = optimize.curve_fit(
            f, v, y, p0=p0, sigma=sd, absolute_sigma=sd is not None, bounds=bounds
        )
    except (RuntimeError, ValueError) as exc:
        raise InvalidInputError(f"the recovery curve fit failed: {exc}") from exc
    resid = (y - f(v, *popt)) / (sd if sd is not None else 1.0)
    return RecoveryCurve(
        model=model,
        parameters={k: float(p) for k, p in zip(names, popt, strict=True)},
        covariance=np.asarray(pcov, dtype=float).tolist(),
        parameter_units=units,
        chi2=float(np.sum(resid**2)),
        dof=int(v.size - n_par),
    )


# ---------------------------------------------------------- sphere finding
@dataclass
class SphereResult:
    """Recovery of one sphere."""

    diameter_mm: float
    volume_ml: float
    center_zyx_mm: tuple[float, float, float]
    """Grid millimetres (voxel (k, j, i) at (k sz, j sy, i sx))."""
    center_lps_mm: tuple[float, float, float]
    mean: float
    """Mean image value in the sphere VOI (image units)."""
    recovery: float
    recovery_sd: float | None
    found: str
    """``"automatic"`` or ``"given"``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "diameter_mm": self.diameter_mm,
            "volume_ml": self.volume_ml,
            "center_lps_mm": list(self.center_lps_mm),
            "center_grid_zyx_mm": list(self.center_zyx_mm),
            "mean": self.mean,
            "recovery": self.recovery,
            "recovery_sd": self.recovery_sd,
            "found": self.found,
        }


def _body_and_background_level(img: NDArray[np.float64]) -> tuple[NDArray[np.bool_], float]:
    smooth = ndimage.uniform_filter(img, size=3, mode="constant")
    top = float(np.percentile(smooth, 99.9))
    candidates = smooth > 0.1 * top
    level = float(np.median(img[candidates])) if candidates.any() else 0.0
    body = smooth > 0.5 * level if level > 0 else candidates
    return np.asarray(body, dtype=bool), level


def _refine_centre(
    excess: NDArray[np.float64],
    spacing: NDArray[np.float64],
    start_idx: NDArray[np.float64],
    radius_mm: float,
) -> NDArray[np.float64]:
    """Centroid of the positive excess in a window around the sphere, iterated."""
    centre = start_idx * spacing
    window = radius_mm + 2.0 * float(spacing.max())
    for _ in range(4):
        box, frac = sphere_fraction(excess.shape, spacing, centre, window, supersampling=1)
        if frac.size == 0:
            break
        w = frac * np.clip(excess[box], 0.0, None)
        total = float(w.sum())
        if total <= 0:
            break
        grids = np.meshgrid(
            *[np.arange(s.start, s.stop) * sp for s, sp in zip(box, spacing, strict=True)],
            indexing="ij",
        )
        new = np.array([float((g * w).sum()) / total for g in grids])
        if np.linalg.norm(new - centre) < 0.01:
            centre = new
            break
        centre = new
    return centre


def find_spheres(
    image: NDArray[Any],
    spacing_zyx_mm: ArrayLike,
    diameters_mm: Sequence[float],
    background_level: float,
) -> list[NDArray[np.float64]]:
    """Centres (grid mm, z y x) of hot spheres of the given diameters, largest first.

    Matched filter: the mean excess over the background in a sphere-shaped
    window of each diameter, maximised outside the spheres already found
    (largest first), then refined to the centroid of the excess.

    Raises
    ------
    InvalidInputError
        If no sphere stands out of the background.
    """
    img = np.asarray(image, dtype=np.float64)
    sp = np.asarray(spacing_zyx_mm, dtype=float)
    excess = img - background_level
    body, _ = _body_and_background_level(img)
    zz, yy, xx = np.ogrid[: img.shape[0], : img.shape[1], : img.shape[2]]
    found: dict[int, NDArray[np.float64]] = {}
    order = sorted(range(len(diameters_mm)), key=lambda i: -diameters_mm[i])
    excluded = np.zeros(img.shape, dtype=bool)
    for i in order:
        r = 0.5 * float(diameters_mm[i])
        half = np.ceil(r / sp).astype(int)
        kshape = tuple(int(2 * h + 1) for h in half)
        _, kern = sphere_fraction(kshape, sp, half * sp, r, supersampling=3)
        kern = kern / kern.sum()
        score = signal.fftconvolve(excess, kern[::-1, ::-1, ::-1], mode="same")
        score[excluded | ~body] = -np.inf
        if not np.isfinite(score).any():
            raise InvalidInputError("could not place all spheres: the phantom is too small")
        peak = np.array(np.unravel_index(int(np.argmax(score)), score.shape), dtype=float)
        if not (score[tuple(peak.astype(int))] > 0):
            raise InvalidInputError(
                f"no hot sphere of {2 * r:.0f} mm found above the background: check the "
                "sphere-to-background ratio or give the sphere centres"
            )
        centre = _refine_centre(excess, sp, peak, r)
        found[i] = centre
        # exclude everything within (this radius + the largest radius) of this centre
        reach = r + 0.5 * float(max(diameters_mm)) + 2.0 * float(sp.max())
        d2 = (
            (zz * sp[0] - centre[0]) ** 2
            + (yy * sp[1] - centre[1]) ** 2
            + (xx * sp[2] - centre[2]) ** 2
        )
        excluded |= d2 <= reach**2
    return [found[i] for i in range(len(diameters_mm))]


# ----------------------------------------------------------------- analysis
@dataclass
class RecoveryAnalysis:
    """Per-sphere RCs, the fitted curve, and what they were measured with."""

    spheres: list[SphereResult]
    curve: RecoveryCurve | None
    sphere_concentration_kbq_ml: float
    background_kbq_ml: float
    background_mean: float | None
    background_sd: float | None
    background_voxels: int
    method: str
    image_units: str
    warnings: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        curve = self.curve.to_dict() if self.curve else None
        return {
            "spheres": [s.to_dict() for s in self.spheres],
            "curve": curve,
            "fwhm_mm": (curve or {}).get("parameters", {}).get("fwhm_mm"),
            "sphere_concentration_kbq_ml": self.sphere_concentration_kbq_ml,
            "background_kbq_ml": self.background_kbq_ml,
            "sphere_to_background_ratio": (
                self.sphere_concentration_kbq_ml / self.background_kbq_ml
                if self.background_kbq_ml > 0
                else None
            ),
            "background_mean": self.background_mean,
            "background_sd": self.background_sd,
            "background_voxels": self.background_voxels,
            "method": self.method,
            "image_units": self.image_units,
            "warnings": list(self.warnings),
        }


def measure_recovery(
    volume: Any,
    sphere_concentration_kbq_ml: float,
    background_kbq_ml: float,
    *,
    diameters_mm: Sequence[float] | None = None,
    centers_lps_mm: Sequence[Sequence[float]] | None = None,
    model: str = "gaussian-psf",
    supersampling: int = 5,
) -> RecoveryAnalysis:
    """Recovery coefficients of a hot-sphere phantom image (module docstring).

    Parameters
    ----------
    volume
        :class:`~dosimetry_core.model.Volume` in counts or Bq/mL (axis-aligned grid).
    sphere_concentration_kbq_ml, background_kbq_ml
        True activity concentrations (kBq/mL) at the scan; only their ratio is
        used when the background is > 0.
    diameters_mm
        Sphere inner diameters (default: the six NEMA IEC spheres).
    centers_lps_mm
        Known sphere centres (LPS mm, same order as ``diameters_mm``); None:
        found automatically.
    model
        RC(V) model to fit (:data:`MODELS`).

    Raises
    ------
    InvalidInputError
        Impossible concentrations (sphere not hotter than background, negative
        values), no background and an image not in Bq/mL, spheres outside the
        field of view, spheres not found.
    """
    cs, cb = float(sphere_concentration_kbq_ml), float(background_kbq_ml)
    if not (math.isfinite(cs) and cs > 0):
        raise InvalidInputError(f"sphere concentration must be positive, got {cs!r} kBq/mL")
    if not (math.isfinite(cb) and cb >= 0):
        raise InvalidInputError(f"background concentration must be >= 0, got {cb!r} kBq/mL")
    if cb >= cs:
        raise InvalidInputError(
            f"the spheres ({cs} kBq/mL) must be hotter than the background ({cb} kBq/mL)"
        )
    geom = volume.geometry
    if not geom.is_axis_aligned():
        raise InvalidInputError("the phantom image must be on an axis-aligned grid")
    diam = list(diameters_mm) if diameters_mm is not None else nema_sphere_diameters_mm()
    if any(not (d > 0) for d in diam):
        raise InvalidInputError(f"sphere diameters must be positive mm, got {diam}")
    img = np.asarray(volume.array, dtype=np.float64)
    sp = np.asarray(geom.spacing_mm[::-1], dtype=float)
    units = volume.units
    warnings: list[str] = []
    if cb == 0 and units != ImageUnits.BQML:
        raise InvalidInputError(
            "spheres without background need an image in Bq/mL: calibrate the camera first "
            "(mrtdose qa calibrate) or enter the background concentration"
        )
    body, level = _body_and_background_level(img)
    if centers_lps_mm is not None:
        if len(centers_lps_mm) != len(diam):
            raise InvalidInputError(
                f"{len(centers_lps_mm)} sphere centres given for {len(diam)} spheres"
            )
        idx = geom.world_to_index(np.asarray(centers_lps_mm, dtype=float))
        centres = [np.asarray(i, dtype=float) * sp for i in idx]
        how = "given"
    else:
        centres = find_spheres(img, sp, diam, level if cb > 0 else 0.0)
        how = "automatic"
    for d, c in zip(diam, centres, strict=True):
        lo, hi = c - d / 2, c + d / 2
        if np.any(lo < -0.5 * sp) or np.any(hi > (np.asarray(img.shape) - 0.5) * sp):
            raise InvalidInputError(
                f"the {d:g} mm sphere (centre {np.round(c, 1).tolist()} mm) is outside the field "
                "of view"
            )

    # background VOI: inside the body, away from the edge (and lung insert) and the spheres
    m_b: float | None = None
    s_b: float | None = None
    n_b = 0
    if cb > 0:
        dist_in = ndimage.distance_transform_edt(body, sampling=sp)
        bg = dist_in >= BACKGROUND_EDGE_DISTANCE_MM
        zz, yy, xx = np.ogrid[: img.shape[0], : img.shape[1], : img.shape[2]]
        for d, c in zip(diam, centres, strict=True):
            reach = d / 2 + BACKGROUND_EDGE_DISTANCE_MM
            bg &= (
                (zz * sp[0] - c[0]) ** 2 + (yy * sp[1] - c[1]) ** 2 + (xx * sp[2] - c[2]) ** 2
            ) > reach**2
        n_b = int(bg.sum())
        if n_b < 50:
            raise InvalidInputError(
                "no background region found 15 mm away from the edge and the spheres: "
                "check the phantom image and the background concentration"
            )
        m_b = float(img[bg].mean())
        s_b = float(img[bg].std(ddof=1))
        if not (m_b > 0):
            raise InvalidInputError("the background region of the phantom image is empty")
    sbr = cs / cb if cb > 0 else math.inf
    spheres: list[SphereResult] = []
    for d, c in zip(diam, centres, strict=True):
        box, frac = sphere_fraction(img.shape, sp, c, d / 2, supersampling)
        wsum = float(frac.sum())
        mean = float((frac * img[box]).sum()) / wsum
        neff = wsum**2 / float((frac**2).sum())
        if m_b is not None and s_b is not None:
            rc = (mean / m_b - 1.0) / (sbr - 1.0)
            # Poisson-like noise: voxel variance proportional to its mean (simulated
            # data are uncorrelated; real reconstructions are correlated: an underestimate)
            sd_mean = s_b * math.sqrt(max(mean, 0.0) / m_b) / math.sqrt(neff)
            sd_mb = s_b / math.sqrt(n_b)
            rc_sd: float | None = math.hypot(
                sd_mean / (m_b * (sbr - 1.0)), mean * sd_mb / (m_b**2 * (sbr - 1.0))
            )
        else:
            rc = mean / (cs * 1e3)
            rc_sd = None
        lps = geom.index_to_world(np.asarray(c) / sp)
        spheres.append(
            SphereResult(
                diameter_mm=float(d),
                volume_ml=sphere_volume_ml(d),
                center_zyx_mm=(float(c[0]), float(c[1]), float(c[2])),
                center_lps_mm=(float(lps[0]), float(lps[1]), float(lps[2])),
                mean=mean,
                recovery=float(rc),
                recovery_sd=rc_sd,
                found=how,
            )
        )
        if rc > 1.1 or rc < 0:
            warnings.append(
                f"sphere {d:g} mm: RC {rc:.2f} outside [0, 1.1]; check the concentrations "
                "or the sphere position"
            )
    curve: RecoveryCurve | None = None
    try:
        curve = fit_recovery_curve(
            [s.volume_ml for s in spheres],
            [s.recovery for s in spheres],
            None
            if any(s.recovery_sd is None for s in spheres)
            else [s.recovery_sd or 0.0 for s in spheres],
            model,
        )
    except InvalidInputError as exc:
        warnings.append(str(exc))
    return RecoveryAnalysis(
        spheres=spheres,
        curve=curve,
        sphere_concentration_kbq_ml=cs,
        background_kbq_ml=cb,
        background_mean=m_b,
        background_sd=s_b,
        background_voxels=n_b,
        method="contrast recovery with measured background" if cb > 0 else "absolute (Bq/mL)",
        image_units=str(units),
        warnings=warnings,
    )


def recovery_model_from_payload(payload: dict[str, Any]) -> RecoveryCurve:
    """The stored RC(V) curve of a recovery record, usable as a tac recovery model."""
    if not payload.get("curve"):
        raise InvalidInputError("this recovery record has no fitted RC(volume) curve")
    return RecoveryCurve.from_dict(payload["curve"])
