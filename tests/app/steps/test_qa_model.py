"""The QA step's view-model (no Qt): forms as the CLI's options, known answers, records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from app.steps.qa.model import (
    RECORD_COLUMNS,
    CalibrationForm,
    CalibrationSummary,
    ConstancyChart,
    RecordsModel,
    RecoveryForm,
    RecoverySummary,
    latest_camera_chart,
)
from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.phantoms.qa_phantoms import QaScanConfig, write_cylinder_phantom
from dosimetry_core.qa.qa_runs import run_camera_calibration
from dosimetry_core.qa.recovery import fit_recovery_curve, gaussian_sphere_rc
from dosimetry_core.store import CaseStore

SMALL = {"shape_zyx": (36, 48, 48), "spacing_mm": (6.0, 6.0, 6.0)}
T_SCAN = datetime(2026, 2, 23, 10, 0)


@pytest.fixture(scope="module")
def cylinders(tmp_path_factory):
    """The same camera measured twice, 30 days apart (truth 9.0 cps/MBq)."""
    out = []
    for n, when in enumerate((T_SCAN, T_SCAN + timedelta(days=30))):
        cfg = QaScanConfig(scan_datetime=when, seed=100 + n, **SMALL)
        out.append(
            write_cylinder_phantom(
                tmp_path_factory.mktemp(f"cyl{n}"), diameter_mm=160.0, length_mm=100.0, config=cfg
            )
        )
    return out


def _form(files, activity="100") -> CalibrationForm:
    return CalibrationForm(
        folder=str(files.out_dir),
        activity_mbq=activity,
        activity_time=files.truth["activity_time"].replace("T", " ")[:16],
        margin_mm="30",
    )


def test_calibration_form_refuses_with_the_field(cylinders, tmp_path):
    with pytest.raises(InvalidInputError) as e:
        CalibrationForm(folder=str(tmp_path / "nope")).arguments()
    assert e.value.field == "dicom_dir"
    with pytest.raises(InvalidInputError) as e:
        _form(cylinders[0], activity="lots").arguments()
    assert e.value.field == "activity_mbq" and "MBq" in str(e.value)
    f = _form(cylinders[0])
    f.activity_time = "yesterday"
    with pytest.raises(InvalidInputError) as e:
        f.arguments()
    assert e.value.field == "activity_time"
    args = _form(cylinders[0]).arguments()
    assert args["activity_mbq"] == 100.0 and args["margin_mm"] == 30.0
    assert args["activity_time"] == datetime(2026, 2, 23, 8, 0)
    assert args["nuclide"] is None and args["valid_until"] is None
    assert args["tolerance_percent"] == 5.0


def test_calibration_summary_equals_cli_and_truth(cylinders, tmp_path, capsys):
    files = cylinders[0]
    capsys.readouterr()
    main(
        [
            "--store",
            str(tmp_path / "cli"),
            "qa",
            "calibrate",
            str(files.out_dir),
            "--activity-mbq",
            "100",
            "--activity-time",
            files.truth["activity_time"],
            "--margin-mm",
            "30",
            "--json",
        ]
    )
    cli = json.loads(capsys.readouterr().out)
    with CaseStore(tmp_path / "gui") as store:
        run = run_camera_calibration(store, **_form(files).arguments(), created_by="phys")
        s = CalibrationSummary.from_run(run)
    assert s.factor_text == f"{cli['cps_per_mbq']:.4g} ± {cli['cps_per_mbq_sd']:.2g} cps/MBq"
    assert float(s.factor_text.split()[0]) == pytest.approx(files.truth["cps_per_mbq"], rel=0.02)
    assert s.device_key == cli["device_key"]
    assert "DEMO-0001" in s.device_text and "MEGP" in s.device_text
    assert s.measured_text == "2026-02-23 10:00 (Lu-177)"
    assert s.valid_until_text == "2027-02-23 10:00"
    assert s.verdict == "PASS" and "baseline" in s.verdict_text
    assert s.chart.values_cps_per_mbq == (cli["cps_per_mbq"],)


def test_constancy_pass_then_fail_and_the_band(cylinders, tmp_path):
    with CaseStore(tmp_path / "s") as store:
        first = run_camera_calibration(store, **_form(cylinders[0]).arguments(), created_by="ann")
        second = run_camera_calibration(store, **_form(cylinders[1]).arguments(), created_by="bob")
        s2 = CalibrationSummary.from_run(second)
        assert s2.verdict == "PASS"
        assert "vs previous" in s2.verdict_text and "± 5 %" in s2.verdict_text
        chart = s2.chart
        assert chart.values_cps_per_mbq == (first.cps_per_mbq, second.cps_per_mbq)
        assert chart.x_s[1] - chart.x_s[0] == pytest.approx(30 * 86400.0)
        assert chart.reference_cps_per_mbq == first.cps_per_mbq
        assert chart.band_cps_per_mbq == pytest.approx(
            (first.cps_per_mbq * 0.95, first.cps_per_mbq * 1.05)
        )
        # the same scan entered with 10 % less activity: a 10 % higher factor fails
        f = _form(cylinders[1], activity="90")
        third = run_camera_calibration(store, **f.arguments(), created_by="bob")
        s3 = CalibrationSummary.from_run(third)
        assert s3.verdict == "FAIL" and s3.chart.statuses[-1] == "warning"
        # the records: newest first, the earlier measurement superseded
        rec = RecordsModel()
        rec.load(store, "camera-calibration")
        cells = [dict(zip(RECORD_COLUMNS, rec.cells(r), strict=True)) for r in rec.rows]
        assert [c["Validity"] for c in cells] == ["valid", "valid", "superseded"]
        assert [c["Constancy"] for c in cells] == ["warning", "ok", "ok"]
        assert cells[2]["Value"] == f"CF {first.cps_per_mbq:.4g} cps/MBq"
        assert all(c["Signature"] == "verified" for c in cells)
        assert [c["Made by"] for c in cells] == ["bob", "bob", "ann"]
        assert cells[0]["Device"] == third.record.device_key
        assert "3 record(s), 2 valid" in rec.summary()
        rec.load(store, "recovery")
        assert rec.rows == [] and "recovery" in rec.summary()
        latest = latest_camera_chart(store)
        assert latest is not None and latest[2].values_cps_per_mbq[-1] == third.cps_per_mbq


def test_constancy_chart_of_one_record_bands_itself():
    c = ConstancyChart.from_trend(
        [{"measured_at": "2026-02-23T10:00:00", "value": 9.0, "status": "ok"}], 5.0
    )
    assert c.band_cps_per_mbq == pytest.approx((8.55, 9.45))
    assert ConstancyChart.from_trend([], 5.0).band_cps_per_mbq is None


def test_recovery_form_and_summary_equal_the_core_fit(tmp_path):
    with pytest.raises(InvalidInputError) as e:
        RecoveryForm(folder=str(tmp_path), sphere_kbq_ml="800", background_kbq_ml="").arguments()
    assert e.value.field == "background_kbq_ml"
    args = RecoveryForm(
        folder=str(tmp_path), sphere_kbq_ml="800", background_kbq_ml="100", store_result=False
    ).arguments()
    assert (args["sphere_kbq_ml"], args["background_kbq_ml"], args["store_result"]) == (
        800.0,
        100.0,
        False,
    )
    assert args["diameters_mm"] is None and args["centers_lps_mm"] is None
    centres = tmp_path / "centres.json"
    centres.write_text("[[0, 0, 0], [1, 2, 3]]")
    args = RecoveryForm(
        folder=str(tmp_path),
        sphere_kbq_ml="800",
        background_kbq_ml="100",
        diameters_mm="28 37",
        centers_json=str(centres),
    ).arguments()
    assert args["diameters_mm"] == [28.0, 37.0]
    assert args["centers_lps_mm"] == [[0, 0, 0], [1, 2, 3]]
    for bad, field in (
        ({"diameters_mm": "ten"}, "diameters_mm"),
        ({"centers_json": "x"}, "centers_json"),
    ):
        form = RecoveryForm(folder=str(tmp_path), sphere_kbq_ml="8", background_kbq_ml="1", **bad)
        with pytest.raises(InvalidInputError) as e:
            form.arguments()
        assert e.value.field == field
    vols = [0.52, 1.15, 2.57, 5.58, 11.5, 26.5]
    rcs = [float(gaussian_sphere_rc([v], 12.0)[0]) for v in vols]
    curve = fit_recovery_curve(vols, rcs)
    spheres = [
        {"diameter_mm": d, "volume_ml": v, "recovery": r, "recovery_sd": 0.01}
        for d, v, r in zip((10, 13, 17, 22, 28, 37), vols, rcs, strict=True)
    ]
    s = RecoverySummary.from_curve_dict(spheres, curve.to_dict())
    assert s.curve_rc == pytest.approx([curve(v) for v in s.curve_volumes_ml], rel=1e-12)
    assert s.curve_volumes_ml[0] == pytest.approx(0.26) and s.curve_volumes_ml[-1] == pytest.approx(
        106.0
    )
    assert s.parameters_text.startswith("RC(V) gaussian-psf: FWHM = 12 ± ")
    assert s.parameters_text.split(" ± ")[1].split()[1] == "mm"
    assert s.sphere_cells()[0] == ["10", "0.52", f"{rcs[0]:.3f}", "0.010", f"{curve(0.52):.3f}"]
