"""Photon Monte Carlo of one case split into independent parts, and the merge.

The engine of :mod:`.monte_carlo` runs its histories in ``B`` batches; batch
``b`` draws its random numbers from streams keyed by ``(seed, b, chunk)``
(:func:`._mc_photon.seed_state`), never from a state shared with another batch.
A *part* is therefore simply a contiguous range of batch indices: part ``k``
runs batches ``[b_k, b_{k+1})`` with exactly the streams the one-process run
uses for them, anywhere (another process, another machine), and returns

* ``sum_d``  = ``sum_b D_b`` and ``sum_d2`` = ``sum_b D_b^2`` per voxel (Gy, Gy^2),
  ``D_b`` the photon dose of batch ``b`` alone (the batch estimate of the whole
  dose: every batch has ``histories // batches`` histories of full weight);
* the per-batch photon dose sums of each VOI (for the VOI-mean uncertainty);
* the energy tallies (emitted, escaped, ... MeV of the sampled histories).

**Merge** (:func:`merge_parts`): the sums add, ``S = sum_k S_k``, ``Q = sum_k Q_k``
over the ``B`` batches of all parts, and the batch method gives per voxel
(Walters, Kawrakow & Rogers, "History by history statistical estimators in the
EGS4 code system", Med Phys 29:2745-2752, 2002, eq. 1-2 with batches as the
independent samples; also Sempau et al., Phys Med Biol 46:1163, 2001)::

    D     = S / B                                  (mean of the batch estimates)
    s_D^2 = (Q / B - D^2) / (B - 1)                = sum_b (D_b - D)^2 / (B (B - 1))

which is the estimator of the one-process run (:func:`._mc_photon.finalize_batches`)
on the same ``B`` batches.  So with the same seed, histories and batches the
merged dose and uncertainty equal the one-process run's to float rounding
(the sums are added in a different order, ~1e-15 relative; the engine's own
results already differ this much between thread counts), whatever the number
of parts; the VOI-mean uncertainty uses the per-batch VOI sums in batch order,
as the engine does.  Parts are checked to belong to the same problem
(fingerprint of the transported inputs) and to cover every batch exactly once:
a missing, repeated or foreign part is refused, never merged.

A stop on a target uncertainty runs in rounds (:func:`run_rounds`): each round
adds batches split into parts, and the engine's stop figure is evaluated on all
the batches so far at the end of each round (the one-process run evaluates it
after every batch, so a split run may carry up to one round more).  Its result
is then exactly the fixed-history run of the batches it ran.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.dose import _mc_photon
from dosimetry_core.dose.monte_carlo import (
    CHUNKS_PER_BATCH,
    DEFAULT_ENERGY_CUTOFF_MEV,
    MonteCarloResult,
    VoiDoseComponents,
    _cdf,
    _check_inputs,
    _check_lines,
    _ratio,
    _voi_mean_statistics,
    _voi_weights,
    photon_lines,
    run_monte_carlo,
)
from dosimetry_core.dose.photon_data import PhotonTables, photon_tables
from dosimetry_core.dose.units import J_PER_MEV, KG_PER_G
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.materials import Material
from dosimetry_core.physics.nuclides import energy_per_decay
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report


# ------------------------------------------------------------ pure merge math
def split_batches(batches: int, parts: int) -> tuple[range, ...]:
    """``parts`` contiguous, non-empty ranges of batch indices covering ``range(batches)``.

    Sizes differ by at most one (the first ``batches % parts`` ranges have one more).
    """
    batches, parts = int(batches), int(parts)
    if parts < 1:
        raise InvalidInputError("the number of parts must be at least 1", field="parts")
    if batches < parts:
        raise InvalidInputError(
            f"{parts} parts need at least {parts} batches (got {batches}): every part runs "
            "whole batches",
            field="parts",
        )
    base, extra = divmod(batches, parts)
    out = []
    start = 0
    for k in range(parts):
        stop = start + base + (1 if k < extra else 0)
        out.append(range(start, stop))
        start = stop
    return tuple(out)


def merge_sums(
    sums: Sequence[ArrayLike], sums_sq: Sequence[ArrayLike], counts: Sequence[int]
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Add the parts' batch sums: ``(sum_k S_k, sum_k Q_k, sum_k B_k)`` (float64).

    ``S_k = sum_b D_b`` and ``Q_k = sum_b D_b^2`` over the ``B_k`` batches of part ``k``.
    """
    if not sums or len(sums) != len(sums_sq) or len(sums) != len(counts):
        raise InvalidInputError("merge needs one sum, one sum of squares and one count per part")
    s = np.zeros(np.shape(sums[0]), dtype=np.float64)
    q = np.zeros_like(s)
    n = 0
    for a, b, c in zip(sums, sums_sq, counts, strict=True):
        a64 = np.asarray(a, dtype=np.float64)
        b64 = np.asarray(b, dtype=np.float64)
        if a64.shape != s.shape or b64.shape != s.shape:
            raise InvalidInputError("every part must cover the same voxels")
        if int(c) < 1:
            raise InvalidInputError("every part must hold at least one batch")
        s += a64
        q += b64
        n += int(c)
    return s, q, n


