"""The dose report of the small demo after ``run_protocol(..., "lu177-dotatate")``.

Known answers: every section is present; the numbers in the report JSON equal the
protocol run's (bit-identical floats); the CSV parses back to the same numbers; the
DVH of each VOI starts at 100 % of the volume and ends at 0 %; the signed PDF renders
with pdftoppm to as many PNG pages as its footer counts ("page x of y").
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace

import pytest

from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.protocol_run import run_protocol
from dosimetry_core.reporting.content import build_report_content
from dosimetry_core.reporting.csv_export import numbers_csv, read_numbers_csv
from dosimetry_core.reporting.records import create_report, report_pdf, sign, verify
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor

SECTIONS = {
    "format", "patient", "case", "therapy", "administrations", "time_points", "methods",
    "organs", "vois", "limit_checks", "all_limits_passed", "next_cycle", "warnings",
    "checklist", "kinetics", "dvh", "population", "inputs",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(small_demo_dirs, shared_kernel_cache, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    store = CaseStore(tmp_path_factory.mktemp("report-store"))
    root = small_demo_dirs["siemens-bqml"]
    case_id = import_directory(store, root).cases[0].case_id
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    run_protocol(store, case_id, "lu177-dotatate", user="physicist")
    yield store, case_id
    store.close()
    mp.undo()


def test_content_has_every_section_and_the_run_numbers(demo):
    store, case_id = demo
    c = build_report_content(store, case_id)
    assert set(c) == SECTIONS
    run = store.load_case(case_id).protocol_run.to_dict()
    assert c["organs"] == run["organs"]
    assert c["limit_checks"] == run["limit_checks"]
    for row, v in zip(c["vois"], run["vois"], strict=True):
        for k in ("dose_gy", "dose_sd_gy", "bed_gy", "eqd2_gy", "tia_mbq_h", "review_flag"):
            assert row[k] == v[k]
        a_gbq = run["administered_activity_mbq"] / 1e3  # net administered activity
        assert row["dose_per_activity_gy_per_gbq"] == pytest.approx(v["dose_gy"] / a_gbq, rel=1e-12)
    assert c["therapy"]["eanm_level"]["level"] == "3"
    assert c["methods"]["software"]["version"]
    # the kinetics the run fitted and stored, for every VOI of the run (no re-fit)
    assert {k["voi_name"] for k in c["kinetics"].values()} == {v["voi_name"] for v in run["vois"]}
    assert {k["source"] for k in c["kinetics"].values()} == {
        "stored kinetics (fitted by mrtdose run)"
    }
    assert set(c["dvh"]) == {v["voi_id"] for v in run["vois"]}
    for d in c["dvh"].values():
        assert d["volume_fraction"][0] == pytest.approx(1.0) and d["volume_fraction"][-1] == 0.0
    roles = {v["role"].split()[0] for v in c["inputs"]["volumes"]}
    assert {"NM", "CT", "mask", "dose"} <= roles


def test_the_report_reads_the_stored_kinetics_and_never_fits(demo, monkeypatch):
    """After run_protocol, building the report must not call the fitting code at all."""
    import dosimetry_core.kinetics.fitting as fitting

    def refuse(*args, **kwargs):
        raise AssertionError("the report fitted a TAC although the run stored the kinetics")

    monkeypatch.setattr(fitting, "fit_tac", refuse)
    monkeypatch.setattr(fitting, "fit_model", refuse)
    store, case_id = demo
    c = build_report_content(store, case_id, population=False)
    case = store.load_case(case_id)
    run = case.protocol_run
    kin = case.find_result(run.kinetics_id)
    for v in run.vois:
        k = kin.voi(v.voi_id)
        row = c["kinetics"][v.voi_id]
        assert row["tia_mbq_h"] == k.tia_mbq_h == v.tia_mbq_h
        assert row["model"] == k.model and row["time_h"] == list(k.tac.time_h)
    assert not any("measured and fitted for this report" in w for w in c["warnings"])


def test_mrtdose_run_then_report_do_not_fit_again(demo, monkeypatch, capsys, tmp_path):
    """Done-means of issue 12: ``mrtdose run`` then ``mrtdose report`` on the demo never re-fit."""
    import json

    import dosimetry_core.kinetics.fitting as fitting
    from dosimetry_core.cli.main import main

    store, case_id = demo
    s = ["--store", str(store.path), "--json"]
    assert main(["run", case_id, *s]) == 0, capsys.readouterr().err
    run = json.loads(capsys.readouterr().out)

    def refuse(*args, **kwargs):
        raise AssertionError("mrtdose report fitted a TAC")

    monkeypatch.setattr(fitting, "fit_tac", refuse)
    monkeypatch.setattr(fitting, "fit_model", refuse)
    out = tmp_path / "out"
    code = main(["report", case_id, "--as", "alice", "--role", "physicist", "--out", str(out), *s])
    assert code == 0, capsys.readouterr().err
    rep = json.loads(capsys.readouterr().out)
    from dosimetry_core.store.report_rows import load_report

    content = json.loads(load_report(store, rep["report_id"]).row.content_json)
    assert content["inputs"]["results"]["kinetics_sha256"]
    kin = content["kinetics"]
    assert {v["voi_id"] for v in run["vois"]} == set(kin)
    for v in run["vois"]:
        assert kin[v["voi_id"]]["tia_mbq_h"] == v["tia_mbq_h"]


def test_a_voi_without_stored_kinetics_is_measured_and_said_so(demo):
    store, case_id = demo
    case = store.load_case(case_id)
    run = case.protocol_run
    kin = case.find_result(run.kinetics_id)
    gone = run.vois[0]
    partial = tuple(k for k in kin.vois if k.voi_id != gone.voi_id)
    case.add_result(replace(kin, vois=partial, result_id="kin-partial"))
    case.results = [r for r in case.results if r.result_id != kin.result_id]
    store.save_case(case)
    try:
        c = build_report_content(store, case_id, population=False)
    finally:  # restore the run's kinetics for the other tests
        case = store.load_case(case_id)
        case.results = [r for r in case.results if r.kind != "kinetics"] + [kin]
        store.save_case(case)
    row = c["kinetics"][gone.voi_id]
    assert row["source"].startswith("measured for the report")
    assert row["tia_mbq_h"] > 0
    assert any(gone.voi_name in w and "measured and fitted" in w for w in c["warnings"])


def test_csv_parses_back_to_the_same_numbers(demo):
    store, case_id = demo
    c = build_report_content(store, case_id, population=False)
    rows = read_numbers_csv(numbers_csv(c))
    vois = [r for r in rows if r["level"] == "voi"]
    assert len(vois) == len(c["vois"])
    for r, v in zip(vois, c["vois"], strict=True):
        for k in ("dose_gy", "dose_sd_gy", "bed_gy", "eqd2_gy", "mass_g", "tia_mbq_h"):
            assert r[k] == v[k]
    organs = {r["organ_id"]: r for r in rows if r["level"] == "organ"}
    for oid, o in c["organs"].items():
        assert organs[oid]["dose_gy"] == o["dose_gy"]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler pdftoppm not installed")
def test_signed_pdf_renders_to_its_pages(demo, tmp_path):
    store, case_id = demo
    rep = create_report(store, Actor("alice", "physicist"), case_id)
    assert set(rep.content["figures"]) == {"tac", "dvh", "fused"}
    sign(store, Actor("alice", "physicist"), rep.report_id, "mpe")
    sign(store, Actor("bob", "physician"), rep.report_id, "practitioner")
    assert verify(store, rep.report_id, check_inputs=True) == []
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(report_pdf(store, rep.report_id))
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    totals = {int(m) for m in re.findall(r"page \d+ of (\d+)", text)}
    assert totals == {len(pages)} and len(pages) >= 2
    assert "signed by alice (physicist)" in text and "signed by bob (physician)" in text
