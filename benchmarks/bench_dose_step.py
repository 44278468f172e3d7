"""Time the dose step, ``mrtdose dose CASE --method vsv|led|vsv-density``, on the demo.

Run: ``.venv/bin/python benchmarks/bench_dose_step.py [--repeat 3] [--store PATH --case ID]
[--json]``.

Set-up (not timed): the full demo patient (``mrtdose demo``: 4 SPECT/CT time
points, 15 VOIs drawn on the reference CT of 192 x 192 x 116 voxels of
3.2 x 3.2 x 5 mm), registered (``mrtdose register``) and with a TIA map
(``mrtdose tia-map``) on the SPECT grid (128 x 128 x 120, 4.8 mm), in a
temporary store; or an existing store and case (``--store``, ``--case``).

Timed, each a fresh child process of the same interpreter, as a user types it:
the whole command ``python -m dosimetry_core.cli.main dose CASE --method M --json``
for M in vsv, led, vsv-density (start-up, loading, the VOI fractions on the dose
grid, the dose, the statistics of the 15 VOIs, the save).  One warm-up run of
each method comes first and is reported but not counted: with an empty kernel
cache (``$MRTDOSE_KERNEL_CACHE`` or the user's cache, used as is) it computes the
voxel S-value kernel for the nuclide and voxel size (once per machine, as on a
workstation after its first dose; minutes), it fills numba's cache, and the
first dose of the case computes the fraction of every dose voxel each of the 15
VOIs covers, which the case keeps for every later dose on that grid
(:mod:`dosimetry_core.pipeline.grid_cache`; the CT on the dose grid was kept by
``mrtdose tia-map``).  The timed runs are what a physicist pressing "compute
dose" again pays; the warm-up of the first method is what the first dose of a
case pays.

Baseline, measured in the same run and interleaved with the commands: one bare
float32 FFT convolution round trip of a 256^3 array in this process
(``scipy.fft.rfftn``, product with a precomputed kernel spectrum,
``scipy.fft.irfftn``, ``workers=2``): the FFT work a convolution dose engine
cannot avoid on a grid that size.  Ratio = median command time / median round
trip (goal <= 8).  Medians of ``--repeat`` runs (>= 3).

Per-phase times (median over the same number of runs, one child process per
run calling :func:`dosimetry_core.pipeline.dose.compute_dose` with ``timings=``):
load (case, TIA map, CT densities), nuclide data, kernel, dose (convolution or
LED), fractions (VOIs on the dose grid), statistics, save; start-up = whole
command minus the compute_dose total.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft

PY = sys.executable
CLI = [PY, "-m", "dosimetry_core.cli.main"]
METHODS = ("vsv", "led", "vsv-density")
GOAL = 8.0
PHASES = ("load", "nuclide_data", "kernel", "dose", "fractions", "statistics", "save")

PHASE_CHILD = """
import json, sys, time
from dosimetry_core.store import CaseStore
from dosimetry_core.pipeline.dose import compute_dose
store = CaseStore(sys.argv[1])
t = {}
t0 = time.perf_counter()
compute_dose(store, sys.argv[2], method=sys.argv[3], timings=t)
t["total"] = time.perf_counter() - t0
print(json.dumps(t))
"""


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return dt, proc.stdout


def prepare_demo(store: Path, env: dict[str, str]) -> str:
    """The demo case imported, registered and with a TIA map; returns its id."""
    _, out = _run([*CLI, "demo", "--store", str(store), "--json"], env)
    case_id = str(json.loads(out)["case_id"])
    _run([*CLI, "register", case_id, "--store", str(store), "--json"], env)
    _run([*CLI, "tia-map", case_id, "--store", str(store), "--json"], env)
    return case_id


def fft_round_trip(size: int = 256, workers: int = 2) -> tuple[float, object]:
    """One float32 rfftn + product + irfftn round trip of a size^3 array (seconds)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size, size), dtype=np.float32)
    k = np.zeros_like(a)
    k[:5, :5, :5] = 1.0 / 125
    spec = scipy.fft.rfftn(k, workers=workers)

    def once() -> float:
        t = time.perf_counter()
        out = scipy.fft.irfftn(
            scipy.fft.rfftn(a, workers=workers) * spec, s=a.shape, workers=workers
        )
        dt = time.perf_counter() - t
        assert out.dtype == np.float32
        return dt

    once()  # warm-up (plan caches)
    return once(), once


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per command (>= 3)")
    p.add_argument("--store", type=Path, default=None)
    p.add_argument("--case", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    repeat = max(3, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench_dose_") as tmp:
        env = dict(os.environ)
        if args.store is not None and args.case:
            store, case_id = args.store, str(args.case)
        else:
            store = Path(tmp) / "store"
            t = time.perf_counter()
            case_id = prepare_demo(store, env)
            print(f"demo prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        cmds = {
            m: [*CLI, "dose", case_id, "--store", str(store), "--method", m, "--json"]
            for m in METHODS
        }
        warm = {m: _run(cmds[m], env)[0] for m in METHODS}
        _, fft_once = fft_round_trip()
        fft: list[float] = []
        wall: dict[str, list[float]] = {m: [] for m in METHODS}
        phases: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for _ in range(repeat):  # interleaved: load from other processes hits all alike
            fft.append(fft_once())  # type: ignore[operator]
            for m in METHODS:
                wall[m].append(_run(cmds[m], env)[0])
                _, out = _run([PY, "-c", PHASE_CHILD, str(store), case_id, m], env)
                phases[m].append(json.loads(out))
        base = statistics.median(fft)
        result: dict[str, object] = {
            "baseline_fft_round_trip_256_s": round(base, 4),
            "repeat": repeat,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
            "commands": {},
        }
        rows = {}
        for m in METHODS:
            med = statistics.median(wall[m])
            ph = {
                k: round(statistics.median(d.get(k, 0.0) for d in phases[m]), 4)
                for k in (*PHASES, "total")
            }
            ph["startup"] = round(med - ph["total"], 4)
            rows[m] = {
                "median_s": round(med, 4),
                "min_s": round(min(wall[m]), 4),
                "warm_up_s": round(warm[m], 4),
                "ratio_vs_fft_round_trip": round(med / base, 2),
                "goal": GOAL,
                "phases_s": ph,
            }
        result["commands"] = rows
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"baseline: bare float32 256^3 rfftn*K+irfftn (workers=2) median {base:.3f} s "
        f"({repeat} runs); load average {result['load_average']}"
    )
    print(f"{'command':<28s} {'median s':>9s} {'min s':>7s} {'warm-up s':>10s} {'ratio':>6s} goal")
    for m, r in rows.items():
        print(
            f"{'mrtdose dose --method ' + m:<28s} {r['median_s']:9.2f} {r['min_s']:7.2f} "
            f"{r['warm_up_s']:10.2f} {r['ratio_vs_fft_round_trip']:6.1f} <= {GOAL:g}"
        )
    print("per phase (median s): " + " ".join(f"{k:>9s}" for k in ("startup", *PHASES)))
    for m, r in rows.items():
        ph = r["phases_s"]
        print(f"{m:<21s} " + " ".join(f"{ph[k]:9.3f}" for k in ("startup", *PHASES)))


if __name__ == "__main__":
    main()
