"""The registration step's view-model, without Qt: rows, actions, compositing."""

from __future__ import annotations

import sys
from datetime import datetime

import numpy as np
import pytest

from app.steps.registration.model import (
    COLUMNS,
    CompareModel,
    Comparison,
    Outline,
    RegistrationModel,
    checkerboard,
    fused_rgb,
    load_comparison,
    outline_of,
    plane_pixel_mm,
    plane_slice,
    window,
)
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.case import (
    Case,
    Patient,
    Registration,
    RegistrationStatus,
    SeriesInfo,
    TimePoint,
)
from dosimetry_core.model.volume import VolumeRef

GEOM = Geometry((4, 6, 8), (2.0, 3.0, 5.0), (0.0, 0.0, 0.0))
QUALITY = {
    "body_dice": 0.962,
    "body_dice_before": 0.9186,
    "bone_dice": 0.974,
    "bone_dice_before": 0.621,
    "mean_abs_hu_diff_body": 81.8,
    "mean_abs_hu_diff_body_before": 158.3,
    "nmi": 1.33,
    "nmi_before": 1.19,
}


def _case(statuses: list[str | None]) -> Case:
    """TP1 reference; TP2.. with the given registration status (None: not registered)."""
    case = Case(patient=Patient(patient_id="M-1", name="Model^Test"))
    ref = VolumeRef("k" * 64, GEOM, ImageUnits.HU, "int16")
    for n in range(len(statuses) + 1):
        case.time_points.append(
            TimePoint(
                acquired_at=datetime(2026, 1, n + 1),
                modality="NM",
                functional=SeriesInfo(f"nm{n}", modality="NM"),
                anatomical=SeriesInfo(f"ct{n}", modality="CT", volume=ref),
                label=f"TP{n + 1}",
            )
        )
    tp1 = case.time_points[0]
    for tp, status in zip(case.time_points[1:], statuses, strict=True):
        if status is None:
            continue
        tp.registration = Registration(
            reference_time_point_id=tp1.time_point_id,
            matrix_ref_to_tp=np.eye(4).tolist(),
            translation_mm=(9.04, -6.33, 8.46),
            rotation_deg=(-0.023, 0.016, 1.5),
            method="rigid Mattes MI",
            quality=dict(QUALITY),
            status=RegistrationStatus(status),
            reviewed_by="phys" if status != "proposed" else "",
            comment="kidney off" if status == "rejected" else "",
        )
    return case


def test_rows_show_translation_rotation_quality_and_status():
    m = RegistrationModel(_case(["proposed", None]), may_register=True)
    assert m.reference_label == "TP1" and m.labels == ["TP1", "TP2", "TP3"]
    ref, tp2, tp3 = (r.cells() for r in m.rows)
    assert ref[0] == "TP1 (reference)" and ref[COLUMNS.index("Status")] == "reference"
    assert tp2[COLUMNS.index("Translation (mm)")] == "+9.0, -6.3, +8.5"
    assert tp2[COLUMNS.index("Rotation (deg)")] == "-0.02, +0.02, +1.50"
    assert tp2[COLUMNS.index("Body Dice")] == "0.919 → 0.962"
    assert tp2[COLUMNS.index("Mean |ΔHU| (HU)")] == "158 → 82"
    assert tp2[COLUMNS.index("Status")] == "proposed"
    assert tp3[COLUMNS.index("Status")] == "not registered"
    assert tp3[COLUMNS.index("Translation (mm)")] == "-"
    assert len(tp2) == len(COLUMNS)
    assert m.summary() == "Reference TP1; 1 proposed, 1 not registered."


def test_actions_follow_role_and_status():
    case = _case(["proposed", "rejected", "accepted", None])
    m = RegistrationModel(case, may_register=True)
    ids = [r.time_point_id for r in m.rows]
    ref, proposed, rejected, accepted, unregistered = (m.actions(i) for i in ids)
    assert m.can_run
    assert (ref.accept, ref.reject, ref.redo, ref.inspect) == (False, False, False, True)
    assert (proposed.accept, proposed.reject, proposed.redo) == (True, True, False)
    assert (rejected.accept, rejected.reject, rejected.redo) == (True, False, True)
    assert (accepted.accept, accepted.reject, accepted.redo) == (False, True, False)
    assert (unregistered.accept, unregistered.reject, unregistered.redo) == (False, False, True)
    assert not unregistered.inspect and proposed.inspect
    assert m.row(ids[2]).comment == "kidney off"
    # a physician or technologist may look but not change
    ro = RegistrationModel(case, may_register=False)
    assert not ro.can_run
    for i in ids:
        a = ro.actions(i)
        assert not (a.accept or a.reject or a.redo)
    assert ro.actions(ids[1]).inspect
    # no case, unknown time point: nothing
    assert not RegistrationModel(None, True).can_run
    assert m.actions("tp-unknown") == m.actions(None)


