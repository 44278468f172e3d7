"""The core never imports Qt, pyqtgraph or VTK (STYLE rule 1, ARCHITECTURE)."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import dosimetry_core

ROOT = Path(__file__).resolve().parents[2]


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
    assert "Contracts: 2 kept, 0 broken" in out.stdout
