"""The resampling function: identity, known shifts, rotations and masks."""

import numpy as np
import pytest

from dosimetry_core.imaging.resample import resample, rigid_transform
from dosimetry_core.model import Geometry, ImageUnits, Volume


def _ramp_volume() -> Volume:
    g = Geometry((8, 10, 12), (2.0, 2.0, 3.0), (-11.0, -9.0, -10.5))
    k, j, i = np.meshgrid(range(8), range(10), range(12), indexing="ij")
    world = g.index_to_world(np.stack([k, j, i], -1))
    # a linear function of world position is reproduced exactly by trilinear interpolation
    arr = (1.0 + 0.5 * world[..., 0] - 0.25 * world[..., 1] + 2.0 * world[..., 2]).astype(
        np.float64
    )
    return Volume(arr, g, ImageUnits.BQML)


def test_identity_resample_is_exact():
    v = _ramp_volume()
    np.testing.assert_array_equal(resample(v, v.geometry).array, v.array)


def test_linear_field_is_reproduced_on_a_finer_shifted_grid():
    v = _ramp_volume()
    target = Geometry((10, 12, 14), (1.0, 1.0, 1.5), (-6.0, -5.0, -4.0))  # inside the source
    out = resample(v, target).array
    k, j, i = np.meshgrid(*(range(s) for s in target.shape_zyx), indexing="ij")
    w = target.index_to_world(np.stack([k, j, i], -1))
    expect = 1.0 + 0.5 * w[..., 0] - 0.25 * w[..., 1] + 2.0 * w[..., 2]
    np.testing.assert_allclose(out, expect, rtol=1e-9, atol=1e-9)


def test_translation_moves_a_point_source_by_the_known_amount():
    g = Geometry((21, 21, 21), (2.0, 2.0, 2.0), (-20.0, -20.0, -20.0))
    arr = np.zeros(g.shape_zyx)
    arr[10, 10, 10] = 1.0  # at world (0, 0, 0)
    v = Volume(arr, g, ImageUnits.BQML)
    # target point p samples the source at p + t;
    # with t = (-4, 0, 6) the source at 0 appears at p = (4, 0, -6)
    out = resample(v, g, order=0, transform=rigid_transform(translation_mm=(-4.0, 0.0, 6.0))).array
    k, j, i = np.argwhere(out == 1.0)[0]
    np.testing.assert_allclose(g.index_to_world([k, j, i]), [4.0, 0.0, -6.0])


def test_rotation_about_z_by_90_degrees():
    t = rigid_transform(rotation_deg_xyz=(0, 0, 90), center_mm=(1.0, 1.0, 0.0))
    p = t @ np.array([2.0, 1.0, 5.0, 1.0])
    np.testing.assert_allclose(p[:3], [1.0, 2.0, 5.0], atol=1e-12)


def test_mask_resampling_with_nearest_keeps_labels():
    g = Geometry((6, 6, 6), (2.0, 2.0, 2.0))
    m = np.zeros(g.shape_zyx, dtype=np.uint8)
    m[2:4, 2:4, 2:4] = 1
    fine = Geometry((12, 12, 12), (1.0, 1.0, 1.0), (-0.5, -0.5, -0.5))
    out = resample(Volume(m, g, ImageUnits.MASK), fine, order=0)
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) <= {0, 1}
    assert out.array.sum() * fine.voxel_volume_ml == pytest.approx(m.sum() * g.voxel_volume_ml)
