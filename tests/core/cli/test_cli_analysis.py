"""The command line reproduces the workstation's analysis steps (issue 15: no physics in the GUI).

Each new option or command is run through ``main([...])`` on one small demo store
(built once per module) and its JSON is checked against the core function the GUI
step calls, and against a known answer:

* ``mrtdose dose --limits`` -- ``protocols.dose_limits.check_dose_limits``; PASS
  exactly when the VOI mean is at most the protocol's limit (kidneys 23 Gy).
* ``mrtdose dvh`` -- ``pipeline.dose_dvh.dvh_of_dose_map``; on the same map and
  bins the curves equal the ones ``mrtdose dose --dvh-bins`` stored, and D50 read
  off the curve lies within one bin of the VOI's median dose.
* ``mrtdose protocols ID --case`` -- ``protocols.planning.run_readiness``.
* ``mrtdose run --json`` -- ``summary`` from ``protocols.planning.run_summary``;
  Gy/GBq = Gy / (net MBq / 1000).
* ``mrtdose bed --bed-gy`` -- the inverse of the hand-worked BED of test_cli_bed.py.
* ``mrtdose contour rename|kind|colour|delete`` -- ``pipeline.voi_edit``, saved.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dosimetry_core.cli.main import main
from tests.conftest import copy_store

PROTOCOL = "lu177-dotatate"


def _run(capsys, store: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, store: Path, *argv: str) -> dict:
    code, out, err = _run(capsys, store, "--json", *argv)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def analysed(small_demo_registered_store, shared_kernel_cache, tmp_path_factory):
    """The registered small demo after ``mrtdose run`` and ``mrtdose dose --method led``."""
    import contextlib
    import io

    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
        mp.delenv(name, raising=False)
    template, case_id = small_demo_registered_store
    store = copy_store(template, tmp_path_factory.mktemp("cli-analysis") / "store")
    outs = []
    for argv in (
        ["run", case_id, "--protocol", PROTOCOL],
        [
            "dose",
            case_id,
            "--method",
            "led",
            "--voi",
            "Kidney_L",
            "--voi",
            "Liver",
            "--dvh-bins",
            "40",
            "--limits",
            PROTOCOL,
        ],
    ):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["--store", str(store), "--json", *argv]) == 0
        outs.append(json.loads(buf.getvalue()))
    yield store, case_id, outs[0], outs[1]
    mp.undo()


def _load(store: Path, case_id: str):
    from dosimetry_core.store import CaseStore

    s = CaseStore(store)
    return s, s.load_case(case_id)


# ----------------------------------------------------------------- dose --limits
def test_dose_limits_equal_the_core_check_and_the_protocol_rule(analysed, capsys):
    from dosimetry_core.protocols.dose_limits import check_dose_limits

    store, case_id, _, dose = analysed
    s, case = _load(store, case_id)
    from dosimetry_core.model.results import DoseSummary

    try:
        summary = next(
            r
            for r in case.results
            if isinstance(r, DoseSummary) and r.dose_map_id == dose["dose_map_id"]
        )
    finally:
        s.close()
    core = check_dose_limits(summary, PROTOCOL)
    rows = dose["limit_checks"]
    assert [(r["voi"], r["limit_gy"]) for r in rows] == [
        (c.voi_name, c.limit.limit_gy) for c in core
    ]
    means = {v["voi_name"]: v["mean_gy"] for v in dose["vois"]}
    kidney = next(r for r in rows if r["voi"] == "Kidney_L")
    # known answer: the protocol's kidney limit, 23 Gy cumulative (Emami 1991)
    assert kidney["limit_gy"] == 23.0 and kidney["cumulative"] is True
    assert "Emami" in kidney["source"]
    assert kidney["mean_gy"] == pytest.approx(means["Kidney_L"], rel=1e-12)
    assert kidney["passed"] is (means["Kidney_L"] <= 23.0)
    assert kidney["result"] == ("PASS" if kidney["passed"] else "FAIL")
    assert kidney["fraction_of_limit"] == pytest.approx(means["Kidney_L"] / 23.0)
    assert all(r["voi"] != "Liver" for r in rows)  # the liver has no limit in this protocol


def test_dose_limits_text_and_refusals(analysed, capsys):
    store, case_id, _, _ = analysed
    code, out, err = _run(
        capsys, store, "dose", case_id, "--method", "led", "--voi", "Kidney_L",
        "--limits", PROTOCOL, "--risk-factors",
    )  # fmt: skip
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.strip().startswith("Kidney_L") and "of 23" in x)
    assert "PASS" in line or "FAIL" in line
    assert "risk factors" in out
    # an unknown protocol is refused before computing; --risk-factors alone is refused
    code, out, err = _run(capsys, store, "dose", case_id, "--method", "led", "--limits", "nope")
    assert code == 1 and out == "" and err.count("\n") == 1
    code, out, err = _run(capsys, store, "dose", case_id, "--method", "led", "--risk-factors")
    assert code == 1 and "--limits" in err


# ------------------------------------------------------------------------- dvh
def test_dvh_equals_the_stored_dvh_and_the_core(analysed, capsys):
    from dosimetry_core.model import DerivedKind
    from dosimetry_core.pipeline.dose_dvh import dvh_of_dose_map

    store, case_id, _, dose = analysed
    d = _json(
        capsys, store, "dvh", case_id, "--dose-map", dose["dose_map_id"], "--bins", "40",
        "--voi", "Kidney_L", "--voi", "Liver",
    )  # fmt: skip
    assert d["format"] == "mrt-dvh/1" and d["dose_map_id"] == dose["dose_map_id"]
    assert set(d["vois"]) == {"Kidney_L", "Liver"}
    stored = {v["voi_name"]: v["dvh"] for v in dose["vois"]}
    s, case = _load(store, case_id)
    try:
        core = dvh_of_dose_map(s, case, dose["dose_map_id"], ["Kidney_L", "Liver"], n_bins=40)
    finally:
        s.close()
    names = {v.voi_id: v.name for v in case.vois}
    for voi_id, curve in core.items():
        mine = d["vois"][names[voi_id]]
        assert mine == json.loads(json.dumps(curve.to_dict()))
        ref = stored[names[voi_id]]  # what compute_dose(dvh_bins=40) stored on that map
        np.testing.assert_allclose(mine["bin_edges_gy"], ref["bin_edges_gy"], rtol=1e-12)
        np.testing.assert_allclose(mine["cumulative_fraction"], ref["cumulative_fraction"])
    # without --dose-map: the newest current dose map of the case
    d = _json(capsys, store, "dvh", case_id, "--bins", "10", "--voi", "Kidney_L")
    assert d["dose_map_id"] == case.derived_maps(DerivedKind.DOSE)[0].derived_id


def test_dvh_text_d50_is_the_median_within_a_bin(analysed, capsys):
    store, case_id, _, dose = analysed
    code, out, err = _run(
        capsys, store, "dvh", case_id, "--dose-map", dose["dose_map_id"], "--voi", "Kidney_L"
    )
    assert code == 0, err
    row = next(x for x in out.splitlines() if x.startswith("Kidney_L")).split()
    d98, d50, d2 = (float(x) for x in row[1:4])
    stats = next(v for v in dose["vois"] if v["voi_name"] == "Kidney_L")
    bin_gy = stats["max_gy"] / 200 * 1.01 + 1e-9  # default 200 bins up to just above the max
    assert d98 <= d50 <= d2
    assert d50 == pytest.approx(stats["median_gy"], abs=bin_gy + 5e-4)
    assert d2 == pytest.approx(stats["d2_gy"], abs=bin_gy + 5e-4)


def test_dvh_refusals(analysed, capsys):
    store, case_id, _, _ = analysed
    for argv in (["--dose-map", "dose-nope"], ["--voi", "NoSuchVoi"], ["--bins", "0"]):
        code, out, err = _run(capsys, store, "dvh", case_id, *argv)
        assert code == 1 and out == "" and err.count("\n") == 1, (argv, err)


# ------------------------------------------------------------ protocols / run
def test_protocols_case_readiness_equals_run_readiness(analysed, capsys):
    from dosimetry_core.protocols.planning import run_readiness
    from dosimetry_core.protocols.registry import load_protocol

    store, case_id, _, _ = analysed
    d = _json(capsys, store, "protocols", PROTOCOL, "--case", case_id)
    s, case = _load(store, case_id)
    s.close()
    core = [dataclasses.asdict(i) for i in run_readiness(case, load_protocol(PROTOCOL))]
    assert d["readiness"] == core
    assert "checklist" in d  # the existing key stays
    assert any(r["item"] == "TIA map" and r["state"] == "ok" for r in d["readiness"])
    code, out, _ = _run(capsys, store, "protocols", PROTOCOL, "--case", case_id)
    assert code == 0 and "readiness for a run:" in out and "[x] TIA map" in out


def test_run_json_summary_per_gbq_and_next_cycle(analysed):
    _, _, run, _ = analysed
    for key in ("organs", "vois", "limit_checks", "next_cycle", "all_limits_passed"):
        assert key in run  # the existing keys stay
    s = run["summary"]
    gbq = run["administered_activity_mbq"] / 1000.0
    assert s["administered_activity_gbq"] == pytest.approx(gbq)
    doses = {v["voi_name"]: v["dose_gy"] for v in run["vois"]}
    for v in s["vois"]:
        if v["dose_gy"] is not None:
            assert v["dose_gy"] == doses[v["voi_name"]]
            assert v["dose_per_activity_gy_per_gbq"] == pytest.approx(v["dose_gy"] / gbq)
    assert len(s["limits"]) == len(run["limit_checks"])
    nc = run["next_cycle"]
    if nc["activity_mbq"] is not None:
        assert s["next_cycle"]["activity_gbq"] == pytest.approx(nc["activity_mbq"] / 1000.0)
        assert s["next_cycle"]["binding"] == nc["binding"]


# ------------------------------------------------------------------ bed --bed-gy
def test_bed_gy_inverts_the_hand_worked_bed(capsys):
    # test_cli_bed: 20 Gy, T_eff 50 h, kidney (a/b 2.6 Gy, T_rep 2.8 h) -> BED 28.158508 Gy
    code = main(["bed", "--bed-gy", "28.158508", "--t-eff-h", "50", "--tissue", "kidney", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["dose_for_bed_gy"] == pytest.approx(20.0, abs=1e-5)
    assert d["dose_gy"] == d["dose_for_bed_gy"]
    assert d["bed_gy"] == pytest.approx(28.158508, abs=1e-9)
    assert d["target_bed_gy"] == 28.158508
    code = main(["bed", "--bed-gy", "28.158508", "--t-eff-h", "50", "--tissue", "kidney"])
    out, _ = capsys.readouterr()
    assert code == 0 and "dose for BED 28.1585 Gy: 20.000 Gy" in out


@pytest.mark.parametrize(
    ("argv", "code", "match"),
    [
        (["--bed-gy", "10", "--dose-gy", "5", "--t-eff-h", "50", "--tissue", "kidney"], 2, "not"),
        (["--t-eff-h", "50", "--tissue", "kidney"], 2, "--dose-gy"),
        (["--bed-gy", "1e9", "--t-eff-h", "50", "--tissue", "kidney"], 1, "--bed-gy 1e+09"),
        (["--dose-gy", "2e4", "--t-eff-h", "50", "--tissue", "kidney"], 1, "--dose-gy 20000 Gy"),
        (["--bed-gy", "5", "--t-eff-h", "50"], 1, "--alpha-beta-gy and --t-repair-h or --tissue"),
    ],
)
def test_bed_option_errors_name_the_option(capsys, argv, code, match):
    try:
        got = main(["bed", *argv])
    except SystemExit as exc:  # argparse usage errors
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code and out == "" and match in err, err


# --------------------------------------------------------------- contour edits
@pytest.fixture()
def edit_store(small_demo_imported_store, tmp_path, monkeypatch):
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    template, case_id = small_demo_imported_store
    return copy_store(template, tmp_path / "store"), case_id


def test_contour_rename_kind_colour_delete_are_saved(edit_store, capsys):
    store, case_id = edit_store
    s, case = _load(store, case_id)
    s.close()
    voi = next(v for v in case.vois if v.name == "Liver")
    d = _json(capsys, store, "contour", case_id, "rename", "Liver", "Liver_whole")
    assert d["voi"]["name"] == "Liver_whole" and d["previous_name"] == "Liver"
    d = _json(capsys, store, "contour", case_id, "kind", voi.voi_id, "reference")
    assert d["voi"]["kind"] == "reference"
    d = _json(capsys, store, "contour", case_id, "colour", "Liver_whole", "10", "20", "30")
    assert d["color_rgb"] == [10, 20, 30]
    s, case = _load(store, case_id)
    s.close()
    v = next(x for x in case.vois if x.voi_id == voi.voi_id)
    assert (v.name, str(v.kind), tuple(v.color_rgb)) == ("Liver_whole", "reference", (10, 20, 30))
    assert [h["action"] for h in v.history][-2:] == ["rename", "kind"]
    d = _json(capsys, store, "contour", case_id, "delete", "Liver_whole")
    assert d["deleted"] == "Liver_whole"
    s, case = _load(store, case_id)
    s.close()
    assert all(x.voi_id != voi.voi_id for x in case.vois)


def test_contour_edit_refusals(edit_store, capsys):
    store, case_id = edit_store
    s, case = _load(store, case_id)
    s.close()
    a, b = (
        case.vois[0],
        next(v for v in case.vois[1:] if v.time_point_id == case.vois[0].time_point_id),
    )
    for argv, code in (
        (["rename", a.voi_id, b.name], 1),  # the name is taken on that time point
        (["colour", a.voi_id, "300", "0", "0"], 1),
        (["kind", a.voi_id, "tumour"], 2),
        (["delete", "NoSuchVoi"], 1),
    ):
        try:
            got, out, err = _run(capsys, store, "contour", case_id, *argv)
        except SystemExit as exc:  # argparse usage errors
            (out, err), got = capsys.readouterr(), exc.code
        assert got == code and out == "", (argv, err)
