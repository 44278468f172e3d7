"""Numba kernels of the photon Monte Carlo (private; use :mod:`.monte_carlo`).

Methods (cited in full in :mod:`.monte_carlo` and :mod:`.photon_data`):

* random numbers: xoshiro256+ (Blackman & Vigna, ACM Trans Math Softw 47:36, 2021),
  one stream per chunk of histories, seeded by SplitMix64 from
  ``(seed, batch, chunk)``, so a chunk's histories do not depend on the thread
  that runs them;
* source voxels: Walker's alias method (Walker, ACM Trans Math Softw 3:253, 1977);
* transport: exact voxel ray-marching (Amanatides & Woo, Eurographics 1987;
  Siddon, Med Phys 12:252, 1985): the optical depth ``-ln u`` is consumed
  voxel by voxel with the local ``mu/rho * rho``;
* Compton: free-electron Klein-Nishina sampling by Kahn's rejection method
  (H. Kahn, *Applications of Monte Carlo*, USAEC AECU-3259, RAND 1954; as given
  by Everett & Cashwell, *A Third Monte Carlo Sampler*, LA-9721-MS, 1983);
* Rayleigh: squared-form-factor inversion with the Thomson rejection (PENELOPE);
* photoelectric: photon absorbed, all energy (fluorescence included) local;
* scoring: track-length estimator of collision kerma ``E mu_en/rho l`` per voxel
  crossed (Williamson, Med Phys 14:567, 1987), or analog deposition at the
  interaction sites.  Scores are in MeV*cm^3/g: divide by the voxel volume in
  cm^3 to get MeV/g.

Every kernel is compiled with ``cache=True``; the transport kernels run their
chunks with ``prange`` over lanes (one per thread), each lane with its own score
array, so there are no races.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SM1 = np.uint64(0xBF58476D1CE4E5B9)
_SM2 = np.uint64(0x94D049BB133111EB)
_K_BATCH = np.uint64(0xD1B54A32D192ED03)
_K_CHUNK = np.uint64(0x8CB92BA72F3D8DD7)
_INV53 = 1.0 / 9007199254740992.0
_HC_KEV_A = 12.398419843320026
_ME_MEV = 0.51099895000
_TWO_PI = 2.0 * math.pi
_INF = 1e300


@njit(cache=True, error_model="numpy")
def _splitmix(x: np.uint64) -> tuple[np.uint64, np.uint64]:
    x = x + _GOLDEN
    z = x
    z = (z ^ (z >> _U30)) * _SM1
    z = (z ^ (z >> _U27)) * _SM2
    return x, z ^ (z >> _U31)


@njit(cache=True, error_model="numpy")
def seed_state(seed: int, batch: int, chunk: int) -> np.ndarray:
    """xoshiro256+ state of one chunk (SplitMix64 expansion of the key)."""
    x = np.uint64(seed) ^ (np.uint64(batch + 1) * _K_BATCH) ^ (np.uint64(chunk + 1) * _K_CHUNK)
    s = np.empty(4, dtype=np.uint64)
    for i in range(4):
        x, s[i] = _splitmix(x)
    return s


@njit(cache=True, error_model="numpy")
def rand(s: np.ndarray) -> float:
    """Uniform double in [0, 1) from xoshiro256+ (top 53 bits)."""
    result = s[0] + s[3]
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = (s[3] << _U45) | (s[3] >> _U19)
    return float(result >> _U11) * _INV53


@njit(cache=True, error_model="numpy")
def _search(cdf: np.ndarray, u: float) -> int:
    """Smallest i with u < cdf[i] (cdf increasing, last entry 1)."""
    lo = 0
    hi = cdf.size - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < cdf[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, error_model="numpy")
def build_alias(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker alias table of non-negative ``weights`` (Vose's O(n) construction).

    Walker, ACM Trans Math Softw 3:253-256 (1977); Vose, IEEE Trans Softw Eng
    17:972-975 (1991).  Returns ``(probability, alias)`` for :func:`sample_alias`.
    """
    n = weights.size
    scaled = weights * (n / weights.sum())
    prob = np.ones(n)
    alias = np.arange(n)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        sm = small[ns]
        nl -= 1
        lg = large[nl]
        prob[sm] = scaled[sm]
        alias[sm] = lg
        scaled[lg] = (scaled[lg] + scaled[sm]) - 1.0
        if scaled[lg] < 1.0:
            small[ns] = lg
            ns += 1
        else:
            large[nl] = lg
            nl += 1
    return prob, alias


