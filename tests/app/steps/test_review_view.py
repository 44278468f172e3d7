"""The contour review step beside the viewer (pytest-qt), driven like a physician."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QHBoxLayout, QWidget

from app.common import error_display
from app.steps.review.model import COLUMNS
from app.steps.review.view import ReviewStepView
from app.viewer.panel import ViewerPanel
from app.viewer.planes import DIMMED_OUTLINE_ALPHA
from dosimetry_core.model import VoiStatus
from dosimetry_core.pipeline import voi_approval, voi_edit
from dosimetry_core.pipeline.voi_review import find_voi

STATUS = COLUMNS.index("Status")
FLAG = COLUMNS.index("Review flag")

_HOSTS: list[QWidget] = []


@pytest.fixture()
def errors(monkeypatch: Any) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(
        error_display, "show_error", lambda parent, title, msg, details="": shown.append(msg)
    )
    return shown


def _submit(store: Any, *names: str) -> None:
    case = store.load_case(store.case_id)
    for name in names:
        voi_approval.review_and_save(store, case, "submit", name)


def _open(qtbot: Any, session: Any) -> tuple[ReviewStepView, ViewerPanel]:
    host = QWidget()
    _HOSTS[:] = [host]
    panel = ViewerPanel(session, host)
    view = ReviewStepView(session, host)
    lay = QHBoxLayout(host)
    lay.addWidget(panel, 3)
    lay.addWidget(view, 2)
    qtbot.addWidget(host)
    host.resize(1500, 950)
    host.show()
    qtbot.waitExposed(host)
    view.attach_viewer(panel)
    qtbot.waitUntil(panel.is_ready, timeout=60_000)
    return view, panel


def _names(view: ReviewStepView) -> list[str]:
    return [view.table.item(r, 0).text() for r in range(view.table.rowCount())]


def _click_row(qtbot: Any, view: ReviewStepView, name: str) -> None:
    rect = view.table.visualItemRect(view.table.item(_names(view).index(name), 0))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_physician_approves_and_an_edit_puts_it_back(
    qtbot: Any, analysis_store: Any, analysis_session: Any, errors: list[str]
) -> None:
    _submit(analysis_store, "Kidney_L", "Liver")
    analysis_session.reload()
    view, panel = _open(qtbot, analysis_session)
    assert sorted(_names(view)) == ["Kidney_L", "Liver"]
    assert view.table.item(0, FLAG).text() == "contour not approved (submitted)"
    assert "2 VOI(s)" in view.summary_label.text()
    assert view.case_list.item(0).text().endswith("2 VOI(s) submitted")
    assert not view.approve_button.isEnabled()  # nothing selected
    _click_row(qtbot, view, "Kidney_L")
    kidney = find_voi(analysis_session.case, "Kidney_L").voi_id
    # the viewer emphasises it on every plane and in 3D
    assert panel.voi_emphasis() == kidney == panel.viewer.voi_emphasis()
    rgba = panel.viewer.voi_outline_image("axial")
    assert rgba is not None
    alphas = set(rgba[..., 3].ravel().tolist())
    assert 255 in alphas and DIMMED_OUTLINE_ALPHA in alphas  # the kidney bright, others dim
    if panel.view3d is not None:
        assert panel.view3d.surface_opacity(kidney) > panel.view3d.surface_opacity(
            find_voi(analysis_session.case, "Liver").voi_id
        )
    assert view.history_table.item(0, 2).text() == "submit"
    assert view.history_label.text() == "History of Kidney_L"
    assert view.approve_button.isEnabled() and not view.reject_button.isEnabled()
    view.comment_edit.setFocus()
    QTest.keyClicks(view.comment_edit, "ok")
    qtbot.mouseClick(view.approve_button, Qt.MouseButton.LeftButton)
    assert errors == []
    stored = find_voi(analysis_store.load_case(analysis_store.case_id), "Kidney_L")
    assert stored.status == VoiStatus.APPROVED and stored.history[-1]["comment"] == "ok"
    assert _names(view) == ["Liver"]
    assert "1 VOI(s)" in view.summary_label.text()
    view.show_all.click()
    row = _names(view).index("Kidney_L")
    assert view.table.item(row, STATUS).text() == "approved"
    assert view.table.item(row, FLAG).text() == "—"
    _click_row(qtbot, view, "Kidney_L")
    assert view.history_table.item(0, 2).text() == "approve"
    assert view.history_table.item(0, 4).text() == "ok"
    view.show_all.click()
    # an edit after approval withdraws it, visibly, back in the queue
    analysis_session.change(voi_edit.contour_and_save, "largest", "Kidney_L")
    assert sorted(_names(view)) == ["Kidney_L", "Liver"]
    row = _names(view).index("Kidney_L")
    assert view.table.item(row, STATUS).text() == "approval withdrawn (draft)"
    assert view.table.item(row, FLAG).text() == "contour not approved (draft)"


def test_reject_needs_a_comment(
    qtbot: Any, analysis_store: Any, analysis_session: Any, errors: list[str]
) -> None:
    _submit(analysis_store, "Liver")
    analysis_session.reload()
    view, _panel = _open(qtbot, analysis_session)
    _click_row(qtbot, view, "Liver")
    assert not view.reject_button.isEnabled()
    view.comment_edit.setFocus()
    QTest.keyClicks(view.comment_edit, "misses the left lobe")
    assert view.reject_button.isEnabled()
    qtbot.mouseClick(view.reject_button, Qt.MouseButton.LeftButton)
    assert errors == []
    view.show_all.click()
    row = _names(view).index("Liver")
    assert view.table.item(row, STATUS).text() == "rejected"
    assert view.table.item(row, FLAG).text() == "REJECTED contour: misses the left lobe"


@pytest.mark.parametrize("user", ["tom", "phil"])
def test_technologist_and_physicist_see_the_queue_but_cannot_approve(
    qtbot: Any, analysis_store: Any, user: str
) -> None:
    from app.session import CaseSession
    from dosimetry_core.store.users import authenticate, create_user
    from tests.app.steps.conftest import ENTRY_PASSWORDS, add_entry_accounts

    _submit(analysis_store, "Kidney_L")
    add_entry_accounts(analysis_store)
    admin = authenticate(analysis_store, "root", ENTRY_PASSWORDS["root"])
    create_user(analysis_store, admin, "phil", "phys-pass-1234", "physicist")
    session = CaseSession(analysis_store, analysis_store.path)
    session.login(user, ENTRY_PASSWORDS.get(user, "phys-pass-1234"))
    session.open_case(analysis_store.case_id)
    view, _panel = _open(qtbot, session)
    assert view.table.rowCount() == 1 and view.table.item(0, 0).text() == "Kidney_L"
    _click_row(qtbot, view, "Kidney_L")
    assert not view.approve_button.isEnabled()
    assert not view.reject_button.isEnabled()
    assert not view.comment_edit.isEnabled()
    assert "not approve" in view.summary_label.text()
    assert view.case_list.item(0).text() == "(none)"  # nothing awaits *their* approval
    session.cancel_jobs()
