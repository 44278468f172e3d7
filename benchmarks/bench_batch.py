"""Cohort batch on Dask: 8 demo-like cases, 2 workers vs 1 worker (issue 17).

Run: ``.venv/bin/python benchmarks/bench_batch.py [--repeat 3] [--cases 8] [--json]``.

Setup (timed, not counted): 8 demo-like patients (small demo grids; each with its
own kinetics, administered activity and CT grid, so different organ masses:
:mod:`dosimetry_core.pipeline.demo_cohort`) are written as DICOM and imported into a
template store; one ``run_protocol`` on a throw-away copy fills the kernel cache.

Measured in the same run, ``--repeat`` times, the order of the three rotated each
round (so load from other processes hits all alike), each on a fresh copy of the
template store (no run reuses what another saved):

* **batch, 2 workers**: ``run_batch(..., scheduler="local:2")``, the whole call
  (cluster start-up, worker imports, 8 protocol runs, shutdown);
* **batch, 1 worker**: the same batch code with ``local:1`` (the baseline of the
  speed-up: the same code on one worker process);
* **sequential loop**: a child process that imports the pipeline and calls
  ``run_protocol`` for the 8 cases one after the other (no Dask at all; it pays its
  imports once, like a worker), so the Dask overhead is visible, not hidden.

Printed: medians, the speed-up (1 worker / 2 workers; goal >= 1.7 on 2 cores), the
ratio to the sequential loop, and the largest relative difference of any organ value
(dose, Gy/GBq, BED, SD) between the 2-worker batch and the sequential loop: the
Done-means line "results equal to running each case alone".  The load average is
printed before and after: a speed-up measured while other work shares the cores is
not a speed-up figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROTOCOL = "lu177-dotatate"
ATTRS = ("dose_gy", "dose_per_activity_gy_per_gbq", "bed_gy", "dose_sd_gy")

SEQUENTIAL = r"""
import json, sys, time
ATTRS = ("dose_gy", "dose_per_activity_gy_per_gbq", "bed_gy", "dose_sd_gy")
t0 = time.perf_counter()
from dosimetry_core.pipeline.protocol_run import run_protocol
from dosimetry_core.store import CaseStore
store = CaseStore(sys.argv[1])
out = {}
for cid in sys.argv[3:]:
    run = run_protocol(store, cid, sys.argv[2])
    out[cid] = {k: {a: getattr(o, a) for a in ATTRS} for k, o in run.organs.items()}
