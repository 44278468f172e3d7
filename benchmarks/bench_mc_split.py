"""Time one photon Monte Carlo dose of the demo split across K Dask workers vs one worker.

Run: ``.venv/bin/python benchmarks/bench_mc_split.py [--workers 2] [--repeats 3]
[--histories 2000000] [--batches 10] [--json]``.

The problem: the demo patient (``generate_demo(DemoConfig())``, time point 1 CT
116x192x192, 3.2x3.2x5 mm; decays = the true compartment TIAs spread uniformly
over each compartment's CT voxels, as in ``bench_monte_carlo.py``), Lu-177,
``--histories`` photon histories in ``--batches`` batches, electrons local, both
kidneys as VOIs.  Measured in the same run, the modes interleaved and their order
rotated per repeat (so background load hits all alike), medians of ``--repeats``
(>= 3) runs of wall time around the whole call (preparation, shipping the inputs,
transport, returning the sums, merge):

* **K workers**: ``run_monte_carlo_distributed`` on a local cluster of
  ``--workers`` processes, one part each, ``cores // K`` numba threads per part;
* **baseline, one worker**: the same histories in one worker process of a local
  cluster of 1 (one part, all cores' numba threads): the same code path and
  shipping costs, without the split;
* **reference, no Dask**: ``run_monte_carlo`` in this process on all cores --
  what ``mrtdose dose --method mc`` runs today.

Cluster start-up is timed once per cluster and reported apart (a cohort or a
long run pays it once).  The K-worker dose is checked against the one-process
dose (equal to float rounding: same streams) and the kidney photon SDs printed.
On one machine the K workers share the cores the one worker already uses with
its threads, so a ratio near 1 is the expected honest result; the split pays
off across machines (``tcp://`` scheduler).  The load average is printed
before and after.  No assertions on time; ``--json`` for one machine-readable line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--histories", type=int, default=2_000_000)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def demo_case() -> dict[str, Any]:
    """HU, decays (Bq*s), spacing and kidney masks of the demo patient (time point 1)."""
    from dosimetry_core.dose.units import BQ_S_PER_MBQ_H
    from dosimetry_core.phantoms.demo import DemoConfig, generate_demo

    demo = generate_demo(DemoConfig())
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
    kidneys = {
        f"kidney_{side}": np.isin(labels, [v for v, n in names.items() if n == f"kidney_{side}"])
        for side in ("left", "right")
    }
    return {
        "hu": np.asarray(tp.ct.array),
        "decays": decays,
        "spacing": tuple(tp.ct.geometry.spacing_mm),
        "kidneys": kidneys,
    }


def _med(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    args = _parse()
    import numba

    from dosimetry_core.dose.ct_materials import ct_to_materials
    from dosimetry_core.dose.monte_carlo import MonteCarloResult, run_monte_carlo
    from dosimetry_core.pipeline.mc_distributed import dask_client, run_monte_carlo_distributed

    cores = os.cpu_count() or 1
    out: dict[str, Any] = {
        "workers": args.workers,
        "repeats": args.repeats,
        "histories": args.histories,
        "batches": args.batches,
        "cores": cores,
        "load_average_before": list(os.getloadavg()),
    }
    if args.repeats < 3:
        print("note: fewer than 3 repeats, the medians are not the benchmark's figures")
    case = demo_case()
    index, density, mats = ct_to_materials(case["hu"])
    problem = (case["decays"], index, density, mats, case["spacing"], "Lu-177")
    options = {
        "histories": args.histories,
        "batches": args.batches,
        "voi_masks": case["kidneys"],
        "seed": 5,
    }
    print(
        f"demo patient CT {case['hu'].shape}, {args.histories:,} histories in {args.batches} "
        f"batches, {cores} cores; load average before: {os.getloadavg()}"
    )
    numba.set_num_threads(min(cores, int(numba.config.NUMBA_NUM_THREADS)))
    run_monte_carlo(*problem, histories=2 * args.batches, batches=args.batches)  # warm

    t0 = time.perf_counter()
    with dask_client(f"local:{args.workers}") as many, dask_client("local:1") as one:
        out["cluster_start_s"] = time.perf_counter() - t0
        print(f"both local clusters started in {out['cluster_start_s']:.1f} s (not in the figures)")
        # warm each worker (numba cache load) with a tiny run
        for c in (many, one):
            run_monte_carlo_distributed(*problem, client=c, histories=2 * args.batches,
                                        batches=args.batches)  # fmt: skip

        def k_workers() -> MonteCarloResult:
            return run_monte_carlo_distributed(
                *problem, client=many, threads_per_part=max(1, cores // args.workers), **options
            ).result

        def one_worker() -> MonteCarloResult:
            return run_monte_carlo_distributed(
                *problem, client=one, threads_per_part=cores, **options
            ).result

        def no_dask() -> MonteCarloResult:
            return run_monte_carlo(*problem, **options)

        modes = {"k_workers": k_workers, "one_worker": one_worker, "no_dask": no_dask}
        times: dict[str, list[float]] = {m: [] for m in modes}
        results: dict[str, MonteCarloResult] = {}
        names = list(modes)
        for rep in range(args.repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for m in order:
                t = time.perf_counter()
                results[m] = modes[m]()
                times[m].append(time.perf_counter() - t)
    med = {m: _med(v) for m, v in times.items()}
    same = bool(
        np.allclose(results["k_workers"].dose_gy, results["no_dask"].dose_gy, rtol=1e-5, atol=0)
    )
    k = args.workers
    print(
        f"  {k} workers ({cores // k if cores >= k else 1} numba threads each): "
        f"{med['k_workers']:.2f} s; one worker ({cores} threads, baseline): "
        f"{med['one_worker']:.2f} s -> ratio {med['one_worker'] / med['k_workers']:.2f}x"
    )
    print(
        f"  no Dask (run_monte_carlo in this process, {cores} threads): {med['no_dask']:.2f} s "
        f"-> the split costs {med['k_workers'] / med['no_dask']:.2f}x of it on this machine"
    )
    print(f"  the {k}-worker dose equals the one-process dose to rounding: {same}")
    for name in case["kidneys"]:
        a, b = results["k_workers"].voi(name), results["no_dask"].voi(name)
        print(
            f"  {name}: photon {a.photon_mean_gy:.4f} Gy +- {a.photon_rel_uncertainty:.2%} "
            f"({k} workers) vs {b.photon_mean_gy:.4f} Gy +- {b.photon_rel_uncertainty:.2%} "
            f"(one process); total {a.mean_gy:.3f} Gy"
        )
    out.update(
        seconds=med,
        runs_s=times,
        ratio_one_worker_over_k_workers=med["one_worker"] / med["k_workers"],
        ratio_k_workers_over_no_dask=med["k_workers"] / med["no_dask"],
        same_dose=same,
        load_average_after=list(os.getloadavg()),
    )
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
