"""DICOM SEG export (highdicom) and import: exact round trip on the CT grid."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io.dicom_write import write_ct_series
from dosimetry_core.io.seg import export_seg, read_seg
from dosimetry_core.model import Geometry, ImageUnits, Volume
from tests.core.io.conftest import (
    HAVE_DCIODVFY,
    SHAPE_ZYX,
    dciodvfy_errors,
    make_ctx,
    make_geometry,
)


def _masks() -> dict:
    rng = np.random.default_rng(0)
    noisy = rng.random(SHAPE_ZYX) > 0.7
    box = np.zeros(SHAPE_ZYX, bool)
    box[3:5, 2:9, 4:12] = True
    return {
        "Kidney_L": (noisy, (255, 200, 0), "ORGAN"),
        "Tumour 1": (box, (255, 0, 0), "GTV"),
        "Empty": (np.zeros(SHAPE_ZYX, bool), (0, 0, 255), "ORGAN"),
    }


def _ct(tmp_path, geometry):
    return write_ct_series(
        Volume(np.zeros(SHAPE_ZYX, np.int16), geometry, ImageUnits.HU), tmp_path / "CT", make_ctx()
    )


@pytest.mark.parametrize("orientation", ["axial", "oblique30", "sagittal"])
def test_seg_round_trip_exact(tmp_path, orientation):
    geometry = make_geometry(orientation)
    ct = _ct(tmp_path, geometry)
    masks = _masks()
    path = export_seg(tmp_path / "seg.dcm", masks, geometry, list(reversed(ct)))
    back = read_seg(path)
    assert list(back) == list(masks)
    for name, (mask, colour, _) in masks.items():
        got, g, c = back[name]
        assert np.array_equal(got, mask), name
        assert g.same_grid(geometry, atol_mm=1e-6)  # DICOM DS strings: 16 significant digits
        assert np.allclose(g.direction_matrix, geometry.direction_matrix, atol=1e-12)
        assert g.frame_of_reference_uid == geometry.frame_of_reference_uid
        assert c is not None and np.max(np.abs(np.subtract(c, colour))) <= 1
    ds = pydicom.dcmread(path)
    assert ds.SegmentationType == "BINARY"
    seg1, seg2 = ds.SegmentSequence[0], ds.SegmentSequence[1]
    assert seg1.SegmentAlgorithmType == "MANUAL"
    assert seg1.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Organ"
    assert seg1.SegmentedPropertyTypeCodeSequence[0].CodeValue == "64033007"  # Kidney
    assert seg2.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Neoplasm"
    if HAVE_DCIODVFY:
        assert dciodvfy_errors(path) == []


def test_left_handed_grid_comes_back_reversed_same_world(tmp_path):
    geometry = make_geometry("decreasing")
    masks = _masks()
    path = export_seg(tmp_path / "seg.dcm", masks, geometry, _ct(tmp_path, geometry))
    got, g, _ = read_seg(path)["Kidney_L"]
    assert np.allclose(g.direction_matrix[:, 2], [0, 0, 1])
    idx = np.argwhere(masks["Kidney_L"][0])
    world = geometry.index_to_world(idx)
    back_idx = np.rint(g.world_to_index(world)).astype(int)
    assert np.allclose(g.index_to_world(back_idx), world, atol=1e-6)
    assert got[tuple(back_idx.T)].all() and got.sum() == masks["Kidney_L"][0].sum()


def test_masks_not_on_ct_grid_refused(tmp_path):
    geometry = make_geometry()
    ct = _ct(tmp_path, geometry)
    other = Geometry(SHAPE_ZYX, (2.0, 2.0, 2.0), geometry.origin_mm)
    with pytest.raises(InvalidInputError, match="not on the grid of the referenced CT"):
        export_seg(tmp_path / "s.dcm", _masks(), other, ct)
    with pytest.raises(InvalidInputError, match="3 of the 12 slices"):
        export_seg(tmp_path / "s.dcm", _masks(), geometry, ct[:3])


def test_not_a_seg(tmp_path):
    ct = _ct(tmp_path, make_geometry())
    with pytest.raises(DicomError, match="not a DICOM Segmentation"):
        read_seg(ct[0])
