"""Photon Monte Carlo in the patient CT: absorbed dose from a time-integrated activity map.

Method
------
* **Source.**  Photons of the nuclide's ICRP-107 lines (ICRP Publication 107, 2008;
  ``emission_lines(nuclide, "gamma" | "X" | "annihilation")``, yields per decay)
  are emitted isotropically from positions uniform within a voxel, the voxel
  chosen in proportion to its number of decays (``decays_bq_s``, Bq*s) with
  Walker's alias method (Walker, ACM Trans Math Softw 3:253, 1977; O(1) per
  photon), the line in proportion to its yield.  Each history is one photon; a history carries the
  weight ``N_decays * Y / N_histories`` photons (``Y`` = transported photons per decay).
  Lines below the energy cut-off are not transported: their energy joins the
  local part (see below) when ``deposit_local`` is set, otherwise it is dropped.
* **Transport** (:mod:`._mc_photon`): exact voxel ray-marching (Siddon, Med Phys
  12:252, 1985; Amanatides & Woo, Eurographics 1987) of the optical depth
  ``-ln u`` with ``mu/rho(E, material) * rho(voxel)``; no Woodcock tracking, the
  track-length estimator needs the chords anyway.  Interactions:
  photoelectric (photon absorbed; fluorescence of tissue elements, <= 4 keV, is
  deposited locally), Compton scattering sampled from the free-electron
  Klein-Nishina cross section with Kahn's method (Kahn, USAEC AECU-3259, RAND
  1954; Everett & Cashwell, LA-9721-MS, 1983) -- electron binding and Doppler
  broadening are neglected in the sampling, while the Compton attenuation
  coefficient below 0.8 MeV is xraylib's, which includes the incoherent
  scattering function -- and Rayleigh scattering sampled from the squared
  atomic form factor (PENELOPE; Baro et al., Radiat Phys Chem 44:531, 1994).  Photons that
  leave the grid are lost; a photon whose energy falls below
  ``energy_cutoff_mev`` after a Compton scatter deposits it where it is.
  Cross sections: :mod:`.photon_data` (xraylib; pair production neglected).
* **Scoring.**  Default: track-length estimator of collision kerma (Williamson,
  Med Phys 14:567-576, 1987): each chord of length ``l`` in a voxel adds
  ``E * mu_en/rho(E, material) * l`` to its energy per unit mass (times
  ``1/V``), far less noisy than scoring interaction sites.  Kerma equals absorbed
  dose when the secondary electrons stop within the voxel (charged-particle
  equilibrium): Compton electrons of Lu-177 photons travel < 0.5 mm in tissue,
  small against clinical voxels; at interfaces and for MeV photons this is an
  approximation.  ``estimator="analog"`` scores the energy transferred at the
  interaction sites instead (unbiased for the same quantity, noisier).
* **Local part** (``deposit_local=True``): the non-penetrating energy per decay
  (electrons, alphas, recoils; ``energy_per_decay(nuclide).non_penetrating_mev``)
  plus the photon lines below the cut-off, deposited in the source voxel:
  ``D = N * E * J_PER_MEV / (rho * V)``.  It has no statistical uncertainty.
* **Components.**  The dose is a *photon* component (the Monte Carlo above,
  ``photon_dose_gy``) plus a *deterministic* electron component: the local part,
  or an electron (and alpha) dose computed elsewhere and passed in
  (``electron_dose_gy``, e.g. a kernel convolution).  Only the photon component
  has a statistical uncertainty, so every uncertainty below is the photon
  component's; relative to the total dose it is smaller by the factor
  ``D_photon / D_total``.
* **Uncertainty**: batch method -- the histories are split into ``B`` independent
  batches, ``D = mean_b D_b`` and the 1-SD uncertainty of the mean is
  ``sqrt(sum_b (D_b - D)^2 / (B (B - 1)))`` (e.g. Walters, Kawrakow &
  Rogers, Med Phys 29:2745, 2002, who compare it with history-by-history).
  Per voxel: ``rel_uncertainty`` is that SD over the **total** dose ``dose_gy``
  (photons + deterministic part; voxels with zero dose report 1.0) and
  ``photon_rel_uncertainty`` over the photon dose.  Per VOI (``voi_masks`` and
  the target): the same formula applied to the batch values of the VOI's
  (weighted) mean photon dose, which keeps the correlation between the voxels
  of a VOI (a summed voxel SD would overstate it many times); reported in
  ``voi_components`` with the mean dose of each component.
* **Stop rule** with ``target_uncertainty``: batches of ``histories // batches``
  photons are run, at least ``batches`` of them, then one more at a time until
  the 1-SD relative uncertainty of the mean dose in ``target_mask`` of the
  requested component is ``<= target_uncertainty`` -- ``target_component="photon"``
  (default): ``SD / D_photon``; ``"total"``: ``SD / (D_photon + D_electron)`` --
  or until the next batch would exceed ``max_histories``.  The default is the
  photon component because the electron part has no statistical uncertainty: a
  total-dose target is met early by a noisy photon dose whenever electrons
  dominate (96 % of a Lu-177 kidney dose).  With few batches the SD estimate is
  itself uncertain (relative SD ``~1/sqrt(2 (B - 1))``), so the stop can come a
  batch early or late.
* **Random numbers and threads**: chunks of each batch have their own
  xoshiro256+ stream seeded from ``(seed, batch, chunk)``; the number of chunks
  does not depend on the number of threads, so a seed gives the same histories
  on any machine; only the order of the final per-thread sums changes with the
  thread count (results equal to rounding, ~1e-15 relative).

Not modelled: pair production, bremsstrahlung and characteristic x-rays of the
secondary electrons (their energy is counted as absorbed where transferred),
electron transport (electrons are local or handled by a kernel elsewhere),
polarisation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.dose import _mc_photon
from dosimetry_core.dose.photon_data import ENERGY_MAX_MEV, ENERGY_MIN_MEV, photon_tables
from dosimetry_core.dose.point_kernels import PointKernel
from dosimetry_core.dose.units import J_PER_MEV, KG_PER_G
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.density import HuDensityCalibration
from dosimetry_core.physics.materials import Material, material, normalize_medium
from dosimetry_core.physics.nuclides import emission_lines, energy_per_decay, normalize_nuclide
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

PHOTON_RADIATION_TYPES: tuple[str, ...] = ("gamma", "X", "annihilation")
"""ICRP-107 radiation types transported as photons."""
DEFAULT_ENERGY_CUTOFF_MEV = 0.005
"""Photons below 5 keV (mean free path < 0.3 mm in soft tissue) are absorbed locally."""
CHUNKS_PER_BATCH = 64
"""Independent random streams per batch (fixed, so results do not depend on threads)."""


@dataclass(frozen=True)
class VoiDoseComponents:
    """Mean dose of one VOI by component and the photon component's uncertainty.

    Means are weighted by the VOI mask or partial-volume fractions.  The
    electron (deterministic) component has no statistical uncertainty; the SD is
    the batch-method 1-SD uncertainty of the VOI mean of the photon component.
    """

    name: str
    mean_gy: float
    """Mean total dose (photon + electron component), Gy."""
    photon_mean_gy: float
    """Mean photon component, Gy."""
    electron_mean_gy: float
    """Mean deterministic component (local part or ``electron_dose_gy``), Gy; 0 if none."""
    photon_sd_gy: float
    """1-SD statistical uncertainty of ``photon_mean_gy`` (= of ``mean_gy``), Gy."""
    photon_rel_uncertainty: float
    """``photon_sd_gy / photon_mean_gy`` (inf when the photon mean is 0)."""
    total_rel_uncertainty: float
    """``photon_sd_gy / mean_gy`` (inf when the mean is 0)."""
    voxels: float
    """Sum of the VOI's weights (voxels, fractional with partial volumes)."""


