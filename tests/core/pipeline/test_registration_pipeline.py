"""register_case / set_registration_status / spect_on_reference on the small demo in a store."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from scipy import ndimage

from dosimetry_core.errors import Cancelled, InvalidInputError, PermissionDeniedError
from dosimetry_core.imaging.registration import max_point_distance_mm
from dosimetry_core.imaging.resample import resample, rigid_transform
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.case import (
    VOI,
    Case,
    Patient,
    Registration,
    RegistrationStatus,
    SeriesInfo,
    TimePoint,
    VoiKind,
)
from dosimetry_core.phantoms.demo import DemoConfig, generate_demo
from dosimetry_core.pipeline.registration import (
    ct_on_reference,
    load_displacement,
    register_case,
    review_registration,
    set_registration_status,
    spect_on_reference,
    voi_on_reference,
)
from dosimetry_core.store import CaseStore
from dosimetry_core.store.permissions import Actor


@pytest.fixture(scope="module")
def demo():
    return generate_demo(DemoConfig.small())


def _make_case(store: CaseStore, demo, *, drop_ct: tuple[int, ...] = ()) -> str:
    case = Case(patient=demo.patient, administrations=[demo.administration])
    for i, tp in enumerate(demo.time_points, start=1):
        ct = None
        if i not in drop_ct:
            ct = SeriesInfo(f"ct-{i}", modality="CT", volume=store.put_volume(tp.ct))
        case.time_points.append(
            TimePoint(
                acquired_at=tp.acquisition_datetime,
                modality="NM",
                functional=SeriesInfo(
                    f"nm-{i}", modality="NM", volume=store.put_volume(tp.spect_bqml)
                ),
                anatomical=ct,
                label=f"TP{i}",
            )
        )
    store.save_case(case)
    return case.case_id


def test_register_case_stores_proposed_registrations_near_truth(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo)
    seen: list[float] = []
    out = register_case(store, case_id, progress=lambda f, m: seen.append(f))
    assert [s.status for s in out] == ["reference", "registered", "registered", "registered"]
    assert seen[-1] == 1.0
    case = store.load_case(case_id)
    tps = case.sorted_time_points()
    assert tps[0].registration is None
    pts = demo.time_points[0].ct.geometry.index_to_world(
        np.argwhere(demo.time_points[0].ct.array > -500)[::97]
    )
    for tp, truth in zip(tps[1:], demo.time_points[1:], strict=True):
        reg = tp.registration
        assert reg is not None and reg.status == RegistrationStatus.PROPOSED
        assert reg.reference_time_point_id == tps[0].time_point_id
        assert reg.computed_at is not None and "Mattes" in reg.method
        assert reg.quality["bone_dice"] > reg.quality["bone_dice_before"]
        assert max_point_distance_mm(reg.matrix_ref_to_tp, truth.matrix_ref_to_tp, pts) < 2.5
        rot_err = np.subtract(reg.rotation_deg, truth.ground_truth["misalignment"]["rotation_deg"])
        assert np.max(np.abs(rot_err)) < 1.0
    assert out[1].to_dict()["translation_mm"] == list(tps[1].registration.translation_mm)


def test_spect_on_reference_brings_kidneys_together(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo)
    register_case(store, case_id, time_points=["TP2"])
    case = store.load_case(case_id)
    ref_geom = demo.time_points[0].ct.geometry
    # kidneys of the reference pose (TP1 occupancy), on the reference CT grid, grown by 2 voxels
    occ = demo.time_points[0].occupancy
    kid = occ["kidney_left"].dense() + occ["kidney_right"].dense()
    kid_vol = Volume((kid > 0.5).astype(np.uint8), demo.time_points[0].spect_bqml.geometry)
    mask = resample(kid_vol, ref_geom, order=0).array > 0
    mask = ndimage.binary_dilation(mask, iterations=2)

    def centroid(vol: Volume) -> np.ndarray:
        w = np.where(mask, vol.array, 0.0).astype(float)
        return np.asarray(ndimage.center_of_mass(w))

    c1 = centroid(spect_on_reference(store, case, "TP1"))
    c2 = centroid(spect_on_reference(store, case, "TP2"))
    unreg = centroid(resample(demo.time_points[1].spect_bqml, ref_geom))
    # within one reference-grid voxel along every axis, and much closer than unregistered
    assert np.all(np.abs(c2 - c1) < 1.0), (c1, c2)
    assert np.linalg.norm(c2 - c1) < 0.5 * np.linalg.norm(unreg - c1)
    with pytest.raises(InvalidInputError, match="not registered"):
        spect_on_reference(store, case, "TP3")


def test_reject_then_redo_one_time_point(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo)
    register_case(store, case_id, time_points=["TP2", 3])
    reg = set_registration_status(store, case_id, "TP2", "rejected", "dr.who", "kidneys off")
    assert reg.status == RegistrationStatus.REJECTED and reg.reviewed_by == "dr.who"
    before = store.load_case(case_id).time_point("TP3").registration
    set_registration_status(store, case_id, "TP3", RegistrationStatus.ACCEPTED, "dr.who")
    out = register_case(store, case_id, time_points=["TP2"])
    assert [s.label for s in out if s.status == "registered"] == ["TP2"]
    case = store.load_case(case_id)
    assert case.time_point("TP2").registration.status == RegistrationStatus.PROPOSED
    tp3 = case.time_point("TP3").registration
    assert tp3.status == RegistrationStatus.ACCEPTED
    assert tp3.matrix_ref_to_tp == before.matrix_ref_to_tp
    assert case.time_point("TP4").registration is None
    with pytest.raises(InvalidInputError, match="status"):
        set_registration_status(store, case_id, "TP2", "maybe", "dr.who")
    with pytest.raises(InvalidInputError, match="no registration"):
        set_registration_status(store, case_id, "TP4", "accepted", "dr.who")


def test_ct_less_time_point_is_skipped_and_ct_less_reference_refused(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo, drop_ct=(1, 3))
    with pytest.raises(InvalidInputError, match="reference time point TP1 has no CT"):
        register_case(store, case_id)
    out = register_case(store, case_id, reference="TP2", time_points=["TP3"])
    skipped = [s for s in out if s.status == "skipped"]
    assert len(skipped) == 1 and skipped[0].label == "TP3" and "no CT" in skipped[0].message
    with pytest.raises(InvalidInputError, match="no time point"):
        register_case(store, case_id, reference="TP9")


def test_cancel_leaves_the_case_unchanged(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo)
    version = store.load_case(case_id).version
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 20

    with pytest.raises(Cancelled):
        register_case(store, case_id, cancel=cancel)
    case = store.load_case(case_id)
    assert case.version == version
    assert all(tp.registration is None for tp in case.time_points)


def test_deformable_field_is_stored_and_used(tmp_path, demo):
    store = CaseStore(tmp_path / "store")
    case_id = _make_case(store, demo)
    out = register_case(store, case_id, time_points=["TP2"], deformable=True)
    assert out[1].status == "registered"
    case = store.load_case(case_id)
    reg = case.time_point("TP2").registration
    assert reg.deformation is not None and "demons" in reg.method
    assert reg.deformation.meta["components"] == 3 and reg.deformation.meta["units"] == "mm"
    field, grid = load_displacement(store, reg.deformation)
    assert grid.same_grid(demo.time_points[0].ct.geometry)
    assert field.shape == (*grid.shape_zyx, 3) and field.dtype == np.float32
    assert "deformable_bone_dice" in reg.quality
    spect = spect_on_reference(store, case, "TP2")
    assert spect.geometry.same_grid(grid) and spect.array.max() > 0
    assert not store.check_integrity()


# ------------------------------------------------ the time point's CT on the reference grid
BALL_GRID = Geometry((24, 32, 32), (4.0, 4.0, 5.0), (-62.0, -62.0, -57.5))
SHIFT_MM = (8.0, -12.0, 10.0)
"""Where the ball of TP2 is relative to TP1's (LPS mm): p_tp2 = p_tp1 + SHIFT_MM."""


