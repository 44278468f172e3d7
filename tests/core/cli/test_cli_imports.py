"""The command line starts without loading what it does not use (issue 14).

Known answers, not timings: in a fresh interpreter, building the parser of every
command (what ``mrtdose --help`` does) and running ``mrtdose bed ... --json``
leave SciPy's optimisers and integrators, SimpleITK, SQLAlchemy, Alembic,
matplotlib, numba and pydicom out of ``sys.modules``; a command that needs one
of them still loads it (``mrtdose fit`` loads SciPy's optimisers).  The speed
itself is measured by ``benchmarks/bench_cli.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "scipy.optimize",
    "scipy.integrate",
    "scipy.ndimage",
    "SimpleITK",
    "sqlalchemy",
    "alembic",
    "matplotlib",
    "numba",
    "pydicom",
)

_PROBE = """
import contextlib, io, json, sys
from dosimetry_core.cli.main import build_parser, main
build_parser()
after_parser = sorted(m for m in {heavy!r} if m in sys.modules)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main({argv!r})
after_run = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write(json.dumps({{"parser": after_parser, "run": after_run, "rc": rc,
                              "stdout": out.getvalue()}}) + "\\n")
"""


def _probe(argv: list[str], heavy: tuple[str, ...] = HEAVY) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=heavy, argv=argv)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_parser_and_bed_load_no_heavy_module() -> None:
    r = _probe(["bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney", "--json"])
    assert r["parser"] == [], f"building the parser imported {r['parser']}"
    assert r["run"] == [], f"mrtdose bed imported {r['run']}"
    assert r["rc"] == 0
    out = json.loads(r["stdout"])
    # the closed-form answer is unchanged by the lazy imports: BED = D (1 + G D / (a/b)),
    # G = lambda / (lambda + mu) for a mono-exponential dose rate
    lam, mu = 0.6931471805599453 / 50.0, 0.6931471805599453 / out["t_repair_h"]
    bed = 20.0 * (1.0 + lam / (lam + mu) * 20.0 / out["alpha_beta_gy"])
    assert abs(out["bed_gy"] - bed) < 1e-9 * bed


def test_fit_still_loads_the_optimisers_it_needs() -> None:
    r = _probe(
        [
            "fit",
            "--time-h",
            "4",
            "24",
            "72",
            "168",
            "--activity-mbq",
            "900",
            "700",
            "400",
            "90",
            "--model",
            "mono",
            "--json",
        ],
        heavy=("scipy.optimize",),
    )
    assert r["parser"] == []
    assert r["rc"] == 0
    assert r["run"] == ["scipy.optimize"]
    assert json.loads(r["stdout"])["tia_mbq_h"] > 0


def test_store_package_exports_resolve_lazily() -> None:
    import dosimetry_core.store as store

    assert store.CaseStore.__name__ == "CaseStore"
    assert callable(store.default_store_path)
    assert store.BlobStore.__name__ == "BlobStore"
