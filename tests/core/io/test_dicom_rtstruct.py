"""RT Structure Set writing: contours, plane-to-slice references, round trip."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dosimetry_core.io.dicom_read import read_rtstruct_polygons
from dosimetry_core.io.dicom_write import write_ct_series, write_rtstruct
from dosimetry_core.io.types import RoiContours
from dosimetry_core.model import ImageUnits, Volume
from tests.core.io.conftest import SHAPE_ZYX, make_ctx, make_geometry


def _square_on_slice(geometry, k: int, half: float = 8.0, n: int = 12) -> np.ndarray:
    """A closed polygon (circle) in the plane of slice k, in LPS mm."""
    centre = geometry.index_to_world([k, 7.5, 9.5])
    d = geometry.direction_matrix
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + half * (np.outer(np.cos(t), d[:, 0]) + np.outer(np.sin(t), d[:, 1]))


@pytest.mark.parametrize("orientation", ["axial", "oblique30"])
def test_rtstruct_round_trip_and_slice_references(tmp_path, orientation):
    geometry = make_geometry(orientation)
    ct = write_ct_series(
        Volume(np.zeros(SHAPE_ZYX, np.int16), geometry, ImageUnits.HU), tmp_path / "CT", make_ctx()
    )
    rois = [
        RoiContours(
            "Liver", (200, 120, 40), "ORGAN", [_square_on_slice(geometry, k) for k in (2, 3, 4)]
        ),
        RoiContours("Tumour 1", (255, 0, 0), "GTV", [_square_on_slice(geometry, 7, 4.0)]),
        RoiContours("Empty", (0, 0, 255), "AVOIDANCE", []),
    ]
    path = write_rtstruct(tmp_path / "RS" / "rs.dcm", make_ctx(series_description="ROIs"), ct, rois)
    assert path.exists()

    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3" and ds.Modality == "RTSTRUCT"
    ref_for = ds.ReferencedFrameOfReferenceSequence[0]
    assert ref_for.FrameOfReferenceUID == "1.2.826.0.1.3680043.8.498.7"
    ct_uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in ct]
    listed = ref_for.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].ContourImageSequence
    assert [i.ReferencedSOPInstanceUID for i in listed] == ct_uids
    liver = ds.ROIContourSequence[0]
    assert list(liver.ROIDisplayColor) == [200, 120, 40]
    refs = [c.ContourImageSequence[0].ReferencedSOPInstanceUID for c in liver.ContourSequence]
    assert refs == [ct_uids[2], ct_uids[3], ct_uids[4]]
    assert all(c.ContourGeometricType == "CLOSED_PLANAR" for c in liver.ContourSequence)
    assert all(c.NumberOfContourPoints == 12 for c in liver.ContourSequence)
    kinds = [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence]
    assert kinds == ["ORGAN", "GTV", "AVOIDANCE"]
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["Liver", "Tumour 1", "Empty"]

    polys = read_rtstruct_polygons(path)
    assert set(polys) == {"Liver", "Tumour 1", "Empty"} and polys["Empty"] == []
    for got, want in zip(polys["Liver"], rois[0].polygons, strict=True):
        assert np.allclose(got, want, atol=1e-6)
    assert np.allclose(polys["Tumour 1"][0], rois[1].polygons[0], atol=1e-6)


def test_polygon_off_the_ct_gets_no_image_reference(tmp_path):
    geometry = make_geometry()
    ct = write_ct_series(
        Volume(np.zeros(SHAPE_ZYX, np.int16), geometry, ImageUnits.HU), tmp_path / "CT", make_ctx()
    )
    far = _square_on_slice(geometry, 0) - np.array([0, 0, 50.0])
    path = write_rtstruct(
        tmp_path / "rs.dcm", make_ctx(), ct, [RoiContours("x", (1, 1, 1), polygons=[far])]
    )
    contour = pydicom.dcmread(path).ROIContourSequence[0].ContourSequence[0]
    assert "ContourImageSequence" not in contour
