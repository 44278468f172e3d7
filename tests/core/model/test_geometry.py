"""Geometry conventions: index <-> LPS world mapping, checked by hand-worked cases."""

import numpy as np
import pytest

from dosimetry_core.model import Geometry


def test_axial_identity_grid_maps_index_to_world_by_hand():
    g = Geometry((10, 20, 30), spacing_mm=(2.0, 3.0, 4.0), origin_mm=(10.0, -5.0, 7.0))
    # voxel [k=1, j=2, i=3] -> x = 10 + 3*2, y = -5 + 2*3, z = 7 + 1*4
    np.testing.assert_allclose(g.index_to_world([1, 2, 3]), [16.0, 1.0, 11.0])
    np.testing.assert_allclose(g.world_to_index([16.0, 1.0, 11.0]), [1.0, 2.0, 3.0])
    assert g.voxel_volume_ml == pytest.approx(2 * 3 * 4 * 1e-3)
    assert g.extent_mm == (60.0, 60.0, 40.0)


def test_sagittal_grid_follows_dicom_direction_cosines():
    # Sagittal image: rows run along -z? Use IOP row=(0,1,0) (posterior), col=(0,0,-1) (inferior)
    row = np.array([0.0, 1.0, 0.0])
    col = np.array([0.0, 0.0, -1.0])
    normal = np.cross(row, col)  # (-1, 0, 0): slices step towards patient right
    d = np.column_stack([row, col, normal])
    g = Geometry((5, 6, 7), spacing_mm=(1.5, 2.0, 3.0), origin_mm=(50.0, -20.0, 100.0), direction=d)
    # voxel i=4, j=3, k=2: origin + 4*1.5*row + 3*2*col + 2*3*normal
    expected = np.array([50.0 - 6.0, -20.0 + 6.0, 100.0 - 6.0])
    np.testing.assert_allclose(g.index_to_world([2, 3, 4]), expected)
    np.testing.assert_allclose(g.world_to_index(expected), [2, 3, 4], atol=1e-12)


def test_vectorised_round_trip_and_corners():
    rot = np.deg2rad(30.0)
    d = np.array([[np.cos(rot), -np.sin(rot), 0], [np.sin(rot), np.cos(rot), 0], [0, 0, 1]])
    g = Geometry((4, 5, 6), (1.0, 2.0, 2.5), (3.0, 4.0, 5.0), d)
    idx = np.stack(np.meshgrid(range(4), range(5), range(6), indexing="ij"), -1).reshape(-1, 3)
    np.testing.assert_allclose(g.world_to_index(g.index_to_world(idx)), idx, atol=1e-9)
    assert g.corners_world().shape == (8, 3)
    assert g.contains_world(g.center_world())
    assert not g.contains_world(g.center_world() + 1000.0)


def test_invalid_geometry_is_refused():
    with pytest.raises(ValueError, match="spacing"):
        Geometry((2, 2, 2), (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="orthonormal"):
        Geometry((2, 2, 2), (1.0, 1.0, 1.0), direction=((1, 0, 0), (1, 0, 0), (0, 0, 1)))
    with pytest.raises(ValueError, match="shape"):
        Geometry((0, 2, 2), (1.0, 1.0, 1.0))


def test_geometry_dict_round_trip():
    g = Geometry((3, 4, 5), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0), frame_of_reference_uid="1.2.3")
    assert Geometry.from_dict(g.to_dict()) == g
    assert g.same_grid(Geometry.from_dict(g.to_dict()))
