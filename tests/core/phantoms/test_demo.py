"""Synthetic demo patient: known answers of the images and the ground truth."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import ImageUnits
from dosimetry_core.phantoms.demo import DemoConfig, RigidMotion, generate_demo, write_demo_dicom
from dosimetry_core.physics.nuclides import half_life_h

ORGANS = (
    "remainder",
    "lung_left",
    "lung_right",
    "liver",
    "kidney_left",
    "kidney_right",
    "spleen",
    "spine_bone",
    "red_marrow",
    "bladder_content",
    "parotid_left",
    "parotid_right",
)


@pytest.fixture(scope="module")
def demo_free():
    config = DemoConfig.small()
    config.noise = False
    return generate_demo(config)


@pytest.fixture(scope="module")
def demo_noisy():
    return generate_demo(DemoConfig.small())


def _world_centroid(tp, name):
    geom = tp.spect_bqml.geometry
    return geom.index_to_world(tp.occupancy[name].centroid_index())


# ----------------------------------------------------------- activity balance
def test_noise_free_image_activity_equals_fov_activity_and_compartment_sum(demo_free):
    for tp in demo_free.time_points:
        gt = tp.ground_truth
        assert tp.spect_bqml.units == ImageUnits.BQML
        image = tp.spect_bqml.total_activity_mbq()
        assert image == pytest.approx(gt["fov_activity_mbq"], rel=1e-5)
        assert gt["fov_activity_mbq"] == pytest.approx(
            gt["sum_compartments_activity_mbq"], rel=0.01
        )
        assert 0.0 <= gt["blur_loss_fraction"] < 0.002
        comp = sum(c["activity_mbq"] for c in gt["compartments"].values())
        assert comp == pytest.approx(gt["sum_compartments_activity_mbq"], rel=1e-12)


def test_compartments_add_up_to_injected_decayed_minus_excreted(demo_free):
    a0 = demo_free.config.injected_activity_mbq
    lam = math.log(2) / half_life_h("Lu-177")
    for tp in demo_free.time_points:
        gt = tp.ground_truth
        decayed = a0 * math.exp(-lam * tp.time_h)
        assert gt["injected_decayed_mbq"] == pytest.approx(decayed, rel=1e-12)
        assert 0 < gt["excreted_activity_mbq"] < decayed
        assert gt["sum_compartments_activity_mbq"] == pytest.approx(
            decayed - gt["excreted_activity_mbq"], rel=1e-9
        )


def test_counts_and_bqml_follow_the_calibration_convention(demo_free):
    cfg = demo_free.config
    assert cfg.acquisition_duration_s == 1200.0
    tp = demo_free.time_points[1]
    vox = tp.spect_bqml.geometry.voxel_volume_ml
    expected = tp.spect_bqml.array.astype(np.float64) * 1e-6 * vox * 1200.0 * cfg.cps_per_mbq
    np.testing.assert_allclose(tp.spect_counts.array, expected, rtol=1e-5, atol=1e-3)
    assert tp.spect_counts.units == ImageUnits.COUNTS


def test_concentrations_are_activity_over_exact_volume(demo_free):
    truth = demo_free.ground_truth
    for name, comp in truth["compartments"].items():
        for tp in truth["time_points"]:
            c = tp["compartments"][name]
            assert c["concentration_bq_ml"] == pytest.approx(
                c["activity_mbq"] * 1e6 / comp["volume_ml"]
            )
        assert comp["mass_g"] == pytest.approx(comp["volume_ml"] * comp["density_g_cm3"])
        assert comp["tiac_h"] == pytest.approx(
            comp["tia_mbq_h"] / truth["administration"]["injected_activity_mbq"]
        )


def test_voxelised_organ_volumes_match_the_analytic_volumes(demo_free):
    truth = demo_free.ground_truth
    for tp in truth["time_points"]:
        for name in ORGANS:
            exact = truth["compartments"][name]["volume_ml"]
            assert tp["compartments"][name]["voxelised_volume_ml"] == pytest.approx(
                exact, rel=0.02
            ), name


def test_the_body_is_inside_the_field_of_view(demo_free):
    for tp in demo_free.time_points:
        body = tp.occupancy["remainder"].dense()
        for axis in range(3):
            assert not body.take([0, -1], axis=axis).any(), axis


# ------------------------------------------------------------------- noise
def test_poisson_noise_has_the_expected_mean_and_variance(demo_free, demo_noisy):
    for free, noisy in zip(demo_free.time_points, demo_noisy.time_points, strict=True):
        lam = free.spect_counts.array.astype(np.float64)
        n = noisy.spect_counts.array.astype(np.float64)
        assert np.all(n == np.rint(n)) and n.min() >= 0
        total = lam.sum()
        assert abs(n.sum() - total) < 5 * math.sqrt(total)
        assert noisy.ground_truth["expected_total_counts"] == pytest.approx(total, rel=1e-6)
        sel = lam > 20
        z = (n[sel] - lam[sel]) / np.sqrt(lam[sel])
        assert abs(z.mean()) < 5 / math.sqrt(sel.sum())
        assert z.std() == pytest.approx(1.0, abs=0.03)
        assert noisy.spect_bqml.total_activity_mbq() == pytest.approx(
            free.ground_truth["fov_activity_mbq"], rel=5 / math.sqrt(total)
        )


def test_ct_noise_and_tissue_values(demo_free, demo_noisy):
    labels = demo_free.time_points[0].labels.array
    ct_free = demo_free.time_points[0].ct.array
    ct_noisy = demo_noisy.time_points[0].ct.array
    assert ct_free.dtype == np.int16
    liver = labels == demo_free.phantom.organ("liver").label
    assert np.all(ct_free[liver] == 55)
    assert np.all(ct_free[labels == 0] == -1000)
    diff = ct_noisy[liver].astype(float) - 55.0
    assert diff.mean() == pytest.approx(0.0, abs=1.0)
    assert diff.std() == pytest.approx(15.0, rel=0.05)


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(demo_noisy):
    again = generate_demo(DemoConfig.small())
    for a, b in zip(demo_noisy.time_points, again.time_points, strict=True):
        np.testing.assert_array_equal(a.spect_counts.array, b.spect_counts.array)
        np.testing.assert_array_equal(a.spect_bqml.array, b.spect_bqml.array)
        np.testing.assert_array_equal(a.ct.array, b.ct.array)
        assert a.frame_of_reference_uid == b.frame_of_reference_uid
    other = DemoConfig.small()
    other.seed += 1
    changed = generate_demo(other)
    assert not np.array_equal(
        changed.time_points[0].spect_counts.array, demo_noisy.time_points[0].spect_counts.array
    )
    assert json.dumps(again.ground_truth["time_points"][0]["compartments"]) == json.dumps(
        demo_noisy.ground_truth["time_points"][0]["compartments"]
    )


# ------------------------------------------------------------- misalignment
def test_reference_pose_and_recorded_motion(demo_free):
    cfg = demo_free.config
    np.testing.assert_array_equal(demo_free.time_points[0].matrix_ref_to_tp, np.eye(4))
    for tp in demo_free.time_points[1:]:
        mis = tp.ground_truth["misalignment"]
        motion = cfg.motion(tp.index - 1)
        assert mis["translation_mm"] == list(motion.translation_mm)
        assert mis["rotation_deg"] == list(motion.rotation_deg)
        np.testing.assert_allclose(mis["matrix_ref_to_tp"], tp.matrix_ref_to_tp)
        shift = np.linalg.norm(motion.translation_mm)
        assert 3.0 <= shift <= 10.0 and 1.0 <= max(np.abs(motion.rotation_deg)) <= 3.0
    # all time points share the grid definition but not the frame of reference
    geoms = [tp.spect_bqml.geometry for tp in demo_free.time_points]
    assert all(g.same_grid(geoms[0]) for g in geoms)
    assert len({tp.frame_of_reference_uid for tp in demo_free.time_points}) == len(geoms)
    for tp in demo_free.time_points:
        assert (
            tp.ct.geometry.frame_of_reference_uid == tp.spect_bqml.geometry.frame_of_reference_uid
        )


@pytest.mark.parametrize("name", ["kidney_left", "kidney_right", "liver", "tumour_3"])
def test_organ_centroids_move_with_the_recorded_transform(demo_free, name):
    tp1 = demo_free.time_points[0]
    c1 = _world_centroid(tp1, name)
    for tp in demo_free.time_points[1:]:
        m = tp.matrix_ref_to_tp
        predicted = m[:3, :3] @ c1 + m[:3, 3]
        np.testing.assert_allclose(_world_centroid(tp, name), predicted, atol=1.0)


def test_ct_kidney_mask_centroid_moves_with_the_recorded_transform(demo_free):
    tp1, tp2 = demo_free.time_points[:2]
    label = demo_free.phantom.organ("kidney_left").label
    geom = tp1.labels.geometry
    c1 = geom.index_to_world(np.argwhere(tp1.labels.array == label).mean(axis=0))
    c2 = geom.index_to_world(np.argwhere(tp2.labels.array == label).mean(axis=0))
    m = tp2.matrix_ref_to_tp
    np.testing.assert_allclose(c2, m[:3, :3] @ c1 + m[:3, 3], atol=1.0)


def test_the_recorded_transform_aligns_a_time_point_onto_the_reference_with_resample(demo_free):
    tp1 = demo_free.time_points[0]
    body = tp1.labels.array > 0
    for tp in demo_free.time_points[1:]:

        def agreement(transform, tp=tp):
            r = resample(tp.labels, tp1.labels.geometry, order=0, transform=transform)
            return float(np.mean(r.array[body] == tp1.labels.array[body]))

        good = agreement(tp.matrix_ref_to_tp)
        assert good > 0.88
        assert good > agreement(None) + 0.03
        assert good > agreement(np.linalg.inv(tp.matrix_ref_to_tp)) + 0.03


# ------------------------------------------------------------ ground truth
def test_ground_truth_is_json_with_units_in_the_keys(demo_free):
    truth = json.loads(json.dumps(demo_free.ground_truth, allow_nan=False))
    assert truth["administration"]["nuclide"] == "Lu-177"
    assert truth["camera"]["cps_per_mbq"] == 9.0
    assert truth["config"]["seed"] == demo_free.config.seed
    assert len(truth["time_points"]) == 4
    assert [tp["label"] for tp in truth["time_points"]] == [
        "tp1_004h",
        "tp2_024h",
        "tp3_096h",
        "tp4_168h",
    ]
    kidney = truth["compartments"]["kidney_left"]
    for key in ("volume_ml", "mass_g", "tia_mbq_h", "activity_mbq"):
        assert key in kidney
    assert truth["rois"]["Kidney_L"]["compartment"] == "kidney_left"
    t0 = demo_free.config.injection_datetime
    for tp in demo_free.time_points:
        assert (tp.acquisition_datetime - t0).total_seconds() == pytest.approx(tp.time_h * 3600)
        assert tp.ct_acquisition_datetime > tp.acquisition_datetime


def test_invalid_requests_are_refused(tmp_path):
    with pytest.raises(InvalidInputError):
        write_demo_dicom(tmp_path, DemoConfig.small(), style="philips")
    with pytest.raises(InvalidInputError):
        generate_demo(DemoConfig(scan_hours=(24.0, 4.0)))
    cfg = DemoConfig.small()
    cfg.misalignment = (RigidMotion(),)
    demo = generate_demo(cfg)  # missing motions are identity
    assert all(np.allclose(tp.matrix_ref_to_tp, np.eye(4)) for tp in demo.time_points)


def test_progress_reaches_one_and_cancel_stops():
    from dosimetry_core.errors import Cancelled

    seen = []
    generate_demo(DemoConfig.small(), progress=lambda f, m: seen.append(f))
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    with pytest.raises(Cancelled):
        generate_demo(DemoConfig.small(), cancel=lambda: True)


# -------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_demo():
    start = time.perf_counter()
    demo = generate_demo(DemoConfig())
    elapsed = time.perf_counter() - start
    assert elapsed < 60.0
    truth = demo.ground_truth
    for tp in demo.time_points:
        gt = tp.ground_truth
        assert tp.spect_bqml.shape == (120, 128, 128) and tp.ct.shape == (116, 192, 192)
        assert gt["fov_activity_mbq"] == pytest.approx(
            gt["sum_compartments_activity_mbq"], rel=0.01
        )
        assert gt["blur_loss_fraction"] < 0.002
        assert abs(gt["total_counts"] - gt["expected_total_counts"]) < 5 * math.sqrt(
            gt["expected_total_counts"]
        )
        for name in ORGANS:
            exact = truth["compartments"][name]["volume_ml"]
            assert gt["compartments"][name]["voxelised_volume_ml"] == pytest.approx(
                exact, rel=0.02
            ), name
