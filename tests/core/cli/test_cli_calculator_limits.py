"""Calculators refuse out-of-range values (issue 13): one line naming the field, exit 1.

Each attack of the issue is replayed in-process: the known answer is exit status 1,
one line on stderr naming the option or field, nothing on stdout and nothing
written.  Files are read with a size limit (``/dev/zero`` is refused, not read),
and every ``--json`` output is strict JSON (no ``NaN``/``Infinity``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from dosimetry_core.cli.main import _emit, main
from dosimetry_core.dose.sphere_model import sphere_absorbed_fractions
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.limits import read_bytes_limited, read_text_limited
from dosimetry_core.protocols import mibg as mibg_mod
from dosimetry_core.protocols import thyroid as thyroid_mod

FIT = ["fit", "--time-h", "4", "24", "96", "168", "--activity-mbq", "120", "95", "40", "18"]
THYROID = ["thyroid", "--target-gy", "150", "--uptake-time-h", "4", "24", "96", "168"]
THYROID += ["--uptake-percent", "20", "40", "30", "15"]
SIRT = ["sirt", "--activity-gbq", "2", "--lsf", "0.1", "--tnr", "4", "--tumour-mass-kg", "0.2"]
MIBG = ["mibg", "--time-h", "2", "24", "48", "72", "--dose-rate", "100", "60", "35", "20"]
MIBG += ["--administered-activity-mbq", "3700", "--body-mass-kg", "70"]
BED = ["bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney"]


def _strict(text: str) -> Any:
    """``json.loads`` that raises on the non-JSON tokens NaN, Infinity, -Infinity."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-JSON constant {token} in the output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(autouse=True)
def small_tables(tmp_path, monkeypatch) -> None:
    """Fast sphere tables and a private kernel cache."""
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path / "cache"))

    def small(nuclide: str, **kw: Any):
        kw.update(electron_histories=1000, photon_histories=20_000, use_cache=False)
        return sphere_absorbed_fractions(nuclide, **kw)

    monkeypatch.setattr(thyroid_mod, "sphere_absorbed_fractions", small)
    monkeypatch.setattr(mibg_mod, "sphere_absorbed_fractions", small)


