"""VOI volumes, masses and statistics with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError, UnitsError
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.physics.density import HuDensityCalibration
from dosimetry_core.segmentation import voi_mass_g, voi_statistics, voi_volume_ml


def _cube_case(hu_inside: float):
    # 100 mL cube: 50 x 50 x 40 mm on 2 x 2 x 5 mm voxels (25 x 25 x 8 voxels).
    geom = Geometry((16, 40, 40), (2.0, 2.0, 5.0), origin_mm=(-39.0, -39.0, -37.5))
    mask = np.zeros(geom.shape_zyx, bool)
    mask[4:12, 8:33, 8:33] = True
    ct = np.full(geom.shape_zyx, -1000.0)
    ct[mask] = hu_inside
    return geom, mask, Volume(ct, geom, ImageUnits.HU)


def test_volume_of_a_100_ml_cube():
    geom, mask, _ = _cube_case(0.0)
    assert voi_volume_ml(mask, geom) == pytest.approx(100.0)
    assert voi_volume_ml(np.zeros(geom.shape_zyx, bool), geom) == 0.0


def test_mass_of_a_water_cube_is_100_g():
    _, mask, ct = _cube_case(0.0)
    assert voi_mass_g(mask, ct) == pytest.approx(100.0, rel=0.01)
    # A mask Volume on the same grid works as well.
    mvol = Volume(mask, ct.geometry, ImageUnits.MASK)
    assert voi_mass_g(mvol, ct, HuDensityCalibration.load()) == pytest.approx(100.0, rel=0.01)


def test_mass_follows_the_calibration():
    _, mask, ct = _cube_case(1000.0)
    cal = HuDensityCalibration(points_hu=(-1000.0, 0.0, 1000.0), points_density_g_cm3=(0, 1, 2))
    assert voi_mass_g(mask, ct, cal) == pytest.approx(200.0)


def test_mass_refuses_other_grids_and_units():
    geom, mask, ct = _cube_case(0.0)
    with pytest.raises(InvalidInputError, match="resample"):
        voi_mass_g(mask[:, :, :-1], ct)
    shifted = Geometry(geom.shape_zyx, geom.spacing_mm, origin_mm=(0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="different voxel grids"):
        voi_mass_g(Volume(mask, shifted, ImageUnits.MASK), ct)
    with pytest.raises(UnitsError):
        voi_mass_g(mask, ct.with_array(ct.array, ImageUnits.BQML))


def test_statistics_of_uniform_activity():
    geom, mask, _ = _cube_case(0.0)
    arr = np.where(mask, 1.0e6, 0.0)  # 1 MBq/mL in 100 mL
    arr[5, 10, 10] = 3.0e6
    spect = Volume(arr, geom, ImageUnits.BQML)
    st = voi_statistics(spect, mask)
    assert st.n_voxels == 25 * 25 * 8
    assert st.volume_ml == pytest.approx(100.0)
    assert st.max == 3.0e6 and st.min == 1.0e6
    assert st.total_activity_mbq == pytest.approx(100.0 + 2.0 * geom.voxel_volume_ml)
    assert st.mean == pytest.approx(st.integral / st.volume_ml)
    assert st.to_dict()["total_activity_mbq"] == pytest.approx(st.total_activity_mbq)
    ct_stats = voi_statistics(Volume(np.zeros(geom.shape_zyx), geom, ImageUnits.HU), mask)
    with pytest.raises(UnitsError):
        _ = ct_stats.total_activity_mbq
    empty = voi_statistics(spect, np.zeros(geom.shape_zyx, bool))
    assert empty.n_voxels == 0 and empty.integral == 0.0 and np.isnan(empty.mean)
