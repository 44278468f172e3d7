"""Population ranges (Gy/GBq per organ) and the patient's percentile, by hand.

Known answers: population 0.4 and 0.8 Gy/GBq (two other patients) -> a third patient
at 0.6 Gy/GBq is at the mean percentile rank 100 * (1 + 0.5 * 0) / 2 = 50; at
0.4 Gy/GBq, 100 * (0 + 0.5 * 1) / 2 = 25; at 0.9, 100.  A signed report's value is
used instead of the protocol run and is labelled so.
"""

from __future__ import annotations

import pytest

from dosimetry_core.reporting.population import (
    SOURCE_RUN,
    SOURCE_SIGNED,
    percentile_rank,
    population_ranges,
)
from dosimetry_core.reporting.records import create_report, sign
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor
from tests.core.reporting._synthetic import synthetic_case


def test_percentile_rank_by_hand():
    assert percentile_rank(0.6, [0.4, 0.8]) == 50.0
    assert percentile_rank(0.4, [0.4, 0.8]) == 25.0
    assert percentile_rank(0.9, [0.4, 0.8]) == 100.0
    assert percentile_rank(0.1, [0.4, 0.8]) == 0.0
    assert percentile_rank(0.5, []) is None


@pytest.mark.parametrize(("value", "expected"), [(0.6, 50.0), (0.4, 25.0), (0.9, 100.0)])
def test_third_patient_against_two(tmp_path, value, expected):
    with CaseStore(tmp_path / "s") as store:
        synthetic_case(store, "P1", 0.4)
        synthetic_case(store, "P2", 0.8)
        cid = synthetic_case(store, "P3", value)
        pop = population_ranges(store, cid)
        k = pop["organs"]["kidneys"]
        assert k["n"] == 2 and k["n_unsigned"] == 2 and k["n_signed"] == 0
        assert k["value_gy_per_gbq"] == pytest.approx(value)
        assert k["percentile"] == pytest.approx(expected)
        assert (k["min"], k["median"], k["max"]) == pytest.approx((0.4, 0.6, 0.8))
        assert {r["source"] for r in k["population"]} == {SOURCE_RUN}


def test_signed_report_value_is_used_and_same_patient_excluded(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        c1 = synthetic_case(store, "P1", 0.4)
        synthetic_case(store, "P2", 0.8)
        synthetic_case(store, "P3", 5.0)  # another cycle of the patient below: excluded
        rep = create_report(store, Actor("alice", "physicist"), c1)
        sign(store, Actor("alice", "physicist"), rep.report_id, "mpe")
        sign(store, Actor("bob", "physician"), rep.report_id, "practitioner")
        cid = synthetic_case(store, "P3", 0.6)
        k = population_ranges(store, cid)["organs"]["kidneys"]
        assert k["n"] == 2 and k["n_signed"] == 1 and k["n_unsigned"] == 1
        signed = [r for r in k["population"] if r["source"] == SOURCE_SIGNED]
        assert signed[0]["report_id"] == rep.report_id
        assert signed[0]["value_gy_per_gbq"] == pytest.approx(0.4)
        assert k["percentile"] == pytest.approx(50.0)