def _refused(capsys, argv: list[str], *names: str) -> str:
    """Run ``argv``: exit 1, nothing on stdout, one stderr line naming one of ``names``."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert any(n in lines[0] for n in names), lines[0]
    assert "Traceback" not in err and "internal error" not in err.lower()
    return lines[0]


# ------------------------------------------------------------------ the attacks of the issue
def test_kernel_refuses_a_voxel_of_a_micrometre(capsys, tmp_path):
    line = _refused(
        capsys, ["kernel", "--nuclide", "Lu-177", "--voxel-mm", "0.001", "--json"], "voxel_mm"
    )
    assert "0.1-100 mm" in line
    _refused(capsys, ["kernel", "--nuclide", "Lu-177", "--voxel-mm", "4", "4", "500"], "voxel_mm")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_kernel_refuses_out_in_a_missing_folder_before_computing(capsys, tmp_path):
    out = tmp_path / "no" / "such" / "folder" / "k.npz"
    line = _refused(
        capsys, ["kernel", "--nuclide", "Y-90", "--voxel-mm", "6", "--out", str(out)], "--out"
    )
    assert "does not exist" in line
    assert not out.parent.exists()
    assert not (tmp_path / "cache").exists()  # refused before any computation
    _refused(
        capsys, ["kernel", "--nuclide", "Y-90", "--voxel-mm", "6", "--out", str(tmp_path)], "--out"
    )


@pytest.mark.parametrize("n", ["2000000000", "-5", "50", "100001"])
def test_fit_refuses_absurd_monte_carlo_sample_counts(capsys, n):
    _refused(capsys, [*FIT, "--mc-samples", n, "--json"], "mc_samples")
    _refused(
        capsys,
        [
            "fit",
            "--stp",
            "--time-h",
            "96",
            "--activity-mbq",
            "40",
            "--t-eff-h",
            "60",
            "--mc-samples",
            n,
        ],
        "mc_samples",
    )


def test_fit_accepts_no_monte_carlo_and_the_bounds(capsys):
    for n in ("0", "100"):
        assert main([*FIT, "--mc-samples", n, "--json"]) == 0
        _strict(capsys.readouterr().out)


@pytest.mark.parametrize("t", ["1e308", "inf", "nan", "10001", "-1"])
def test_fit_stp_refuses_absurd_times(capsys, t):
    _refused(
        capsys,
        ["fit", "--stp", "--time-h", t, "--activity-mbq", "40", "--t-eff-h", "60", "--json"],
        "time_h",
    )


def test_fit_refuses_absurd_times_in_a_curve(capsys):
    _refused(capsys, ["fit", "--time-h", "4", "1e308", "--activity-mbq", "1", "2"], "time_h")
    _refused(capsys, [*FIT, "--injection-time-h", "1e308"], "injection_time_h")


def test_bed_refuses_dev_zero_as_tissue_table(capsys):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    line = _refused(capsys, [*BED, "--tissue-table", "/dev/zero"], "--tissue-table")
    assert "not a regular file" in line


def test_bed_refuses_a_huge_or_missing_tissue_table(capsys, tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(5 * 1024 * 1024)  # sparse: 5 MiB of zeros, above the 4 MiB limit
    assert "more than" in _refused(capsys, [*BED, "--tissue-table", str(big)], "--tissue-table")
    _refused(capsys, [*BED, "--tissue-table", str(tmp_path / "none.json")], "--tissue-table")


def test_verify_report_refuses_dev_zero(capsys):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    assert "not a regular file" in _refused(capsys, ["verify-report", "/dev/zero"], "file")


def test_verify_report_refuses_a_folder(capsys, tmp_path):
    _refused(capsys, ["verify-report", str(tmp_path), "--json"], "file")


@pytest.mark.parametrize("mass", ["1e-300", "0.5", "501", "inf", "-25"])
def test_thyroid_refuses_an_implausible_mass(capsys, mass):
    line = _refused(capsys, [*THYROID, "--mass-g", mass, "--json"], "mass_g")
    assert "1-500 g" in line


def test_thyroid_accepts_the_mass_bounds(capsys):
    for mass in ("1", "500"):
        assert main([*THYROID, "--mass-g", mass, "--json"]) == 0
        assert _strict(capsys.readouterr().out)["activity_mbq"] > 0


@pytest.mark.parametrize("mass", ["1500", "0.01", "nan"])
def test_sirt_refuses_an_implausible_liver_mass(capsys, mass):
    line = _refused(capsys, [*SIRT, "--liver-mass-kg", mass], "liver_mass_kg")
    assert "kg" in line


@pytest.mark.parametrize("n", ["0", "-3"])
def test_mibg_refuses_fewer_than_one_administration(capsys, n):
    _refused(capsys, [*MIBG, "--administrations", n, "--json"], "--administrations")
    _refused(capsys, [*MIBG, "--administrations", n, "--target-gy", "2"], "--administrations")


# ------------------------------------------------------------------ the field of each refusal
def test_core_refusals_carry_their_field():
    from dosimetry_core.dose.kernels import voxel_kernel
    from dosimetry_core.kinetics.fitting import fit_tac
    from dosimetry_core.kinetics.stp import stp_tia
    from dosimetry_core.protocols.mibg import mibg_activity_for_target
    from dosimetry_core.protocols.sirt import check_liver_mass_kg
    from dosimetry_core.protocols.thyroid import thyroid_activity_mbq

    cases = [
        (lambda: voxel_kernel("Lu-177", 0.001), "voxel_mm"),
        (lambda: voxel_kernel("Lu-177", 0.2), "voxel_mm"),  # photon grid too large
        (lambda: fit_tac([4, 24], [2, 1], mc_samples=2_000_000_000), "mc_samples"),
        (lambda: fit_tac([4, 1e308], [2, 1]), "time_h"),
        (lambda: stp_tia("haenscheid", 1e308, 40.0, t_eff_h=60.0), "time_h"),
        (lambda: thyroid_activity_mbq(150, 1e-300, 40, 5, k=24.7), "mass_g"),
        (lambda: check_liver_mass_kg(1500.0), "liver_mass_kg"),
        (lambda: mibg_activity_for_target(2.0, 1e-3, n_administrations=0), "n_administrations"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.field == field, (field, str(info.value))


# ------------------------------------------------------------------ bounded reads
def test_read_limited_reads_a_small_file_and_refuses_beyond_the_limit(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"a": 1}', encoding="utf-8")
    assert read_bytes_limited(f, 8, "tissue_table") == b'{"a": 1}'
    assert read_text_limited(f, 100, "tissue_table") == '{"a": 1}'
    with pytest.raises(InvalidInputError, match="more than") as info:
        read_bytes_limited(f, 7, "tissue_table")
    assert info.value.field == "tissue_table"
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidInputError, match="utf-8"):
        read_text_limited(f, 100, "file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_read_limited_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_bytes_limited(fifo, 100, "file")


# ------------------------------------------------------------------ JSON never holds NaN/inf
def test_emit_writes_null_for_non_finite_numbers(capsys):
    data = {"a": float("inf"), "b": [1.0, float("nan"), {"c": -float("inf")}], "d": (2.5, "x")}
    _emit(argparse.Namespace(json=True), data, "")
    d = _strict(capsys.readouterr().out)
    assert d == {"a": None, "b": [1.0, None, {"c": None}], "d": [2.5, "x"]}


@pytest.mark.parametrize(
    "argv",
    [
        [*FIT, "--json"],
        [*FIT, "--model", "trapezoid", "--json"],
        ["fit", "--stp", "--time-h", "96", "--activity-mbq", "40", "--json"],
        [
            "fit",
            "--stp",
            "--method",
            "madsen",
            "--time-h",
            "96",
            "--activity-mbq",
            "40",
            "--t-eff-h",
            "60",
            "--t-eff-sd-h",
            "10",
            "--json",
        ],
        [
            "fit",
            "--stp",
            "--time-h",
            "10000",
            "--activity-mbq",
            "1e300",
            "--t-eff-h",
            "60",
            "--method",
            "madsen",
            "--json",
        ],
        [*THYROID, "--mass-g", "25", "--json"],
        [*SIRT, "--liver-mass-kg", "1.5", "--json"],
        [
            "sirt",
            "--target-tumour-gy",
            "200",
            "--lsf",
            "0.1",
            "--tnr",
            "4",
            "--liver-mass-kg",
            "1.5",
            "--tumour-mass-kg",
            "0.2",
            "--json",
        ],
        [*MIBG, "--target-gy", "2", "--administrations", "2", "--json"],
        [*BED, "--json"],
        [
            "bed",
            "--dose-gy",
            "1e300",
            "--t-eff-h",
            "50",
            "--alpha-beta-gy",
            "1e-300",
            "--t-repair-h",
            "1.5",
            "--json",
        ],
    ],
)
def test_calculator_json_is_strict(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    if code == 0:
        assert isinstance(_strict(out), dict)
    else:  # an extreme input may be refused, but then in one line, never half-written JSON
        assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err


def test_kernel_json_is_strict_and_out_is_written(capsys, tmp_path, use_shared_kernel_cache):
    # the kernel is the session's Y-90 6 mm one (tests/core/dose/test_kernels.py computes it too)
    out = tmp_path / "k.npz"
    assert (
        main(["kernel", "--nuclide", "Y-90", "--voxel-mm", "6", "--out", str(out), "--json"]) == 0
    )
    d = _strict(capsys.readouterr().out)
    assert d["voxel_mm"] == 6.0 and Path(out).is_file()


def test_bed_refuses_values_whose_g_factor_overflows(capsys):
    argv = ["bed", "--dose-gy", "1e300", "--t-eff-h", "50", "--alpha-beta-gy", "3"]
    _refused(capsys, [*argv, "--t-repair-h", "1.5"], "--dose-gy")
    argv = ["bed", "--dose-gy", "20", "--t-eff-h", "50", "--alpha-beta-gy", "1e-300"]
    _refused(capsys, [*argv, "--t-repair-h", "1.5"], "--alpha-beta-gy")
