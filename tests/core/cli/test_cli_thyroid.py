"""``mrtdose thyroid`` / ``mibg`` / ``marrow`` in-process: public JSON keys and known numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.dose.sphere_model import sphere_absorbed_fractions
from dosimetry_core.protocols import mibg as mibg_mod
from dosimetry_core.protocols import thyroid as thyroid_mod

LN2 = math.log(2.0)


@pytest.fixture(autouse=True)
def small_sphere_tables(tmp_path, monkeypatch) -> None:
    """Fast Monte Carlo sphere tables (few histories) in a private cache."""
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path))

    def small(nuclide: str, **kw: Any):
        kw.update(electron_histories=1000, photon_histories=20_000, use_cache=False)
        return sphere_absorbed_fractions(nuclide, **kw)

    monkeypatch.setattr(thyroid_mod, "sphere_absorbed_fractions", small)
    monkeypatch.setattr(mibg_mod, "sphere_absorbed_fractions", small)


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def _uptake(t: np.ndarray) -> np.ndarray:
    return 40.0 * (np.exp(-LN2 / 120.0 * t) - np.exp(-LN2 / 6.0 * t))


def test_thyroid_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    t = np.array([4.0, 24.0, 48.0, 96.0, 120.0])
    argv = ["thyroid", "--target-gy", "150", "--mass-g", "25", "--uptake-time-h"]
    argv += [repr(float(x)) for x in t] + ["--uptake-percent"]
    argv += [repr(float(x)) for x in _uptake(t)] + ["--json"]
    code, d, _ = _run(capsys, argv)
    assert code == 0
    for key in ("u_max_percent", "t_eff_d", "activity_mbq", "marinelli_k", "model", "t_uptake_h"):
        assert key in d
    assert d["model"] == "biexp-uptake"
    assert d["u_max_percent"] == pytest.approx(40.0, rel=1e-3)
    assert d["t_eff_d"] == pytest.approx(5.0, rel=1e-3)
    assert d["t_uptake_h"] == pytest.approx(6.0, rel=1e-3)
    assert abs(d["marinelli_k"] / 24.7 - 1.0) < 0.05
    # SOP integral: A = K D m / (U_max T_eff); default integral adds the uptake phase
    assert d["activity_sop_mbq"] == pytest.approx(d["marinelli_k"] * 150 * 25 / 200, rel=2e-3)
    assert d["activity_mbq"] == pytest.approx(d["activity_sop_mbq"] / (1 - 6 / 120), rel=2e-3)


def test_thyroid_text_and_sop_option(capsys: pytest.CaptureFixture[str]) -> None:
    t = [24.0, 96.0]
    u = [40.0 * math.exp(-LN2 / 120.0 * x) for x in t]
    argv = ["thyroid", "--target-gy", "150", "--mass-g", "25", "--uptake-time-h"]
    argv += [str(x) for x in t] + ["--uptake-percent"] + [repr(x) for x in u]
    code, out, _ = _run(capsys, [*argv, "--tia-method", "sop"])
    assert code == 0 and "activity to administer" in out
    code, d, _ = _run(capsys, [*argv, "--json"])
    assert d["model"] == "mono" and d["t_uptake_h"] is None
    assert d["activity_mbq"] == pytest.approx(d["marinelli_k"] * 150 * 25 / 200, rel=1e-9)


def test_thyroid_refuses_uptake_above_100(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        capsys,
        [
            "thyroid",
            "--target-gy",
            "150",
            "--mass-g",
            "25",
            "--uptake-time-h",
            "4",
            "24",
            "48",
            "--uptake-percent",
            "20",
            "120",
            "30",
            "--json",
        ],
    )
    assert code == 1
    assert "above 100 %" in err and len(err.strip().splitlines()) == 1


def test_mibg_json(capsys: pytest.CaptureFixture[str]) -> None:
    t = np.array([0.0, 4.0, 24.0, 48.0, 72.0, 96.0])
    rates = 12.0 * np.exp(-LN2 / 30.0 * t)
    argv = ["mibg", "--time-h", *[str(x) for x in t], "--dose-rate"]
    argv += [repr(float(x)) for x in rates]
    argv += [
        "--administered-activity-mbq",
        "3700",
        "--body-mass-kg",
        "70",
        "--target-gy",
        "2",
        "--administrations",
        "2",
        "--target-total-gy",
        "4",
        "--json",
    ]
    code, d, _ = _run(capsys, argv)
    assert code == 0
    assert d["tia_mbq_h"] == pytest.approx(3700 * 30 / LN2, rel=1e-6)
    dpa = d["dose_per_activity_gy_per_mbq"]
    assert d["whole_body_dose_gy"] == pytest.approx(3700 * dpa)
    assert d["activity_for_target_mbq"] == pytest.approx(1.0 / dpa)
    second = d["second_administration"]["second_activity_mbq"]
    assert second == pytest.approx((4.0 - d["whole_body_dose_gy"]) / dpa)


def test_marrow_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "marrow",
        "--blood-tia-mbq-h-per-ml",
        "0.5",
        "--rmblr",
        "sgouros",
        "--hematocrit",
        "0.47",
        "--patient-mass-kg",
        "73",
        "--remainder-tia-mbq-h",
        "20000",
        "--nuclide",
        "Lu-177",
        "--json",
    ]
    code, d, _ = _run(capsys, argv)
    assert code == 0
    assert d["rmblr"] == pytest.approx(0.19 / 0.53)
    assert d["red_marrow_mass_g"] == pytest.approx(1170.0)
    assert d["dose_gy"] == pytest.approx(d["self_gy"] + d["self_photon_gy"] + d["cross_gy"])
    code, _, err = _run(capsys, [a for a in argv if a not in ("--hematocrit", "0.47")])
    assert code == 1 and "hematocrit" in err