@dataclass(frozen=True)
class MonteCarloResult:
    """Absorbed dose of one Monte Carlo run (arrays ``[z, y, x]`` like the input)."""

    dose_gy: NDArray[np.float32]
    """Total absorbed dose: photons (+ deterministic electron part if any), Gy."""
    photon_dose_gy: NDArray[np.float32]
    """Photon part (collision kerma), Gy."""
    local_dose_gy: NDArray[np.float32] | None
    """Deterministic part: the local part (non-penetrating emissions, lines below the
    cut-off) or the ``electron_dose_gy`` passed in, Gy; None if neither."""
    rel_uncertainty: NDArray[np.float32]
    """1-SD relative statistical uncertainty of ``dose_gy`` per voxel (batch method)."""
    histories: int
    seed: int
    elapsed_s: float
    """Wall time of the call, s (includes a first-call numba compile or cache load)."""
    histories_per_s: float
    stopped_because: str
    """``"histories"``, ``"target uncertainty"``, ``"max histories"`` or ``"no photons"``."""
    target_uncertainty_reached: float | None
    """1-SD relative uncertainty of the mean dose in ``target_mask`` of the
    ``target_component`` (module docstring); None without a target."""
    batches: int = 0
    emitted_photon_energy_mev: float = 0.0
    """Photon energy emitted by the sampled histories, scaled to all decays (MeV)."""
    escaped_photon_energy_mev: float = 0.0
    """Photon energy that left the grid, scaled to all decays (MeV)."""
    photon_rel_uncertainty: NDArray[np.float32] | None = None
    """1-SD relative statistical uncertainty of ``photon_dose_gy`` per voxel (1.0 where 0)."""
    target_component: str = "photon"
    """Component of the stop rule and of ``target_uncertainty_reached``."""
    target_photon_uncertainty: float | None = None
    """Photon component of the target VOI mean: 1 SD / photon mean."""
    target_total_uncertainty: float | None = None
    """Total dose of the target VOI mean: photon 1 SD / total mean."""
    target_mean_voxel_uncertainty: float | None = None
    """``sum SD / sum D_total`` over the target voxels: the dose-weighted mean voxel
    relative uncertainty of the total dose (the stop figure of earlier versions)."""
    voi_components: tuple[VoiDoseComponents, ...] = ()
    """Per VOI of ``voi_masks`` (in their order): component means and uncertainty."""

    def voi(self, name: str) -> VoiDoseComponents:
        """The components of VOI ``name`` (KeyError if it was not given)."""
        for c in self.voi_components:
            if c.name == name:
                return c
        raise KeyError(name)


