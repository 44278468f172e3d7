"""Time the photon Monte Carlo (track-length kerma estimator) on CPU threads.

Run: ``.venv/bin/python benchmarks/bench_monte_carlo.py [--threads 2] [--size 128]
[--histories 2000000] [--target 0.02] [--demo-batch 100000] [--no-demo] [--cold] [--json]``.

Measured in the same run:

* first call of the kernels (numba compile, or load from the on-disk cache when
  it is warm; ``--cold`` forces a compile by pointing ``NUMBA_CACHE_DIR`` at an
  empty directory);
* Lu-177 in a ``--size``^3 grid of 4 mm voxels: a stylised body (soft-tissue
  ellipsoid in air, two lungs, a bone column) with decays uniform in the body and
  ten times higher in two "kidney" ellipsoids.  Photon histories per second with
  ``--threads`` threads, and the baseline: the same kernel on one thread (ratio =
  parallel speed-up; goal of the task: >= 1e6 histories/s on 2 cores);
  the analog estimator on the same problem, and the relative uncertainty each
  estimator reaches in the kidneys for the same histories (the variance gain of
  the track-length estimator, as a ratio of the efficiencies 1/(s^2 t));
* the demo patient (``generate_demo(DemoConfig())``, time point 1 CT
  116x192x192, 3.2x3.2x5 mm): decays = true compartment TIAs spread uniformly
  over each compartment's CT voxels (fat voxels belong to the remainder);
  ``run_monte_carlo(..., deposit_local=True, target_uncertainty=--target,
  target_mask=kidneys)``: seconds to reach the target (goal < 60 s),
  histories/s, and the kidney mean doses (total, photon part); then the same for
  the photon dose alone (``deposit_local=False``), a much harder target because
  the local electron dose (96 % of the kidney dose) carries no noise.
No assertions on time; figures are printed (``--json`` for a machine-readable line).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--histories", type=int, default=2_000_000)
    parser.add_argument("--target", type=float, default=0.02)
    parser.add_argument("--demo-batch", type=int, default=20_000, help="histories per batch")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="force a numba compile")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


ARGS = _parse()
if ARGS.cold:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from dosimetry_core.dose.ct_materials import ct_to_materials  # noqa: E402
from dosimetry_core.dose.monte_carlo import run_monte_carlo  # noqa: E402

MEDIA = ["air", "lung", "adipose", "soft-tissue", "bone"]


def make_body(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Material index, density, decays (Bq*s) and kidney mask of the synthetic body."""
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, size),) * 3, indexing="ij")
    body = (x / 0.75) ** 2 + (y / 0.5) ** 2 + (z / 0.95) ** 2 <= 1.0
    lungs = (((np.abs(x) - 0.35) / 0.22) ** 2 + (y / 0.3) ** 2 + ((z - 0.45) / 0.35) ** 2) <= 1
    spine = ((x / 0.08) ** 2 + ((y + 0.3) / 0.08) ** 2 <= 1) & body
    kidneys = (((np.abs(x) - 0.3) / 0.08) ** 2 + ((y + 0.2) / 0.1) ** 2 + (z / 0.15) ** 2) <= 1
    mat = np.zeros(body.shape, dtype=np.uint8)
    rho = np.full(body.shape, 0.0012, dtype=np.float32)
    mat[body], rho[body] = 3, 1.04
    mat[lungs & body], rho[lungs & body] = 1, 0.26
    mat[spine], rho[spine] = 4, 1.5
    decays = np.where(body, 1e9, 0.0)
    decays[kidneys] = 1e10
    return mat, rho, decays, kidneys


def demo_case() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], np.ndarray, float]:
    """HU, decays, spacing, kidney mask and generation time of the demo patient (TP 1)."""
    from dosimetry_core.dose.units import BQ_S_PER_MBQ_H
    from dosimetry_core.phantoms.demo import DemoConfig, generate_demo

    t0 = time.perf_counter()
    demo = generate_demo(DemoConfig())
    t_gen = time.perf_counter() - t0
    tp = demo.time_points[0]
    labels = np.asarray(tp.labels.array)
    names = demo.phantom.label_names()
    truth = demo.ground_truth["compartments"]
    decays = np.zeros(labels.shape, dtype=np.float64)
    for value, name in names.items():
        comp = "remainder" if name == "fat" else name
        if comp not in truth:
            continue
        members = [v for v, n in names.items() if ("remainder" if n == "fat" else n) == comp]
        sel = np.isin(labels, members)
        if sel.any() and value == members[0]:
            decays[sel] = truth[comp]["tia_mbq_h"] * BQ_S_PER_MBQ_H / sel.sum()
    kid_labels = [v for v, n in names.items() if n.startswith("kidney")]
    kidneys = np.isin(labels, kid_labels)
    hu = np.asarray(tp.ct.array)
    return hu, decays, tuple(tp.ct.geometry.spacing_mm), kidneys, t_gen


