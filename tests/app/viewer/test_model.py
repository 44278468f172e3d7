"""The viewer's Qt-free parts: loading onto the display grid through registrations, isolines."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from app.viewer.isodose import isoline_segments
from app.viewer.model import display_to_source_transform, load_view, readout
from dosimetry_core.imaging.resample import rigid_transform
from dosimetry_core.model import Registration, RegistrationStatus
from dosimetry_core.segmentation.mass import voi_mass_g, voi_volume_ml
from tests.app.conftest import CT_GEOMETRY, synthetic_ct
from tests.app.viewer.conftest import (
    DOSE_CENTRE,
    DOSE_PEAK_GY,
    SPHERE_RADIUS_MM,
    TIA_MBQH_PER_ML,
    sphere_mask,
)

SHIFT_MM = np.array([12.0, -6.0, 16.0])  # two CT voxels in x and z, one in y


def _register_tp2(store, case):
    """TP2 registered to TP1 by a pure translation: ref point r is at r + SHIFT in TP2."""
    tp1, tp2 = case.sorted_time_points()[:2]
    tp2.registration = Registration(
        reference_time_point_id=tp1.time_point_id,
        matrix_ref_to_tp=rigid_transform(translation_mm=SHIFT_MM).tolist(),
        translation_mm=tuple(SHIFT_MM),
        status=RegistrationStatus.ACCEPTED,
    )
    return store.save_case(case)


def _peak_world(volume) -> np.ndarray:
    idx = np.unravel_index(np.argmax(volume.array), volume.array.shape)
    return volume.geometry.index_to_world(idx)


def test_viewer_model_imports_no_qt():
    assert "app.viewer.model" in sys.modules
    import app.viewer.isodose as iso
    import app.viewer.model as model

    for mod in (model, iso):
        src = open(mod.__file__, encoding="utf-8").read()
        assert "PySide6" not in src and "pyqtgraph" not in src and "vtk" not in src


def test_layers_on_the_reference_time_point(case_with_maps):
    store, case = case_with_maps
    tp1 = case.sorted_time_points()[0]
    data = load_view(store, case, tp1)
    assert list(data.layers) == ["ct", "spect", "tia", "dose"]
    assert [layer.units for layer in data.layers.values()] == ["HU", "Bq/mL", "MBq·h/mL", "Gy"]
    for layer in data.layers.values():
        assert layer.volume.geometry.same_grid(CT_GEOMETRY)
    np.testing.assert_allclose(_peak_world(data.layers["dose"].volume), DOSE_CENTRE)
    assert float(data.layers["dose"].volume.array.max()) == pytest.approx(DOSE_PEAK_GY)
    assert np.allclose(data.layers["tia"].volume.array, TIA_MBQH_PER_ML)
    (row,) = data.vois
    assert row.name == "Lesion" and row.display_mask is not None
    # about (4/3) pi r^3 = 268 mL for r = 40 mm; the voxel count decides
    assert row.volume_ml == pytest.approx(4 / 3 * np.pi * SPHERE_RADIUS_MM**3 / 1000, rel=0.1)
    mask = sphere_mask()
    assert row.volume_ml == voi_volume_ml(mask.array, mask.geometry)
    assert row.mass_g == voi_mass_g(mask.array, synthetic_ct())
    text = readout(list(data.layers.values()), (20, 28, 38), ["dose", "tia"])
    assert text == f"TIA {TIA_MBQH_PER_ML:.3g} MBq·h/mL · Dose {DOSE_PEAK_GY:.3g} Gy"


def test_dose_and_voi_follow_the_registration_onto_another_time_point(case_with_maps):
    store, case = case_with_maps
    case = _register_tp2(store, case)
    tp1, tp2 = case.sorted_time_points()[:2]
    m = display_to_source_transform(case, tp2, None)
    # a TP2 point p is the reference point p - SHIFT
    np.testing.assert_allclose(m @ np.r_[DOSE_CENTRE + SHIFT_MM, 1.0], np.r_[DOSE_CENTRE, 1.0])
    np.testing.assert_allclose(display_to_source_transform(case, tp2, tp1), m)
    np.testing.assert_allclose(display_to_source_transform(case, tp1, tp2), np.linalg.inv(m))
    data = load_view(store, case, tp2)
    np.testing.assert_allclose(
        _peak_world(data.layers["dose"].volume), DOSE_CENTRE + SHIFT_MM, atol=1e-6
    )
    (row,) = data.vois
    mask_centre = CT_GEOMETRY.index_to_world(np.argwhere(row.display_mask).mean(axis=0))
    np.testing.assert_allclose(
        mask_centre, DOSE_CENTRE + SHIFT_MM, atol=max(CT_GEOMETRY.spacing_mm)
    )
    assert not data.warnings


def test_unregistered_case_warns_that_maps_use_scanner_coordinates(case_with_maps):
    store, case = case_with_maps
    data = load_view(store, case, case.sorted_time_points()[1])
    assert any("not registered" in w for w in data.warnings)


# ------------------------------------------------------------- isolines
def test_isoline_of_a_cone_is_a_circle_within_interpolation_error():
    n = 81
    y, x = np.mgrid[:n, :n].astype(float)
    r = np.hypot(x - 40.3, y - 39.6)
    seg = isoline_segments(100.0 - r, 80.0)  # level 80 at r = 20 pixels, linear in r
    pts = seg.reshape(-1, 2)
    rr = np.hypot(pts[:, 0] - 40.3, pts[:, 1] - 39.6)
    assert np.all(np.abs(rr - 20.0) < 0.05)
    # closed curve: every end point is shared by exactly two segments
    _, counts = np.unique(np.round(pts, 9), axis=0, return_counts=True)
    assert np.all(counts == 2)


def test_isoline_edge_cases():
    assert isoline_segments(np.zeros((5, 5)), 1.0).shape == (0, 2, 2)
    assert isoline_segments(np.ones((1, 5)), 0.5).shape == (0, 2, 2)
    step = np.zeros((3, 4))
    step[:, 2:] = 10.0
    seg = isoline_segments(step, 5.0)
    assert np.allclose(seg[..., 0], 1.5)  # half-way between columns 1 and 2
    saddle = isoline_segments(np.array([[1.0, 0.0], [0.0, 1.0]]), 0.4)
    assert saddle.shape == (2, 2, 2)
    with_nan = np.full((4, 4), 10.0)
    with_nan[1, 1] = np.nan  # NaN counts as below: a small closed line around it
    assert len(isoline_segments(with_nan, 5.0)) == 4
