"""qa_runs: the GUI's one-call QA analyses give what ``mrtdose qa ...`` gives."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.phantoms.qa_phantoms import (
    QaScanConfig,
    write_cylinder_phantom,
    write_iec_phantom,
)
from dosimetry_core.qa.qa_runs import qa_record_rows, run_camera_calibration, run_recovery
from dosimetry_core.store import CaseStore

SMALL = {"shape_zyx": (36, 48, 48), "spacing_mm": (6.0, 6.0, 6.0)}


@pytest.fixture(scope="module")
def small_cylinder(tmp_path_factory):
    return write_cylinder_phantom(
        tmp_path_factory.mktemp("cyl"),
        diameter_mm=160.0,
        length_mm=100.0,
        config=QaScanConfig(**SMALL),
    )


@pytest.fixture(scope="module")
def small_iec(tmp_path_factory):
    return write_iec_phantom(
        tmp_path_factory.mktemp("iec"),
        config=QaScanConfig(shape_zyx=(36, 60, 60), spacing_mm=(6.0, 6.0, 6.0)),
    )


def _cli(capsys, args):
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_calibration_equals_cli_and_truth(small_cylinder, tmp_path, capsys):
    t_act = small_cylinder.truth["activity_time"]
    cli = _cli(
        capsys,
        [
            "--store",
            str(tmp_path / "cli"),
            "qa",
            "calibrate",
            str(small_cylinder.out_dir),
            "--activity-mbq",
            "100",
            "--activity-time",
            t_act,
            "--margin-mm",
            "30",
        ],
    )
    with CaseStore(tmp_path / "gui") as store:
        seen = []
        run = run_camera_calibration(
            store,
            small_cylinder.out_dir,
            100.0,
            datetime.fromisoformat(t_act),
            margin_mm=30.0,
            created_by="phys",
            progress=lambda f, m: seen.append(f),
        )
        assert run.cps_per_mbq == pytest.approx(cli["cps_per_mbq"], rel=1e-12)
        assert run.cps_per_mbq_sd == pytest.approx(cli["cps_per_mbq_sd"], rel=1e-12)
        assert run.record.device_key == cli["device_key"]
        assert run.cps_per_mbq == pytest.approx(small_cylinder.truth["cps_per_mbq"], rel=0.02)
        assert seen[-1] == 1.0 and seen == sorted(seen)
        assert [t["value"] for t in run.trend] == [run.cps_per_mbq]
        rows = qa_record_rows(store)
        assert [(r.kind, r.created_by, r.validity, r.hash_ok) for r in rows] == [
            ("camera-calibration", "phys", "valid", True)
        ]
        assert rows[0].value == run.cps_per_mbq and rows[0].value_unit == "cps/MBq"
        # past its validity it is expired
        later = qa_record_rows(store, now=rows[0].valid_until + timedelta(days=1))
        assert later[0].validity == "expired"


def test_cancel_before_start_stores_nothing(small_cylinder, tmp_path):
    from dosimetry_core.errors import Cancelled

    with CaseStore(tmp_path / "s") as store:
        with pytest.raises(Cancelled):
            run_camera_calibration(
                store,
                small_cylinder.out_dir,
                100.0,
                datetime.fromisoformat(small_cylinder.truth["activity_time"]),
                cancel=lambda: True,
            )
        assert qa_record_rows(store) == []


def test_recovery_equals_cli(small_iec, tmp_path, capsys):
    cli = _cli(
        capsys,
        [
            "--store",
            str(tmp_path / "cli"),
            "qa",
            "recovery",
            str(small_iec.out_dir),
            "--sphere-activity-concentration-kbq-ml",
            "800",
            "--background-kbq-ml",
            "100",
        ],
    )
    with CaseStore(tmp_path / "gui") as store:
        run = run_recovery(store, small_iec.out_dir, 800.0, 100.0, created_by="phys")
        mine = run.to_cli_dict()
        for key in ("sphere_to_background_ratio", "method", "nuclide", "device_key", "status"):
            assert mine[key] == cli[key], key
        assert [s["recovery"] for s in mine["spheres"]] == pytest.approx(
            [s["recovery"] for s in cli["spheres"]], rel=1e-12
        )
        assert mine["curve"]["parameters"]["fwhm_mm"] == pytest.approx(
            cli["curve"]["parameters"]["fwhm_mm"], rel=1e-9
        )
        for s, t in zip(mine["spheres"], small_iec.truth["spheres"], strict=True):
            if t["diameter_mm"] >= 17:
                assert s["recovery"] == pytest.approx(t["rc_grid"], rel=0.05)
        rows = qa_record_rows(store, kind="recovery")
        assert len(rows) == 1 and rows[0].value_unit == "mm"
        assert rows[0].value == pytest.approx(mine["curve"]["parameters"]["fwhm_mm"])
