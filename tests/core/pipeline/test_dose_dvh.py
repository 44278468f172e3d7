"""DVHs of a stored dose map (pipeline/dose_dvh.py): the same curves compute_dose stores.

Known answer: on the small noise-free demo, ``compute_dose(method="led",
dvh_bins=40)`` stores each VOI's DVH; ``dvh_of_dose_map`` on that dose map with
40 bins must give the same bin edges and fractions (same masks, densities and
histogram), and nothing is saved.
"""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.pipeline.dose import compute_dose
from dosimetry_core.pipeline.dose_dvh import dvh_of_dose_map
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.registration import register_case
from dosimetry_core.pipeline.tia_map import compute_tia_map
from dosimetry_core.store import CaseStore


@pytest.fixture(scope="module")
def led_case(small_demo_dirs, tmp_path_factory):
    store = CaseStore(tmp_path_factory.mktemp("dose-dvh") / "store")
    case_id = import_directory(store, small_demo_dirs["siemens-bqml"]).cases[0].case_id
    register_case(store, case_id)
    compute_tia_map(store, case_id)
    res = compute_dose(store, case_id, method="led", dvh_bins=40, vois=["Kidney_L", "Liver"])
    yield store, case_id, res
    store.close()


def test_dvh_of_a_stored_dose_map_equals_the_stored_dvh(led_case) -> None:
    store, case_id, res = led_case
    case = store.load_case(case_id)
    version = case.version
    got = dvh_of_dose_map(store, case, res.dose_map.derived_id, ["Kidney_L", "Liver"], n_bins=40)
    assert len(got) == 2
    for v in res.vois:
        assert v.dvh is not None
        mine = got[v.voi_id]
        np.testing.assert_allclose(mine.bin_edges_gy, v.dvh.bin_edges_gy, rtol=1e-12)
        np.testing.assert_allclose(mine.cumulative_fraction, v.dvh.cumulative_fraction)
        assert mine.volume_ml == pytest.approx(v.dvh.volume_ml)
        assert mine.mass_g == pytest.approx(v.dvh.mass_g)
        assert mine.cumulative_fraction[0] == pytest.approx(1.0)
    assert store.load_case(case_id).version == version  # read-only


def test_refusals_and_cancel(led_case) -> None:
    store, case_id, res = led_case
    case = store.load_case(case_id)
    with pytest.raises(InvalidInputError, match="no dose map"):
        dvh_of_dose_map(store, case, "dose-nope")
    with pytest.raises(InvalidInputError, match="not a dose map"):
        dvh_of_dose_map(store, case, res.dose_map.parent_id or "")
    with pytest.raises(InvalidInputError, match="n_bins"):
        dvh_of_dose_map(store, case, res.dose_map.derived_id, n_bins=0)
    with pytest.raises(Cancelled):
        dvh_of_dose_map(store, case, res.dose_map.derived_id, cancel=lambda: True)
