"""``mrtdose qa``: calibrate, recovery and list through the CLI (in-process)."""

from __future__ import annotations

import argparse
import json

import pytest

import dosimetry_core.cli.main as cli_main


@pytest.fixture(autouse=True)
def _qa_registered(monkeypatch):
    """Register ``qa`` when cli/main.py does not (yet) do it; a no-op once it does."""
    original = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "qa" not in sub.choices:
            from dosimetry_core.cli import qa_command

            common = cli_main._ArgumentParser(add_help=False)
            common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
            common.add_argument("--store", default=argparse.SUPPRESS)
            qa_command.add_parsers(sub, common)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from dosimetry_core.phantoms.qa_phantoms import write_cylinder_phantom, write_iec_phantom

    return (
        write_cylinder_phantom(tmp_path_factory.mktemp("cli-cyl")),
        write_iec_phantom(tmp_path_factory.mktemp("cli-iec")),
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_qa_calibrate_recovery_list(capsys, tmp_path, phantoms):
    cyl, iec = phantoms
    store = str(tmp_path / "store")
    code, out, err = run(
        capsys,
        "qa",
        "calibrate",
        str(cyl.out_dir),
        "--activity-mbq",
        "100",
        "--activity-time",
        cyl.truth["activity_time"],
        "--nuclide",
        "Lu-177",
        "--store",
        store,
        "--json",
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["cps_per_mbq"] == pytest.approx(9.0, rel=0.02)
    assert 0 < d["cps_per_mbq_sd"] < 0.05
    assert "DEMO-0001" in d["device_key"] and d["status"] == "ok"
    assert d["camera_key"] == d["device_key"]

    code, out, err = run(
        capsys,
        "qa",
        "recovery",
        str(iec.out_dir),
        "--sphere-activity-concentration-kbq-ml",
        "800",
        "--background-kbq-ml",
        "100",
        "--store",
        store,
        "--json",
    )
    assert code == 0, err
    r = json.loads(out)
    assert [round(s["volume_ml"], 2) for s in r["spheres"]] == [
        0.52,
        1.15,
        2.57,
        5.58,
        11.49,
        26.52,
    ]
    for s, t in zip(r["spheres"], iec.truth["spheres"], strict=True):
        if t["volume_ml"] >= 2.0:
            assert s["recovery"] == pytest.approx(t["rc_grid"], rel=0.05)
    assert r["curve"]["model"] == "gaussian-psf"
    assert set(r["curve"]["parameters"]) == {"fwhm_mm"}
    assert r["curve"]["parameter_sd"]["fwhm_mm"] > 0

    code, out, err = run(capsys, "qa", "list", "--store", store, "--json")
    assert code == 0, err
    recs = json.loads(out)["records"]
    assert [x["kind"] for x in recs] == ["camera-calibration", "recovery"]
    assert recs[0]["value"] == pytest.approx(d["cps_per_mbq"])
    assert all(x["measured_at"] and x["valid_until"] and x["status"] == "ok" for x in recs)
    assert all(x["hash_ok"] for x in recs)

    code, out, err = run(capsys, "qa", "list", "--store", store)
    assert code == 0 and "camera-calibration" in out and "cps_per_mbq = 9.0" in out


def test_kinetics_uses_a_stored_recovery_curve(
    capsys, tmp_path, phantoms, small_demo_dirs, small_demo_image_dirs
):
    """The RC(volume) curve of the sphere phantom corrects a VOI: A = A_measured / RC(V)."""
    from dosimetry_core.qa.records import list_records
    from dosimetry_core.qa.recovery import recovery_model_from_payload
    from dosimetry_core.store import CaseStore

    store = str(tmp_path / "store")
    code, out, err = run(
        capsys, "qa", "recovery", str(phantoms[1].out_dir),
        "--sphere-activity-concentration-kbq-ml", "800", "--background-kbq-ml", "100",
        "--store", store, "--json",
    )  # fmt: skip
    assert code == 0, err
    [rec] = list_records(CaseStore(tmp_path / "store"), kind="recovery")
    curve = recovery_model_from_payload(rec.payload)
    code, out, err = run(
        capsys, "import", str(small_demo_image_dirs["siemens-bqml"]), "--store", store, "--json"
    )
    assert code == 0, err
    cid = json.loads(out)["cases"][0]["case_id"]
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    for argv in (
        ("contour", cid, "import-rtstruct", str(rt), "--roi", "Tumour_1"),
        ("register", cid),
    ):
        code, _, err = run(capsys, *argv, "--store", store)
        assert code == 0, err
    code, out, err = run(
        capsys, "kinetics", cid, "--recovery-record", rec.record_id, "--store", store, "--json"
    )
    assert code == 0, err
    [row] = json.loads(out)["vois"]
    tac = row["tac"]
    rc = curve(tac["volume_ml"])
    assert tac["recovery_coefficient"] == pytest.approx(rc, rel=1e-9)
    for a, m in zip(tac["activity_mbq"], tac["measured_activity_mbq"], strict=True):
        assert a == pytest.approx(m / rc, rel=1e-9)
    code, _, err = run(capsys, "kinetics", cid, "--recovery-record", "qa-nope", "--store", store)
    assert code == 1 and "no QA record qa-nope" in err


def test_qa_calibrate_refuses_bad_input_and_stores_nothing(capsys, tmp_path, phantoms):
    cyl, _ = phantoms
    store = str(tmp_path / "store")
    code, out, err = run(
        capsys,
        "qa",
        "calibrate",
        str(cyl.out_dir),
        "--activity-mbq",
        "100",
        "--activity-time",
        "2026-02-23T12:00",  # after the 10:00 scan
        "--store",
        store,
        "--json",
    )
    assert code == 1 and "after the scan start" in err and err.count("\n") == 1
    code, out, err = run(
        capsys,
        "qa",
        "calibrate",
        str(cyl.out_dir),
        "--activity-mbq",
        "100",
        "--activity-time",
        cyl.truth["activity_time"],
        "--nuclide",
        "Tc-99m",
        "--store",
        store,
    )
    assert code == 1 and "nuclide mismatch" in err
    code, out, err = run(capsys, "qa", "list", "--store", store, "--json")
    assert json.loads(out)["records"] == []


def test_qa_user_names_who_measured_on_a_single_user_store_only(
    capsys, tmp_path, phantoms, monkeypatch
):
    """Single-user store: ``--user`` is recorded; with accounts it must be the logged-in user."""
    from argon2 import PasswordHasher

    from dosimetry_core.qa.records import list_records
    from dosimetry_core.store import CaseStore
    from dosimetry_core.store.users import bootstrap_admin, create_user

    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE"):
        monkeypatch.delenv(name, raising=False)
    cyl, _ = phantoms
    argv = (
        "qa", "calibrate", str(cyl.out_dir), "--activity-mbq", "100",
        "--activity-time", cyl.truth["activity_time"],
    )  # fmt: skip
    single = tmp_path / "single"
    code, out, err = run(capsys, *argv, "--user", "pat.physicist", "--store", str(single))
    assert code == 0, err
    with CaseStore(single) as store:
        assert [r.created_by for r in list_records(store)] == ["pat.physicist"]

    dept = tmp_path / "dept"
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with CaseStore(dept) as store:
        root = bootstrap_admin(store, "root", "otter-maple-fig-42", hasher=fast)
        create_user(store, root, "ann", "violet-canyon-drum-3", "physicist", hasher=fast)
    monkeypatch.setenv("MRTDOSE_USER", "ann")
    monkeypatch.setenv("MRTDOSE_PASSWORD", "violet-canyon-drum-3")
    code, out, err = run(capsys, *argv, "--user", "pat.physicist", "--store", str(dept))
    assert (code, out) == (1, "") and "--user names somebody else" in err
    code, out, err = run(capsys, *argv, "--user", "ann", "--store", str(dept), "--json")
    assert code == 0, err
    with CaseStore(dept) as store:
        assert [r.created_by for r in list_records(store)] == ["ann"]
