"""Shared fixtures: a small synthetic demo patient written once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_demo_dirs(tmp_path_factory) -> dict[str, Path]:
    """The small demo preset written as DICOM in both vendor styles (noise-free)."""
    from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom

    out = {}
    for style in ("siemens-bqml", "ge-counts"):
        d = tmp_path_factory.mktemp(f"demo-{style}")
        config = DemoConfig.small()
        config.noise = False
        write_demo_dicom(d, config, style=style)
        out[style] = d
    return out


@pytest.fixture(scope="session")
def small_demo_image_dirs(small_demo_dirs, tmp_path_factory) -> dict[str, Path]:
    """The small demo folders without their RTSTRUCT: an import gives a case with no VOIs.

    (An import attaches a structure set found in the folder as draft VOIs; tests of
    the contour commands start from a case without them.)
    """
    import shutil

    out = {}
    for style, src in small_demo_dirs.items():
        dst = tmp_path_factory.mktemp(f"demo-images-{style}") / "demo"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("RTSTRUCT"))
        out[style] = dst
    return out


@pytest.fixture(scope="session")
def small_demo_truth(small_demo_dirs) -> dict:
    return json.loads((small_demo_dirs["siemens-bqml"] / "ground_truth.json").read_text())


@pytest.fixture()
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"
