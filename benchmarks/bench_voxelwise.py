"""Time the voxel-wise TIA fit of a 128^3 field with 4 time points (issues 4 and 14).

Run: ``.venv/bin/python benchmarks/bench_voxelwise.py [--threads 2] [--size 128]
[--mask-fraction 0.5] [--noise 0.05] [--sample 500] [--repeat 3] [--cold] [--json]``.

The synthetic Lu-177 field (4, 24, 96, 168 h after injection) has an
ellipsoidal body mask (about ``--mask-fraction`` of the voxels): soft tissue
(half of its voxels mono-exponential, half with an uptake phase), a
mono-exponential liver-like region, bi-exponential uptake kidney- and
tumour-like regions, per-voxel random rates, and relative Gaussian noise.
Outside the body: low mono-exponential background, **not fitted** (skipped by
the mask) and therefore not counted anywhere: every voxels/s figure below is
the number of voxels actually fitted (the mask voxels) over the time taken.

Measured in the same run:

* first call of the kernel on a few voxels (numba compile, or load from the
  on-disk cache when it is warm; ``--cold`` forces a compile by pointing
  ``NUMBA_CACHE_DIR`` at an empty directory),
* ``fit_voxelwise`` on the whole field with the mask, after warm-up: median
  of ``--repeat`` runs (wall time, and the process CPU time),
* per-voxel ``scipy.optimize.curve_fit`` loops on a random subsample of the
  fitted (mask) voxels, each timed as the median of ``--repeat`` passes and
  scaled to the number of voxels fitted (loop time = fitted voxels / loop
  voxels/s).  The **baseline** is the plain loop a competent user would
  write: a mono-exponential fit, unbounded MINPACK ``lm`` (the default),
  start from the first and last samples; both with no weights and with the
  kernel's relative weights (``sigma``), and the faster of the two is the
  baseline.  For context only: (b) mono-exponential with the kernel's
  weights and bounds (``trf``); (c) the same work as the kernel (mono and
  biexp-uptake fits with the same weights and bounds, one data-derived start
  each, plus the trapezoid and the selection; one pass).

Ratio = estimated loop time over the fitted voxels / ``fit_voxelwise`` time
(wall).  Goal (issue 14): >= 200x the baseline.  The loop runs on one core,
the kernel on ``--threads``; on a busy machine the kernel loses more than
the loop, so the CPU-time ratio (per core, load-independent) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--mask-fraction", type=float, default=0.5)
    parser.add_argument("--noise", type=float, default=0.05, help="relative SD per voxel")
    parser.add_argument("--sample", type=int, default=500, help="voxels for the scipy loops")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="force a numba compile")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


ARGS = _parse()
if ARGS.cold:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import curve_fit  # noqa: E402

from dosimetry_core.kinetics.voxelwise import (  # noqa: E402
    D_MIN_PER_H,
    LAMBDA_MAX_PER_H,
    fit_tacs,
    fit_voxelwise,
)
from dosimetry_core.model.geometry import Geometry  # noqa: E402
from dosimetry_core.model.units import ImageUnits  # noqa: E402
from dosimetry_core.model.volume import Volume  # noqa: E402
from dosimetry_core.physics.nuclides import decay_constant_per_h  # noqa: E402

TIMES_H = (4.0, 24.0, 96.0, 168.0)


def make_field(size: int, mask_fraction: float, noise: float, seed: int):
    """Synthetic activity maps (Bq/mL), body mask, and the true model per voxel."""
    rng = np.random.default_rng(seed)
    lp = decay_constant_per_h("Lu-177")
    tau = np.asarray(TIMES_H)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, size),) * 3, indexing="ij")
    # ellipsoid with semi-axes scaled so that its volume fraction ~ mask_fraction
    r = (6 * mask_fraction / (np.pi * 0.88)) ** (1 / 3)
    body = (x / r) ** 2 + (y / (0.8 * r)) ** 2 + (z / (1.1 * r)) ** 2 <= 1.0
    region = np.zeros(body.shape, np.uint8)  # 0 soft tissue
    region[((x - 0.25 * r) / 0.15) ** 2 + (y / 0.1) ** 2 + (z / 0.2) ** 2 <= 1] = 1  # kidney
    region[((x + 0.25 * r) / 0.15) ** 2 + (y / 0.1) ** 2 + (z / 0.2) ** 2 <= 1] = 1
    region[((x + 0.1) / 0.3) ** 2 + ((y - 0.1) / 0.25) ** 2 + ((z - 0.2) / 0.2) ** 2 <= 1] = 2
    for cx, cy, cz in rng.uniform(-0.3, 0.3, (12, 3)) * r:  # tumours
        region[((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) <= 0.06**2] = 3
    region[~body] = 0
    nv = size**3
    reg = region.reshape(-1)
    amp = np.choose(reg, [2e3, 4e4, 2e4, 8e4]) * rng.uniform(0.7, 1.3, nv)
    lam1 = np.choose(reg, [0.03, 0.012, 0.02, 0.006]) * rng.uniform(0.8, 1.25, nv)
    lam1 = np.maximum(lam1, 1.05 * lp)
    lam2 = np.choose(reg, [np.inf, 0.3, np.inf, 0.08]) * rng.uniform(0.7, 1.4, nv)
    # half of the soft tissue shows an uptake phase (l2 ~ 0.15/h: peak ~ 15-25 h)
    soft_uptake = (reg == 0) & (rng.random(nv) < 0.5)
    lam2[soft_uptake] = 0.15 * rng.uniform(0.7, 1.4, int(soft_uptake.sum()))
    upt = np.isfinite(lam2)
    curves = amp[:, None] * np.exp(-lam1[:, None] * tau)
    curves[upt] -= amp[upt, None] * np.exp(-lam2[upt, None] * tau)
    curves *= 1.0 + noise * rng.standard_normal(curves.shape)
    curves[~body.reshape(-1)] = rng.uniform(0, 50, (int((~body).sum()), 1)) * np.exp(-lp * tau)
    geo = Geometry((size, size, size), (4.0, 4.0, 4.0))
    maps = [Volume(curves[:, j].reshape(body.shape), geo, ImageUnits.BQML) for j in range(4)]
    return maps, body, upt.reshape(body.shape), curves


def _sig(y):
    return np.maximum(y, 0.01 * y.max())


def _mono(t, a, lam):
    return a * np.exp(-lam * t)


def _bi(t, a, l1, d):
    return a * (np.exp(-l1 * t) - np.exp(-(l1 + d) * t))


def scipy_loop_plain(curves: np.ndarray, weighted: bool) -> tuple[float, float]:
    """The plain loop: mono fit, unbounded Levenberg-Marquardt (MINPACK ``lm``),
    start from the first and last samples, optionally the kernel's relative
    weights; (voxels/s wall, voxels per CPU second)."""
    tau = np.asarray(TIMES_H)
    t0 = time.perf_counter()
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for yv in curves:
            lam0 = max(np.log(max(yv[0], 1e-9) / max(yv[-1], 1e-9)) / (tau[-1] - tau[0]), 1e-3)
            p0 = (yv[0] * np.exp(lam0 * tau[0]), lam0)
            try:
                if weighted:
                    curve_fit(_mono, tau, yv, p0=p0, sigma=_sig(yv))
                else:
                    curve_fit(_mono, tau, yv, p0=p0)
            except (RuntimeError, ValueError):
                pass
    n = curves.shape[0]
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def median_of(repeat: int, fn):  # type: ignore[no-untyped-def]
    """Median over ``repeat`` calls of a function returning a tuple of rates."""
    runs = [fn() for _ in range(max(repeat, 1))]
    return tuple(float(np.median([r[i] for r in runs])) for i in range(len(runs[0])))


def scipy_loop(curves: np.ndarray, lp: float, both: bool) -> float:
    """Per-voxel curve_fit loop with the kernel's weights and bounds (``trf``);
    ``both``: also biexp-uptake, trapezoid and selection; voxels/s."""
    tau = np.asarray(TIMES_H)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for yv in curves:
            s = _sig(yv)
            pos = yv > 0
            sl = np.polyfit(tau[pos], np.log(yv[pos]), 1)[0] if pos.sum() >= 2 else -lp
            lam0 = min(max(-sl, 1.01 * lp), 10.0)
            try:
                pm, _ = curve_fit(
                    _mono,
                    tau,
                    yv,
                    p0=(max(yv.max(), 1e-9), lam0),
                    sigma=s,
                    bounds=([0, lp], [np.inf, LAMBDA_MAX_PER_H]),
                )
                wm = np.sum(((yv - _mono(tau, *pm)) / s) ** 2)
            except (RuntimeError, ValueError):
                wm = np.inf
            if both:
                try:
                    pb, _ = curve_fit(
                        _bi,
                        tau,
                        yv,
                        p0=(max(yv.max(), 1e-9) * 2, lam0, 0.5),
                        sigma=s,
                        bounds=([0, lp, D_MIN_PER_H], [np.inf, 10.0, 40.0]),
                    )
                    wb = np.sum(((yv - _bi(tau, *pb)) / s) ** 2)
                except (RuntimeError, ValueError):
                    wb = np.inf
                n = tau.size
                _ = n * np.log(max(wm, 1e-12) / n) + 4 > n * np.log(max(wb, 1e-12) / n) + 6
                _ = 0.5 * yv[0] * tau[0] + np.trapezoid(np.maximum(yv, 0), tau) + yv[-1] / lp
    return curves.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    numba.set_num_threads(min(ARGS.threads, numba.config.NUMBA_NUM_THREADS))
    lp = decay_constant_per_h("Lu-177")
    maps, body, upt, curves = make_field(ARGS.size, ARGS.mask_fraction, ARGS.noise, ARGS.seed)

    t = time.perf_counter()
    fit_tacs(TIMES_H, curves[:64], lambda_phys_per_h=lp)
    first_call_s = time.perf_counter() - t

    small = Geometry((8, 8, 8), (4.0, 4.0, 4.0))
    warm = [Volume(np.ascontiguousarray(m.array[:8, :8, :8]), small, ImageUnits.BQML) for m in maps]
    fit_voxelwise(TIMES_H, warm, nuclide="Lu-177")  # warm-up of the whole path
    walls, cpus = [], []
    for _ in range(max(ARGS.repeat, 1)):
        t, c = time.perf_counter(), time.process_time()
        res = fit_voxelwise(TIMES_H, maps, nuclide="Lu-177", mask=body)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    fit_s = float(np.median(walls))
    fit_cpu_s = float(np.median(cpus))
    n_fit = res.n_voxels  # voxels actually fitted (the mask), not the background
    kernel_vps = n_fit / fit_s

    rng = np.random.default_rng(ARGS.seed + 1)
    idx = rng.choice(np.flatnonzero(body.reshape(-1)), size=ARGS.sample, replace=False)
    sample = curves[idx]
    plain_vps, plain_cpu = median_of(ARGS.repeat, lambda: scipy_loop_plain(sample, False))
    wplain_vps, wplain_cpu = median_of(ARGS.repeat, lambda: scipy_loop_plain(sample, True))
    if wplain_vps > plain_vps:
        fast_vps, fast_cpu, baseline = wplain_vps, wplain_cpu, "weighted"
    else:
        fast_vps, fast_cpu, baseline = plain_vps, plain_cpu, "unweighted"
    loop_s = n_fit / fast_vps  # the subsample's rate scaled to the voxels fitted
    loop_cpu_s = n_fit / fast_cpu
    mono_vps = float(np.median([scipy_loop(sample, lp, both=False) for _ in range(ARGS.repeat)]))
    both_vps = scipy_loop(sample, lp, both=True)
    load = os.getloadavg()[0]

    out = {
        "shape": list(body.shape),
        "time_points_h": list(TIMES_H),
        "threads": numba.get_num_threads(),
        "mask_voxels": res.n_voxels,
        "mask_fraction": round(res.n_voxels / body.size, 3),
        "true_uptake_fraction_in_mask": round(float(upt[body].mean()), 3),
        "noise_rel_sd": ARGS.noise,
        "counts": res.counts,
        "first_call_s": round(first_call_s, 3),
        "cold_compile": ARGS.cold,
        "fitted_voxels": n_fit,
        "background_voxels_skipped": int(body.size - n_fit),
        "repeat": ARGS.repeat,
        "fit_s": round(fit_s, 3),
        "fit_s_all": [round(w, 3) for w in walls],
        "fit_cpu_s": round(fit_cpu_s, 3),
        "kernel_voxels_per_s": round(kernel_vps),
        "full_field_voxels_per_s": round(kernel_vps),
        "scipy_mono_unbounded_lm_unweighted_voxels_per_s": round(plain_vps),
        "scipy_mono_unbounded_lm_weighted_voxels_per_s": round(wplain_vps),
        "baseline": f"scipy curve_fit loop, mono, unbounded lm, {baseline}",
        "scipy_mono_unbounded_lm_voxels_per_s": round(fast_vps),
        "baseline_loop_s_for_fitted_voxels": round(loop_s, 1),
        "scipy_mono_voxels_per_s": round(mono_vps),
        "scipy_same_work_voxels_per_s": round(both_vps),
        "ratio_vs_scipy_mono_unbounded_lm": round(loop_s / fit_s, 1),
        "ratio_cpu_vs_scipy_mono_unbounded_lm": round(loop_cpu_s / fit_cpu_s, 1),
        "ratio_vs_scipy_mono": round(kernel_vps / mono_vps, 1),
        "ratio_vs_scipy_same_work": round(kernel_vps / both_vps, 1),
        "scipy_sample_voxels": ARGS.sample,
        "total_tia_mbq_h": round(res.total_tia_mbq_h, 3),
        "load_average_1min": round(load, 2),
    }
    if ARGS.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"field {out['shape']} x {len(TIMES_H)} time points, {out['threads']} threads, "
        f"mask {res.n_voxels} voxels ({out['mask_fraction']:.0%}), noise {ARGS.noise:.0%}"
    )
    print(f"model counts: {res.counts}")
    cold = "compile" if ARGS.cold else "compile or cache load"
    print(f"first call ({cold}): {first_call_s:.2f} s")
    print(
        f"fitted voxels {n_fit} (background skipped by the mask, not counted: {body.size - n_fit})"
    )
    print(f"{'method':46s} {'voxels/s':>12s} {'ratio':>8s}")
    print(f"{'numba fit_voxelwise (mono+biexp+selection)':46s} {kernel_vps:12.0f} {'1':>8s}")
    rows = [
        ("scipy loop, mono, unbounded lm, unweighted", plain_vps),
        ("scipy loop, mono, unbounded lm, weighted", wplain_vps),
        ("scipy loop, mono, bounded trf (context)", mono_vps),
        ("scipy loop, same work (context, 1 pass)", both_vps),
    ]
    for name, vps in rows:
        print(f"{name:46s} {vps:12.0f} {kernel_vps / vps:8.1f}")
    print(
        f"fit_voxelwise: {fit_s:.2f} s wall (median of {ARGS.repeat}: {out['fit_s_all']}), "
        f"{fit_cpu_s:.2f} s CPU; total TIA {res.total_tia_mbq_h:.1f} MBq h"
    )
    print(
        f"baseline ({out['baseline']}) on the {n_fit} fitted voxels: {loop_s:.1f} s "
        f"(from {ARGS.sample} random mask voxels); ratio {loop_s / fit_s:.1f} wall, "
        f"{loop_cpu_s / fit_cpu_s:.1f} CPU time (per core); goal: >= 200"
    )
    print(f"load average {load:.2f} on {os.cpu_count()} cores (above ~0.5 the ratio is low)")


if __name__ == "__main__":
    main()