def _ball(centre_mm: tuple[float, float, float], *, hu: bool = True) -> Volume:
    k, j, i = np.meshgrid(*(np.arange(n) for n in BALL_GRID.shape_zyx), indexing="ij")
    w = BALL_GRID.index_to_world(np.stack([k, j, i], axis=-1))
    inside = np.linalg.norm(w - np.asarray(centre_mm), axis=-1) <= 20.0
    if hu:
        arr = np.where(inside, 800.0, -1000.0).astype(np.float32)
        return Volume(arr, BALL_GRID, ImageUnits.HU, "ball CT")
    return Volume(inside.astype(np.uint8), BALL_GRID, ImageUnits.MASK, "ball")


def _centroid_mm(vol: Volume, threshold: float) -> np.ndarray:
    idx = np.asarray(ndimage.center_of_mass(vol.array > threshold))
    return vol.geometry.index_to_world(idx)


def _ball_case(store: CaseStore) -> Case:
    """TP1: a bone ball at the origin; TP2: the same ball moved by SHIFT_MM, registered."""
    case = Case(patient=Patient(patient_id="BALL-1", name="Ball^Phantom"))
    for n, centre in enumerate([(0.0, 0.0, 0.0), SHIFT_MM], start=1):
        ct = store.put_volume(_ball(centre))
        case.time_points.append(
            TimePoint(
                acquired_at=datetime(2026, 1, n, 12, 0),
                modality="NM",
                functional=SeriesInfo(f"nm-{n}", modality="NM"),
                anatomical=SeriesInfo(f"ct-{n}", modality="CT", volume=ct),
                label=f"TP{n}",
            )
        )
    tp1, tp2 = case.time_points
    tp2.registration = Registration(
        reference_time_point_id=tp1.time_point_id,
        matrix_ref_to_tp=rigid_transform((0, 0, 0), SHIFT_MM).tolist(),
        translation_mm=SHIFT_MM,
        method="known translation",
    )
    ball_tp2 = store.put_volume(_ball(SHIFT_MM, hu=False))
    case.vois.append(VOI("ball", VoiKind.LESION, ball_tp2, time_point_id=tp2.time_point_id))
    return store.save_case(case)


