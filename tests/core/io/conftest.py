"""Fixtures for the DICOM I/O tests: write contexts, test volumes, geometry checks."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.types import DicomWriteContext, LoadedSeries
from dosimetry_core.model import Geometry, Volume

#: Small grid: 12 slices of 16 rows x 20 columns, anisotropic voxels.
SHAPE_ZYX = (12, 16, 20)
SPACING_MM = (4.0, 4.5, 5.0)
ORIGIN_MM = (-40.0, -30.5, -20.25)

ACQUISITION = datetime(2024, 3, 5, 10, 15, 30)
INJECTION = datetime(2024, 3, 4, 9, 45, 0)


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _columns(
    row: tuple[float, ...], col: tuple[float, ...], slice_dir: tuple[float, ...] | None = None
):
    r, c = np.asarray(row, float), np.asarray(col, float)
    n = np.cross(r, c) if slice_dir is None else np.asarray(slice_dir, float)
    return np.column_stack([r, c, n])


#: Direction matrices (columns = LPS direction of index axes i, j, k).
DIRECTIONS: dict[str, np.ndarray] = {
    "axial": np.eye(3),
    # sagittal acquisition: rows run anterior->posterior, columns head->feet
    "sagittal": _columns((0, 1, 0), (0, 0, -1)),
    # coronal acquisition: rows run right->left, columns head->feet
    "coronal": _columns((1, 0, 0), (0, 0, -1)),
    # oblique: axial tilted 30 degrees about x, then 10 degrees about z
    "oblique30": _rot_z(10) @ _rot_x(30),
    # flipped row and column cosines (e.g. prone / feet-first display)
    "flipped": _columns((-1, 0, 0), (0, -1, 0)),
    # slices stored in decreasing position order (left-handed grid)
    "decreasing": _columns((1, 0, 0), (0, 1, 0), (0, 0, -1)),
}


def make_geometry(
    kind: str = "axial", frame_of_reference_uid: str = "1.2.826.0.1.3680043.8.498.7"
) -> Geometry:
    """The test grid in one of :data:`DIRECTIONS`."""
    d = DIRECTIONS[kind]
    return Geometry(SHAPE_ZYX, SPACING_MM, ORIGIN_MM, tuple(map(tuple, d)), frame_of_reference_uid)


def make_ctx(**overrides: Any) -> DicomWriteContext:
    """A complete write context for a Lu-177 SPECT/CT patient; keyword overrides."""
    base: dict[str, Any] = dict(
        patient_id="PAT-001",
        patient_name="Test^Patient",
        study_instance_uid="1.2.826.0.1.3680043.8.498.100",
        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.7",
        study_datetime=ACQUISITION.replace(minute=0, second=0),
        acquisition_datetime=ACQUISITION,
        series_number=3,
        series_description="SPECT Lu-177",
        patient_birth_date=date(1960, 5, 17),
        patient_sex="F",
        patient_weight_kg=72.5,
        patient_height_cm=168.0,
        manufacturer="",
        nuclide="Lu-177",
        radiopharmaceutical="Lu-177 DOTATATE",
        injected_activity_mbq=7400.0,
        injection_datetime=INJECTION,
        acquisition_duration_s=1800.0,
    )
    base.update(overrides)
    return DicomWriteContext(**base)


def activity_array(seed: int = 0, scale: float = 5.0e4) -> np.ndarray:
    """Positive, all-distinct values (a wrong voxel order cannot go unnoticed)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 1.0, SHAPE_ZYX) * scale


def read_one(folder: Path, calibration_cps_per_mbq: float | None = None) -> LoadedSeries:
    """Scan a folder holding exactly one series and read it."""
    scan = scan_directory(folder)
    assert len(scan.series) == 1, (scan.series, scan.skipped)
    return read_series(scan.series[0], calibration_cps_per_mbq=calibration_cps_per_mbq)


def assert_same_image(
    original: Volume, loaded: Volume, value_atol: float | np.ndarray, world_atol_mm: float = 0.01
) -> None:
    """Every voxel of ``original`` is found at the same LPS position in ``loaded``.

    Indices are mapped through world coordinates (``Geometry.index_to_world`` /
    ``world_to_index``), so a reader may legitimately store the slices in the
    other order; positions must agree within ``world_atol_mm`` and values within
    ``value_atol``.
    """
    assert loaded.shape == original.shape or sorted(loaded.shape) == sorted(original.shape)
    idx = np.indices(original.shape).reshape(3, -1).T.astype(float)
    world = original.geometry.index_to_world(idx)
    idx2 = loaded.geometry.world_to_index(world)
    rounded = np.rint(idx2)
    back = loaded.geometry.index_to_world(rounded)
    err = np.linalg.norm(back - world, axis=1)
    assert err.max() < world_atol_mm, f"voxel centres differ by up to {err.max():.4g} mm"
    assert np.all(rounded >= 0) and np.all(rounded < np.asarray(loaded.shape)), "voxel outside"
    r = rounded.astype(int)
    got = loaded.array[r[:, 0], r[:, 1], r[:, 2]].astype(np.float64)
    want = original.array.reshape(-1).astype(np.float64)
    atol = np.asarray(value_atol).reshape(-1) if np.ndim(value_atol) else value_atol
    float32_rounding = 1.2e-7 * np.abs(want)  # functional volumes are returned as float32
    np.testing.assert_array_less(np.abs(got - want), np.asarray(atol) + float32_rounding + 1e-9)


def dciodvfy_errors(path: Path) -> list[str]:
    """'Error' lines of dciodvfy for one file."""
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if "Error" in line]


HAVE_DCIODVFY = shutil.which("dciodvfy") is not None


@pytest.fixture()
def ctx_factory() -> Callable[..., DicomWriteContext]:
    return make_ctx