def batch_statistics(
    sum_d: ArrayLike, sum_d2: ArrayLike, n_batches: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and its 1-SD uncertainty from batch sums (batch method).

    ``mean = S / B``; ``sd = sqrt(max(Q / B - mean^2, 0) / (B - 1))``, i.e. the
    sample SD of the ``B`` batch estimates over ``sqrt(B)`` (Walters, Kawrakow &
    Rogers, Med Phys 29:2745, 2002).  Same float64 operations as
    :func:`._mc_photon.finalize_batches`.  Needs ``B >= 2``.
    """
    n = int(n_batches)
    if n < 2:
        raise InvalidInputError("at least 2 batches are needed for an uncertainty")
    s = np.asarray(sum_d, dtype=np.float64)
    q = np.asarray(sum_d2, dtype=np.float64)
    mean = s / n
    var = np.maximum(q / n - mean * mean, 0.0)
    return mean, np.sqrt(var / (n - 1))


# ------------------------------------------------------------ the problem
@dataclass(frozen=True)
class McTransport:
    """Everything a part needs to transport its batches (shipped once to each worker).

    Flat arrays are in C order of the ``[z, y, x]`` grid.
    """

    fingerprint: str
    """SHA-256 of the inputs that decide the histories (parts of other problems are refused)."""
    seed: int
    per_batch: int
    """Histories per batch."""
    shape: tuple[int, int, int]
    spacing_cm: tuple[float, float, float]
    """Voxel size (x, y, z), cm."""
    src_index: NDArray[np.int64]
    src_prob: NDArray[np.float64]
    src_alias: NDArray[np.int64]
    line_e: NDArray[np.float64]
    line_cdf: NDArray[np.float64]
    mat_flat: NDArray[np.uint8]
    rho_flat: NDArray[np.float32]
    tables: PhotonTables
    energy_cutoff_mev: float
    analog: bool
    gy_per_score: float
    """Gy per unit of score (MeV cm^3/g) per batch."""
    voi_voxels: NDArray[np.int64]
    voi_weights: NDArray[np.float64]
    voi_starts: NDArray[np.int64]

    @property
    def n_voxels(self) -> int:
        return int(self.mat_flat.size)

    @property
    def n_vois(self) -> int:
        return int(self.voi_starts.size - 1)


@dataclass(frozen=True)
class McSplitSetup:
    """A prepared split run: the transport inputs plus what the merge needs."""

    transport: McTransport | None
    """None when the nuclide has no transported photon lines (nothing to split)."""
    batches: int
    histories: int
    """``batches * per_batch``: histories of the whole run."""
    seed: int
    n_decays: float
    photons_per_decay: float
    local_flat: NDArray[np.float64] | None
    """Deterministic part (local or ``electron_dose_gy``), Gy, flat; None if neither."""
    voi_names: tuple[str, ...]
    """``""`` for the target, then the names of ``voi_masks``."""
    target_voxels: NDArray[np.int64]
    target_weights: NDArray[np.float64]
    weight_sums: NDArray[np.float64]
    det_means: NDArray[np.float64]
    has_target: bool
    target_component: str


@dataclass(frozen=True)
class McPartTally:
    """What one part returns: batch sums of its batches ``[first_batch, stop_batch)``."""

    fingerprint: str
    first_batch: int
    stop_batch: int
    sum_d: NDArray[np.float64]
    """``sum_b D_b`` per voxel over the part's batches, Gy (flat)."""
    sum_d2: NDArray[np.float64]
    """``sum_b D_b^2`` per voxel, Gy^2 (flat)."""
    voi_batch_sums: NDArray[np.float64]
    """``[batch, voi]`` weighted photon dose sums of each batch (Gy * weight)."""
    tally_mev: NDArray[np.float64]
    """Emitted, escaped, cut-off and transferred photon energy of the sampled histories, MeV."""
    elapsed_s: float
    worker: str = ""
    """Where the part ran (a Dask worker address; empty in-process)."""
    engine: str = ""
    """:func:`engine_id` of the process that ran the part."""

    @property
    def n_batches(self) -> int:
        return self.stop_batch - self.first_batch


@cache
def engine_id() -> str:
    """Identity of this process's transport code: SHA-256 of the kernels' source.

    A worker with other kernels (another version of the package on a remote
    cluster) would run other histories from the same streams; its parts are
    refused.  Falls back to the package version where the source is not on disk.
    """
    from dosimetry_core import __version__

    h = hashlib.sha256(__version__.encode())
    try:
        h.update(Path(_mc_photon.__file__).read_bytes())
    except (OSError, TypeError):
        pass
    return h.hexdigest()[:16]


def _fingerprint(parts: Sequence[object]) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


def prepare_split(
    decays_bq_s: ArrayLike,
    material_index: ArrayLike,
    density_g_cm3: ArrayLike,
    materials: Sequence[Material | str],
    spacing_mm: Sequence[float],
    nuclide: str,
    *,
    histories: int = 10**6,
    batches: int = 10,
    deposit_local: bool = True,
    include_progeny: bool = False,
    seed: int = 0,
    estimator: str = "track-length",
    energy_cutoff_mev: float = DEFAULT_ENERGY_CUTOFF_MEV,
    target_mask: ArrayLike | None = None,
    target_component: str = "photon",
    voi_masks: Mapping[str, ArrayLike] | None = None,
    electron_dose_gy: ArrayLike | None = None,
) -> McSplitSetup:
    """Check the inputs and build the shared transport inputs of a split run.

    Arguments as :func:`.monte_carlo.run_monte_carlo` (fixed histories: no
    ``target_uncertainty``), with the same checks and messages.  ``histories``
    are split into ``batches`` batches of ``histories // batches``.
    """
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
    vois = [_voi_weights(mask, decays.shape, "target_mask")]
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

    local: NDArray[np.float64] | None = None
    if deposit_local:
        e_local = non_penetrating + below_cut_mev
        with np.errstate(divide="ignore", invalid="ignore"):
            local = np.where(
                decays > 0, decays * e_local * J_PER_MEV / (rho * voxel_cm3 * KG_PER_G), 0.0
            )
    elif electron is not None:
        local = electron
    weight_sums = np.array([w.sum() for _, w in vois])
    det_means = (
        np.zeros(len(vois))
        if local is None
        else np.array([float(np.dot(local.reshape(-1)[v], w)) for v, w in vois]) / weight_sums
    )
    per_batch = histories // batches
    common = {
        "batches": batches,
        "histories": batches * per_batch,
        "seed": int(seed),
        "n_decays": n_decays,
        "photons_per_decay": photons_per_decay,
        "local_flat": None if local is None else local.reshape(-1),
        "voi_names": ("", *named),
        "target_voxels": vois[0][0],
        "target_weights": vois[0][1],
        "weight_sums": weight_sums,
        "det_means": det_means,
        "has_target": target_mask is not None,
        "target_component": target_component,
    }
    if photons_per_decay <= 0:
        return McSplitSetup(transport=None, **common)  # type: ignore[arg-type]

    tables = photon_tables(mats)
    flat_dec = decays.reshape(-1)
    src_index = np.flatnonzero(flat_dec > 0).astype(np.int64)
    src_prob, src_alias = _mc_photon.build_alias(flat_dec[src_index])
    line_cdf = _cdf(line_y)
    mat_flat = np.ascontiguousarray(mat_idx.reshape(-1), dtype=np.uint8)
    rho_flat = np.ascontiguousarray(rho.reshape(-1), dtype=np.float32)
    gy_per_score = n_decays * photons_per_decay / per_batch * J_PER_MEV / (voxel_cm3 * KG_PER_G)
    voi_voxels = np.concatenate([v for v, _ in vois])
    voi_weights = np.concatenate([w for _, w in vois])
    voi_starts = np.cumsum([0] + [v.size for v, _ in vois]).astype(np.int64)
    shape = (int(decays.shape[0]), int(decays.shape[1]), int(decays.shape[2]))
    analog = estimator == "analog"
    fp = _fingerprint(
        [
            int(seed),
            per_batch,
            shape,
            (dx, dy, dz),
            tables.material_names,
            float(energy_cutoff_mev),
            analog,
            gy_per_score,
            src_index,
            src_prob,
            src_alias,
            line_e,
            line_cdf,
            mat_flat,
            rho_flat,
            voi_voxels,
            voi_weights,
            voi_starts,
        ]
    )
    transport = McTransport(
        fingerprint=fp,
        seed=int(seed),
        per_batch=per_batch,
        shape=shape,
        spacing_cm=(dx, dy, dz),
        src_index=src_index,
        src_prob=src_prob,
        src_alias=src_alias,
        line_e=line_e,
        line_cdf=line_cdf,
        mat_flat=mat_flat,
        rho_flat=rho_flat,
        tables=tables,
        energy_cutoff_mev=float(energy_cutoff_mev),
        analog=analog,
        gy_per_score=gy_per_score,
        voi_voxels=voi_voxels,
        voi_weights=voi_weights,
        voi_starts=voi_starts,
    )
    return McSplitSetup(transport=transport, **common)  # type: ignore[arg-type]


# ------------------------------------------------------------ one part
def run_part(
    transport: McTransport,
    first_batch: int,
    stop_batch: int,
    *,
    threads: int | None = None,
    worker: str = "",
    cancel: CancelCheck | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> McPartTally:
    """Transport batches ``[first_batch, stop_batch)`` and return their sums.

    Batch ``b`` uses the random streams ``(seed, b, chunk)`` of the one-process
    run, so its histories are the same ones.  ``threads``: numba threads of this
    part (default: numba's current setting); a worker sharing a machine with
    others should use its share of the cores.  ``on_batch(b)`` is called after
    each batch ``b`` (progress of a distributed run).
    """
    first_batch, stop_batch = int(first_batch), int(stop_batch)
    if not 0 <= first_batch < stop_batch:
        raise InvalidInputError(
            f"a part needs batches first < stop (got {first_batch}, {stop_batch})"
        )
    from numba import config, get_num_threads, set_num_threads

    if threads is not None:
        set_num_threads(max(1, min(int(threads), int(getattr(config, "NUMBA_NUM_THREADS", 1)))))
    t0 = time.perf_counter()
    t = transport
    n_lanes = max(1, int(get_num_threads()))
    score = np.zeros((n_lanes, t.n_voxels), dtype=np.float64)
    tally = np.zeros((n_lanes, 4), dtype=np.float64)
    sum_d = np.zeros(t.n_voxels, dtype=np.float64)
    sum_d2 = np.zeros(t.n_voxels, dtype=np.float64)
    voi_sums = np.zeros((stop_batch - first_batch, t.n_vois), dtype=np.float64)
    voi_out = np.zeros(t.n_vois, dtype=np.float64)
    nz, ny, nx = t.shape
    dx, dy, dz = t.spacing_cm
    tb = t.tables
    for i, batch in enumerate(range(first_batch, stop_batch)):
        check_cancel(cancel)
        _mc_photon.transport_batch(
            t.seed,
            batch,
            t.per_batch,
            CHUNKS_PER_BATCH,
            score,
            tally,
            t.src_index,
            t.src_prob,
            t.src_alias,
            t.line_e,
            t.line_cdf,
            t.mat_flat,
            t.rho_flat,
            nz,
            ny,
            nx,
            dx,
            dy,
            dz,
            tb.log_energy_min,
            tb.inv_dlog_energy,
            tb.total_cm2_g,
            tb.photoelectric_cm2_g,
            tb.compton_cm2_g,
            tb.mu_en_cm2_g,
            tb.rayleigh_x2,
            tb.rayleigh_cumulative,
            t.energy_cutoff_mev,
            t.analog,
        )
        _mc_photon.voi_batch_sums(
            score, t.gy_per_score, t.voi_voxels, t.voi_weights, t.voi_starts, voi_out
        )
        voi_sums[i] = voi_out
        _mc_photon.accumulate_batch(score, t.gy_per_score, sum_d, sum_d2)  # resets score
        if on_batch is not None:
            on_batch(batch)
    return McPartTally(
        fingerprint=t.fingerprint,
        first_batch=first_batch,
        stop_batch=stop_batch,
        sum_d=sum_d,
        sum_d2=sum_d2,
        voi_batch_sums=voi_sums,
        tally_mev=tally.sum(axis=0),
        elapsed_s=time.perf_counter() - t0,
        worker=worker,
        engine=engine_id(),
    )


# ------------------------------------------------------------ the merge
def check_parts(setup: McSplitSetup, parts: Sequence[McPartTally]) -> list[McPartTally]:
    """The parts sorted by first batch; refuse foreign, overlapping or missing batches."""
    t = setup.transport
    if t is None:
        raise InvalidInputError("this problem has no transported photons: nothing to merge")
    if not parts:
        raise InvalidInputError("no Monte Carlo part to merge")
    for p in parts:
        if p.fingerprint != t.fingerprint:
            raise InvalidInputError(
                f"the Monte Carlo part of batches {p.first_batch}-{p.stop_batch - 1} belongs to "
                "another problem (different inputs, seed or batch size): not merged"
            )
        if p.engine != engine_id():
            where = f" on {p.worker}" if p.worker else ""
            raise InvalidInputError(
                f"the Monte Carlo part of batches {p.first_batch}-{p.stop_batch - 1} ran{where} "
                f"with another version of the transport code ({p.engine or 'unknown'}, here "
                f"{engine_id()}): install the same version on every worker; not merged"
            )
        if p.sum_d.shape != (t.n_voxels,) or p.sum_d2.shape != (t.n_voxels,):
            raise InvalidInputError(
                f"the Monte Carlo part of batches {p.first_batch}-{p.stop_batch - 1} has "
                f"{p.sum_d.size} voxels, the problem {t.n_voxels}: not merged"
            )
        finite = (
            np.all(np.isfinite(p.sum_d))
            and np.all(np.isfinite(p.sum_d2))
            and np.all(np.isfinite(p.voi_batch_sums))
        )
        if not finite:
            where = f" on {p.worker}" if p.worker else ""
            raise InvalidInputError(
                f"the Monte Carlo part of batches {p.first_batch}-{p.stop_batch - 1} returned "
                f"non-finite doses{where} (a faulty worker): not merged"
            )
        if p.voi_batch_sums.shape != (p.n_batches, t.n_vois):
            raise InvalidInputError(
                f"the Monte Carlo part of batches {p.first_batch}-{p.stop_batch - 1} has "
                "VOI sums of the wrong shape: not merged"
            )
    ordered = sorted(parts, key=lambda p: p.first_batch)
    expected = 0
    for p in ordered:
        if p.first_batch < expected:
            raise InvalidInputError(
                f"Monte Carlo parts overlap at batch {p.first_batch}: a batch counted twice "
                "would understate the uncertainty; not merged"
            )
        if p.first_batch > expected:
            raise InvalidInputError(
                f"Monte Carlo batches {expected}-{p.first_batch - 1} are missing: not merged"
            )
        expected = p.stop_batch
    if expected != setup.batches:
        raise InvalidInputError(
            f"Monte Carlo batches {expected}-{setup.batches - 1} are missing "
            f"(parts cover {expected} of {setup.batches}): not merged"
        )
    return ordered


def with_batches(
    setup: McSplitSetup, batches: int, *, has_target: bool | None = None
) -> McSplitSetup:
    """The same problem run to ``batches`` batches of the same size (a later round of a
    run that stops on a target uncertainty); ``has_target`` overrides whether the
    target figures are reported."""
    t = setup.transport
    per = t.per_batch if t is not None else setup.histories // setup.batches
    return dataclasses.replace(
        setup,
        batches=int(batches),
        histories=int(batches) * per,
        has_target=setup.has_target if has_target is None else bool(has_target),
    )


def target_figure(setup: McSplitSetup, parts: Sequence[McPartTally]) -> float:
    """The stop figure of the engine from the parts' batches: 1-SD relative uncertainty
    of the target VOI's mean of ``setup.target_component`` (``SD / D_photon`` or
    ``SD / (D_photon + D_electron)``); the parts must cover ``setup.batches``."""
    ordered = check_parts(setup, parts)
    rows = [row for p in ordered for row in p.voi_batch_sums]
    ph_mean, ph_sd = _voi_mean_statistics(rows, setup.weight_sums)
    den = ph_mean[0] + (setup.det_means[0] if setup.target_component == "total" else 0.0)
    return _ratio(float(ph_sd[0]), float(den))


def merge_parts(
    setup: McSplitSetup,
    parts: Sequence[McPartTally],
    *,
    elapsed_s: float | None = None,
    stopped_because: str = "histories",
) -> MonteCarloResult:
    """Merge the parts of :func:`prepare_split` into the result of the whole run.

    Dose and per-voxel uncertainty by the batch method over all ``B`` batches
    (module docstring, Walters, Kawrakow & Rogers 2002); the VOI-mean
    uncertainties from the per-batch VOI sums in batch order; fields as
    :class:`.monte_carlo.MonteCarloResult`.  ``elapsed_s``: wall time to report
    (default: the sum of the parts' times).
    """
    ordered = check_parts(setup, parts)
    t = setup.transport
    assert t is not None
    sum_d, sum_d2, n_batches = merge_sums(
        [p.sum_d for p in ordered], [p.sum_d2 for p in ordered], [p.n_batches for p in ordered]
    )
    n_vox = t.n_voxels
    total = np.empty(n_vox, dtype=np.float32)
    mean = np.empty(n_vox, dtype=np.float32)
    sd = np.empty(n_vox, dtype=np.float64)
    rel = np.empty(n_vox, dtype=np.float32)
    rel_ph = np.empty(n_vox, dtype=np.float32)
    local_flat = setup.local_flat
    _mc_photon.finalize_batches(
        sum_d,
        sum_d2,
        n_batches,
        sum_d if local_flat is None else local_flat,
        local_flat is not None,
        total,
        mean,
        sd,
        rel,
        rel_ph,
    )
    batch_sums = [row for p in ordered for row in p.voi_batch_sums]
    ph_mean, ph_sd = _voi_mean_statistics(batch_sums, setup.weight_sums)
    rows = []
    for k, name in enumerate(setup.voi_names):
        tot = float(ph_mean[k] + setup.det_means[k])
        rows.append(
            VoiDoseComponents(
                name=name,
                mean_gy=tot,
                photon_mean_gy=float(ph_mean[k]),
                electron_mean_gy=float(setup.det_means[k]),
                photon_sd_gy=float(ph_sd[k]),
                photon_rel_uncertainty=_ratio(float(ph_sd[k]), float(ph_mean[k])),
                total_rel_uncertainty=_ratio(float(ph_sd[k]), tot),
                voxels=float(setup.weight_sums[k]),
            )
        )
    den = ph_mean[0] + (setup.det_means[0] if setup.target_component == "total" else 0.0)
    figure = _ratio(float(ph_sd[0]), float(den))
    t_vox, t_w = setup.target_voxels, setup.target_weights
    t_total = sum_d[t_vox] / n_batches + (0.0 if local_flat is None else local_flat[t_vox])
    voxel_figure = _ratio(float(np.dot(sd[t_vox], t_w)), float(np.dot(t_total, t_w)))
    n_hist = n_batches * t.per_batch
    elapsed = float(sum(p.elapsed_s for p in ordered)) if elapsed_s is None else float(elapsed_s)
    scale = setup.n_decays * setup.photons_per_decay / n_hist
    tallies = np.sum([p.tally_mev for p in ordered], axis=0)
    has_target = setup.has_target
    return MonteCarloResult(
        dose_gy=total.reshape(t.shape),
        photon_dose_gy=mean.reshape(t.shape),
        local_dose_gy=None
        if local_flat is None
        else local_flat.astype(np.float32).reshape(t.shape),
        rel_uncertainty=rel.reshape(t.shape),
        histories=n_hist,
        seed=setup.seed,
        elapsed_s=elapsed,
        histories_per_s=n_hist / elapsed if elapsed > 0 else 0.0,
        stopped_because=stopped_because,
        target_uncertainty_reached=figure if has_target else None,
        batches=n_batches,
        emitted_photon_energy_mev=float(tallies[0]) * scale,
        escaped_photon_energy_mev=float(tallies[1]) * scale,
        photon_rel_uncertainty=rel_ph.reshape(t.shape),
        target_component=setup.target_component,
        target_photon_uncertainty=rows[0].photon_rel_uncertainty if has_target else None,
        target_total_uncertainty=rows[0].total_rel_uncertainty if has_target else None,
        target_mean_voxel_uncertainty=voxel_figure if has_target else None,
        voi_components=tuple(rows[1:]),
    )


def combine_parts(setup: McSplitSetup, parts: Sequence[McPartTally]) -> McPartTally:
    """One tally of batches ``[0, setup.batches)`` from parts covering them (checked as
    by :func:`merge_parts`): sums added in batch order, VOI rows concatenated.  Keeps
    a long run's memory at one tally however many rounds it takes."""
    ordered = check_parts(setup, parts)
    if len(ordered) == 1:
        return ordered[0]
    sum_d, sum_d2, _ = merge_sums(
        [p.sum_d for p in ordered], [p.sum_d2 for p in ordered], [p.n_batches for p in ordered]
    )
    return McPartTally(
        fingerprint=ordered[0].fingerprint,
        first_batch=0,
        stop_batch=setup.batches,
        sum_d=sum_d,
        sum_d2=sum_d2,
        voi_batch_sums=np.concatenate([p.voi_batch_sums for p in ordered]),
        tally_mev=np.sum([p.tally_mev for p in ordered], axis=0),
        elapsed_s=float(sum(p.elapsed_s for p in ordered)),
        worker=", ".join(sorted({p.worker for p in ordered if p.worker})),
        engine=ordered[0].engine,
    )


RunRanges = Callable[[Sequence[range], ProgressCallback | None], list[McPartTally]]
"""Runs one part per batch range (in this process or on workers) and returns the tallies."""


def run_rounds(
    setup: McSplitSetup,
    run_ranges: RunRanges,
    *,
    parts: int,
    target_uncertainty: float | None = None,
    max_histories: int = 10**9,
    progress: ProgressCallback | None = None,
) -> tuple[McSplitSetup, list[McPartTally], str]:
    """Run the split problem: a fixed number of batches, or rounds to a target uncertainty.

    Without ``target_uncertainty``: ``setup.batches`` batches in ``parts`` parts,
    one round.  With it (the engine's stop rule, module docstring of
    :mod:`.monte_carlo`): a first round of ``setup.batches`` batches, then rounds
    of further batches until :func:`target_figure` is ``<= target_uncertainty``
    or the next batch would pass ``max(max_histories, histories)``.  A round is
    sized from ``U ~ 1/sqrt(B)`` to reach the target, at least one batch per part
    and at most doubling the batches so far (a noisy early estimate cannot launch
    a huge round).  The stop comes at the end of a round, so a split run may
    carry up to one round of batches more than the one-process run, which checks
    after every batch; its figures are those of all the batches it ran.

    Returns the setup for the batches run, their tallies and the stop reason
    (``"histories"``, ``"target uncertainty"`` or ``"max histories"``).
    """
    t = setup.transport
    if t is None:
        raise InvalidInputError("this problem has no transported photons: nothing to run")
    parts = int(parts)
    if target_uncertainty is None:
        return setup, run_ranges(split_batches(setup.batches, parts), progress), "histories"
    if not 0 < target_uncertainty < 1:
        raise InvalidInputError(
            "target_uncertainty is a fraction between 0 and 1 (e.g. 0.02)",
            field="target_uncertainty",
        )
    limit = max(int(max_histories), setup.histories) // t.per_batch
    shown = [0.0]

    def monotone(fraction: float, message: str) -> None:
        shown[0] = max(shown[0], fraction)
        report(progress, shown[0], message)

    acc: McPartTally | None = None
    total, next_n = 0, setup.batches
    share = 0.5  # of the remaining bar for the first round: the work needed is not yet known
    while True:
        k = min(parts, next_n)
        ranges = tuple(range(total + r.start, total + r.stop) for r in split_batches(next_n, k))
        lo = shown[0]
        hi = lo + (0.99 - lo) * share
        new = run_ranges(ranges, None if progress is None else _span(monotone, lo, hi))
        total += next_n
        current = with_batches(setup, total, has_target=True)
        acc = combine_parts(current, ([] if acc is None else [acc]) + list(new))
        figure = target_figure(current, [acc])
        if figure <= target_uncertainty:
            stopped = "target uncertainty"
            break
        room = limit - total
        if room <= 0:
            stopped = "max histories"
            break
        want = (
            math.ceil(total * (figure / target_uncertainty) ** 2) - total
            if math.isfinite(figure)
            else total
        )
        next_n = min(room, max(parts, min(want, total)))
        share = min(1.0, next_n / max(want, 1))  # the round's part of the work still needed
        reach = (target_uncertainty / figure) ** 2 if math.isfinite(figure) else 0.0
        msg = f"photon Monte Carlo: {total:,} batches, uncertainty {figure:.2%}"
        monotone(min(0.99, max(total / limit, reach)), msg)
    assert acc is not None
    return current, [acc], stopped


def _span(progress: ProgressCallback, start: float, stop: float) -> ProgressCallback:
    def child(fraction: float, message: str) -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return child


def run_monte_carlo_split(
    decays_bq_s: ArrayLike,
    material_index: ArrayLike,
    density_g_cm3: ArrayLike,
    materials: Sequence[Material | str],
    spacing_mm: Sequence[float],
    nuclide: str,
    *,
    parts: int = 2,
    target_uncertainty: float | None = None,
    max_histories: int = 10**9,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    **options: object,
) -> MonteCarloResult:
    """The split run in this process, part after part (reference for the distributed run).

    ``options`` as :func:`prepare_split`; ``target_uncertainty`` and
    ``max_histories`` as :func:`run_rounds`.  With fixed histories equal to
    :func:`.monte_carlo.run_monte_carlo` with the same options to float rounding.
    """
    args = (decays_bq_s, material_index, density_g_cm3, materials, spacing_mm, nuclide)
    setup = prepare_split(*args, **options)  # type: ignore[arg-type]
    if setup.transport is None:
        return run_monte_carlo(*args, **options)  # type: ignore[arg-type]
    transport = setup.transport
    t0 = time.perf_counter()

    def run_ranges(
        ranges: Sequence[range], round_progress: ProgressCallback | None
    ) -> list[McPartTally]:
        done: list[McPartTally] = []
        for k, r in enumerate(ranges):
            done.append(run_part(transport, r.start, r.stop, cancel=cancel))
            msg = f"photon Monte Carlo: part {k + 1} of {len(ranges)}"
            report(round_progress, (k + 1) / len(ranges), msg)
        return done

    report(progress, 0.0, "photon Monte Carlo: split run")
    final, tallies, stopped = run_rounds(
        setup,
        run_ranges,
        parts=parts,
        target_uncertainty=target_uncertainty,
        max_histories=max_histories,
        progress=progress,
    )
    result = merge_parts(
        final, tallies, elapsed_s=time.perf_counter() - t0, stopped_because=stopped
    )
    report(progress, 1.0, "photon Monte Carlo: done")
    return result


__all__ = [
    "McPartTally",
    "McSplitSetup",
    "McTransport",
    "batch_statistics",
    "check_parts",
    "combine_parts",
    "run_rounds",
    "engine_id",
    "merge_parts",
    "merge_sums",
    "prepare_split",
    "run_monte_carlo_split",
    "run_part",
    "split_batches",
    "target_figure",
    "with_batches",
]