def test_ct_on_reference_moves_a_ball_by_the_known_translation(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = _ball_case(store)
    ref = ct_on_reference(store, case, "TP1")
    moved = ct_on_reference(store, case, "TP2")
    assert moved.geometry.same_grid(ref.geometry) and moved.units == ImageUnits.HU
    raw = store.load_volume(case.time_point("TP2").anatomical.volume)
    # before: the ball sits SHIFT_MM away; through the registration: on the reference ball
    np.testing.assert_allclose(_centroid_mm(raw, 0) - _centroid_mm(ref, 0), SHIFT_MM, atol=0.5)
    np.testing.assert_allclose(_centroid_mm(moved, 0), _centroid_mm(ref, 0), atol=0.5)
    assert moved.array.min() == pytest.approx(-1000.0)  # air outside the TP2 field of view
    mask = voi_on_reference(store, case, case.vois[0])
    assert mask.geometry.same_grid(ref.geometry) and set(np.unique(mask.array)) <= {0, 1}
    np.testing.assert_allclose(_centroid_mm(mask, 0), [0.0, 0.0, 0.0], atol=0.5)


def test_ct_on_reference_refuses_an_unregistered_time_point(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = _ball_case(store)
    case.time_point("TP2").registration = None
    case = store.save_case(case)
    with pytest.raises(InvalidInputError, match="not registered") as err:
        ct_on_reference(store, case, "TP2")
    assert err.value.field == "time_point"


# ------------------------------------------------------------- review of an open case
def _accounts(store: CaseStore) -> None:
    from dosimetry_core.store.users import bootstrap_admin, create_user

    admin = bootstrap_admin(store, "admin", "admin-pass-123")
    create_user(store, admin, "phys", "phys-pass-123", "physicist")
    create_user(store, admin, "doc", "doc-pass-1234", "physician")
    create_user(store, admin, "tech", "tech-pass-123", "technologist")


def test_review_registration_needs_a_comment_to_reject_and_the_right_role(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = _ball_case(store)
    _accounts(store)
    version = store.load_case(case.case_id).version

    store.actor = Actor("phys", "physicist")
    with pytest.raises(InvalidInputError, match="comment") as err:
        review_registration(store, store.load_case(case.case_id), "TP2", "rejected", "  ")
    assert err.value.field == "comment"
    with pytest.raises(InvalidInputError) as err:
        review_registration(store, store.load_case(case.case_id), "TP2", "maybe")
    assert err.value.field == "status"
    with pytest.raises(InvalidInputError, match="no registration") as err:
        review_registration(store, store.load_case(case.case_id), "TP1", "accepted")
    assert err.value.field == "time_point"
    for who in (Actor("doc", "physician"), Actor("tech", "technologist"), None):
        store.actor = who
        with pytest.raises(PermissionDeniedError):
            review_registration(store, store.load_case(case.case_id), "TP2", "accepted", "ok")
    stored = store.load_case(case.case_id)
    assert stored.version == version
    assert stored.time_point("TP2").registration.status == RegistrationStatus.PROPOSED

    store.actor = Actor("phys", "physicist")
    reg = review_registration(store, stored, "TP2", "rejected", " ball off by 2 mm ")
    assert reg.status == RegistrationStatus.REJECTED and reg.reviewed_by == "phys"
    saved = store.load_case(case.case_id).time_point("TP2").registration
    assert saved.comment == "ball off by 2 mm" and saved.reviewed_at is not None
    reg = review_registration(store, store.load_case(case.case_id), 2, "accepted")
    assert reg.status == RegistrationStatus.ACCEPTED and reg.comment == ""


def test_register_case_refuses_a_technologist_before_computing(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = _ball_case(store)
    _accounts(store)
    store.actor = Actor("tech", "technologist")
    seen: list[float] = []
    with pytest.raises(PermissionDeniedError, match="register"):
        register_case(store, case.case_id, progress=lambda f, m: seen.append(f))
    assert seen == []