def test_plane_slices_and_pixel_sizes():
    arr = np.arange(4 * 6 * 8).reshape(4, 6, 8)
    assert plane_slice(arr, "axial", 1).shape == (6, 8)
    cor = plane_slice(arr, "coronal", 2)
    assert cor.shape == (4, 8) and cor[0, 0] == arr[3, 2, 0]  # superior slice on top
    assert plane_slice(arr, "sagittal", 5).shape == (4, 6)
    assert plane_pixel_mm(GEOM.spacing_mm, "axial") == (3.0, 2.0)
    assert plane_pixel_mm(GEOM.spacing_mm, "coronal") == (5.0, 2.0)
    assert plane_pixel_mm(GEOM.spacing_mm, "sagittal") == (5.0, 3.0)
    np.testing.assert_allclose(
        window(np.array([-1000.0, 40.0, 240.0, 3000.0]), 40, 400), [0, 0.5, 1, 1]
    )


def test_checkerboard_squares_are_in_mm():
    a, b = np.zeros((8, 8)), np.ones((8, 8))
    # 2 mm rows, 1 mm columns, 4 mm squares: 2 rows x 4 columns per square
    cb = checkerboard(a, b, (2.0, 1.0), 4.0)
    assert cb[0, 0] == 0 and cb[1, 3] == 0 and cb[0, 4] == 1 and cb[2, 0] == 1 and cb[2, 4] == 0
    assert cb.sum() == 32
    with pytest.raises(ValueError):
        checkerboard(a, np.ones((4, 4)), (1.0, 1.0), 4.0)


def test_fused_and_outline():
    same = fused_rgb(np.full((2, 2), 0.5), np.full((2, 2), 0.5))
    assert np.allclose(same, 0.5)  # grey where the two agree
    apart = fused_rgb(np.array([[1.0]]), np.array([[0.0]]))
    assert apart[0, 0].tolist() == [0.0, 1.0, 0.0]  # reference alone: green
    sq = np.zeros((7, 7), bool)
    sq[1:6, 1:6] = True
    edge = outline_of(sq)
    assert edge.sum() == 16 and not edge[3, 3] and edge[1, 3]


def _comparison() -> Comparison:
    ref = np.full(GEOM.shape_zyx, -1000.0, np.float32)
    moved = np.full(GEOM.shape_zyx, 240.0, np.float32)
    mask = np.zeros(GEOM.shape_zyx, bool)
    mask[:, 1:5, 2:6] = True
    return Comparison(
        "tp-2",
        Volume(ref, GEOM, ImageUnits.HU),
        Volume(moved, GEOM, ImageUnits.HU),
        (Outline("Kidney", (255, 0, 0), mask),),
    )


def test_compare_model_modes_blink_and_outlines():
    cm = CompareModel()
    assert cm.image().shape == (1, 1, 3) and "Select" in cm.caption()
    cm.set_comparison(_comparison())
    assert cm.index == 2 and cm.n_slices == 4
    cm.square_mm = 6.0  # axial pixels 3 mm x 2 mm: squares of 2 rows x 3 columns
    img = cm.image()
    assert img.shape == (6, 8, 3)
    assert img[0, 0].tolist() == [0, 0, 0]  # reference (air) in the first square
    assert img[0, 3].tolist() == [255, 255, 255]  # time point (240 HU) next to it
    assert img[1, 2].tolist() == [255, 0, 0]  # VOI outline in its colour
    assert cm.caption() == "checkerboard 6 mm · axial 3/4"
    assert cm.size_mm() == (16.0, 18.0)
    cm.show_outlines = False
    cm.set_mode("blink")
    assert cm.image().max() == 0
    assert cm.toggle_blink() is True
    assert cm.image().min() == 255 and "time point" in cm.caption()
    cm.set_mode("fused")
    assert cm.image()[0, 0].tolist() == [255, 0, 255]  # time point alone: magenta
    cm.set_plane("sagittal")
    assert cm.index == 4 and cm.image().shape == (4, 6, 3)
    with pytest.raises(ValueError):
        cm.set_mode("flicker")


def test_load_comparison_brings_the_ball_and_its_outline_onto_the_reference(tmp_path):
    from dosimetry_core.store import CaseStore
    from tests.core.pipeline.test_registration_pipeline import _ball_case, _centroid_mm

    store = CaseStore(tmp_path / "store")
    case = _ball_case(store)
    tp2 = case.time_point("TP2").time_point_id
    comp = load_comparison(store, case, tp2)
    assert comp.reference.geometry.same_grid(comp.moved.geometry)
    np.testing.assert_allclose(
        _centroid_mm(comp.moved, 0), _centroid_mm(comp.reference, 0), atol=0.5
    )
    assert [o.name for o in comp.outlines] == ["ball"] and comp.outlines[0].mask.sum() > 0


def test_the_view_model_imports_no_qt():
    import app.steps.registration.model as m

    qt = [n for n in sys.modules if n.startswith(("PySide6", "pyqtgraph"))]
    src = open(m.__file__, encoding="utf-8").read()
    assert "PySide6" not in src and "pyqtgraph" not in src, qt
