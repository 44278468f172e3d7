"""Strict, boring tooling is enforced, not just configured (STYLE rule 10)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.path.dirname(sys.executable)


def _tool(name: str) -> str:
    exe = shutil.which(name, path=BIN) or shutil.which(name)
    assert exe is not None, f"{name} is a dev dependency (pip install -e '.[dev]')"
    return exe


def test_ruff_lint_and_format_are_clean():
    lint = subprocess.run([_tool("ruff"), "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], capture_output=True, text=True, cwd=ROOT
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_on_the_core_is_clean():
    out = subprocess.run([_tool("mypy")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success" in out.stdout
