"""Voxel-wise time-integrated activity (TIA) maps from registered SPECT/PET time points.

Every voxel's time-activity curve (TAC) is fitted with the candidate models,
one model is chosen per voxel, and its analytic integral from the injection
to infinity gives the voxel TIA.  Where no fit is acceptable the voxel falls
back to the trapezoid rule with a physical-decay tail; the model map records
what each voxel used.  The fits run in a parallel numba kernel
(:mod:`._voxel_kernels`); :func:`fit_tacs` is the documented entry point for
an array of curves and is tested against ``scipy.optimize.curve_fit``.

Rules
-----
Time
    ``tau = t - injection_time_h`` (h).  Activities are at scan time (not
    decay corrected), so fitted rates are effective rates (1/h).
Weights
    Relative errors (noise proportional to the value, the usual assumption
    for reconstructed SPECT/PET voxel values): ``sigma_i = max(y_i, f * max(y))``
    with ``f = floor_frac`` (default 0.01), weights ``1 / sigma_i**2`` taken
    from the *data* (fixed during the fit), so a zero or near-zero sample
    does not get infinite weight.  The same choice is the basis of the
    log-linear closed-form start (``var(ln y) ~ const``).
Models
    ``mono``: ``A0 exp(-lambda tau)``, TIA = A0 / lambda -- the curve is
    extrapolated back to the injection (A0 is the fitted value at
    ``tau = 0``).  ``biexp-uptake``: ``A (exp(-l1 tau) - exp(-l2 tau))``,
    TIA = A (1/l1 - 1/l2), zero at injection.  Bounds: ``lambda_phys <= lambda,
    l1 < l2 <= LAMBDA_MAX_PER_H`` (``lambda >= 0`` when
    ``allow_slower_than_physical``), ``l2 - l1 >= D_MIN_PER_H``.
Fit acceptance (per model)
    washout observed (the largest sample is not the last one; a curve still
    rising at the last scan always uses the fallback), finite positive TIA
    and amplitude, bounds respected and the rate not at the upper bound,
    weighted ``R^2 = 1 - WRSS / WTSS >= min_r2`` (default 0.8: flat,
    noise-dominated curves such as background voxels use the fallback); for
    ``biexp-uptake`` also the fitted peak ``ln(l2/l1)/(l2-l1)`` no later than
    the last sample (an uptake whose maximum was never observed is not
    trusted).
Model selection
    Information criterion on the weighted residual sum of squares WRSS, K
    the number of fitted parameters.  With ``n >= 5`` time points: corrected
    Akaike criterion ``AICc = n ln(WRSS/n) + 2K + 2K(K+1)/(n-K-1)``, the
    NUKFIT rule (Glatting et al., Med Phys 2007;34:4285-4292; Kletting et al.,
    Med Phys 2013;40:102504).  AICc needs ``n - K - 1 > 0``; with the usual
    ``n = 4`` it is undefined for the 3-parameter uptake model, so there the
    uncorrected ``AIC = n ln(WRSS/n) + 2K`` decides, and a visible uptake
    phase (first sample lower than the second, which ``mono`` cannot follow)
    also selects ``biexp-uptake``.  (On synthetic Lu-177 curves at 4, 24, 96,
    168 h with 5 % noise this n = 4 rule halved the 95th-percentile TIA error
    of uptake voxels compared with "uptake visible" alone, at a small cost
    for mono voxels; noise-free curves of either model are recovered exactly.
    The price: with 5 % noise about 40 % of curves generated as mono are
    labelled ``biexp-uptake`` -- with 4 points the 3-parameter model nearly
    interpolates -- and the median TIA error of mono-generated curves is
    2.8 % instead of 2.2 %.  Read the model map as "what fitted", not as physiology.)
    The preferred model is used when its fit is accepted, else the other
    accepted one.  With ``n < 4`` only ``mono`` is tried.  Voxels with no
    accepted model use the trapezoid fallback.  WRSS below ``1e-12 n`` counts
    as ``1e-12 n`` so that exact ties are decided by the penalty.
Fallback (code 3)
    Trapezoid: a line from 0 at the injection to the first sample, trapezoids
    between samples, and ``y_last / lambda_phys`` after the last one, with
    negative samples counted as 0 -- the rule of
    ``dosimetry_core.kinetics.models.trapezoid_tia(start="linear",
    tail="physical")``.

Model map codes (uint8)
-----------------------
0 outside the mask, 1 ``mono``, 2 ``biexp-uptake``, 3 trapezoid + physical
tail fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics import _voxel_kernels as _k
from dosimetry_core.model.units import MBQ_PER_BQ, ImageUnits
from dosimetry_core.model.volume import Volume
from dosimetry_core.physics.nuclides import decay_constant_per_h
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

LAMBDA_MAX_PER_H = 50.0
"""Upper bound of every rate (1/h); same value as ``models.LAMBDA_MAX_PER_H``."""
D_MIN_PER_H = 1e-4
"""Smallest separation l2 - l1 (1/h) of the uptake model (keeps it identifiable)."""

CODE_OUTSIDE = _k.CODE_OUTSIDE
CODE_MONO = _k.CODE_MONO
CODE_BIEXP_UPTAKE = _k.CODE_BIEXP_UPTAKE
CODE_TRAPEZOID = _k.CODE_TRAPEZOID
MODEL_CODES: dict[str, int] = {
    "outside": CODE_OUTSIDE,
    "mono": CODE_MONO,
    "biexp-uptake": CODE_BIEXP_UPTAKE,
    "trapezoid": CODE_TRAPEZOID,
}
"""Model name -> code in :attr:`VoxelFitResult.model_map`."""
VOXEL_MODELS = ("mono", "biexp-uptake")

N_ITER_MONO = 12
N_ITER_BIEXP = 40
_BLOCK = 256


@dataclass
class TacFits:
    """Per-curve results of :func:`fit_tacs` (arrays of length ``n_curves``).

    Attributes
    ----------
    tia
        Time-integrated value from injection to infinity, in the input unit
        times hours (e.g. Bq h/mL for Bq/mL input).
    code
        Model code per curve (1 mono, 2 biexp-uptake, 3 trapezoid fallback).
    lambda_eff_per_h
        Effective clearance rate (1/h) of the chosen model: ``lambda`` (mono),
        ``l1`` (washout of biexp-uptake); NaN for the fallback.
    params
        ``(n_curves, 12)`` statistics of every candidate, columns named in
        :data:`PARAM_COLUMNS` (NaN where a model was not tried); ``*_ic`` is
        the criterion used for selection (AICc when n >= 5, else AIC);
        ``*_ok`` is 1.0 when the fit was accepted.
    """

    tia: NDArray[np.float64]
    code: NDArray[np.uint8]
    lambda_eff_per_h: NDArray[np.float64]
    params: NDArray[np.float64]


PARAM_COLUMNS = (
    "mono_A0",
    "mono_lambda",
    "mono_r2",
    "mono_ic",
    "mono_ok",
    "biexp_A",
    "biexp_lambda1",
    "biexp_lambda2",
    "biexp_r2",
    "biexp_ic",
    "biexp_ok",
    "trapezoid_tia",
)


def _check_models(models: Sequence[str]) -> tuple[bool, bool]:
    bad = [m for m in models if m not in VOXEL_MODELS]
    if bad:
        raise InvalidInputError(
            f"voxel-wise fits support {', '.join(VOXEL_MODELS)}; got {', '.join(bad)}"
        )
    return "mono" in models, "biexp-uptake" in models


def _tau(time_h: ArrayLike, injection_time_h: float) -> NDArray[np.float64]:
    tau = np.asarray(time_h, dtype=np.float64).reshape(-1) - float(injection_time_h)
    if tau.size < 2:
        raise InvalidInputError("voxel-wise fitting needs at least 2 time points")
    if not np.all(np.isfinite(tau)) or tau[0] < 0 or np.any(np.diff(tau) <= 0):
        raise InvalidInputError(
            "time points must be finite, strictly increasing and not before the injection"
        )
    return tau


def fit_tacs(
    time_h: ArrayLike,
    activity: NDArray[np.floating],
    *,
    lambda_phys_per_h: float,
    injection_time_h: float = 0.0,
    models: Sequence[str] = VOXEL_MODELS,
    min_r2: float = 0.8,
    allow_slower_than_physical: bool = False,
    floor_frac: float = 0.01,
) -> TacFits:
    """Fit many time-activity curves at once (numba, parallel over curves).

    Parameters
    ----------
    time_h : array-like of float
        Sample times (h, same clock as ``injection_time_h``), strictly increasing.
    activity : array, shape (n_curves, n_times)
        Values at scan time (any activity or concentration unit, e.g. Bq/mL);
        non-finite samples count as 0.
    lambda_phys_per_h : float
        Physical decay constant (1/h): lower bound of every rate and the rate
        of the fallback tail.
    injection_time_h : float
        Time of the administration (h).
    models : sequence of str
        Candidates among ``"mono"``, ``"biexp-uptake"``.
    min_r2 : float
        Smallest weighted R^2 for a fit to be accepted.
    allow_slower_than_physical : bool
        Lower rate bound 0 instead of ``lambda_phys_per_h``.
    floor_frac : float
        Weight floor as a fraction of the curve maximum (module docstring).

    Returns
    -------
    TacFits
        TIA (input unit x h), model codes, effective rates and statistics.
        Rules for weights, selection and fallback: module docstring.
    """
    use_mono, use_bi = _check_models(models)
    tau = _tau(time_h, injection_time_h)
    y = np.ascontiguousarray(activity, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != tau.size:
        raise InvalidInputError(
            f"activity must have shape (n_curves, {tau.size}), got {tuple(y.shape)}"
        )
    if not np.all(np.isfinite(y)):
        y = np.where(np.isfinite(y), y, 0.0)
    lam_phys = float(lambda_phys_per_h)
    if not lam_phys > 0:
        raise InvalidInputError("the physical decay constant must be positive")
    lam_lo = 1e-9 if allow_slower_than_physical else lam_phys
    nv = y.shape[0]
    tia = np.empty(nv, dtype=np.float64)
    code = np.empty(nv, dtype=np.uint8)
    lam = np.empty(nv, dtype=np.float64)
    par = np.empty((nv, _k.N_PAR), dtype=np.float64)
    if nv:
        _k.fit_block(
            tau,
            y,
            lam_phys,
            lam_lo,
            LAMBDA_MAX_PER_H,
            D_MIN_PER_H,
            use_mono,
            use_bi,
            float(min_r2),
            float(floor_frac),
            N_ITER_MONO,
            N_ITER_BIEXP,
            _BLOCK,
            tia,
            code,
            lam,
            par,
        )
    return TacFits(tia=tia, code=code, lambda_eff_per_h=lam, params=par)


@dataclass
class VoxelFitResult:
    """Voxel-wise TIA map and what produced it.

    Attributes
    ----------
    tia_map
        TIA per voxel in MBq h/mL (``ImageUnits.MBQH_PER_ML``; input Bq/mL x h
        x 1e-6), 0 outside the mask.
    model_map
        uint8 model codes (:data:`MODEL_CODES`): 0 outside, 1 mono,
        2 biexp-uptake, 3 trapezoid + physical tail fallback.
    lambda_eff_map
        Effective clearance rate in 1/h (float32); NaN outside the mask and
        for fallback voxels.
    counts
        Number of voxels per model name (``mono``, ``biexp-uptake``,
        ``trapezoid``) inside the mask.
    total_tia_mbq_h
        Sum over the mask of TIA x voxel volume (MBq h).
    """

    tia_map: Volume
    model_map: NDArray[np.uint8]
    lambda_eff_map: NDArray[np.float32]
    counts: dict[str, int]
    total_tia_mbq_h: float
    nuclide: str
    lambda_phys_per_h: float
    time_h: tuple[float, ...]
    injection_time_h: float
    n_voxels: int = 0
    rules: dict[str, str] = field(default_factory=dict)


def fit_voxelwise(
    time_h: Sequence[float],
    activity_maps: Sequence[Volume],
    *,
    nuclide: str,
    mask: NDArray[np.bool_] | None = None,
    injection_time_h: float = 0.0,
    models: Sequence[str] = VOXEL_MODELS,
    min_r2: float = 0.8,
    allow_slower_than_physical: bool = False,
    floor_frac: float = 0.01,
    chunk_voxels: int = 262_144,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> VoxelFitResult:
    """Voxel-wise TIA map from activity-concentration maps on one grid.

    Parameters
    ----------
    time_h : sequence of float
        Scan times (h), one per map, same clock as ``injection_time_h``.
    activity_maps : sequence of Volume
        Activity concentration (Bq/mL, at scan time, not decay corrected), all
        on the same grid: registered time points already resampled onto the
        reference grid by the caller.
    nuclide : str
        Nuclide name (e.g. ``"Lu-177"``), for the physical decay constant.
    mask : bool array [z, y, x], optional
        Voxels to fit (e.g. a body mask); default every voxel.
    injection_time_h : float
        Administration time (h).
    models : sequence of str
        Candidate models (``"mono"``, ``"biexp-uptake"``).
    min_r2 : float
        Smallest weighted R^2 of an accepted fit.
    allow_slower_than_physical : bool
        Allow clearance slower than physical decay.
    floor_frac : float
        Relative weight floor (module docstring).
    chunk_voxels : int
        Voxels per chunk (memory: about 200 bytes x chunk; progress and the
        cancel check run once per chunk).
    progress, cancel
        Plain callbacks (:mod:`dosimetry_core.progress`).

    Returns
    -------
    VoxelFitResult
        TIA map (MBq h/mL), model map, effective-rate map, counts, total TIA.

    Raises
    ------
    InvalidInputError
        Bad times, maps not on one grid, units not Bq/mL, bad mask or model.
    Cancelled
        When ``cancel()`` returns True between chunks.
    """
    if len(activity_maps) != len(time_h):
        raise InvalidInputError(f"{len(time_h)} time points but {len(activity_maps)} activity maps")
    tau = _tau(time_h, injection_time_h)
    _check_models(models)
    ref = activity_maps[0]
    for v in activity_maps:
        if v.units != ImageUnits.BQML:
            raise InvalidInputError(f"activity maps must be in Bq/mL, got {v.units}")
        if v.geometry.shape_zyx != ref.geometry.shape_zyx or not np.allclose(
            v.geometry.affine, ref.geometry.affine, atol=1e-4
        ):
            raise InvalidInputError(
                "activity maps must share one grid; resample the registered time points "
                "onto the reference grid first"
            )
    shape = ref.shape
    if mask is None:
        flat_idx = np.arange(int(np.prod(shape)), dtype=np.int64)
    else:
        m = np.asarray(mask, dtype=bool)
        if m.shape != shape:
            raise InvalidInputError(f"mask shape {m.shape} does not match the maps {shape}")
        flat_idx = np.flatnonzero(m)
    lam_phys = decay_constant_per_h(nuclide)
    flats = [np.asarray(v.array).reshape(-1) for v in activity_maps]

    n_vox = int(flat_idx.size)
    tia = np.zeros(int(np.prod(shape)), dtype=np.float64)
    code = np.zeros(tia.size, dtype=np.uint8)
    lam = np.full(tia.size, np.nan, dtype=np.float32)
    chunk = max(int(chunk_voxels), 1)
    n_chunks = max(math.ceil(n_vox / chunk), 1)
    report(progress, 0.0, f"voxel-wise fit of {n_vox} voxels")
    for c in range(n_chunks):
        check_cancel(cancel)
        idx = flat_idx[c * chunk : (c + 1) * chunk]
        if idx.size == 0:
            break
        y = np.empty((idx.size, tau.size), dtype=np.float64)
        for j, f in enumerate(flats):
            y[:, j] = f[idx]
        fits = fit_tacs(
            tau,
            y,
            lambda_phys_per_h=lam_phys,
            models=models,
            min_r2=min_r2,
            allow_slower_than_physical=allow_slower_than_physical,
            floor_frac=floor_frac,
        )
        tia[idx] = fits.tia * MBQ_PER_BQ
        code[idx] = fits.code
        lam[idx] = fits.lambda_eff_per_h
        if c + 1 < n_chunks:
            report(progress, (c + 1) / n_chunks, f"fitted {(c + 1) * chunk}/{n_vox} voxels")
    check_cancel(cancel)

    vox_ml = ref.geometry.voxel_volume_ml
    counts = {
        name: int(np.count_nonzero(code[flat_idx] == k))
        for name, k in MODEL_CODES.items()
        if name != "outside"
    }
    tia_map = Volume(
        tia.reshape(shape),
        ref.geometry,
        ImageUnits.MBQH_PER_ML,
        f"voxel-wise TIA ({nuclide})",
    )
    report(progress, 1.0, f"fitted {n_vox} voxels: {counts}")
    return VoxelFitResult(
        tia_map=tia_map,
        model_map=code.reshape(shape),
        lambda_eff_map=lam.reshape(shape),
        counts=counts,
        total_tia_mbq_h=float(np.sum(tia) * vox_ml),
        nuclide=nuclide,
        lambda_phys_per_h=lam_phys,
        time_h=tuple(float(t) for t in time_h),
        injection_time_h=float(injection_time_h),
        n_voxels=n_vox,
        rules={
            "weights": "relative: 1/max(y, floor_frac*max(y))^2 from the data",
            "selection": "AICc if n>=5; n=4: AIC, or biexp-uptake when y0<y1; accepted fits only",
            "fallback": "trapezoid, linear from 0 at injection, physical-decay tail",
            "before_first_point": "fitted curve extrapolated back to the injection",
        },
    )
