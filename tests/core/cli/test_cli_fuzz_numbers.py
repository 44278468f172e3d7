"""Fuzz of the calculators' numeric options (issue 13: property-based tests of the CLI's inputs).

For ``fit`` (multi-point and single-time-point), ``bed``, ``thyroid``, ``mibg``,
``marrow``, ``sirt`` and ``kernel``, hypothesis replaces one numeric value of a
valid command line by NaN, +-inf, 0, negatives, 1e-300, 1e308, 1e400, random
floats and integers, or random text, and runs ``main([...])`` in-process.

Properties (the CLI's documented exit statuses, ``cli/main.py``):

* a value argparse cannot read (text, ``-inf`` taken for an option) is a usage
  error, exit 2, before any calculator runs;
* otherwise the exit status is 0 or 1, never 3 (an internal error);
* exit 1: nothing on stdout, exactly one line on stderr;
* exit 0 with ``--json``: stdout is strict JSON (``NaN``/``Infinity`` refused)
  and every number in it is finite.

``derandomize=True`` makes the examples the same on every run; the example
counts keep the whole file well under a minute.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosimetry_core.cli.main import build_parser, main

SPECIAL = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "0",
    "-0",
    "0.0",
    "-1",
    "-5.5",
    "1e-300",
    "-1e-300",
    "5e-324",
    "1e308",
    "-1e308",
    "1e400",
    "1e20",
    "0.0001",
    "2000000000",
]

# (command line, {option: number of values}) -- a valid command and its numeric options
COMMANDS: dict[str, tuple[list[str], dict[str, int]]] = {
    "fit": (
        ["fit", "--time-h", "4", "24", "72", "--activity-mbq", "100", "80", "40"]
        + ["--nuclide", "Lu-177"],
        {
            "--time-h": 3,
            "--activity-mbq": 3,
            "--injection-time-h": 1,
            "--relative-sd": 1,
            "--administered-activity-mbq": 1,
            "--mc-samples": 1,
            "--seed": 1,
        },
    ),
    "fit-stp": (
        ["fit", "--stp", "--time-h", "96", "--activity-mbq", "40", "--method", "madsen"]
        + ["--t-eff-h", "50", "--nuclide", "Lu-177"],
        {"--time-h": 1, "--activity-mbq": 1, "--t-eff-h": 1, "--t-eff-sd-h": 1},
    ),
    "bed": (
        ["bed", "--dose-gy", "5", "--t-eff-h", "50", "--alpha-beta-gy", "2.5"]
        + ["--t-repair-h", "1.5"],
        {
            "--dose-gy": 1,
            "--t-eff-h": 1,
            "--alpha-beta-gy": 1,
            "--t-repair-h": 1,
            "--t-uptake-h": 1,
        },
    ),
    "thyroid": (
        ["thyroid", "--target-gy", "150", "--mass-g", "20", "--uptake-time-h", "4", "24", "96"]
        + ["--uptake-percent", "20", "40", "30"],
        {"--target-gy": 1, "--mass-g": 1, "--uptake-time-h": 3, "--uptake-percent": 3},
    ),
    "mibg": (
        ["mibg", "--time-h", "2", "24", "48", "--dose-rate", "50", "20", "8"]
        + ["--administered-activity-mbq", "7400", "--body-mass-kg", "30"],
        {
            "--time-h": 3,
            "--dose-rate": 3,
            "--administered-activity-mbq": 1,
            "--body-mass-kg": 1,
            "--target-gy": 1,
            "--administrations": 1,
            "--target-total-gy": 1,
        },
    ),
    "marrow": (
        ["marrow", "--blood-tia-mbq-h-per-ml", "0.5", "--rmblr", "1", "--patient-mass-kg", "70"]
        + ["--remainder-tia-mbq-h", "50000", "--nuclide", "Lu-177"],
        {
            "--blood-tia-mbq-h-per-ml": 1,
            "--rmblr": 1,
            "--patient-mass-kg": 1,
            "--remainder-tia-mbq-h": 1,
            "--hematocrit": 1,
            "--red-marrow-mass-g": 1,
        },
    ),
    "sirt": (
        ["sirt", "--activity-gbq", "2", "--lsf", "0.05", "--tnr", "3", "--liver-mass-kg", "1.5"]
        + ["--tumour-mass-kg", "0.2"],
        {
            "--activity-gbq": 1,
            "--lsf": 1,
            "--tnr": 1,
            "--liver-mass-kg": 1,
            "--tumour-mass-kg": 1,
            "--lung-mass-kg": 1,
            "--residual-fraction": 1,
            "--previous-lung-dose-gy": 1,
            "--normal-liver-limit-gy": 1,
        },
    ),
    # kernel: only special values and text (a random valid voxel size would compute a
    # kernel for seconds); every one of them is refused before any computation
    "kernel": (["kernel", "--nuclide", "Lu-177", "--voxel-mm", "20"], {"--voxel-mm": 1}),
}

EXAMPLES = {"fit": 30, "fit-stp": 25, "bed": 25, "thyroid": 25, "mibg": 25, "marrow": 25}
DEFAULT_EXAMPLES = 25

numbers = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(max_size=10),
)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# text that is no number (a digit string such as "5" would be a valid voxel size to compute)
kernel_numbers = st.one_of(
    st.sampled_from(SPECIAL), st.text(max_size=10).filter(lambda s: _float_or_none(s) is None)
)


@pytest.fixture(scope="module", autouse=True)
def _environment(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_STORE", str(tmp_path_factory.mktemp("fuzz-store")))
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(tmp_path_factory.mktemp("fuzz-kernels")))
    mp.delenv("MRTDOSE_USER", raising=False)
    mp.delenv("MRTDOSE_PASSWORD", raising=False)
    mp.delenv("MRTDOSE_DEBUG", raising=False)
    yield
    mp.undo()


def _with_value(base: list[str], option: str, index: int, value: str) -> list[str]:
    """``base`` with the ``index``-th value of ``option`` replaced (the option added if absent)."""
    argv = list(base)
    if option in argv:
        argv[argv.index(option) + 1 + index] = value
    else:
        argv += [option, value]
    return argv


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers_in(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers_in(v)]
    return []


def _parses(argv: list[str]) -> bool:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            return False
    return True


def check(argv: list[str]) -> None:
    argv = [*argv, "--json"]
    code, out, err = _run(argv)
    if not _parses(argv):
        assert code == 2, (argv, code, err)  # a usage error: no calculator ran
        return
    assert code in (0, 1), (argv, code, err)  # never 3 (internal error)
    if code == 1:
        assert out == "", (argv, out)
        assert err.count("\n") == 1 and err.strip(), (argv, err)
        assert "Traceback" not in err
        return
    data = json.loads(out, parse_constant=_refuse_constant)
    bad = [x for x in _numbers_in(data) if not math.isfinite(x)]
    assert not bad, (argv, bad)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_valid_baselines_exit_0_with_strict_json(command):
    if command == "kernel":
        pytest.skip("the kernel baseline computes for seconds; its refusals are fuzzed below")
    base, _ = COMMANDS[command]
    code, out, err = _run([*base, "--json"])
    assert code == 0, err
    check(base)


def _fuzz(command: str):
    base, options = COMMANDS[command]
    values = kernel_numbers if command == "kernel" else numbers
    slots = [(opt, i) for opt, n in options.items() for i in range(n)]

    @settings(
        max_examples=EXAMPLES.get(command, DEFAULT_EXAMPLES),
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(slot=st.sampled_from(slots), value=values)
    def run(slot, value):
        option, index = slot
        check(_with_value(base, option, index, value))

    run()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_numeric_fuzz_never_crashes_and_json_stays_finite(command):
    _fuzz(command)


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--stp", "--time-h", "1e308", "--activity-mbq", "40"],  # printed Infinity once
        ["thyroid", "--target-gy", "150", "--mass-g", "1e-300", "--uptake-time-h", "24"]
        + ["--uptake-percent", "40", "--assumed-t-eff-d", "5"],
        ["sirt", "--activity-gbq", "2", "--lsf", "0.05", "--tnr", "3", "--liver-mass-kg", "1500"]
        + ["--tumour-mass-kg", "0.2"],
        ["fit", "--time-h", "4", "24", "72", "--activity-mbq", "100", "80", "40"]
        + ["--mc-samples=-5"],
        ["fit", "--time-h", "4", "24", "72", "--activity-mbq", "100", "80", "40"]
        + ["--mc-samples", "2000000000"],
        ["mibg", "--time-h", "2", "24", "48", "--dose-rate", "50", "20", "8"]
        + ["--administered-activity-mbq", "7400", "--body-mass-kg", "30", "--administrations", "0"],
        ["kernel", "--nuclide", "Lu-177", "--voxel-mm", "0.001"],
        ["bed", "--dose-gy=nan", "--t-eff-h", "50", "--alpha-beta-gy", "2.5", "--t-repair-h=inf"],
    ],
)
def test_the_issues_calculator_attacks_are_refused_in_one_line(argv):
    code, out, err = _run([*argv, "--json"])
    assert code == 1 and out == "" and err.count("\n") == 1, (code, out, err)


MIBG = ["--administered-activity-mbq", "7400", "--body-mass-kg", "30"]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(
            ["mibg", "--time-h", "196887.0", "24", "48", "--dose-rate", "50", "20", "8", *MIBG],
            id="mibg-time-196887",
        ),
        pytest.param(
            ["fit", "--time-h", "4", "24", "72", "--activity-mbq", "1e308", "80", "40"],
            id="fit-activity-1e308",
        ),
        pytest.param(
            ["mibg", "--time-h", "2", "24", "48", "--dose-rate", "1e-300", "20", "8", *MIBG],
            id="mibg-dose-rate-1e-300",
        ),
        pytest.param(
            ["fit", "--stp", "--time-h", "96", "--activity-mbq", "40", "--method", "madsen"]
            + ["--t-eff-h", "50", "--t-eff-sd-h", "1e200"],
            id="fit-stp-t-eff-sd-1e200",
        ),
    ],
)
def test_crashes_the_fuzz_found_are_one_line_refusals(argv):
    """The four crashes this fuzz found (overflows in the kinetics): now refused (exit 1)."""
    code, out, err = _run([*argv, "--json"])
    assert code == 1 and out == "" and err.count("\n") == 1, (code, err)
