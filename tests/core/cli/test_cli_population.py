"""mrtdose population: the Exports step's population figures, headless.

Known answer (tests/core/reporting/test_population_histogram.py by hand): six other
patients at 0.4 ... 0.9 Gy/GBq and this one at 0.65 -> 4 bins with counts 2, 1, 1,
2, percentile rank 50 %.  The command is called directly (``cmd_population``): its
registration in ``cli/main.py`` and its read rule in ``cli/access.py`` are the
lead's (files of another owner).
"""

from __future__ import annotations

import argparse
import json

import pytest

from dosimetry_core.cli.population_command import add_parsers, cmd_population
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.store import CaseStore
from tests.core.reporting._synthetic import synthetic_case


@pytest.fixture()
def store_and_case(tmp_path, monkeypatch):
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE"):
        monkeypatch.delenv(name, raising=False)
    with CaseStore(tmp_path / "s") as store:
        for n, v in enumerate((0.4, 0.5, 0.6, 0.7, 0.8, 0.9)):
            synthetic_case(store, f"P{n}", v)
        cid = synthetic_case(store, "ME", 0.65)
    return tmp_path / "s", cid


def _args(store, case, *, organ=None, as_json=True):
    return argparse.Namespace(store=str(store), case=case, organ=organ, json=as_json)


def test_json_has_the_histogram_and_percentile(store_and_case, capsys):
    store, cid = store_and_case
    assert cmd_population(_args(store, cid)) == 0
    data = json.loads(capsys.readouterr().out)
    h = data["histograms"]["kidneys"]
    assert h["counts"] == [2, 1, 1, 2] and h["enough"] is True
    assert h["percentile"] == pytest.approx(50.0) and h["n"] == 6
    assert data["unit"] == "Gy/GBq" and data["case_id"] == cid
    assert data["organs"]["kidneys"]["value_gy_per_gbq"] == pytest.approx(0.65)


def test_text_lists_the_bins_and_an_unknown_organ_is_refused(store_and_case, capsys):
    store, cid = store_and_case
    assert cmd_population(_args(store, cid, organ="kidneys", as_json=False)) == 0
    out = capsys.readouterr().out
    assert "Kidneys: this patient 0.65 Gy/GBq, percentile rank 50 % of 6" in out
    assert "  0.4 - 0.525 Gy/GBq: 2" in out and "  0.775 - 0.9 Gy/GBq: 2" in out
    with pytest.raises(InvalidInputError, match="liver"):
        cmd_population(_args(store, cid, organ="liver"))


def test_parser_keeps_the_command_line():
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    add_parsers(parser.add_subparsers(), common)
    args = parser.parse_args(["population", "case-1", "--organ", "kidneys"])
    assert (args.case, args.organ, args.func) == ("case-1", "kidneys", cmd_population)
