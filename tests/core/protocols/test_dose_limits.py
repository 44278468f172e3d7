"""Absorbed-dose limits per VOI (protocols/dose_limits.py) against the shipped protocol files.

Known answers (resources/protocols/lu177-dotatate.json, y90-sirt-glass.json):
kidneys 23 Gy cumulative (Emami 1991), red marrow 2 Gy cumulative (Lassmann 2008),
the kidney BED limits (40 / 28 Gy) are not absorbed-dose limits; lungs 30 Gy per
cycle and 50 Gy cumulative.  PASS when mean <= limit (the protocol run's rule).
"""

from __future__ import annotations

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model.results import DoseStatistics, DoseSummary, VoiDose
from dosimetry_core.protocols.dose_limits import check_dose_limits, voi_dose_limits
from dosimetry_core.protocols.registry import FORMAT, parse_protocol


def _stats(mean_gy: float) -> DoseStatistics:
    return DoseStatistics(
        n_voxels=10, volume_ml=1.0, mean_gy=mean_gy, median_gy=mean_gy, min_gy=0.0,
        max_gy=mean_gy, sd_gy=0.0, d2_gy=mean_gy, d50_gy=mean_gy, d98_gy=mean_gy,
    )  # fmt: skip


def test_kidney_and_marrow_limits_of_lu177_dotatate() -> None:
    (kid,) = voi_dose_limits("lu177-dotatate", "Kidney_L")
    assert (kid.organ_id, kid.limit_gy, kid.scope) == ("kidneys", 23.0, "cumulative")
    assert "Emami" in kid.source
    assert voi_dose_limits("lu177-dotatate", "kidney_r")[0].limit_gy == 23.0
    (marrow,) = voi_dose_limits("lu177-dotatate", "Red Marrow")
    assert (marrow.limit_gy, marrow.scope) == (2.0, "cumulative")
    assert voi_dose_limits("lu177-dotatate", "Liver") == ()
    assert voi_dose_limits("generic", "Kidney_L") == ()


def test_lung_limits_per_cycle_and_cumulative() -> None:
    lims = {(x.scope, x.limit_gy) for x in voi_dose_limits("y90-sirt-glass", "Lungs")}
    assert lims == {("cycle", 30.0), ("cumulative", 50.0)}


def test_risk_factor_variant_of_a_dose_limit() -> None:
    p = parse_protocol(
        {
            "format": FORMAT, "id": "t", "name": "t", "therapy": "generic", "sources": ["test"],
            "eanm_levels": {"1": "", "2": "", "3": ""},
            "organs": [{"id": "kidneys", "voi_patterns": ["^kidney"], "tissue": "kidney",
                        "limits": [
                            {"quantity": "dose_gy", "value": 23, "scope": "cumulative",
                             "source": "A"},
                            {"quantity": "dose_gy", "value": 18, "scope": "cumulative",
                             "source": "B", "when": "risk factors"}]}],
        },
        "test",
    )  # fmt: skip
    assert [x.limit_gy for x in voi_dose_limits(p, "Kidney_L")] == [23.0]
    assert [x.limit_gy for x in voi_dose_limits(p, "Kidney_L", risk_factors=True)] == [18.0]


def test_pass_fail_rule_is_mean_at_most_limit() -> None:
    summary = DoseSummary(
        dose_map_id="d",
        method="vsv",
        vois=(
            VoiDose("k1", "Kidney_L", "", _stats(23.0)),
            VoiDose("k2", "Kidney_R", "", _stats(23.5)),
            VoiDose("lv", "Liver", "", _stats(50.0)),
            VoiDose("rm", "Marrow", "", None, error="outside the dose grid"),
        ),
    )
    checks = {c.voi_name: c for c in check_dose_limits(summary, "lu177-dotatate")}
    assert set(checks) == {"Kidney_L", "Kidney_R"}
    assert checks["Kidney_L"].passed and checks["Kidney_L"].fraction_of_limit == 1.0
    assert not checks["Kidney_R"].passed
    assert checks["Kidney_R"].fraction_of_limit == pytest.approx(23.5 / 23.0)
    assert [c.voi_id for c in check_dose_limits(summary, "lu177-dotatate", vois=["k2"])] == ["k2"]


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown protocol"):
        voi_dose_limits("no-such-protocol", "Kidney_L")
