"""The core never imports Qt, pyqtgraph or VTK (STYLE rule 1, ARCHITECTURE)."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import dosimetry_core

ROOT = Path(__file__).resolve().parents[2]
LAYERS = "Layers: lower stages never import higher ones (ARCHITECTURE rule 1)"


def test_importing_every_core_module_loads_no_gui_library():
    modules = [
        m.name
        for m in pkgutil.walk_packages(dosimetry_core.__path__, "dosimetry_core.")
        if ".migrations" not in m.name and not m.name.endswith("__main__")
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "gui = ('PySide6', 'pyqtgraph', 'vtk', 'vtkmodules', 'app')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in gui)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "", f"core modules pulled in GUI libraries: {out.stdout}"
    assert len(modules) > 10


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
        "lint-imports"
    )
    assert exe is not None, "import-linter is a dev dependency (pip install -e '.[dev]')"
    out = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 4 kept, 0 broken" in out.stdout
    kept = {line.rsplit(" ", 1)[0] for line in out.stdout.splitlines() if line.endswith(" KEPT")}
    # ARCHITECTURE rule 1 as a layers contract, and the Qt-free view-models (issue 12)
    assert LAYERS in kept
    assert "Workstation view-models import no Qt, pyqtgraph or VTK (tested without Qt)" in kept
    assert "The core never imports Qt, pyqtgraph or VTK" in kept


def test_layers_contract_lists_every_stage_and_no_hidden_exception():
    """The layers contract covers every sub-package (exhaustive) and ignores no import."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert len(layers) == 1
    contract = layers[0]
    assert contract["containers"] == ["dosimetry_core"]
    assert contract.get("exhaustive") is True
    assert not contract.get("ignore_imports")
    order = [name.strip() for layer in contract["layers"] for name in layer.split("|")]
    # the known back-edges of the turn of 2026-12-05 are forbidden by this order
    assert order.index("pipeline") < order.index("reporting")
    assert order.index("pipeline") < order.index("kinetics")
    assert order.index("dose") < order.index("kinetics") < order.index("imaging")
    assert order[-3:] == ["model", "progress", "errors"]
    view_models = [c for c in contracts if "app.steps.*.model" in c.get("source_modules", [])]
    assert view_models and {"PySide6", "pyqtgraph", "vtk"} <= set(
        view_models[0]["forbidden_modules"]
    )


def test_layers_contract_catches_a_function_level_back_edge(tmp_path):
    """A lower stage importing a higher one inside a function breaks the contract."""
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
        "lint-imports"
    )
    assert exe is not None
    work = tmp_path / "tree"
    shutil.copytree(
        ROOT / "dosimetry_core", work / "dosimetry_core", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copytree(ROOT / "app", work / "app", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    with open(work / "dosimetry_core" / "kinetics" / "tac.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _back_edge():\n    from dosimetry_core.pipeline import demo  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(work)}
    out = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=work, env=env)
    assert out.returncode != 0
    assert (
        "Layers: lower stages never import higher ones (ARCHITECTURE rule 1) BROKEN" in out.stdout
    )
    assert "dosimetry_core.kinetics.tac -> dosimetry_core.pipeline.demo" in out.stdout
