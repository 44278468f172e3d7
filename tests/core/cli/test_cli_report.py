"""``mrtdose report | sign | amend | verify-report`` in-process on a synthetic case.

Known answers: the PDF/CSV/JSON are written; the CSV's kidney dose equals the
protocol run's; sign order enforced through the CLI (exit 1, one line); a signed
PDF verifies (exit 0) and a copy with one changed byte does not (exit 1).
"""

from __future__ import annotations

import argparse
import json

import pytest

from dosimetry_core.cli import main as main_mod
from dosimetry_core.cli import report_command
from dosimetry_core.cli.main import main
from dosimetry_core.reporting.csv_export import read_numbers_csv
from dosimetry_core.store import CaseStore
from tests.core.reporting._synthetic import synthetic_case


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    """Register the report commands unless cli/main.py already does (the lead will)."""
    original = main_mod.build_parser

    def build():
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "report" not in sub.choices:
            common = argparse.ArgumentParser(add_help=False)
            common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
            common.add_argument("--store", default=argparse.SUPPRESS)
            report_command.add_parsers(sub, common)
        return parser

    monkeypatch.setattr(main_mod, "build_parser", build)


def test_report_sign_verify_cycle(tmp_path, capsys):
    store_dir = tmp_path / "s"
    with CaseStore(store_dir) as store:
        cid = synthetic_case(store, "P1", 0.5)
    s = ["--store", str(store_dir), "--json"]
    out_dir = tmp_path / "out"
    assert (
        main(["report", cid, "--as", "alice", "--role", "physicist", "--out", str(out_dir), *s])
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    rid = rep["report_id"]
    assert rep["status"] == "draft" and set(rep["files"]) == {"pdf", "csv", "json"}
    rows = read_numbers_csv((out_dir / f"{rid}.csv").read_text())
    kid = next(r for r in rows if r["level"] == "organ")
    assert kid["dose_gy"] == 0.5 * 7.4 and kid["dose_per_activity_gy_per_gbq"] == 0.5

    code = main(
        ["sign", rid, "--as", "bob", "--role", "physician", "--role-as", "practitioner", *s]
    )
    err = capsys.readouterr().err
    assert code == 1 and "signs first" in err and len(err.strip().splitlines()) == 1
    assert main(["sign", rid, "--as", "tom", "--role", "technologist", "--role-as", "mpe", *s]) == 1
    capsys.readouterr()
    assert main(["sign", rid, "--as", "alice", "--role", "physicist", "--role-as", "mpe", *s]) == 0
    assert (
        main(["sign", rid, "--as", "bob", "--role", "physician", "--role-as", "practitioner", *s])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().split("\n}\n")[-1])["status"] == "signed"

    assert (
        main(["report", cid, "--as", "alice", "--role", "physicist", "--out", str(out_dir), *s])
        == 1
    )
    capsys.readouterr()
    from dosimetry_core.reporting.records import report_pdf

    with CaseStore(store_dir) as store:
        pdf = report_pdf(store, rid)
    f = tmp_path / "signed.pdf"
    f.write_bytes(pdf)
    assert main(["verify-report", str(f), *s]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["intact"] and res["report_id"] == rid
    bad = bytearray(pdf)
    bad[300] ^= 0x01
    f.write_bytes(bytes(bad))
    assert main(["verify-report", str(f), *s]) == 1
    assert not json.loads(capsys.readouterr().out)["intact"]
    # the JSON written by `report` (the draft, before both signatures) is not the stored
    # record any more; alone it is reported as unsigned (a store without accounts has no keys)
    assert main(["verify-report", str(out_dir / f"{rid}.json"), "--json", *s]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any("signatures differ from the store's" in p for p in problems), problems
    assert main(["verify-report", str(out_dir / f"{rid}.json"), "--json"]) == 1
    assert "unsigned (draft)" in json.loads(capsys.readouterr().out)["problems"][0]

    assert (
        main(["amend", rid, "--reason", "typo in weight", "--as", "bob", "--role", "physician", *s])
        == 0
    )
    v2 = json.loads(capsys.readouterr().out)
    assert (
        v2["version"] == 2
        and v2["supersedes"] == rid
        and v2["amendment_reason"] == "typo in weight"
    )
