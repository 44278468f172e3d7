"""Time the command line's start-up: ``mrtdose --help``, ``bed``, ``fit``, in child processes.

Run: ``.venv/bin/python benchmarks/bench_cli.py [--repeat 7] [--json]``.

Each command runs as a fresh child process of the same interpreter
(``python -m dosimetry_core.cli.main ...``), as a user or a script calls it:

* ``mrtdose --help`` (builds the parser of every command),
* ``mrtdose bed --dose-gy 20 --t-eff-h 50 --tissue kidney --json`` (closed-form BED),
* ``mrtdose fit ... --model mono --json`` (a TAC fit: needs SciPy's optimisers;
  for contrast, no goal).

Baseline, in the same run and interleaved with the commands: ``python -c pass``
with the same interpreter and environment, the least any Python command line
pays.  Ratio = median command time / median baseline (goal for ``--help`` and
``bed``: <= 8), for the wall time and for the CPU time (user + system of the
child; less disturbed by other work on a busy machine).  Also printed:
``python -c "import numpy"``, the floor of any command that imports NumPy.
Medians of ``--repeat`` runs (>= 5).

Bytecode: an installed ``mrtdose`` runs from cached bytecode (``pip install``
compiles it).  The children therefore run with bytecode writing on, into a
private ``PYTHONPYCACHEPREFIX`` (a temporary folder: the source tree is not
touched), warmed by one run of each command, for the baseline as for the
commands.  For transparency one more row, ``mrtdose --help (no bytecode)``, runs
with ``PYTHONDONTWRITEBYTECODE=1`` and no cache for the project's modules (an
editable checkout in an environment that forbids bytecode): every project
module is compiled from source on each start.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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
NO_BYTECODE = "mrtdose --help (no bytecode)"


def _child_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    cpu = _child_cpu_s()
    t = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return dt, _child_cpu_s() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="runs per command (>= 5)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    repeat = max(5, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench_cli_pyc_") as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        env_cold = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
        env_cold["PYTHONDONTWRITEBYTECODE"] = "1"
        plan = [(name, cmd, env) for name, cmd in COMMANDS.items()]
        plan.append((NO_BYTECODE, COMMANDS["mrtdose --help"], env_cold))
        for _, cmd, e in plan:  # warm-up: bytecode cache, page cache
            run_once(cmd, e)
        wall: dict[str, list[float]] = {name: [] for name, _, _ in plan}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in plan}
        for _ in range(repeat):  # interleaved so that load from other processes hits all alike
            for name, cmd, e in plan:
                w, c = run_once(cmd, e)
                wall[name].append(w)
                cpu[name].append(c)
    base = statistics.median(wall["python -c pass"])
    base_cpu = statistics.median(cpu["python -c pass"])
    rows = [
        {
            "command": name,
            "median_s": round(statistics.median(wall[name]), 4),
            "min_s": round(min(wall[name]), 4),
            "ratio_vs_python_pass": round(statistics.median(wall[name]) / base, 2),
            "median_cpu_s": round(statistics.median(cpu[name]), 4),
            "cpu_ratio_vs_python_pass": round(statistics.median(cpu[name]) / base_cpu, 2),
            "goal_ratio": GOALS.get(name),
        }
        for name in wall
    ]
    out = {
        "python": PY,
        "repeat": repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{PY}, median of {repeat} child processes each; load average {out['load_average']}")
    print(
        f"{'command':<30s} {'median s':>9s} {'min s':>8s} {'ratio':>7s} "
        f"{'CPU s':>7s} {'CPU ratio':>9s}  goal"
    )
    for r in rows:
        goal = f"<= {r['goal_ratio']:g}" if r["goal_ratio"] else ""
        print(
            f"{r['command']:<30s} {r['median_s']:9.3f} {r['min_s']:8.3f} "
            f"{r['ratio_vs_python_pass']:7.2f} {r['median_cpu_s']:7.3f} "
            f"{r['cpu_ratio_vs_python_pass']:9.2f}  {goal}"
        )
    print("baseline: python -c pass, same interpreter, same environment, same run")


if __name__ == "__main__":
    main()