@njit(cache=True, error_model="numpy")
def sample_alias(prob: np.ndarray, alias: np.ndarray, u: float) -> int:
    """Index drawn from a Walker alias table with one uniform ``u`` in [0, 1)."""
    x = u * prob.size
    i = int(x)
    if i >= prob.size:
        i = prob.size - 1
    return i if x - i < prob[i] else alias[i]


@njit(cache=True, error_model="numpy")
def sample_kahn(alpha: float, s: np.ndarray) -> tuple[float, float]:
    """Klein-Nishina sample: (E/E', cos theta) for ``alpha = E / m_e c^2`` (Kahn 1956)."""
    two_a = 2.0 * alpha
    p_first = (1.0 + two_a) / (9.0 + two_a)
    while True:
        r1 = rand(s)
        r2 = rand(s)
        r3 = rand(s)
        if r1 <= p_first:
            eta = 1.0 + two_a * r2
            if r3 <= 4.0 * (1.0 / eta - 1.0 / (eta * eta)):
                break
        else:
            eta = (1.0 + two_a) / (1.0 + two_a * r2)
            mu = 1.0 - (eta - 1.0) / alpha
            if r3 <= 0.5 * (mu * mu + 1.0 / eta):
                break
    cos_t = 1.0 - (eta - 1.0) / alpha
    if cos_t < -1.0:
        cos_t = -1.0
    elif cos_t > 1.0:
        cos_t = 1.0
    return eta, cos_t


@njit(cache=True, error_model="numpy")
def sample_rayleigh(energy_mev: float, x2: np.ndarray, cum: np.ndarray, s: np.ndarray) -> float:
    """cos theta of a Rayleigh scatter: F^2 inversion + Thomson rejection (PENELOPE)."""
    xm = energy_mev * 1e3 / _HC_KEV_A
    x2max = xm * xm
    n = x2.size
    if x2max >= x2[n - 1]:
        amax = cum[n - 1]
    else:
        j = _search(x2, x2max) - 1
        f = (x2max - x2[j]) / (x2[j + 1] - x2[j])
        amax = cum[j] + f * (cum[j + 1] - cum[j])
    while True:
        r = rand(s) * amax
        j = _search(cum, r) - 1
        if j < 0:
            j = 0
        if j > n - 2:
            j = n - 2
        d = cum[j + 1] - cum[j]
        v = x2[j] + ((r - cum[j]) / d if d > 0.0 else 0.0) * (x2[j + 1] - x2[j])
        c = 1.0 - 2.0 * v / x2max
        if c < -1.0:
            c = -1.0
        if rand(s) * 2.0 <= 1.0 + c * c:
            return c


@njit(cache=True, error_model="numpy")
def _rotate(
    ux: float, uy: float, uz: float, cos_t: float, phi: float
) -> tuple[float, float, float]:
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    cp = math.cos(phi)
    sp = math.sin(phi)
    if abs(uz) > 0.99999:
        nx = sin_t * cp
        ny = sin_t * sp
        nz = cos_t if uz > 0.0 else -cos_t
    else:
        tmp = math.sqrt(1.0 - uz * uz)
        nx = ux * cos_t + sin_t * (ux * uz * cp - uy * sp) / tmp
        ny = uy * cos_t + sin_t * (uy * uz * cp + ux * sp) / tmp
        nz = uz * cos_t - tmp * sin_t * cp
    norm = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * norm, ny * norm, nz * norm


@njit(cache=True, error_model="numpy")
def _interp(table: np.ndarray, m: int, i: int, t: float) -> float:
    return table[m, i] + t * (table[m, i + 1] - table[m, i])


@njit(cache=True, error_model="numpy")
def _grid_pos(energy_mev: float, log_emin: float, inv_dlog: float, n_e: int) -> tuple[int, float]:
    f = (math.log(energy_mev) - log_emin) * inv_dlog
    i = int(f)
    if i < 0:
        i = 0
    elif i > n_e - 2:
        i = n_e - 2
    return i, f - i


@njit(cache=True, error_model="numpy")
def _interaction(
    energy: float,
    m: int,
    ie: int,
    te: float,
    mu_ph: np.ndarray,
    mu_co: np.ndarray,
    mu_tot: np.ndarray,
    ray_x2: np.ndarray,
    ray_cum: np.ndarray,
    s: np.ndarray,
) -> tuple[int, float, float]:
    """Sample one interaction: (kind 0 photo / 1 Compton / 2 Rayleigh, new E, cos theta)."""
    r = rand(s) * _interp(mu_tot, m, ie, te)
    ph = _interp(mu_ph, m, ie, te)
    if r < ph:
        return 0, 0.0, 1.0
    if r < ph + _interp(mu_co, m, ie, te):
        eta, c = sample_kahn(energy / _ME_MEV, s)
        return 1, energy / eta, c
    c = sample_rayleigh(energy, ray_x2, ray_cum[m], s)
    return 2, energy, c