store.close()
print(json.dumps({"wall_s": time.perf_counter() - t0, "organs": out}))
"""


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="reuse/keep the cohort data here")
    return p.parse_args()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def setup(root: Path, n: int) -> tuple[Path, list[str], float]:
    from dosimetry_core.pipeline.batch import import_cohort
    from dosimetry_core.pipeline.demo_cohort import write_demo_cohort
    from dosimetry_core.pipeline.protocol_run import run_protocol
    from dosimetry_core.store import CaseStore

    t = time.perf_counter()
    store = root / "template-store"
    info = root / "ids.json"
    if not info.exists():
        folders = write_demo_cohort(root / "dicom", [(p, 1) for p in range(n)])
        ids = []
        with CaseStore(store) as s:
            for f in folders:
                found, _ = import_cohort(s, f)
                ids += found
        warm = root / "warm-store"
        shutil.copytree(store, warm)
        with CaseStore(warm) as s:
            run_protocol(s, ids[0], PROTOCOL)  # fills the kernel cache
        shutil.rmtree(warm)
        info.write_text(json.dumps(ids))
    return store, json.loads(info.read_text()), time.perf_counter() - t


CASE_S: dict[str, list[float]] = {}
"""Per-case time inside the workers (s), per scheduler: says whether cases slowed down."""


def batch(template: Path, work: Path, ids: list[str], scheduler: str) -> tuple[float, dict]:
    from dosimetry_core.pipeline.batch import BatchOptions, StoreLocation, run_batch

    store = work / f"store-{scheduler.replace(':', '')}-{time.time_ns()}"
    shutil.copytree(template, store)
    t = time.perf_counter()
    result = run_batch(StoreLocation(str(store)), ids, BatchOptions(PROTOCOL), scheduler=scheduler)
    wall = time.perf_counter() - t
    CASE_S.setdefault(scheduler, []).extend(o.elapsed_s for o in result.outcomes)
    bad = [o for o in result.outcomes if o.status != "done"]
    if bad:
        raise SystemExit(f"batch {scheduler}: {[(o.case_id, o.status, o.reason) for o in bad]}")
    organs = {
        o.case_id: {r.organ_id: {a: getattr(r, a) for a in ATTRS} for r in o.organs}
        for o in result.outcomes
    }
    shutil.rmtree(store)
    return wall, organs


def sequential(template: Path, work: Path, ids: list[str]) -> tuple[float, dict]:
    store = work / f"store-seq-{time.time_ns()}"
    shutil.copytree(template, store)
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", SEQUENTIAL, str(store), PROTOCOL, *ids],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    shutil.rmtree(store)
    return wall, json.loads(out.stdout.strip().splitlines()[-1])["organs"]


def max_rel_diff(a: dict, b: dict) -> float:
    worst = 0.0
    for cid, organs in b.items():
        for organ, vals in organs.items():
            for attr, y in vals.items():
                x = a[cid][organ][attr]
                if x is None or y is None:
                    if x is not y:
                        return float("inf")
                    continue
                worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
    return worst


def main() -> int:
    args = _parse()
    os.environ.setdefault(
        "MRTDOSE_KERNEL_CACHE", str(Path(tempfile.gettempdir()) / "mrtdose-bench-kernels")
    )
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    root.mkdir(parents=True, exist_ok=True)
    load_before = _load()
    template, ids, t_setup = setup(root, args.cases)
    work = root / "runs"
    work.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {"local:2": [], "local:1": [], "sequential": []}
    diffs: list[float] = []
    order = ["local:2", "local:1", "sequential"]
    for k in range(args.repeat):
        rot = order[k % 3 :] + order[: k % 3]
        got: dict[str, dict] = {}
        for what in rot:
            if what == "sequential":
                wall, organs = sequential(template, work, ids)
            else:
                wall, organs = batch(template, work, ids, what)
            times[what].append(wall)
            got[what] = organs
            if not args.json:
                print(f"round {k + 1}: {what:<10} {wall:7.1f} s  (load {_load()[0]})", flush=True)
        diffs.append(max_rel_diff(got["local:2"], got["sequential"]))
        diffs.append(max_rel_diff(got["local:1"], got["sequential"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    report = {
        "cases": len(ids),
        "repeat": args.repeat,
        "setup_s": round(t_setup, 1),
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "runs_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "speedup_2_vs_1_worker": round(med["local:1"] / med["local:2"], 3),
        "speedup_2_workers_vs_sequential": round(med["sequential"] / med["local:2"], 3),
        "ratio_1_worker_vs_sequential": round(med["local:1"] / med["sequential"], 3),
        "max_rel_diff_vs_sequential": max(diffs),
        "median_case_s_in_worker": {k: round(statistics.median(v), 2) for k, v in CASE_S.items()},
        "goal": ">= 1.7x (2 workers vs 1 on 2 cores)",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(ids)} cases, median of {args.repeat}:")
        for k, v in med.items():
            print(f"  {k:<10} {v:7.1f} s")
        print(
            f"speed-up 2 vs 1 worker {report['speedup_2_vs_1_worker']}x (goal >= 1.7); "
            f"2 workers vs sequential loop {report['speedup_2_workers_vs_sequential']}x; "
            f"1 worker / sequential {report['ratio_1_worker_vs_sequential']}"
        )
        print(f"largest relative difference to the sequential loop: {max(diffs):.2e}")
        for k, v in report["median_case_s_in_worker"].items():
            print(f"  median time of one case inside a worker, {k}: {v} s")
        print(f"load average before {load_before}, after {report['load_after']}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
