"""``mrtdose fit``: the public JSON shape of issue 4, single time point, errors."""

from __future__ import annotations

import json
import math

import pytest

from dosimetry_core.cli.main import main

EXAMPLE = ["fit", "--time-h", "4", "24", "96", "168", "--activity-mbq", "120", "95", "40", "18"]
PUBLIC_KEYS = {
    "model",
    "parameters",
    "covariance",
    "aicc",
    "tia_mbq_h",
    "tia_sd_mbq_h",
    "candidates",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_fit_json_has_the_public_shape(capsys):
    d = run_json(capsys, *EXAMPLE)
    assert set(d) >= PUBLIC_KEYS
    assert d["model"] == "mono"
    assert set(d["parameters"]) == {"A0", "lambda"}
    assert d["parameters"]["A0"]["unit"] == "MBq"
    assert d["parameters"]["lambda"]["unit"] == "1/h"
    assert all(set(p) >= {"value", "unit"} for p in d["parameters"].values())
    assert d["covariance_parameter_order"] == ["A0", "lambda"]
    assert len(d["covariance"]) == 2 and len(d["covariance"][0]) == 2
    assert isinstance(d["aicc"], float)
    assert d["tia_mbq_h"] > 0 and d["tia_sd_mbq_h"] > 0
    assert d["half_lives_h"]["T_half_eff"]["unit"] == "h"
    # candidates: the same fields for every model tried
    assert [c["model"] for c in d["candidates"]] == ["mono", "biexp-uptake", "biexp", "trapezoid"]
    for c in d["candidates"]:
        assert set(c) >= PUBLIC_KEYS - {"candidates"}
    by = {c["model"]: c for c in d["candidates"]}
    assert by["mono"]["tia_mbq_h"] == d["tia_mbq_h"]
    assert by["biexp-uptake"]["aicc"] is None  # n - k - 1 = 0
    assert d["weights"]["model"] == "relative"
    assert d["converged"] is True


def test_fit_options_reach_the_fit(capsys):
    d = run_json(
        capsys,
        *EXAMPLE,
        "--model",
        "trapezoid",
        "--nuclide",
        "lu177",
        "--administered-activity-mbq",
        "7400",
    )
    assert d["model"] == "trapezoid"
    assert d["nuclide"] == "Lu-177"
    assert d["tiac_h"] == pytest.approx(d["tia_mbq_h"] / 7400)
    d = run_json(
        capsys, *EXAMPLE, "--activity-sd-mbq", "6", "5", "3", "2", "--injection-time-h", "1"
    )
    assert d["weights"]["model"] == "absolute"
    assert d["injection_time_h"] == 1.0
    d = run_json(capsys, *EXAMPLE, "--model", "biexp", "--fallback")
    assert d["model"] == "trapezoid" and d["fallback_used"] is True


def test_fit_text_output(capsys):
    code, out, err = run(capsys, *EXAMPLE)
    assert code == 0, err
    assert "chosen model: mono" in out
    assert "TIA =" in out and "biexp-uptake" in out


def test_stp_haenscheid_json(capsys):
    d = run_json(capsys, "fit", "--stp", "--time-h", "96", "--activity-mbq", "40")
    assert set(d) >= {"method", "tia_mbq_h", "tia_sd_mbq_h"}
    assert d["method"] == "haenscheid"
    assert d["tia_mbq_h"] == pytest.approx(40 * 2 * 96 / math.log(2))


def test_stp_madsen_json(capsys, tmp_path):
    d = run_json(
        capsys,
        "fit",
        "--stp",
        "--method",
        "madsen",
        "--time-h",
        "96",
        "--activity-mbq",
        "40",
        "--t-eff-h",
        "70",
        "--t-eff-sd-h",
        "7",
    )
    lam = math.log(2) / 70
    assert d["method"] == "madsen"
    assert d["tia_mbq_h"] == pytest.approx(40 * math.exp(lam * 96) / lam)
    assert d["tia_sd_mbq_h"] > 0
    table = tmp_path / "t.json"
    table.write_text(
        json.dumps(
            {
                "entries": [
                    {
                        "radiopharmaceutical": "lu177-dotatate",
                        "organ": "kidneys",
                        "t_eff_h": 70.0,
                        "t_eff_sd_h": 7.0,
                        "source": "test",
                    }
                ]
            }
        )
    )
    d2 = run_json(
        capsys,
        "fit",
        "--stp",
        "--method",
        "madsen",
        "--time-h",
        "96",
        "--activity-mbq",
        "40",
        "--organ",
        "kidneys",
        "--radiopharmaceutical",
        "lu177-dotatate",
        "--population-table",
        str(table),
    )
    assert d2["tia_mbq_h"] == pytest.approx(d["tia_mbq_h"])
    assert d2["population"]["source"] == "test"


@pytest.mark.parametrize(
    "argv, match",
    [
        (["fit", "--time-h", "4", "24", "--activity-mbq", "120"], "one activity per time point"),
        (["fit", "--time-h", "4", "--activity-mbq", "120"], "at least 2"),
        (["fit", "--time-h", "4", "24", "--activity-mbq", "120", "-3"], "negative activity"),
        (["fit", "--time-h", "4", "4", "--activity-mbq", "120", "100"], "duplicate time"),
        (["fit", "--time-h", "4", "24", "--activity-mbq", "1", "2", "--nuclide", "Zz-1"], "Zz-1"),
        (
            ["fit", "--time-h", "4", "24", "--activity-mbq", "1", "2", "--injection-time-h", "5"],
            "before the injection",
        ),
        (["fit", "--stp", "--time-h", "4", "24", "--activity-mbq", "1", "2"], "exactly one"),
        (
            ["fit", "--stp", "--method", "madsen", "--time-h", "96", "--activity-mbq", "40"],
            "needs an effective half-life",
        ),
        (
            [
                "fit",
                "--stp",
                "--method",
                "madsen",
                "--time-h",
                "96",
                "--activity-mbq",
                "40",
                "--organ",
                "kidneys",
                "--radiopharmaceutical",
                "no-such-drug",
            ],
            "no population effective half-life",
        ),
    ],
)
def test_bad_input_one_line_exit_1(capsys, argv, match):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and match in err


def test_unknown_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*EXAMPLE, "--model", "gauss"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err