@njit(cache=True, error_model="numpy")
def _history(
    lane_score: np.ndarray,
    tally: np.ndarray,
    s: np.ndarray,
    mt: np.ndarray,
    me: np.ndarray,
    src_index: np.ndarray,
    src_prob: np.ndarray,
    src_alias: np.ndarray,
    line_e: np.ndarray,
    line_cdf: np.ndarray,
    mat: np.ndarray,
    rho: np.ndarray,
    nz: int,
    ny: int,
    nx: int,
    dx: float,
    dy: float,
    dz: float,
    log_emin: float,
    inv_dlog: float,
    mu_tot: np.ndarray,
    mu_ph: np.ndarray,
    mu_co: np.ndarray,
    mu_en: np.ndarray,
    ray_x2: np.ndarray,
    ray_cum: np.ndarray,
    e_cut: float,
    analog: bool,
) -> None:
    n_e = mu_tot.shape[1]
    n_mat = mu_tot.shape[0]
    nxy = nx * ny
    v = src_index[sample_alias(src_prob, src_alias, rand(s))]
    ix = v % nx
    iy = (v // nx) % ny
    iz = v // (nx * ny)
    px = (ix + rand(s)) * dx
    py = (iy + rand(s)) * dy
    pz = (iz + rand(s)) * dz
    energy = line_e[_search(line_cdf, rand(s))]
    tally[0] += energy
    w = 2.0 * rand(s) - 1.0
    phi = _TWO_PI * rand(s)
    st = math.sqrt(max(0.0, 1.0 - w * w))
    ux = st * math.cos(phi)
    uy = st * math.sin(phi)
    uz = w
    new_energy = True
    ie = 0
    te = 0.0
    while True:
        if new_energy:
            ie, te = _grid_pos(energy, log_emin, inv_dlog, n_e)
            for mm in range(n_mat):
                mt[mm] = _interp(mu_tot, mm, ie, te)
                me[mm] = _interp(mu_en, mm, ie, te) * energy
            new_energy = False
        tau = -math.log(1.0 - rand(s))
        # distances (cm) from the segment start to the next boundary on each axis
        if ux > 0.0:
            tx = ((ix + 1) * dx - px) / ux
            dtx = dx / ux
        elif ux < 0.0:
            tx = (ix * dx - px) / ux
            dtx = -dx / ux
        else:
            tx = _INF
            dtx = _INF
        if uy > 0.0:
            ty = ((iy + 1) * dy - py) / uy
            dty = dy / uy
        elif uy < 0.0:
            ty = (iy * dy - py) / uy
            dty = -dy / uy
        else:
            ty = _INF
            dty = _INF
        if uz > 0.0:
            tz = ((iz + 1) * dz - pz) / uz
            dtz = dz / uz
        elif uz < 0.0:
            tz = (iz * dz - pz) / uz
            dtz = -dz / uz
        else:
            tz = _INF
            dtz = _INF
        tx = max(tx, 0.0)
        ty = max(ty, 0.0)
        tz = max(tz, 0.0)
        t = 0.0
        escaped = False
        sx = 1 if ux > 0.0 else -1
        sy = 1 if uy > 0.0 else -1
        sz = 1 if uz > 0.0 else -1
        v = (iz * ny + iy) * nx + ix
        while True:
            m = mat[v]
            mu = mt[m] * rho[v]
            if tx <= ty and tx <= tz:
                axis = 0
                t_next = tx
            elif ty <= tz:
                axis = 1
                t_next = ty
            else:
                axis = 2
                t_next = tz
            seg = t_next - t
            if mu > 0.0 and mu * seg >= tau:
                d = tau / mu
                if not analog:
                    lane_score[v] += me[m] * d
                t += d
                break
            if not analog:
                lane_score[v] += me[m] * seg
            tau -= mu * seg
            t = t_next
            if axis == 0:
                ix += sx
                if ix < 0 or ix >= nx:
                    escaped = True
                    break
                v += sx
                tx += dtx
            elif axis == 1:
                iy += sy
                if iy < 0 or iy >= ny:
                    escaped = True
                    break
                v += sy * nx
                ty += dty
            else:
                iz += sz
                if iz < 0 or iz >= nz:
                    escaped = True
                    break
                v += sz * nxy
                tz += dtz
        if escaped:
            tally[1] += energy
            return
        px += t * ux
        py += t * uy
        pz += t * uz
        kind, e_new, c = _interaction(energy, m, ie, te, mu_ph, mu_co, mu_tot, ray_x2, ray_cum, s)
        r_inv = 1.0 / rho[v]
        if kind == 0:
            if analog:
                lane_score[v] += energy * r_inv
            tally[3] += energy
            return
        if kind == 1:
            if analog:
                lane_score[v] += (energy - e_new) * r_inv
            tally[3] += energy - e_new
            energy = e_new
            new_energy = True
            if energy < e_cut:
                lane_score[v] += energy * r_inv
                tally[2] += energy
                tally[3] += energy
                return
        ux, uy, uz = _rotate(ux, uy, uz, c, _TWO_PI * rand(s))


@njit(cache=True, parallel=True, error_model="numpy")
def transport_batch(
    seed: int,
    batch: int,
    n_histories: int,
    n_chunks: int,
    score: np.ndarray,
    tally: np.ndarray,
    src_index: np.ndarray,
    src_prob: np.ndarray,
    src_alias: np.ndarray,
    line_e: np.ndarray,
    line_cdf: np.ndarray,
    mat: np.ndarray,
    rho: np.ndarray,
    nz: int,
    ny: int,
    nx: int,
    dx: float,
    dy: float,
    dz: float,
    log_emin: float,
    inv_dlog: float,
    mu_tot: np.ndarray,
    mu_ph: np.ndarray,
    mu_co: np.ndarray,
    mu_en: np.ndarray,
    ray_x2: np.ndarray,
    ray_cum: np.ndarray,
    e_cut: float,
    analog: bool,
) -> None:
    """Transport ``n_histories`` photons of one batch; adds to ``score[lane, voxel]``.

    ``tally[lane]`` accumulates MeV: emitted, escaped, cut-off, and energy
    transferred at interaction sites (analog sense).  Chunk ``c`` runs histories
    ``[c N / n_chunks, (c + 1) N / n_chunks)`` with its own random stream; lane
    ``l`` runs chunks ``l, l + L, ...`` (``L = score.shape[0]``).
    """
    n_lanes = score.shape[0]
    n_mat = mu_tot.shape[0]
    for lane in prange(n_lanes):
        mt = np.empty(n_mat)
        me = np.empty(n_mat)
        lane_tally = np.zeros(4)  # local: neighbouring lanes' rows share a cache line
        for chunk in range(lane, n_chunks, n_lanes):
            s = seed_state(seed, batch, chunk)
            start = chunk * n_histories // n_chunks
            stop = (chunk + 1) * n_histories // n_chunks
            for _ in range(start, stop):
                _history(
                    score[lane],
                    lane_tally,
                    s,
                    mt,
                    me,
                    src_index,
                    src_prob,
                    src_alias,
                    line_e,
                    line_cdf,
                    mat,
                    rho,
                    nz,
                    ny,
                    nx,
                    dx,
                    dy,
                    dz,
                    log_emin,
                    inv_dlog,
                    mu_tot,
                    mu_ph,
                    mu_co,
                    mu_en,
                    ray_x2,
                    ray_cum,
                    e_cut,
                    analog,
                )
        for j in range(4):
            tally[lane, j] += lane_tally[j]


@njit(cache=True, parallel=True, error_model="numpy")
def point_source_batch(
    seed: int,
    n_histories: int,
    n_chunks: int,
    score: np.ndarray,
    line_e: np.ndarray,
    line_cdf: np.ndarray,
    rho: float,
    log_emin: float,
    inv_dlog: float,
    mu_tot: np.ndarray,
    mu_ph: np.ndarray,
    mu_co: np.ndarray,
    ray_x2: np.ndarray,
    ray_cum: np.ndarray,
    e_cut: float,
    r_edges_cm: np.ndarray,
) -> None:
    """Isotropic point source in an infinite homogeneous medium (material 0).

    Analog scoring of the energy transferred at each interaction in the spherical
    shell of its radius: ``score[lane, i]`` for ``r_edges[i] <= r < r_edges[i+1]``;
    the last column collects everything beyond the last edge (MeV).
    """
    n_lanes = score.shape[0]
    n_e = mu_tot.shape[1]
    n_shell = r_edges_cm.size - 1
    r_last = r_edges_cm[n_shell]
    for lane in prange(n_lanes):
        for chunk in range(lane, n_chunks, n_lanes):
            s = seed_state(seed, 0, chunk)
            start = chunk * n_histories // n_chunks
            stop = (chunk + 1) * n_histories // n_chunks
            for _ in range(start, stop):
                energy = line_e[_search(line_cdf, rand(s))]
                w = 2.0 * rand(s) - 1.0
                phi = _TWO_PI * rand(s)
                st = math.sqrt(max(0.0, 1.0 - w * w))
                ux = st * math.cos(phi)
                uy = st * math.sin(phi)
                uz = w
                px = 0.0
                py = 0.0
                pz = 0.0
                while True:
                    ie, te = _grid_pos(energy, log_emin, inv_dlog, n_e)
                    mu = _interp(mu_tot, 0, ie, te) * rho
                    d = -math.log(1.0 - rand(s)) / mu
                    px += d * ux
                    py += d * uy
                    pz += d * uz
                    r = math.sqrt(px * px + py * py + pz * pz)
                    if r >= r_last:
                        b = n_shell
                    else:
                        b = _search(r_edges_cm, r) - 1
                    kind, e_new, c = _interaction(
                        energy, 0, ie, te, mu_ph, mu_co, mu_tot, ray_x2, ray_cum, s
                    )
                    if kind == 0:
                        score[lane, b] += energy
                        break
                    if kind == 1:
                        score[lane, b] += energy - e_new
                        energy = e_new
                        if energy < e_cut:
                            score[lane, b] += energy
                            break
                    ux, uy, uz = _rotate(ux, uy, uz, c, _TWO_PI * rand(s))


@njit(cache=True, parallel=True, error_model="numpy")
def accumulate_batch(
    score: np.ndarray, factor: float, sum_d: np.ndarray, sum_d2: np.ndarray
) -> None:
    """Batch bookkeeping in one pass: ``d = factor * sum_lanes(score)``; add ``d`` and
    ``d^2`` to the running sums; reset ``score`` to zero for the next batch."""
    n_lanes = score.shape[0]
    for v in prange(score.shape[1]):
        total = 0.0
        for lane in range(n_lanes):
            total += score[lane, v]
        if total == 0.0:
            # untouched voxel (most of the grid in a small batch): nothing to add and the
            # score is already zero, so no writes (the write traffic was half the cost)
            continue
        for lane in range(n_lanes):
            score[lane, v] = 0.0
        d = total * factor
        sum_d[v] += d
        sum_d2[v] += d * d


@njit(cache=True, error_model="numpy")
def voi_batch_sums(
    score: np.ndarray,
    factor: float,
    voxels: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
    out: np.ndarray,
) -> None:
    """Weighted photon dose sums of one batch per VOI, before :func:`accumulate_batch`.

    VOI ``k`` owns ``voxels[starts[k]:starts[k + 1]]`` with ``weights`` (mask or
    partial-volume fractions); ``out[k] = factor * sum_i w_i * sum_lanes score[lane, v_i]``
    (Gy * weight).  Only the VOIs' voxels are read, so the cost does not grow
    with the grid.
    """
    n_lanes = score.shape[0]
    for k in range(starts.size - 1):
        acc = 0.0
        for i in range(starts[k], starts[k + 1]):
            v = voxels[i]
            d = 0.0
            for lane in range(n_lanes):
                d += score[lane, v]
            acc += weights[i] * d
        out[k] = acc * factor


@njit(cache=True, parallel=True, error_model="numpy")
def finalize_batches(
    sum_d: np.ndarray,
    sum_d2: np.ndarray,
    n_batches: int,
    local: np.ndarray,
    has_local: bool,
    dose: np.ndarray,
    photon: np.ndarray,
    sd: np.ndarray,
    rel: np.ndarray,
    rel_photon: np.ndarray,
) -> None:
    """Batch-method statistics per voxel in one parallel pass (float32 outputs).

    ``photon = sum_d / B``; ``sd = sqrt(max(sum_d2 / B - photon^2, 0) / (B - 1))``;
    ``dose = photon + local`` (if ``has_local``); ``rel = sd / dose`` and
    ``rel_photon = sd / photon`` (1.0 where the denominator is 0).  The same
    float64 operations as the NumPy expressions they replace, so equal bits.
    """
    for v in prange(sum_d.size):
        mean = sum_d[v] / n_batches
        var = sum_d2[v] / n_batches - mean * mean
        if var < 0.0:
            var = 0.0
        s = math.sqrt(var / (n_batches - 1))
        total = mean + local[v] if has_local else mean
        dose[v] = total
        photon[v] = mean
        sd[v] = s
        rel[v] = s / total if total > 0.0 else 1.0
        rel_photon[v] = s / mean if mean > 0.0 else 1.0
