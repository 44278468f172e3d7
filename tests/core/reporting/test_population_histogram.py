"""One organ's population histogram, by hand.

Known answer: other patients at 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 Gy/GBq.  numpy's
"auto" rule takes the narrower of Sturges (range / (log2 6 + 1) = 0.139 Gy/GBq)
and Freedman-Diaconis (2 * IQR * 6^(-1/3) = 2 * 0.25 / 1.817 = 0.275 Gy/GBq), so
ceil(0.5 / 0.139) = 4 bins of 0.125 Gy/GBq: counts 2, 1, 1, 2.  A patient at
0.65 Gy/GBq has 3 values below: percentile 100 * 3 / 6 = 50.
"""

from __future__ import annotations

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.reporting.population import population_ranges
from dosimetry_core.reporting.population_histogram import MIN_POPULATION, organ_histogram
from dosimetry_core.store import CaseStore
from tests.core.reporting._synthetic import synthetic_case

OTHERS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_six_patients_four_bins_by_hand(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        for n, v in enumerate(OTHERS):
            synthetic_case(store, f"P{n}", v)
        cid = synthetic_case(store, "ME", 0.65)
        h = organ_histogram(population_ranges(store, cid), "kidneys")
    assert h.enough and h.n == 6 and h.n_unsigned == 6 and h.n_signed == 0
    assert h.counts == (2, 1, 1, 2)
    assert h.edges_gy_per_gbq == pytest.approx((0.4, 0.525, 0.65, 0.775, 0.9))
    assert h.value_gy_per_gbq == pytest.approx(0.65)
    assert h.percentile == pytest.approx(50.0)
    assert (h.label, h.unit, h.protocol) == ("Kidneys", "Gy/GBq", "lu177-dotatate")
    assert "6 other patient(s)" in h.message
    assert h.to_dict()["counts"] == [2, 1, 1, 2]


def test_too_small_a_population_is_said_not_drawn(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        synthetic_case(store, "P1", 0.4)
        synthetic_case(store, "P2", 0.8)
        cid = synthetic_case(store, "ME", 0.6)
        h = organ_histogram(population_ranges(store, cid), "kidneys")
    assert not h.enough and h.n == 2
    assert h.counts == () and h.edges_gy_per_gbq == ()
    assert "too small" in h.message and f"at least {MIN_POPULATION}" in h.message
    assert h.percentile == pytest.approx(50.0)  # still known: shown as a number


def test_unknown_organ_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="liver.*kidneys"):
        organ_histogram({"organs": {"kidneys": {"population": []}}}, "liver")