def main() -> None:
    out: dict[str, object] = {"threads": ARGS.threads, "size": ARGS.size}
    numba.set_num_threads(ARGS.threads)
    mat, rho, decays, kidneys = make_body(ARGS.size)
    sp = (4.0, 4.0, 4.0)

    t0 = time.perf_counter()
    run_monte_carlo(decays, mat, rho, MEDIA, sp, "Lu-177", histories=2000, batches=2)
    run_monte_carlo(
        decays, mat, rho, MEDIA, sp, "Lu-177", histories=2000, batches=2, estimator="analog"
    )
    out["first_call_s"] = time.perf_counter() - t0
    print(f"first calls (compile or cache load): {out['first_call_s']:.2f} s")

    def timed(threads: int, estimator: str):
        numba.set_num_threads(threads)
        r = run_monte_carlo(
            decays,
            mat,
            rho,
            MEDIA,
            sp,
            "Lu-177",
            histories=ARGS.histories,
            batches=10,
            seed=ARGS.seed,
            estimator=estimator,
            deposit_local=False,
            target_mask=kidneys,
        )
        numba.set_num_threads(ARGS.threads)
        return r

    par = timed(ARGS.threads, "track-length")
    one = timed(1, "track-length")
    ana = timed(ARGS.threads, "analog")
    n = ARGS.size
    print(f"Lu-177, {n}^3 x 4 mm stylised body, {ARGS.histories:,} photon histories:")
    print(
        f"  track-length, {ARGS.threads} threads: {par.histories_per_s:12,.0f} histories/s "
        f"({par.elapsed_s:.2f} s), kidney uncertainty {par.target_uncertainty_reached:.3%}"
    )
    print(
        f"  track-length, 1 thread (baseline): {one.histories_per_s:12,.0f} histories/s "
        f"({one.elapsed_s:.2f} s)"
    )
    print(
        f"  analog, {ARGS.threads} threads:       {ana.histories_per_s:12,.0f} histories/s, "
        f"kidney uncertainty {ana.target_uncertainty_reached:.3%}"
    )
    speedup = par.histories_per_s / one.histories_per_s
    assert par.target_uncertainty_reached is not None and ana.target_uncertainty_reached is not None
    eff = (ana.target_uncertainty_reached**2 * ana.elapsed_s) / (
        par.target_uncertainty_reached**2 * par.elapsed_s
    )
    print(
        f"  ratio {ARGS.threads} threads / 1 thread: {speedup:.2f}x; "
        f"goal 1e6 histories/s: {par.histories_per_s / 1e6:.2f} of it"
    )
    print(f"  efficiency track-length / analog (1/(s^2 t)): {eff:.1f}x")
    same = np.allclose(par.photon_dose_gy, one.photon_dose_gy, rtol=1e-5, atol=0)
    print(f"  same dose with {ARGS.threads} threads and 1 thread: {same}")
    out.update(
        histories=ARGS.histories,
        hist_per_s=par.histories_per_s,
        hist_per_s_1thread=one.histories_per_s,
        speedup=speedup,
        hist_per_s_analog=ana.histories_per_s,
        efficiency_gain_tle_vs_analog=eff,
        thread_independent=bool(same),
    )

    if not ARGS.no_demo:
        hu, dec, spacing, kid, t_gen = demo_case()
        t0 = time.perf_counter()
        index, density, mats = ct_to_materials(hu)
        t_mat = time.perf_counter() - t0
        res = run_monte_carlo(
            dec,
            index,
            density,
            mats,
            spacing,
            "Lu-177",
            histories=10 * ARGS.demo_batch,
            batches=10,
            deposit_local=True,
            target_uncertainty=ARGS.target,
            target_mask=kid,
            max_histories=10**9,
            seed=ARGS.seed,
        )
        assert res.local_dose_gy is not None
        d_tot = float(res.dose_gy[kid].mean())
        d_ph = float(res.photon_dose_gy[kid].mean())
        print(
            f"demo patient (CT {hu.shape}, spacing {spacing} mm; generated in {t_gen:.1f} s, "
            f"materials {t_mat:.2f} s):"
        )
        print(
            f"  to {ARGS.target:.1%} in the kidneys ({res.stopped_because}): "
            f"{res.elapsed_s:.1f} s, {res.histories:,} histories in {res.batches} batches, "
            f"{res.histories_per_s:,.0f} histories/s; reached "
            f"{res.target_uncertainty_reached:.3%} (goal < 60 s)"
        )
        print(
            f"  kidney mean dose {d_tot:.3f} Gy, of which photons {d_ph:.3f} Gy "
            f"({d_ph / d_tot:.1%}); mean voxel rel. uncertainty "
            f"{float(res.rel_uncertainty[kid].mean()):.2%}"
        )
        ph = run_monte_carlo(
            dec,
            index,
            density,
            mats,
            spacing,
            "Lu-177",
            histories=10 * ARGS.demo_batch,
            batches=10,
            deposit_local=False,
            target_uncertainty=ARGS.target,
            target_mask=kid,
            max_histories=4 * 10**7,
            seed=ARGS.seed,
        )
        print(
            f"  photon dose alone to {ARGS.target:.1%} in the kidneys ({ph.stopped_because}): "
            f"{ph.elapsed_s:.1f} s, {ph.histories:,} histories, "
            f"{ph.histories_per_s:,.0f} histories/s; reached "
            f"{ph.target_uncertainty_reached:.3%}"
        )
        out.update(
            demo_photon_only_seconds=ph.elapsed_s,
            demo_photon_only_histories=ph.histories,
            demo_photon_only_reached=ph.target_uncertainty_reached,
            demo_seconds=res.elapsed_s,
            demo_histories=res.histories,
            demo_hist_per_s=res.histories_per_s,
            demo_reached=res.target_uncertainty_reached,
            demo_kidney_dose_gy=d_tot,
            demo_kidney_photon_dose_gy=d_ph,
        )
    if ARGS.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
