"""Time ``mrtdose run CASE --protocol lu177-dotatate`` on the registered demo (issue 14).

Run: ``.venv/bin/python benchmarks/bench_protocol_run.py [--repeat 3] [--workers 2]
[--store PATH] [--json]``.

Setup (once, timed but not counted): the demo case is imported into a new
store (``ensure_demo_case``, as ``mrtdose demo``) and its time points are
registered (``register_case``, as ``mrtdose register``): the issue asks for the
run "on the registered demo".  ``--store PATH`` reuses a store that already
holds the registered demo case (it is never modified: every run works on a
copy).

Measured in the same run:

* one warm-up run (not counted: fills the numba and dose-kernel caches, as
  the first run on a new machine does; its time is printed),
* ``--repeat`` runs of the whole command in child processes (a fresh copy
  of the registered store each time, so no run reuses what the previous one
  saved); wall time of the child and the per-stage timings that
  ``run_protocol`` logs (kinetics, TIA map, dose, sphere model, BED,
  uncertainty, save, ...); medians over the runs,
* the yardstick of issue 14's dose step: one bare float32 ``scipy.fft``
  ``rfftn`` + ``irfftn`` round trip of a 256^3 array with ``--workers``
  workers (median of 3), so that runs on other machines can be compared
  (ratio = run / round trip).

Goal (issue 14): the whole command <= 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft

PROTOCOL = "lu177-dotatate"
CHILD = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.WARNING, stream=sys.stderr,\n"
    "                    format='%(name)s: %(message)s')\n"
    "logging.getLogger('dosimetry_core.pipeline.protocol_run').setLevel(logging.INFO)\n"
    "from dosimetry_core.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
TIMINGS_RE = re.compile(r"protocol run stage timings \(s\): (\{.*\})")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", type=Path, default=None, help="store with the registered demo")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def setup_store(root: Path) -> tuple[float, float]:
    """Import and register the demo case in a new store at ``root``; seconds of each."""
    from dosimetry_core.pipeline.demo import ensure_demo_case
    from dosimetry_core.pipeline.registration import register_case
    from dosimetry_core.store import CaseStore

    store = CaseStore(root)
    t = time.perf_counter()
    case_id = ensure_demo_case(store)
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    register_case(store, case_id)
    return t_import, time.perf_counter() - t


def demo_case_id(root: Path) -> str:
    from dosimetry_core.pipeline.demo import find_demo_case
    from dosimetry_core.store import CaseStore

    case_id = find_demo_case(CaseStore(root))
    if case_id is None:
        raise SystemExit(f"no demo case in {root}")
    return case_id


def run_child(template: Path, case_id: str, work: Path) -> tuple[float, float, dict[str, float]]:
    """The whole command in a child process on a fresh copy of ``template``:
    (wall s, CPU s of the child, stage timings)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    cmd = [sys.executable, "-c", CHILD, "run", case_id, "--protocol", PROTOCOL]
    cmd += ["--store", str(work), "--json"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"mrtdose run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    json.loads(proc.stdout)  # the command's own output is intact
    m = TIMINGS_RE.search(proc.stderr)
    stages = json.loads(m.group(1)) if m else {}
    return wall, cpu, stages


def fft_round_trip_s(workers: int) -> float:
    a = np.random.default_rng(0).random((256, 256, 256), dtype=np.float32)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        f = scipy.fft.rfftn(a, workers=workers)
        scipy.fft.irfftn(f, s=a.shape, workers=workers)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        tmpd = Path(tmp)
        setup = {}
        if args.store is None:
            template = tmpd / "template"
            t_import, t_reg = setup_store(template)
            setup = {"import_s": round(t_import, 2), "registration_s": round(t_reg, 2)}
        else:
            template = args.store
        case_id = demo_case_id(template)
        warm_s, _, _ = run_child(template, case_id, tmpd / "work")
        walls = []
        cpus = []
        stage_runs = []
        for _ in range(args.repeat):
            wall, cpu, stages = run_child(template, case_id, tmpd / "work")
            walls.append(wall)
            cpus.append(cpu)
            stage_runs.append(stages)
    fft_s = fft_round_trip_s(args.workers)
    names = list(dict.fromkeys(k for s in stage_runs for k in s))
    med_stages = {k: statistics.median(s.get(k, 0.0) for s in stage_runs) for k in names}
    wall = statistics.median(walls)
    inside = med_stages.get("total", 0.0)
    out = {
        "case_id": case_id,
        "protocol": PROTOCOL,
        "repeat": args.repeat,
        "setup": setup,
        "warm_up_run_s": round(warm_s, 2),
        "run_s_median": round(wall, 2),
        "run_s_all": [round(w, 2) for w in walls],
        "run_cpu_s_median": round(statistics.median(cpus), 2),
        "run_protocol_s_median": round(inside, 2),
        "outside_run_protocol_s": round(wall - inside, 2),
        "stages_s_median": {k: round(v, 3) for k, v in med_stages.items()},
        "fft_256_round_trip_s": round(fft_s, 3),
        "ratio_run_to_fft": round(wall / fft_s, 1),
        "goal_s": 15.0,
        "load_average": list(os.getloadavg()),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    if setup:
        print(f"setup: demo import {setup['import_s']} s, registration {setup['registration_s']} s")
    print(f"warm-up run (caches filled, not counted): {warm_s:.2f} s")
    print(
        f"mrtdose run {case_id} --protocol {PROTOCOL}: median {wall:.2f} s of "
        f"{out['run_s_all']} (goal <= 15 s)"
    )
    print(
        f"CPU time of the child (all threads): median {out['run_cpu_s_median']:.2f} s "
        "(load-independent; an idle 2-core run takes roughly CPU/2 to CPU, plus file I/O)"
    )
    print(f"{'stage':<14} {'median s':>9} {'share':>6}")
    slowest = max((k for k in names if k != "total"), key=lambda k: med_stages[k], default="")
    for k in names:
        if k == "total":
            continue
        mark = "  <- slowest" if k == slowest else ""
        print(f"{k:<14} {med_stages[k]:9.3f} {med_stages[k] / wall:6.1%}{mark}")
    print(f"{'run_protocol':<14} {inside:9.3f} {inside / wall:6.1%}")
    print(
        f"{'outside':<14} {wall - inside:9.3f} {(wall - inside) / wall:6.1%}  (start, imports, CLI)"
    )
    print(
        f"bare float32 FFT round trip 256^3 ({args.workers} workers): {fft_s:.3f} s; "
        f"run / round trip {wall / fft_s:.1f}"
    )
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores: above ~1 the figures are noisy)")


if __name__ == "__main__":
    main()
