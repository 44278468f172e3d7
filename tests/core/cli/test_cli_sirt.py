"""``mrtdose sirt``: the public JSON keys, hand-worked doses, inverse planning, refusals.

Hand numbers: K = 49.771 Gy kg/GBq (ICRP-107 Y-90, see tests/core/protocols/test_sirt.py).
"""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli.main import main

EXAMPLE = ["--lsf", "0.1", "--tnr", "4", "--liver-mass-kg", "1.5", "--tumour-mass-kg", "0.2"]
DOSE_KEYS = {"tumour_dose_gy", "normal_liver_dose_gy", "lung_dose_gy", "inputs", "warnings"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_forward_doses_and_keys(capsys):
    d = run_json(capsys, "sirt", "--activity-gbq", "2", *EXAMPLE)
    assert set(d) >= DOSE_KEYS
    # D_N = 49.771 * 2 * 0.9 / 2.3 = 38.951; D_T = 155.805; D_L = 9.954 Gy
    assert d["normal_liver_dose_gy"] == pytest.approx(38.951, abs=0.005)
    assert d["tumour_dose_gy"] == pytest.approx(155.805, abs=0.01)
    assert d["lung_dose_gy"] == pytest.approx(9.954, abs=0.002)
    assert d["inputs"]["lung_mass_kg"] == 1.0
    assert d["inputs"]["normal_liver_mass_kg"] == 1.5
    assert d["warnings"] == []
    code, out, _ = run(capsys, "sirt", "--activity-gbq", "2", *EXAMPLE)
    assert code == 0 and "155.8 Gy" in out


def test_forward_options_reach_the_model(capsys):
    d = run_json(
        capsys,
        "sirt",
        "--activity-gbq",
        "2",
        "--lsf",
        "0.1",
        "--tnr",
        "4",
        "--liver-mass-kg",
        "1.7",
        "--tumour-mass-kg",
        "0.2",
        "--whole-liver-mass",
        "--lung-mass-kg",
        "0.5",
    )
    assert d["inputs"]["normal_liver_mass_kg"] == pytest.approx(1.5)
    assert d["normal_liver_dose_gy"] == pytest.approx(38.951, abs=0.005)
    assert d["lung_dose_gy"] == pytest.approx(2 * 9.954, abs=0.004)  # half the lung mass
    d = run_json(capsys, "sirt", "--activity-gbq", "7", *EXAMPLE)
    assert any("per-treatment limit" in w for w in d["warnings"])  # 34.84 Gy > 30 Gy


def test_inverse_tumour_target_round_trip(capsys):
    d = run_json(capsys, "sirt", "--target-tumour-gy", "200", *EXAMPLE)
    assert set(d) >= DOSE_KEYS | {"activity_gbq", "binding_constraint"}
    assert d["binding_constraint"] == "target-tumour"
    # A = 200 / 4 * 2.3 / (49.771 * 0.9) = 2.5675 GBq
    assert d["activity_gbq"] == pytest.approx(2.5675, abs=3e-4)
    assert d["tumour_dose_gy"] == pytest.approx(200.0)
    back = run_json(capsys, "sirt", "--activity-gbq", repr(d["activity_gbq"]), *EXAMPLE)
    assert back["tumour_dose_gy"] == pytest.approx(200.0)


def test_inverse_limited_by_the_lung(capsys):
    d = run_json(
        capsys,
        "sirt",
        "--target-normal-liver-gy",
        "80",
        "--lsf",
        "0.15",
        "--tnr",
        "4",
        "--liver-mass-kg",
        "1.5",
        "--tumour-mass-kg",
        "0.2",
    )
    # lung: 30 / (49.771 * 0.15) = 4.0184 GBq < target 80 * 2.3 / (49.771 * 0.85) = 4.349 GBq
    assert d["binding_constraint"] == "lung-per-treatment"
    assert d["activity_gbq"] == pytest.approx(4.0184, abs=2e-4)
    assert d["lung_dose_gy"] == pytest.approx(30.0)
    assert d["constraints_gbq"]["target-normal-liver"] == pytest.approx(4.349, abs=1e-3)
    d = run_json(
        capsys, "sirt", "--target-tumour-gy", "400", *EXAMPLE, "--normal-liver-limit-gy", "40"
    )
    assert d["binding_constraint"] == "normal-liver"
    assert d["normal_liver_dose_gy"] == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("--lsf", "1"), "lung shunt fraction"),
        (("--lsf", "15"), "lung shunt fraction"),
        (("--tnr", "0"), "TNR"),
        (("--tnr", "-1"), "TNR"),
        (("--liver-mass-kg", "-1.5"), "liver mass"),
        (("--tumour-mass-kg", "-0.2"), "tumour mass"),
        (("--lung-mass-kg", "-1"), "lung mass"),
    ],
)
def test_refusals_one_line(capsys, change, words):
    argv = ["sirt", "--activity-gbq", "2", *EXAMPLE, *change]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert words in err and err.count("\n") == 1
    assert change[1] in err  # the bad value is named


def test_activity_or_target_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sirt", *EXAMPLE])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["sirt", "--activity-gbq", "2", "--target-tumour-gy", "100", *EXAMPLE])
    capsys.readouterr()