# ------------------------------------------------------------------ helpers
def photon_lines(
    nuclide: str, energy_cutoff_mev: float = DEFAULT_ENERGY_CUTOFF_MEV
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Transported photon lines of ``nuclide``: (energies MeV, yields per decay, E_below_cut).

    ``E_below_cut`` is the energy per decay (MeV) of the lines below the cut-off,
    which are deposited locally instead of transported.
    """
    n = normalize_nuclide(nuclide)
    energies: list[NDArray[np.float64]] = []
    yields: list[NDArray[np.float64]] = []
    for kind in PHOTON_RADIATION_TYPES:
        try:
            e, y = emission_lines(n, kind)
        except InvalidInputError:  # the nuclide has no emission of this type
            continue
        energies.append(e)
        yields.append(y)
    e_all = np.concatenate(energies) if energies else np.zeros(0)
    y_all = np.concatenate(yields) if yields else np.zeros(0)
    keep = (e_all >= energy_cutoff_mev) & (y_all > 0)
    below = float(np.sum(e_all[~keep] * y_all[~keep]))
    return e_all[keep], y_all[keep], below


def _check_lines(
    energies: NDArray[np.float64], yields: NDArray[np.float64], *, allow_low: bool = False
) -> None:
    """Shapes, finiteness and the energy range (``allow_low``: lines below the
    transport range are accepted, they are absorbed where they are emitted)."""
    if energies.shape != yields.shape or energies.ndim != 1:
        raise InvalidInputError("photon line energies and yields must be 1-D of equal length")
    if np.any(~np.isfinite(energies)) or np.any(~np.isfinite(yields)) or np.any(yields < 0):
        raise InvalidInputError("photon line yields must be finite and >= 0")
    e_min = 0.0 if allow_low else ENERGY_MIN_MEV
    if energies.size and (
        energies.max() > ENERGY_MAX_MEV or energies.min() < e_min or energies.min() <= 0
    ):
        raise InvalidInputError(
            f"photon energies must lie in [{ENERGY_MIN_MEV}, {ENERGY_MAX_MEV}] MeV"
        )


def _cdf(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    c = np.cumsum(weights, dtype=np.float64)
    c /= c[-1]
    c[-1] = 1.0
    return c


def _resolve_materials(materials: Sequence[Material | str]) -> tuple[Material, ...]:
    return tuple(material(m) if isinstance(m, str) else m for m in materials)


def _spacing_cm(spacing_mm: Sequence[float]) -> tuple[float, float, float]:
    sp = tuple(float(s) for s in spacing_mm)
    if len(sp) != 3 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise InvalidInputError("spacing_mm needs three positive numbers (x, y, z)")
    return sp[0] / 10.0, sp[1] / 10.0, sp[2] / 10.0


def _voi_weights(
    mask_like: ArrayLike, shape: tuple[int, ...], what: str
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Flat voxel indices and weights of a boolean mask or a fraction map in [0, 1]."""
    arr = np.asarray(mask_like)
    if arr.shape != shape:
        raise InvalidInputError(f"{what} must have the shape of decays_bq_s {shape}")
    w = arr.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
        raise InvalidInputError(f"{what} must be a mask or fractions in [0, 1]")
    idx = np.flatnonzero(w > 0).astype(np.int64)
    if idx.size == 0:
        raise InvalidInputError(f"{what} is empty")
    return idx, np.ascontiguousarray(w[idx])


def _voi_mean_statistics(
    batch_sums: list[NDArray[np.float64]], weight_sums: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Photon mean dose per VOI and its 1-SD uncertainty from the batch sums (batch method)."""
    vals = np.asarray(batch_sums, dtype=np.float64) / weight_sums  # [batch, voi]
    n = vals.shape[0]
    mean = vals.mean(axis=0)
    if n < 2:
        return mean, np.full(mean.shape, math.inf)
    return mean, vals.std(axis=0, ddof=1) / math.sqrt(n)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


# ----------------------------------------------------------------- the engine
@dataclass(frozen=True)
class _Inputs:
    """The checked inputs of one Monte Carlo run (:func:`_check_inputs`)."""

    decays: NDArray[np.float64]
    mat_idx: NDArray[np.integer]
    rho: NDArray[np.float64]
    n_decays: float
    mats: tuple[Material, ...]
    spacing_cm: tuple[float, float, float]
    voxel_cm3: float
    histories: int
    batches: int
    electron: NDArray[np.float64] | None


def _check_inputs(
    decays_bq_s: ArrayLike,
    material_index: ArrayLike,
    density_g_cm3: ArrayLike,
    materials: Sequence[Material | str],
    spacing_mm: Sequence[float],
    *,
    histories: int,
    batches: int,
    seed: int,
    estimator: str,
    energy_cutoff_mev: float,
    target_component: str,
    deposit_local: bool,
    electron_dose_gy: ArrayLike | None,
) -> _Inputs:
    """Check a run's inputs (one message naming the field) and convert the arrays.

    Shared by :func:`run_monte_carlo` and the split run
    (:func:`dosimetry_core.dose.mc_split.prepare_split`), so both refuse the
    same inputs with the same words.
    """
    decays = np.asarray(decays_bq_s, dtype=np.float64)
    mat_idx = np.asarray(material_index)
    rho = np.asarray(density_g_cm3, dtype=np.float64)
    if decays.ndim != 3:
        raise InvalidInputError("decays_bq_s must be a 3-D array [z, y, x]")
    if mat_idx.shape != decays.shape or rho.shape != decays.shape:
        raise InvalidInputError(
            f"decays {decays.shape}, material index {mat_idx.shape} and density "
            f"{rho.shape} must have the same shape"
        )
    if not np.all(np.isfinite(decays)) or np.any(decays < 0):
        raise InvalidInputError("decays_bq_s must be finite and >= 0")
    n_decays = float(decays.sum())
    if n_decays <= 0:
        raise InvalidInputError("decays_bq_s is zero everywhere: nothing to transport")
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise InvalidInputError("densities must be finite and >= 0 g/cm3")
    mats = _resolve_materials(materials)
    if not mats:
        raise InvalidInputError("at least one material is needed")
    if not np.issubdtype(mat_idx.dtype, np.integer) or mat_idx.min() < 0:
        raise InvalidInputError("material_index must hold non-negative integers")
    if int(mat_idx.max()) >= len(mats):
        raise InvalidInputError(
            f"material_index uses index {int(mat_idx.max())} but only {len(mats)} materials given"
        )
    dx, dy, dz = _spacing_cm(spacing_mm)
    if estimator not in ("track-length", "analog"):
        raise InvalidInputError("estimator must be 'track-length' or 'analog'")
    batches = int(batches)
    histories = int(histories)
    if batches < 2:
        raise InvalidInputError("at least 2 batches are needed for an uncertainty")
    if histories < batches:
        raise InvalidInputError(f"histories ({histories}) must be at least batches ({batches})")
    if seed < 0:
        raise InvalidInputError("seed must be a non-negative integer")
    if not ENERGY_MIN_MEV <= energy_cutoff_mev < 1.0:
        raise InvalidInputError(f"energy_cutoff_mev must be in [{ENERGY_MIN_MEV}, 1) MeV")
    if np.any((decays > 0) & (rho <= 0)):
        raise InvalidInputError("voxels with decays must have a density > 0 g/cm3")
    if target_component not in ("photon", "total"):
        raise InvalidInputError("target_component must be 'photon' or 'total'")
    electron: NDArray[np.float64] | None = None
    if electron_dose_gy is not None:
        if deposit_local:
            raise InvalidInputError(
                "electron_dose_gy replaces the local part: use it with deposit_local=False"
            )
        electron = np.asarray(electron_dose_gy, dtype=np.float64)
        if electron.shape != decays.shape:
            raise InvalidInputError("electron_dose_gy must have the shape of decays_bq_s")
        if not np.all(np.isfinite(electron)) or np.any(electron < 0):
            raise InvalidInputError("electron_dose_gy must be finite and >= 0")
    return _Inputs(
        decays, mat_idx, rho, n_decays, mats, (dx, dy, dz), dx * dy * dz, histories, batches,
        electron,
    )  # fmt: skip


def run_monte_carlo(
    decays_bq_s: ArrayLike,
    material_index: ArrayLike,
    density_g_cm3: ArrayLike,
    materials: Sequence[Material | str],
    spacing_mm: Sequence[float],
    nuclide: str,
    *,
    histories: int = 10**6,
    deposit_local: bool = True,
    include_progeny: bool = False,
    target_uncertainty: float | None = None,
    target_mask: ArrayLike | None = None,
    max_histories: int = 10**9,
    batches: int = 10,
    seed: int = 0,
    estimator: str = "track-length",
    energy_cutoff_mev: float = DEFAULT_ENERGY_CUTOFF_MEV,
    target_component: str = "photon",
    voi_masks: Mapping[str, ArrayLike] | None = None,
    electron_dose_gy: ArrayLike | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> MonteCarloResult:
    """Absorbed dose (Gy) from photon transport in a voxelised patient (module docstring).

    The dose has a photon component (Monte Carlo, with a statistical
    uncertainty) and a deterministic electron component (the local part, or
    ``electron_dose_gy``), which has none; the stop rule therefore works by
    default on the photon component (``target_component="photon"``).

    Parameters
    ----------
    decays_bq_s
        Time-integrated activity per voxel (number of decays, Bq*s), ``[z, y, x]``.
    material_index
        Index into ``materials`` per voxel (e.g. from
        :func:`dosimetry_core.dose.ct_materials.ct_to_materials`).
    density_g_cm3
        Mass density per voxel (g/cm^3).
    materials
        Media of the indices (:class:`Material` or medium names).
    spacing_mm
        Voxel size (x, y, z) in mm, like ``Geometry.spacing_mm``.
    nuclide
        ICRP-107 nuclide (``"Lu-177"``).
    include_progeny
        Also the short-lived progeny decaying in place, weighted by their decays
        per parent decay (:func:`dosimetry_core.physics.nuclides.decay_chain`):
        photon lines from ``chain_photon_lines``, local energy from
        ``chain_energy_per_decay`` (alpha emitters such as Ac-225).
    histories
        Photon histories (fixed mode), split into ``batches`` equal batches; with
        ``target_uncertainty`` this sets the batch size ``histories // batches``.
    deposit_local
        Add the local part (electrons, alphas, lines below the cut-off).
    target_uncertainty
        Stop when the 1-SD relative uncertainty of the mean dose in ``target_mask``
        of ``target_component`` is at or below this (e.g. 0.02).
    target_mask
        Voxels (mask, or fractions in [0, 1]) of the stop rule and of
        ``target_uncertainty_reached``; default: voxels with decays.
    target_component
        ``"photon"`` (default): the uncertainty of the photon component's VOI
        mean -- the only component with a statistical uncertainty;
        ``"total"``: the same SD over the total (photon + electron) VOI mean.
    voi_masks
        VOIs (name -> mask or partial-volume fractions in [0, 1]) reported in
        ``voi_components``: mean dose per component and the photon uncertainty.
    electron_dose_gy
        Deterministic electron (and alpha) dose computed elsewhere, Gy (e.g. an
        electron kernel convolution), added to the photon dose instead of the
        local part; needs ``deposit_local=False``.
    max_histories
        Upper limit with ``target_uncertainty``.
    batches
        Number of batches (>= 2) for the uncertainty.
    seed
        Non-negative integer; equal seeds give equal results.
    estimator
        ``"track-length"`` (collision kerma, default) or ``"analog"``.
    energy_cutoff_mev
        Photons below this energy are absorbed locally (default 5 keV).
    progress, cancel
        :mod:`dosimetry_core.progress` conventions; cancel raises ``Cancelled``.
    """
    t0 = time.perf_counter()
    if target_uncertainty is not None and not 0 < target_uncertainty < 1:
        raise InvalidInputError("target_uncertainty is a fraction between 0 and 1 (e.g. 0.02)")
    inp = _check_inputs(
        decays_bq_s, material_index, density_g_cm3, materials, spacing_mm,
        histories=histories, batches=batches, seed=seed, estimator=estimator,
        energy_cutoff_mev=energy_cutoff_mev, target_component=target_component,
        deposit_local=deposit_local, electron_dose_gy=electron_dose_gy,
    )  # fmt: skip
    decays, mat_idx, rho, n_decays, mats = inp.decays, inp.mat_idx, inp.rho, inp.n_decays, inp.mats
    dx, dy, dz = inp.spacing_cm
    voxel_cm3, electron = inp.voxel_cm3, inp.electron
    histories, batches = inp.histories, inp.batches
    mask: ArrayLike = decays > 0 if target_mask is None else target_mask
    named = dict(voi_masks or {})
    vois: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = [
        _voi_weights(mask, decays.shape, "target_mask")
    ]
    for name, m in named.items():
        vois.append(_voi_weights(m, decays.shape, f"VOI mask {name!r}"))

    if include_progeny:
        from dosimetry_core.physics.nuclides import chain_energy_per_decay, chain_photon_lines

        chain_e, chain_y = chain_photon_lines(nuclide, include_progeny=True)
        keep = (chain_e >= energy_cutoff_mev) & (chain_y > 0)
        line_e, line_y = chain_e[keep], chain_y[keep]
        below_cut_mev = float(np.sum(chain_e[~keep] * chain_y[~keep]))
        non_penetrating = chain_energy_per_decay(nuclide, include_progeny=True).non_penetrating_mev
    else:
        line_e, line_y, below_cut_mev = photon_lines(nuclide, energy_cutoff_mev)
        non_penetrating = energy_per_decay(nuclide).non_penetrating_mev
    _check_lines(line_e, line_y)
    photons_per_decay = float(line_y.sum())

    # ---- local part
    local: NDArray[np.float64] | None = None
    if deposit_local:
        e_local = non_penetrating + below_cut_mev
        with np.errstate(divide="ignore", invalid="ignore"):
            local = np.where(
                decays > 0, decays * e_local * J_PER_MEV / (rho * voxel_cm3 * KG_PER_G), 0.0
            )
    elif electron is not None:
        local = electron
    voi_voxels = np.concatenate([v for v, _ in vois])
    voi_weights = np.concatenate([w for _, w in vois])
    voi_starts = np.cumsum([0] + [v.size for v, _ in vois]).astype(np.int64)
    weight_sums = np.array([w.sum() for _, w in vois])
    det_means = (
        np.zeros(len(vois))
        if local is None
        else np.array([float(np.dot(local.reshape(-1)[v], w)) for v, w in vois]) / weight_sums
    )
    has_target = target_uncertainty is not None or target_mask is not None

    def components(
        ph_mean: NDArray[np.float64], ph_sd: NDArray[np.float64]
    ) -> tuple[list[VoiDoseComponents], float, float]:
        rows = []
        for k in range(len(vois)):
            tot = float(ph_mean[k] + det_means[k])
            rows.append(
                VoiDoseComponents(
                    name="" if k == 0 else list(named)[k - 1],
                    mean_gy=tot,
                    photon_mean_gy=float(ph_mean[k]),
                    electron_mean_gy=float(det_means[k]),
                    photon_sd_gy=float(ph_sd[k]),
                    photon_rel_uncertainty=_ratio(float(ph_sd[k]), float(ph_mean[k])),
                    total_rel_uncertainty=_ratio(float(ph_sd[k]), tot),
                    voxels=float(weight_sums[k]),
                )
            )
        return rows, rows[0].photon_rel_uncertainty, rows[0].total_rel_uncertainty

    shape = decays.shape
    if photons_per_decay <= 0:
        zeros = np.zeros(shape, dtype=np.float32)
        only_local = zeros if local is None else local.astype(np.float32)
        return MonteCarloResult(
            dose_gy=only_local,
            photon_dose_gy=zeros,
            local_dose_gy=None if local is None else only_local.copy(),
            rel_uncertainty=np.zeros(shape, dtype=np.float32),
            histories=0,
            seed=int(seed),
            elapsed_s=time.perf_counter() - t0,
            histories_per_s=0.0,
            stopped_because="no photons",
            target_uncertainty_reached=0.0,
            photon_rel_uncertainty=np.zeros(shape, dtype=np.float32),
            target_component=target_component,
            target_photon_uncertainty=0.0,
            target_total_uncertainty=0.0,
            target_mean_voxel_uncertainty=0.0,
            voi_components=tuple(components(np.zeros(len(vois)), np.zeros(len(vois)))[0][1:]),
        )

    tables = photon_tables(mats)
    flat_dec = decays.reshape(-1)
    src_index = np.flatnonzero(flat_dec > 0).astype(np.int64)
    src_prob, src_alias = _mc_photon.build_alias(flat_dec[src_index])
    line_cdf = _cdf(line_y)
    mat_flat = np.ascontiguousarray(mat_idx.reshape(-1), dtype=np.uint8)
    rho_flat = np.ascontiguousarray(rho.reshape(-1), dtype=np.float32)
    nz, ny, nx = shape
    n_vox = mat_flat.size

    from numba import get_num_threads

    n_lanes = max(1, int(get_num_threads()))
    score = np.zeros((n_lanes, n_vox), dtype=np.float64)
    tally = np.zeros((n_lanes, 4), dtype=np.float64)
    sum_d = np.zeros(n_vox, dtype=np.float64)
    sum_d2 = np.zeros(n_vox, dtype=np.float64)
    local_flat = None if local is None else local.reshape(-1)
    batch_sums: list[NDArray[np.float64]] = []
    voi_out = np.zeros(len(vois), dtype=np.float64)
    per_batch = histories // batches
    # Gy per (MeV*cm^3/g of score) per history in a batch: N Y / n * J/MeV / (V * kg/g)
    gy_per_score = n_decays * photons_per_decay / per_batch * J_PER_MEV / (voxel_cm3 * KG_PER_G)
    analog = estimator == "analog"
    limit = histories if target_uncertainty is None else max(int(max_histories), histories)

    done_batches = 0
    figure = math.inf
    stopped = "histories"
    report(progress, 0.0, "photon Monte Carlo: starting")
    while True:
        check_cancel(cancel)
        _mc_photon.transport_batch(
            int(seed),
            done_batches,
            per_batch,
            CHUNKS_PER_BATCH,
            score,
            tally,
            src_index,
            src_prob,
            src_alias,
            line_e,
            line_cdf,
            mat_flat,
            rho_flat,
            nz,
            ny,
            nx,
            dx,
            dy,
            dz,
            tables.log_energy_min,
            tables.inv_dlog_energy,
            tables.total_cm2_g,
            tables.photoelectric_cm2_g,
            tables.compton_cm2_g,
            tables.mu_en_cm2_g,
            tables.rayleigh_x2,
            tables.rayleigh_cumulative,
            float(energy_cutoff_mev),
            analog,
        )
        _mc_photon.voi_batch_sums(score, gy_per_score, voi_voxels, voi_weights, voi_starts, voi_out)
        batch_sums.append(voi_out.copy())
        _mc_photon.accumulate_batch(score, gy_per_score, sum_d, sum_d2)  # resets score
        done_batches += 1
        done = done_batches * per_batch
        if done_batches >= 2:
            ph_mean, ph_sd = _voi_mean_statistics(batch_sums, weight_sums)
            den = ph_mean[0] + (det_means[0] if target_component == "total" else 0.0)
            figure = _ratio(float(ph_sd[0]), float(den))
        msg = f"photon Monte Carlo: {done:,} histories, uncertainty {figure:.2%}"
        if target_uncertainty is None:
            report(progress, done / limit, msg)
            if done_batches >= batches:
                stopped = "histories"
                break
        else:
            # expected fraction of the work: U falls as 1/sqrt(histories)
            reach = 1.0 if figure <= 0 else min(1.0, (target_uncertainty / figure) ** 2)
            frac = max(done / limit, reach)
            report(progress, min(frac, 0.99), msg)
            if done_batches >= batches and figure <= target_uncertainty:
                stopped = "target uncertainty"
                break
            if done + per_batch > limit:
                stopped = "max histories"
                break
    report(progress, 1.0, "photon Monte Carlo: done")

    total = np.empty(n_vox, dtype=np.float32)
    mean = np.empty(n_vox, dtype=np.float32)
    sd = np.empty(n_vox, dtype=np.float64)
    rel = np.empty(n_vox, dtype=np.float32)
    rel_ph = np.empty(n_vox, dtype=np.float32)
    _mc_photon.finalize_batches(
        sum_d,
        sum_d2,
        done_batches,
        sum_d if local_flat is None else local_flat,
        local_flat is not None,
        total,
        mean,
        sd,
        rel,
        rel_ph,
    )
    rows, target_ph, target_tot = components(*_voi_mean_statistics(batch_sums, weight_sums))
    t_vox, t_w = vois[0]
    t_total = sum_d[t_vox] / done_batches + (0.0 if local_flat is None else local_flat[t_vox])
    voxel_figure = _ratio(float(np.dot(sd[t_vox], t_w)), float(np.dot(t_total, t_w)))
    n_hist = done_batches * per_batch
    elapsed = time.perf_counter() - t0
    scale = n_decays * photons_per_decay / n_hist
    tallies = tally.sum(axis=0)
    return MonteCarloResult(
        dose_gy=total.reshape(shape),
        photon_dose_gy=mean.reshape(shape),
        local_dose_gy=None if local is None else local.astype(np.float32),
        rel_uncertainty=rel.reshape(shape),
        histories=n_hist,
        seed=int(seed),
        elapsed_s=elapsed,
        histories_per_s=n_hist / elapsed if elapsed > 0 else 0.0,
        stopped_because=stopped,
        target_uncertainty_reached=figure if has_target else None,
        batches=done_batches,
        emitted_photon_energy_mev=float(tallies[0]) * scale,
        escaped_photon_energy_mev=float(tallies[1]) * scale,
        photon_rel_uncertainty=rel_ph.reshape(shape),
        target_component=target_component,
        target_photon_uncertainty=target_ph if has_target else None,
        target_total_uncertainty=target_tot if has_target else None,
        target_mean_voxel_uncertainty=voxel_figure if has_target else None,
        voi_components=tuple(rows[1:]),
    )


def run_monte_carlo_ct(
    decays_bq_s: ArrayLike,
    hu: ArrayLike,
    spacing_mm: Sequence[float],
    nuclide: str,
    *,
    calibration: HuDensityCalibration | None = None,
    **options: Any,
) -> MonteCarloResult:
    """:func:`run_monte_carlo` on a CT in HU on the same grid as ``decays_bq_s``.

    Materials and densities come from
    :func:`dosimetry_core.dose.ct_materials.ct_to_materials` with ``calibration``
    (the generic HU-density table when None); ``options`` go to
    :func:`run_monte_carlo`.
    """
    from dosimetry_core.dose.ct_materials import ct_to_materials

    index, density, mats = ct_to_materials(hu, calibration)
    return run_monte_carlo(
        decays_bq_s,
        index,
        density,
        mats,
        spacing_mm,
        nuclide,
        **options,
    )


# -------------------------------------------------------------- point kernel
def photon_point_kernel(
    nuclide_or_lines: str | tuple[ArrayLike, ArrayLike],
    medium: str = "soft-tissue",
    *,
    r_edges_mm: ArrayLike,
    histories: int,
    seed: int = 0,
    density_g_cm3: float | None = None,
    energy_cutoff_mev: float = DEFAULT_ENERGY_CUTOFF_MEV,
) -> PointKernel:
    """Photon energy-deposition kernel of an isotropic point source in an infinite medium.

    Photons of the nuclide's lines (or of ``(energies_mev, yields)``) are followed
    with the physics of :func:`run_monte_carlo` in a homogeneous, infinite
    ``medium``; the energy transferred at each interaction (photoelectric: all;
    Compton: ``E - E'``; below the cut-off: the rest) is scored in the spherical
    shell of the interaction point (analog scoring, electrons local).  Returns the
    fraction of the emitted photon energy per shell; what lands beyond the last
    edge is ``escaped_fraction``.  Lines below ``energy_cutoff_mev`` are absorbed at
    the source (first shell).  ``energy_mev`` is the photon energy per decay of the
    lines used.
    """
    edges_mm = np.asarray(r_edges_mm, dtype=np.float64)
    if (
        edges_mm.ndim != 1
        or edges_mm.size < 2
        or edges_mm[0] != 0
        or np.any(np.diff(edges_mm) <= 0)
    ):
        raise InvalidInputError("r_edges_mm must start at 0 and increase")
    histories = int(histories)
    if histories < 1:
        raise InvalidInputError("histories must be at least 1")
    if seed < 0:
        raise InvalidInputError("seed must be a non-negative integer")
    name = normalize_medium(medium)
    mat = material(name)
    rho = mat.density_g_cm3 if density_g_cm3 is None else float(density_g_cm3)
    if not (math.isfinite(rho) and rho > 0):
        raise InvalidInputError("density_g_cm3 must be > 0")
    if isinstance(nuclide_or_lines, str):
        line_e, line_y, below = photon_lines(nuclide_or_lines, energy_cutoff_mev)
        label = normalize_nuclide(nuclide_or_lines)
    else:
        e_all = np.asarray(nuclide_or_lines[0], dtype=np.float64).reshape(-1)
        y_all = np.asarray(nuclide_or_lines[1], dtype=np.float64).reshape(-1)
        _check_lines(e_all, y_all, allow_low=True)
        keep = e_all >= energy_cutoff_mev
        line_e, line_y = e_all[keep], y_all[keep]
        below = float(np.sum(e_all[~keep] * y_all[~keep]))
        label = (
            "lines " + ", ".join(f"{e:g}" for e in e_all[:4]) + (" ..." if e_all.size > 4 else "")
        )
        label += " MeV"
    _check_lines(line_e, line_y)
    energy_mev = float(np.sum(line_e * line_y)) + below
    if energy_mev <= 0:
        raise InvalidInputError("no photon emission to build a kernel from")
    n_shell = edges_mm.size - 1
    shells = np.zeros(n_shell + 1, dtype=np.float64)
    if line_e.size and float(np.sum(line_y)) > 0:
        tables = photon_tables((mat,))
        from numba import get_num_threads

        score = np.zeros((max(1, int(get_num_threads())), n_shell + 1), dtype=np.float64)
        _mc_photon.point_source_batch(
            int(seed),
            histories,
            CHUNKS_PER_BATCH,
            score,
            line_e,
            _cdf(line_y),
            float(rho),
            tables.log_energy_min,
            tables.inv_dlog_energy,
            tables.total_cm2_g,
            tables.photoelectric_cm2_g,
            tables.compton_cm2_g,
            tables.rayleigh_x2,
            tables.rayleigh_cumulative,
            float(energy_cutoff_mev),
            edges_mm / 10.0,
        )
        sampled = score.sum(axis=0)
        # every photon is absorbed somewhere in the infinite medium: the sum is the
        # emitted energy of the sampled histories
        transported = float(np.sum(line_e * line_y))
        shells = sampled / sampled.sum() * transported
    shells[0] += below
    fractions = shells / energy_mev
    return PointKernel(
        r_edges_mm=edges_mm,
        fraction=fractions[:-1],
        energy_mev=energy_mev,
        medium=name,
        density_g_cm3=rho,
        escaped_fraction=float(fractions[-1]),
        component="photon",
        description=(
            f"photon point kernel, {label}, {name} {rho:g} g/cm3, {histories} histories, "
            f"seed {seed}, cut-off {energy_cutoff_mev * 1e3:g} keV (analog, electrons local)"
        ),
    )
