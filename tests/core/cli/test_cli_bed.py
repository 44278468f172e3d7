"""``mrtdose bed``: public JSON keys, tissue defaults and overrides, errors."""

from __future__ import annotations

import json

import pytest

from dosimetry_core.cli.main import main

PUBLIC_KEYS = {
    "bed_gy",
    "eqd2_gy",
    "dose_gy",
    "t_eff_h",
    "alpha_beta_gy",
    "t_repair_h",
    "t_uptake_h",
    "relative_effectiveness",
    "source",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "bed", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_bed_json_keys_and_hand_worked_value(capsys):
    # D 20 Gy, T_eff 50 h, a/b 2.6 Gy, T_rep 2.8 h: BED 28.158508 Gy, EQD2 15.915679 Gy
    d = run_json(
        capsys,
        "--dose-gy",
        "20",
        "--t-eff-h",
        "50",
        "--alpha-beta-gy",
        "2.6",
        "--t-repair-h",
        "2.8",
    )
    assert set(d) >= PUBLIC_KEYS
    assert d["bed_gy"] == pytest.approx(28.158508, abs=1e-6)
    assert d["eqd2_gy"] == pytest.approx(15.915679, abs=1e-6)
    assert d["relative_effectiveness"] == pytest.approx(28.158508 / 20, abs=1e-7)
    assert (d["dose_gy"], d["t_eff_h"], d["alpha_beta_gy"], d["t_repair_h"]) == (20, 50, 2.6, 2.8)
    assert d["t_uptake_h"] is None and d["source"] is None


def test_bed_tissue_defaults_and_explicit_override(capsys):
    d = run_json(capsys, "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney")
    assert (d["alpha_beta_gy"], d["t_repair_h"]) == (2.6, 2.8)
    assert "Barone" in d["source"]
    assert d["bed_gy"] == pytest.approx(28.158508, abs=1e-6)
    d2 = run_json(
        capsys, "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney", "--alpha-beta-gy", "5"
    )
    assert (d2["alpha_beta_gy"], d2["t_repair_h"]) == (5.0, 2.8)
    assert "given by the user" in d2["source"]
    # 20 (1 + 20 * 0.0530303 / 5) = 24.242424 Gy
    assert d2["bed_gy"] == pytest.approx(24.242424, abs=1e-6)


def test_bed_uptake_echoed(capsys):
    d = run_json(
        capsys, "--dose-gy", "20", "--t-eff-h", "50", "--t-uptake-h", "2", "--tissue", "kidney"
    )
    assert d["t_uptake_h"] == 2.0
    assert 20.0 < d["bed_gy"] < 28.158508  # slower uptake: lower BED than instant uptake


def test_bed_text_output(capsys):
    code, out, _ = run(capsys, "bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney")
    assert code == 0 and "BED  28.159 Gy" in out and "EQD2 15.916 Gy" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--dose-gy", "-2", "--t-eff-h", "50", "--tissue", "kidney"], "dose_gy = -2"),
        (["--dose-gy", "2", "--t-eff-h", "50"], "--alpha-beta-gy and --t-repair-h"),
        (["--dose-gy", "2", "--t-eff-h", "50", "--tissue", "brain"], "unknown tissue"),
        (
            ["--dose-gy", "2", "--t-eff-h", "5", "--t-uptake-h", "8", "--tissue", "kidney"],
            "uptake half-time",
        ),
    ],
)
def test_bed_errors_one_line_exit_1(capsys, argv, match):
    code, out, err = run(capsys, "bed", *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and match in err
