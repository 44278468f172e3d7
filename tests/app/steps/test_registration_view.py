"""The registration step in a window (pytest-qt) on a small case with known shifts.

TP2 and TP3 are the synthetic trunk of ``tests/app/conftest.py`` moved by known
translations; a real :class:`~dosimetry_core.store.CaseStore` with accounts
holds the case, so roles, audit and optimistic concurrency are the real ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.session import CaseSession
from app.steps.registration.model import COLUMNS
from app.steps.registration.view import RegistrationStepView
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.case import (
    VOI,
    Case,
    Patient,
    RegistrationStatus,
    SeriesInfo,
    TimePoint,
    VoiKind,
)
from dosimetry_core.store import CaseStore
from tests.app.conftest import CT_GEOMETRY, synthetic_ct

SHIFTS_MM = {"TP2": (9.0, -6.0, 8.0), "TP3": (-6.0, 6.0, 0.0)}
"""Where the anatomy of each time point is relative to TP1 (LPS mm)."""
PASSWORDS = {"phys": "phys-pass-123", "doc": "doc-pass-1234", "tech": "tech-pass-123"}
T_STATUS = COLUMNS.index("Status")
T_TRANSLATION = COLUMNS.index("Translation (mm)")


def _moved_ct(shift_mm: tuple[float, float, float]) -> Volume:
    """The trunk with its anatomy at ``p + shift`` on the same grid (value at q is f(q - t))."""
    g = CT_GEOMETRY
    origin = tuple(o - t for o, t in zip(g.origin_mm, shift_mm, strict=True))
    shifted = Geometry(g.shape_zyx, g.spacing_mm, origin, g.direction, g.frame_of_reference_uid)
    return Volume(synthetic_ct(shifted).array, g, ImageUnits.HU, "CT moved")


@pytest.fixture()
def reg_store(tmp_path: Any) -> tuple[CaseStore, str]:
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store = CaseStore(tmp_path / "store")
    admin = bootstrap_admin(store, "admin", "admin-pass-123")
    create_user(store, admin, "phys", PASSWORDS["phys"], "physicist")
    create_user(store, admin, "doc", PASSWORDS["doc"], "physician")
    create_user(store, admin, "tech", PASSWORDS["tech"], "technologist")
    case = Case(patient=Patient(patient_id="REG-1", name="Shift^Known"))
    cts = {"TP1": synthetic_ct(), **{k: _moved_ct(v) for k, v in SHIFTS_MM.items()}}
    for n, (label, ct) in enumerate(cts.items()):
        case.time_points.append(
            TimePoint(
                acquired_at=datetime(2026, 3, 2, 13, 0) + timedelta(hours=24 * n),
                modality="NM",
                functional=SeriesInfo(f"nm-{n}", modality="NM"),
                anatomical=SeriesInfo(f"ct-{n}", modality="CT", volume=store.put_volume(ct)),
                label=label,
            )
        )
    # a box drawn on TP2's own CT grid (as 'mrtdose contour propagate' leaves it)
    box = np.zeros(CT_GEOMETRY.shape_zyx, np.uint8)
    box[15:25, 20:40, 20:40] = 1
    mask = store.put_volume(Volume(box, CT_GEOMETRY, ImageUnits.MASK, "box"))
    tp2 = case.time_points[1].time_point_id
    case.vois.append(VOI("Box", VoiKind.ORGAN, mask, (255, 0, 0), time_point_id=tp2))
    store.save_case(case)
    return store, case.case_id


def _open(qtbot: Any, store: CaseStore, case_id: str, user: str) -> RegistrationStepView:
    session = CaseSession(store, store.path)
    session.login(user, PASSWORDS[user])
    view = RegistrationStepView(session)
    qtbot.addWidget(view)
    view.resize(1100, 800)
    view.show()
    session.open_case(case_id)
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=20_000)
    return view


def _row(view: RegistrationStepView, label: str) -> int:
    for i in range(view.table.rowCount()):
        if view.table.item(i, 0).text().split(" ")[0] == label:
            return i
    raise AssertionError(f"no row {label}")


def _cell(view: RegistrationStepView, label: str, col: int) -> str:
    return view.table.item(_row(view, label), col).text()


def _select(qtbot: Any, view: RegistrationStepView, label: str) -> None:
    rect = view.table.visualItemRect(view.table.item(_row(view, label), 0))
    QTest.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(view.comparison_ready, timeout=20_000)


def _run(qtbot: Any, view: RegistrationStepView, button: Any) -> None:
    assert button.isEnabled()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert view.is_running() and view.progress_bar.isVisible()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=60_000)


def _status(store: CaseStore, case_id: str, label: str) -> RegistrationStatus:
    reg = store.load_case(case_id).time_point(label).registration
    assert reg is not None
    return reg.status


@pytest.fixture()
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    from app.common import error_display

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        error_display,
        "show_error",
        lambda parent, title, msg, details="": shown.append((title, msg)),
    )
    return shown


def test_run_shows_the_known_translation_and_accept_saves(qtbot, reg_store, errors):
    store, case_id = reg_store
    view = _open(qtbot, store, case_id, "phys")
    assert _cell(view, "TP2", T_STATUS) == "not registered"
    assert not view.accept_button.isEnabled()
    _run(qtbot, view, view.run_button)
    assert errors == [] and not view.progress_bar.isVisible()
    for label, truth in SHIFTS_MM.items():
        shown = [float(v) for v in _cell(view, label, T_TRANSLATION).split(",")]
        assert np.allclose(shown, truth, atol=1.0), (label, shown, truth)
        assert _cell(view, label, T_STATUS) == "proposed"
        assert "→" in _cell(view, label, COLUMNS.index("Bone Dice"))
    assert _cell(view, "TP1", 0) == "TP1 (reference)"

    # inspect TP2: checkerboard, square size, blink by hand, fused; the propagated box outline
    _select(qtbot, view, "TP2")
    checker = view.image_item.image.copy()
    assert (np.all(checker == [255, 0, 0], axis=-1)).sum() > 20  # the Box outline, in red
    view.square_spin.setValue(60.0)
    assert not np.array_equal(view.image_item.image, checker)
    assert "checkerboard 60 mm" in view.caption_label.text()
    view.mode_box.setCurrentIndex(view.mode_box.findData("blink"))
    ref_frame = view.image_item.image.copy()
    QTest.mouseClick(view.blink_button, Qt.MouseButton.LeftButton)
    assert "time point" in view.caption_label.text()
    assert not np.array_equal(view.image_item.image, ref_frame)
    view.blink_auto.setChecked(True)
    before = view.caption_label.text()
    qtbot.waitUntil(lambda: view.caption_label.text() != before, timeout=2_000)
    view.blink_auto.setChecked(False)
    view.mode_box.setCurrentIndex(view.mode_box.findData("fused"))
    view.plane_box.setCurrentIndex(view.plane_box.findData("coronal"))
    assert "coronal" in view.caption_label.text()
    assert view.image_item.image.shape[:2] == (40, 64)

    QTest.keyClicks(view.comment_edit, "spine and liver aligned")
    QTest.mouseClick(view.accept_button, Qt.MouseButton.LeftButton)
    assert errors == []
    assert _cell(view, "TP2", T_STATUS) == "accepted"
    assert _cell(view, "TP2", COLUMNS.index("Reviewer")) == "phys"
    reg = store.load_case(case_id).time_point("TP2").registration
    assert reg.status == RegistrationStatus.ACCEPTED and reg.comment == "spine and liver aligned"
    assert not view.accept_button.isEnabled() and view.reject_button.isEnabled()


def test_reject_needs_a_comment_and_a_rejected_one_is_redone(qtbot, reg_store, errors):
    store, case_id = reg_store
    view = _open(qtbot, store, case_id, "phys")
    _run(qtbot, view, view.run_button)
    _select(qtbot, view, "TP3")
    tp3_before = store.load_case(case_id).time_point("TP3").registration
    version = store.load_case(case_id).version
    QTest.mouseClick(view.reject_button, Qt.MouseButton.LeftButton)
    assert len(errors) == 1 and "comment" in errors[0][1]
    assert view.comment_edit.property("invalid") is True
    assert store.load_case(case_id).version == version  # nothing saved
    assert _cell(view, "TP3", T_STATUS) == "proposed"
    assert not view.redo_button.isEnabled()

    QTest.keyClicks(view.comment_edit, "liver 5 mm off")
    assert view.comment_edit.property("invalid") is False
    assert view.session.unsaved_changes == ["a registration review comment not saved"]
    QTest.mouseClick(view.reject_button, Qt.MouseButton.LeftButton)
    assert view.session.unsaved_changes == []
    assert len(errors) == 1
    assert _cell(view, "TP3", T_STATUS) == "rejected"
    assert _cell(view, "TP3", COLUMNS.index("Comment")) == "liver 5 mm off"
    assert _status(store, case_id, "TP3") == RegistrationStatus.REJECTED
    assert view.redo_button.isEnabled() and not view.reject_button.isEnabled()

    tp2_before = store.load_case(case_id).time_point("TP2").registration
    view.reference_box.setCurrentText("TP2")  # a redo keeps the case's reference
    _run(qtbot, view, view.redo_button)
    assert errors == errors[:1]
    assert _cell(view, "TP3", T_STATUS) == "proposed"
    after = store.load_case(case_id)
    assert after.time_point("TP3").registration.computed_at >= tp3_before.computed_at
    assert after.time_point("TP2").registration.computed_at == tp2_before.computed_at
    assert after.time_point("TP3").registration.reference_time_point_id == (
        after.time_point("TP1").time_point_id
    )
    assert "Registered 1 time point" in view.status_label.text()


def test_cancel_saves_nothing(qtbot, reg_store, errors):
    store, case_id = reg_store
    version = store.load_case(case_id).version
    view = _open(qtbot, store, case_id, "phys")
    QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.cancel_button.isEnabled() and not view.run_button.isEnabled()
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=60_000)
    assert "cancelled" in view.status_label.text() and errors == []
    case = store.load_case(case_id)
    assert case.version == version
    assert all(tp.registration is None for tp in case.time_points)
    assert _cell(view, "TP2", T_STATUS) == "not registered"
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()


def test_technologist_and_physician_look_but_cannot_change(qtbot, reg_store, errors):
    from dosimetry_core.pipeline.registration import register_case
    from dosimetry_core.store.permissions import Actor

    store, case_id = reg_store
    view = _open(qtbot, store, case_id, "tech")
    assert view.table.rowCount() == 3
    assert not view.run_button.isEnabled() and not view.redo_button.isEnabled()
    assert "may look" in view.run_button.toolTip()

    store.actor = Actor("phys", "physicist")
    register_case(store, case_id, time_points=["TP2"])
    store.actor = None
    doc = _open(qtbot, store, case_id, "doc")
    assert _cell(doc, "TP2", T_STATUS) == "proposed"
    _select(qtbot, doc, "TP2")  # a physician may inspect
    assert doc.compare.comparison is not None
    for b in (doc.run_button, doc.redo_button, doc.accept_button, doc.reject_button):
        assert not b.isEnabled()
    assert not doc.comment_edit.isEnabled()
    # even a forced click of a hidden path is refused by the core, nothing saved
    version = store.load_case(case_id).version
    doc._review("accepted")
    assert errors and "physician" in errors[-1][1]
    assert store.load_case(case_id).version == version
    qtbot.waitUntil(lambda: not doc.is_loading(), timeout=20_000)


class _Ctx:
    """Enough of app.steps.base.TourContext for one step's driver."""

    def __init__(self, qtbot: Any, window: Any) -> None:
        self.qtbot = qtbot
        self.window = window

    def wait_until(self, predicate: Any, timeout_s: float, what: str) -> None:
        from app.steps.base import TourError

        try:
            self.qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))
        except Exception as exc:
            raise TourError(f"timed out waiting for {what}") from exc

    def settle(self, seconds: float = 0.3) -> None:
        self.qtbot.wait(int(seconds * 1000))


def test_tour_runs_inspects_and_accepts_every_time_point(qtbot, reg_store, errors):
    from app.steps.base import TourError
    from app.steps.registration.tour import drive

    store, case_id = reg_store
    view = _open(qtbot, store, case_id, "phys")
    shown = drive(view, _Ctx(qtbot, view))
    assert errors == [] and shown["reference"] == "TP1"
    assert [t["label"] for t in shown["time_points"]] == ["TP2", "TP3"]
    for t in shown["time_points"]:
        assert t["status"] == "accepted"
        assert np.allclose(t["translation_mm"], SHIFTS_MM[t["label"]], atol=1.0)
        assert len(t["rotation_deg"]) == 3
    case = store.load_case(case_id)
    assert all(
        case.time_point(k).registration.status == RegistrationStatus.ACCEPTED for k in SHIFTS_MM
    )
    tech = _open(qtbot, store, case_id, "tech")
    with pytest.raises(TourError, match="Run is disabled"):
        drive(tech, _Ctx(qtbot, tech))
    qtbot.waitUntil(lambda: not (tech.is_loading() or view.is_loading()), timeout=20_000)
