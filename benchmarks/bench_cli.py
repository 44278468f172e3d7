"""Time the command line's start-up: ``mrtdose --help``, ``bed``, ``fit``, in child processes.

Run: ``.venv/bin/python benchmarks/bench_cli.py [--repeat 7] [--json]``.

Each command runs as a fresh child process of the same interpreter
(``python -m dosimetry_core.cli.main ...``), as a user or a script calls it:

* ``mrtdose --help`` (builds the parser of every command),
* ``mrtdose bed --dose-gy 20 --t-eff-h 50 --tissue kidney --json`` (closed-form BED),
* ``mrtdose fit ... --model mono --json`` (a TAC fit: needs SciPy's optimisers;
  for contrast, no goal).

Baseline, in the same run and interleaved with the commands: ``python -c pass``
with the same interpreter, the least any Python command line pays.  Ratio =
median command time / median baseline (goal for ``--help`` and ``bed``: <= 8).
Also printed: ``python -c "import numpy"``, the floor of any command that
imports NumPy.  Medians of ``--repeat`` runs (>= 5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PY = sys.executable
CLI = [PY, "-m", "dosimetry_core.cli.main"]
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    "python -c 'import numpy'": [PY, "-c", "import numpy"],
    "mrtdose --help": [*CLI, "--help"],
    "mrtdose bed --json": [
        *CLI, "bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney", "--json",
    ],
    "mrtdose fit --json": [
        *CLI, "fit", "--time-h", "4", "24", "72", "168",
        "--activity-mbq", "900", "700", "400", "90", "--model", "mono", "--json",
    ],
}  # fmt: skip
GOALS = {"mrtdose --help": 8.0, "mrtdose bed --json": 8.0}


def run_once(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="runs per command (>= 5)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    repeat = max(5, args.repeat)
    for cmd in COMMANDS.values():  # warm-up: bytecode caches, page cache
        run_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):  # interleaved so that load from other processes hits all alike
        for name, cmd in COMMANDS.items():
            times[name].append(run_once(cmd))
    base = statistics.median(times["python -c pass"])
    rows = [
        {
            "command": name,
            "median_s": round(statistics.median(ts), 4),
            "min_s": round(min(ts), 4),
            "ratio_vs_python_pass": round(statistics.median(ts) / base, 2),
            "goal_ratio": GOALS.get(name),
        }
        for name, ts in times.items()
    ]
    try:
        import os

        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    out = {
        "python": PY,
        "repeat": repeat,
        "load_average": [round(x, 2) for x in load],
        "rows": rows,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{PY}, median of {repeat} child processes each; load average {out['load_average']}")
    print(f"{'command':<28s} {'median s':>9s} {'min s':>8s} {'ratio':>7s}  goal")
    for r in rows:
        goal = f"<= {r['goal_ratio']:g}" if r["goal_ratio"] else ""
        print(
            f"{r['command']:<28s} {r['median_s']:9.3f} {r['min_s']:8.3f} "
            f"{r['ratio_vs_python_pass']:7.2f}  {goal}"
        )
    print("baseline: python -c pass, same interpreter, same run")


if __name__ == "__main__":
    main()
