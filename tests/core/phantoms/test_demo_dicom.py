"""The demo patient written as DICOM and read back through the real readers."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("dosimetry_core.io.dicom_write")

from dosimetry_core.io.dicom_read import read_rtstruct_polygons, read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.model import ImageUnits
from dosimetry_core.phantoms.demo import DemoConfig, generate_demo

STYLES = ("siemens-bqml", "ge-counts")


@pytest.fixture(scope="module")
def reference_demo():
    """The same noise-free small demo as the session fixture ``small_demo_dirs``."""
    config = DemoConfig.small()
    config.noise = False
    return generate_demo(config)


def _series(directory, modality):
    found = [s for s in scan_directory(directory).series if s.modality == modality]
    return sorted(found, key=lambda s: s.acquisition_datetime)


def _area(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@pytest.mark.parametrize("style", STYLES)
def test_nm_series_read_back_with_the_true_fov_activity(small_demo_dirs, style):
    directory = small_demo_dirs[style]
    truth = json.loads((directory / "ground_truth.json").read_text())
    assert truth["style"] == style
    nm = _series(directory, "NM")
    assert len(nm) == len(truth["time_points"])
    cf = truth["camera"]["cps_per_mbq"] if style == "ge-counts" else None
    for series, tp in zip(nm, truth["time_points"], strict=True):
        loaded = read_series(series, calibration_cps_per_mbq=cf)
        assert loaded.volume.units == ImageUnits.BQML
        assert loaded.volume.total_activity_mbq() == pytest.approx(tp["fov_activity_mbq"], rel=0.01)
        assert loaded.duration_s == pytest.approx(truth["camera"]["acquisition_duration_s"])
        assert loaded.acquired_at.isoformat() == tp["acquired_at"]
        assert loaded.administration is not None
        assert loaded.administration.nuclide == "Lu-177"
        assert loaded.administration.activity_mbq == pytest.approx(7400.0)
        geom = loaded.volume.geometry
        assert geom.shape_zyx == tuple(truth["spect"]["geometry"]["shape_zyx"])
        np.testing.assert_allclose(
            geom.origin_mm, truth["spect"]["geometry"]["origin_mm"], atol=1e-3
        )
        assert geom.frame_of_reference_uid == tp["frame_of_reference_uid"]


@pytest.mark.parametrize("style", STYLES)
def test_patient_studies_and_frames_of_reference(small_demo_dirs, style):
    directory = small_demo_dirs[style]
    truth = json.loads((directory / "ground_truth.json").read_text())
    series = scan_directory(directory).series
    assert {s.patient_id for s in series} == {"MRT-DEMO-001"}
    nm, ct = _series(directory, "NM"), _series(directory, "CT")
    assert len(ct) == len(nm) == 4
    assert len({s.study_instance_uid for s in nm}) == 4
    for n, c, tp in zip(nm, ct, truth["time_points"], strict=True):
        assert n.study_instance_uid == c.study_instance_uid == tp["study_instance_uid"]
        assert n.frame_of_reference_uid == c.frame_of_reference_uid == tp["frame_of_reference_uid"]
        assert n.series_instance_uid == tp["nm_series_instance_uid"]
    assert len(_series(directory, "RTSTRUCT")) == 1


def test_ct_read_back_equals_the_generated_ct(small_demo_dirs, reference_demo):
    ct = _series(small_demo_dirs["siemens-bqml"], "CT")
    for series, tp in zip(ct, reference_demo.time_points, strict=True):
        loaded = read_series(series)
        assert loaded.volume.units == ImageUnits.HU
        assert loaded.volume.geometry.same_grid(tp.ct.geometry)
        np.testing.assert_array_equal(np.rint(loaded.volume.array), tp.ct.array)


def test_rtstruct_holds_the_true_outlines(small_demo_dirs, reference_demo):
    directory = small_demo_dirs["siemens-bqml"]
    truth = json.loads((directory / "ground_truth.json").read_text())
    rois = read_rtstruct_polygons(directory / truth["rtstruct"]["path"])
    phantom = reference_demo.phantom
    assert set(rois) == {o.roi_name for o in phantom.organs}
    ct_z = {
        round(float(z), 3)
        for z in reference_demo.time_points[0].ct.geometry.index_to_world(
            np.column_stack([np.arange(58), np.zeros(58), np.zeros(58)])
        )[:, 2]
    }
    for organ in phantom.organs:
        polys = rois[organ.roi_name]
        assert polys
        for poly in polys:
            z = float(poly[0, 2])
            assert np.allclose(poly[:, 2], z) and round(z, 3) in ct_z
            exact = organ.shape.section_area_mm2(z)
            if exact > 50.0 and len(organ.shape.section(z)) == 1:
                assert _area(poly) == pytest.approx(exact, rel=0.02), organ.roi_name


def test_folder_layout_files_and_deterministic_uids(tmp_path, small_demo_dirs):
    from dosimetry_core.phantoms.demo import write_demo_dicom

    config = DemoConfig.small()
    config.noise = False
    files = write_demo_dicom(tmp_path, config, style="siemens-bqml")
    assert files.ground_truth_path == tmp_path / "ground_truth.json"
    assert [d.name for d in files.time_point_dirs] == [
        "tp1_004h",
        "tp2_024h",
        "tp3_096h",
        "tp4_168h",
    ]
    for d, ct, nm in zip(files.time_point_dirs, files.ct_paths, files.nm_paths, strict=True):
        assert ct and all(p.parent == d / "CT" and p.is_file() for p in ct)
        assert nm and all(p.parent == d / "NM" and p.is_file() for p in nm)
    assert files.rtstruct_path is not None and files.rtstruct_path.is_file()
    assert all(p.is_file() for p in files.all_paths)
    # same configuration -> same UIDs as the session fixture written earlier
    mine = json.loads(files.ground_truth_path.read_text())
    other = json.loads((small_demo_dirs["siemens-bqml"] / "ground_truth.json").read_text())
    for a, b in zip(mine["time_points"], other["time_points"], strict=True):
        for key in ("study_instance_uid", "frame_of_reference_uid", "nm_series_instance_uid"):
            assert a[key] == b[key]
    size_mb = sum(p.stat().st_size for p in files.all_paths) / 1e6
    assert size_mb < 20
