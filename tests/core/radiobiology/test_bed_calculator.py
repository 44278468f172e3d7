"""The BED calculator (used by the calculators form) computes what ``mrtdose bed`` does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dosimetry_core.cli.bed_command import RANGES as CLI_RANGES
from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.radiobiology.bed_calculator import (
    RANGES,
    bed_calculation,
    dose_for_bed_calculation,
)


def _cli(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main(["bed", *argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_same_json_as_the_cli_with_a_tissue(capsys: Any) -> None:
    cli = _cli(capsys, "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney")
    assert bed_calculation(20.0, 50.0, tissue="kidney").to_dict() == pytest.approx(cli)


def test_same_json_as_the_cli_with_an_override_and_uptake(capsys: Any) -> None:
    cli = _cli(
        capsys, "--dose-gy", "5", "--t-eff-h", "60", "--tissue", "kidney",
        "--alpha-beta-gy", "3", "--t-uptake-h", "2",
    )  # fmt: skip
    got = bed_calculation(5.0, 60.0, tissue="kidney", alpha_beta_gy=3.0, t_uptake_h=2.0)
    assert got.to_dict() == pytest.approx(cli)
    assert "given by the user" in (got.source or "")


def test_ranges_are_those_of_the_cli() -> None:
    for name, rng in CLI_RANGES.items():
        assert RANGES[name] == rng


def test_dose_for_bed_inverts_the_bed() -> None:
    fwd = bed_calculation(20.0, 50.0, tissue="kidney")
    inv = dose_for_bed_calculation(fwd.bed_gy, 50.0, tissue="kidney")
    assert inv.dose_gy == pytest.approx(20.0, rel=1e-12)
    assert inv.bed_gy == pytest.approx(fwd.bed_gy, rel=1e-12)


def test_refusals_name_the_field() -> None:
    with pytest.raises(InvalidInputError) as exc:
        bed_calculation(20.0, 1e6, tissue="kidney")
    assert exc.value.field == "t_eff_h"
    with pytest.raises(InvalidInputError) as exc:
        bed_calculation(20.0, 50.0)
    assert exc.value.field == "alpha_beta_gy"
