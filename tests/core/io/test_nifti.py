"""NIfTI label maps: exact round trip, sidecar, world coordinates (RAS on disk, LPS in memory)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.nifti import (
    read_nifti_label_colors,
    read_nifti_labels,
    sidecar_path,
    write_nifti_labels,
)
from dosimetry_core.model import Geometry
from tests.core.io.conftest import SHAPE_ZYX, make_geometry


def _masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, SHAPE_ZYX)
    return {
        "Liver": labels == 1,
        "Kidney_L": labels == 2,
        "Tumour 1": labels == 3,
        "Empty": np.zeros(SHAPE_ZYX, bool),
    }


def _sform(path) -> tuple[int, np.ndarray]:
    """sform_code and the 3x4 srow matrix (index -> RAS mm) read from the raw header."""
    raw = gzip.open(path).read(348)
    assert int.from_bytes(raw[:4], "little") == 348
    code = int(np.frombuffer(raw, "<i2", 1, 254)[0])
    srow = np.frombuffer(raw, "<f4", 12, 280).reshape(3, 4).astype(float)
    return code, srow


@pytest.mark.parametrize("orientation", ["axial", "oblique30", "flipped"])
def test_round_trip_exact(tmp_path, orientation):
    geometry = make_geometry(orientation)
    masks = _masks()
    out = write_nifti_labels(tmp_path / "labels", masks, geometry, {"Liver": (160, 80, 40)})
    assert out.name == "labels.nii.gz" and sidecar_path(out).exists()
    back, g = read_nifti_labels(out)
    assert list(back) == list(masks)
    for name, m in masks.items():
        assert back[name].dtype == bool and np.array_equal(back[name], m), name
    assert g.shape_zyx == geometry.shape_zyx
    assert np.allclose(g.spacing_mm, geometry.spacing_mm, atol=1e-5)
    assert np.allclose(g.origin_mm, geometry.origin_mm, atol=1e-4)
    assert np.allclose(g.direction_matrix, geometry.direction_matrix, atol=1e-6)
    assert g.same_grid(geometry) and g.frame_of_reference_uid == geometry.frame_of_reference_uid
    assert read_nifti_label_colors(out) == {"Liver": (160, 80, 40)}
    side = json.loads(sidecar_path(out).read_text())
    assert side["labels"]["2"] == {"name": "Kidney_L", "color_rgb": None}


@pytest.mark.parametrize("orientation", ["axial", "oblique30"])
def test_world_coordinates_on_disk_are_ras(tmp_path, orientation):
    geometry = make_geometry(orientation)
    out = write_nifti_labels(tmp_path / "l.nii.gz", _masks(), geometry)
    code, srow = _sform(out)
    assert code > 0
    for kji in [(0, 0, 0), (11, 15, 19), (3, 7, 2)]:
        lps = geometry.index_to_world(kji)
        ras = srow @ np.array([kji[2], kji[1], kji[0], 1.0])
        assert np.allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-3), kji


def test_known_voxel_position(tmp_path):
    """A single labelled voxel is found back at the same LPS point."""
    g = Geometry((5, 6, 7), (2.0, 3.0, 4.0), (-100.0, 50.0, 25.0))
    m = np.zeros(g.shape_zyx, bool)
    m[3, 4, 5] = True
    back, g2 = read_nifti_labels(write_nifti_labels(tmp_path / "p.nii", {"P": m}, g))
    idx = np.argwhere(back["P"])[0]
    assert np.allclose(g2.index_to_world(idx), [-100 + 10.0, 50 + 12.0, 25 + 12.0], atol=1e-4)


def test_overlap_refused_and_no_sidecar(tmp_path):
    g = make_geometry()
    a = np.zeros(SHAPE_ZYX, bool)
    a[2:5] = True
    b = np.zeros(SHAPE_ZYX, bool)
    b[4:6] = True
    with pytest.raises(InvalidInputError, match="'A' and 'B' overlap"):
        write_nifti_labels(tmp_path / "x.nii.gz", {"A": a, "B": b}, g)
    out = write_nifti_labels(tmp_path / "y.nii.gz", {"A": a}, g)
    sidecar_path(out).unlink()
    back, _ = read_nifti_labels(out)
    assert list(back) == ["Label 1"] and np.array_equal(back["Label 1"], a)
