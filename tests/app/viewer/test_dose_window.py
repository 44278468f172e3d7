"""The dose wash's default window: organs stay visible beside one hot lesion."""

from __future__ import annotations

import numpy as np
import pytest

from app.viewer.planes import FusedViewer
from dosimetry_core.model import ImageUnits, Volume
from tests.app.conftest import CT_GEOMETRY, synthetic_ct


@pytest.fixture()
def viewer(qtbot) -> FusedViewer:
    v = FusedViewer()
    qtbot.addWidget(v)
    v.resize(800, 600)
    return v


def test_dose_window_tops_at_the_99th_percentile_not_at_a_hot_spot(viewer):
    """A 4 Gy organ (thousands of voxels) beside a 30 Gy hot spot of 8 voxels: the wash
    tops at ~4 Gy (the organ's colours span the scale), the lower cut stays 5 % of max."""
    ct = synthetic_ct()
    dose = np.zeros(CT_GEOMETRY.shape_zyx, dtype=np.float32)
    dose[10:30, 20:40, 20:40] = 4.0
    dose[20:22, 45:47, 45:47] = 30.0
    viewer.set_time_point(ct, None)
    viewer.set_extra_layers([("dose", "dose", "Gy", Volume(dose, CT_GEOMETRY, ImageUnits.GY))])
    layer = viewer.extra_layer("dose")
    assert layer.lower == pytest.approx(1.5)  # 5 % of the 30 Gy maximum
    assert layer.upper == pytest.approx(4.0)


def test_dose_window_of_a_small_dose_map_is_its_maximum(viewer):
    """Fewer than 100 washed voxels: no percentile, the maximum."""
    ct = synthetic_ct()
    dose = np.zeros(CT_GEOMETRY.shape_zyx, dtype=np.float32)
    dose[5:7, 5:7, 5:7] = np.linspace(1.0, 8.0, 8, dtype=np.float32).reshape(2, 2, 2)
    viewer.set_time_point(ct, None)
    viewer.set_extra_layers([("dose", "dose", "Gy", Volume(dose, CT_GEOMETRY, ImageUnits.GY))])
    assert viewer.extra_layer("dose").upper == pytest.approx(8.0)
