"""mrtdose register / contour / voi on the small demo: JSON shapes and known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dosimetry_core.cli.main import main


def run_json(capsys, *argv: str) -> dict:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture()
def case_id(capsys, small_demo_image_dirs, store_dir) -> str:
    imp = run_json(
        capsys, "import", str(small_demo_image_dirs["siemens-bqml"]), "--store", str(store_dir)
    )
    return imp["cases"][0]["case_id"]


def test_register_prints_transforms_close_to_the_known_motion(
    capsys, case_id, store_dir, small_demo_truth
):
    data = run_json(capsys, "register", case_id, "--store", str(store_dir))
    assert data["reference"] == "TP1"
    rows = {r["label"]: r for r in data["time_points"]}
    assert rows["TP1"]["status"] == "reference"
    for n, tp_truth in enumerate(small_demo_truth["time_points"][1:], start=2):
        r = rows[f"TP{n}"]
        assert r["status"] == "registered"
        truth = tp_truth["misalignment"]
        # the coarse small demo (10 mm CT slices) is held to 2 mm along z; the full demo to 1 mm
        np.testing.assert_allclose(r["rotation_deg"], truth["rotation_deg"], atol=1.0)
        np.testing.assert_allclose(r["translation_mm"][:2], truth["translation_mm"][:2], atol=1.0)
        assert abs(r["translation_mm"][2] - truth["translation_mm"][2]) < 2.0
        assert {"body_dice", "bone_dice"} <= set(r["quality"])


def test_rtstruct_import_voi_listing_and_review(
    capsys, case_id, store_dir, small_demo_dirs, small_demo_truth
):
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    imp = run_json(
        capsys, "contour", case_id, "import-rtstruct", str(rt), "--store", str(store_dir)
    )
    assert {"Liver", "Kidney_L", "Spleen", "Tumour_3"} <= set(imp["vois"])
    listing = run_json(capsys, "voi", case_id, "--store", str(store_dir))
    rows = {r["name"]: r for r in listing["vois"]}
    truth = small_demo_truth["compartments"]
    for organ, key in (("Kidney_L", "kidney_left"), ("Spleen", "spleen")):
        assert rows[organ]["volume_ml"] == pytest.approx(truth[key]["volume_ml"], rel=0.04)
        assert rows[organ]["mass_g"] == pytest.approx(rows[organ]["volume_ml"] * 1.03, rel=0.05)
        assert rows[organ]["status"] == "draft" and "not approved" in rows[organ]["flag"]
    run_json(
        capsys,
        "contour",
        case_id,
        "submit",
        "Kidney_L",
        "--store",
        str(store_dir),
        "--user",
        "phys",
    )
    run_json(
        capsys, "contour", case_id, "approve", "Kidney_L", "--store", str(store_dir), "--user", "md"
    )
    row = {
        r["name"]: r for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }["Kidney_L"]
    assert row["status"] == "approved" and row["flag"] == ""
    # editing an approved VOI returns it to draft
    run_json(
        capsys,
        "contour",
        case_id,
        "margin",
        "--name",
        "Kidney_L",
        "--mm",
        "8",
        "--store",
        str(store_dir),
    )
    row = {
        r["name"]: r for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }["Kidney_L"]
    assert row["status"] == "draft" and row["volume_ml"] > rows["Kidney_L"]["volume_ml"]


def test_threshold_boolean_and_refusals(capsys, case_id, store_dir):
    d = run_json(
        capsys,
        "contour",
        case_id,
        "threshold",
        "--name",
        "Hot",
        "--percent",
        "30",
        "--largest",
        "--store",
        str(store_dir),
    )
    assert d["voi"]["volume_ml"] > 0 and d["voi"]["kind"] == "organ"
    run_json(
        capsys,
        "contour",
        case_id,
        "margin",
        "--name",
        "Hot",
        "--mm",
        "10",
        "--out",
        "HotPlus",
        "--store",
        str(store_dir),
    )
    ring = run_json(
        capsys,
        "contour",
        case_id,
        "boolean",
        "subtract",
        "HotPlus",
        "Hot",
        "--out",
        "Ring",
        "--store",
        str(store_dir),
    )["voi"]
    rows = {
        r["name"]: r for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }
    assert ring["volume_ml"] == pytest.approx(
        rows["HotPlus"]["volume_ml"] - rows["Hot"]["volume_ml"], rel=1e-6
    )
    # approving a draft is refused, one line, nothing changed
    code = main(["contour", case_id, "approve", "Ring", "--store", str(store_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "cannot approve" in err and err.count("\n") == 1
    code = main(["contour", case_id, "threshold", "--name", "X", "--store", str(store_dir)])
    assert code == 1 and "--lower" in capsys.readouterr().err


def test_export_rtstruct_and_nifti_round_trip(
    capsys, case_id, store_dir, small_demo_dirs, tmp_path
):
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    run_json(
        capsys,
        "contour",
        case_id,
        "import-rtstruct",
        str(rt),
        "--roi",
        "Kidney_L",
        "--roi",
        "Liver",
        "--store",
        str(store_dir),
    )
    ct_dir = next(small_demo_dirs["siemens-bqml"].glob("tp1*/CT"))
    out = tmp_path / "vois.dcm"
    run_json(
        capsys,
        "contour",
        case_id,
        "export-rtstruct",
        str(out),
        "--ct-dir",
        str(ct_dir),
        "--store",
        str(store_dir),
    )
    before = {
        r["name"]: r["volume_ml"]
        for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }
    # re-import under the same names: masks equal -> same volumes
    run_json(capsys, "contour", case_id, "import-rtstruct", str(out), "--store", str(store_dir))
    after = {
        r["name"]: r["volume_ml"]
        for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }
    for name in ("Kidney_L", "Liver"):
        assert after[name] == pytest.approx(before[name], rel=0.02)
    nii = run_json(
        capsys,
        "contour",
        case_id,
        "export-nifti",
        str(tmp_path / "labels.nii.gz"),
        "--store",
        str(store_dir),
    )
    assert nii["path"].endswith("labels.nii.gz")
    from dosimetry_core.io.nifti import read_nifti_labels

    masks, geometry = read_nifti_labels(nii["path"])
    assert set(masks) == {"Kidney_L", "Liver"}
    assert masks["Kidney_L"].sum() * geometry.voxel_volume_ml == pytest.approx(
        after["Kidney_L"], rel=1e-6
    )


def test_seg_and_nifti_exports_import_back_exactly(
    capsys, case_id, store_dir, small_demo_dirs, small_demo_image_dirs, tmp_path
):
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    run_json(
        capsys,
        "contour",
        case_id,
        "import-rtstruct",
        str(rt),
        "--roi",
        "Spleen",
        "--roi",
        "Tumour_1",
        "--store",
        str(store_dir),
    )
    before = {
        r["name"]: r["volume_ml"]
        for r in run_json(capsys, "voi", case_id, "--store", str(store_dir))["vois"]
    }
    ct_dir = next(small_demo_dirs["siemens-bqml"].glob("tp1*/CT"))
    seg = tmp_path / "vois_seg.dcm"
    run_json(
        capsys,
        "contour",
        case_id,
        "export-seg",
        str(seg),
        "--ct-dir",
        str(ct_dir),
        "--store",
        str(store_dir),
    )
    nii = tmp_path / "vois.nii.gz"
    run_json(capsys, "contour", case_id, "export-nifti", str(nii), "--store", str(store_dir))
    other = str(tmp_path / "other-store")
    imp = run_json(capsys, "import", str(small_demo_image_dirs["siemens-bqml"]), "--store", other)
    cid = imp["cases"][0]["case_id"]
    got = run_json(capsys, "contour", cid, "import-seg", str(seg), "--store", other)
    assert sorted(got["vois"]) == ["Spleen", "Tumour_1"]
    after = {
        r["name"]: r["volume_ml"] for r in run_json(capsys, "voi", cid, "--store", other)["vois"]
    }
    assert after == pytest.approx(before, rel=1e-9)  # SEG round trip is exact
    code = main(["contour", cid, "import-nifti", str(nii), "--store", other])
    assert code == 1 and "--time-point" in capsys.readouterr().err
    got = run_json(
        capsys, "contour", cid, "import-nifti", str(nii), "--time-point", "TP1", "--store", other
    )
    assert sorted(got["vois"]) == ["Spleen", "Tumour_1"]
    again = {
        r["name"]: r["volume_ml"] for r in run_json(capsys, "voi", cid, "--store", other)["vois"]
    }
    assert again == pytest.approx(before, rel=1e-9)


def test_a_margin_below_the_voxel_size_is_refused_not_silently_ignored(capsys, case_id, store_dir):
    run_json(
        capsys,
        "contour",
        case_id,
        "threshold",
        "--name",
        "Hot",
        "--percent",
        "30",
        "--largest",
        "--store",
        str(store_dir),
    )
    code = main(
        ["contour", case_id, "margin", "--name", "Hot", "--mm", "1", "--store", str(store_dir)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "changes no voxel" in err and "6.4 x 6.4 x 10 mm" in err


def test_kinetics_command_gives_tias_with_review_flags(
    capsys, case_id, store_dir, small_demo_dirs, small_demo_truth
):
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    run_json(
        capsys,
        "contour",
        case_id,
        "import-rtstruct",
        str(rt),
        "--roi",
        "Spleen",
        "--store",
        str(store_dir),
    )
    code = main(["kinetics", case_id, "--store", str(store_dir)])
    assert code == 1 and "register" in capsys.readouterr().err  # time points not registered yet
    run_json(capsys, "register", case_id, "--store", str(store_dir))
    data = run_json(
        capsys, "kinetics", case_id, "--recovery-fwhm-mm", "11", "--store", str(store_dir)
    )
    (row,) = data["vois"]
    assert row["voi_name"] == "Spleen" and row["review_flag"] == "contour not approved (draft)"
    truth = small_demo_truth["compartments"]["spleen"]["tia_mbq_h"]
    # small grid (9.6 mm SPECT voxels): the 11 mm PSF correction leaves a few % of extra blur
    assert row["tia_mbq_h"] == pytest.approx(truth, rel=0.10)
    assert 0 < row["tia_sd_mbq_h"] < 0.2 * row["tia_mbq_h"]
    assert row["tiac_h"] == pytest.approx(row["tia_mbq_h"] / 7400.0, rel=1e-6)


def test_kinetics_compare_stp_and_tia_map_commands(capsys, case_id, store_dir, small_demo_dirs):
    import math

    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    s = ("--store", str(store_dir))
    run_json(capsys, "contour", case_id, "import-rtstruct", str(rt), "--roi", "Spleen", *s)
    run_json(capsys, "register", case_id, *s)

    data = run_json(
        capsys, "kinetics", case_id, "--compare-stp", "haenscheid", "--store", str(store_dir)
    )
    (row,) = data["vois"]
    rows = row["stp_comparison"]
    tac = row["tac"]
    assert [r["time_h"] for r in rows] == pytest.approx(tac["time_h"])
    for r, t, a in zip(rows, tac["time_h"], tac["activity_mbq"], strict=True):
        # Hänscheid 2018: TIA = A(t) * 2 t / ln 2
        assert r["tia_mbq_h"] == pytest.approx(a * 2 * t / math.log(2), rel=1e-9)
        assert r["relative_difference"] == pytest.approx(
            r["tia_mbq_h"] / row["tia_mbq_h"] - 1, rel=1e-9
        )
    code = main(["kinetics", case_id, "--compare-stp", "madsen", "--store", str(store_dir)])
    assert code == 1 and "--t-eff-h" in capsys.readouterr().err
    d = run_json(capsys, "tia-map", case_id, "--store", str(store_dir))
    assert d["total_tia_mbq_h"] > 0 and d["n_voxels"] == sum(d["model_counts"].values())
    assert set(d["model_counts"]) == {"mono", "biexp-uptake", "trapezoid"}
    assert d["tia_map_id"].startswith("map-")
