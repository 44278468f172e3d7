"""The case list shows the store's cases, filters them, and opens one on Enter or double-click."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.views.case_list import CaseListWidget, format_person_name


def _widget(qtbot, store) -> CaseListWidget:
    w = CaseListWidget()
    qtbot.addWidget(w)
    w.refresh_from(store)
    w.resize(600, 300)
    w.show()
    return w


def test_shows_the_cases_of_the_store(qtbot, fake_store):
    w = _widget(qtbot, fake_store)
    rows = {r[0]: r for r in w.visible_rows()}
    assert set(rows) == {"SYN-0001", "P-1002", "P-1003"}
    assert rows["P-1002"][1] == "Doe, Jane"
    assert rows["P-1002"][2] == "Lu-177 PSMA"
    assert rows["SYN-0001"][3] == "3" and rows["P-1003"][3] == "2"
    summaries = {s.patient_id: s for s in fake_store.list_cases()}
    modified = summaries["P-1003"].modified_at or summaries["P-1003"].created_at
    assert rows["P-1003"][4] == modified.strftime("%Y-%m-%d")
    assert sorted(w.visible_case_ids()) == sorted(s.case_id for s in summaries.values())
    assert w.table.isVisible() and not w.empty_label.isVisible()


def test_filter_keeps_matching_rows(qtbot, fake_store):
    w = _widget(qtbot, fake_store)
    qtbot.keyClicks(w.filter_edit, "doe")
    assert [r[0] for r in w.visible_rows()] == ["P-1002"]
    w.set_filter_text("LU-177")
    assert sorted(r[0] for r in w.visible_rows()) == ["P-1002", "SYN-0001"]
    w.set_filter_text("lu-177 psma")  # every word must match
    assert [r[0] for r in w.visible_rows()] == ["P-1002"]
    w.set_filter_text("nobody")
    assert w.visible_rows() == []
    w.set_filter_text("")
    assert len(w.visible_rows()) == 3


def test_enter_and_double_click_open_the_case(qtbot, fake_store):
    w = _widget(qtbot, fake_store)
    target = next(s.case_id for s in fake_store.list_cases() if s.patient_id == "P-1003")
    assert w.select_case(target)
    w.table.setFocus()
    with qtbot.waitSignal(w.caseActivated, timeout=2000) as blocker:
        qtbot.keyClick(w.table, Qt.Key.Key_Return)
    assert blocker.args == [target]

    w.set_filter_text("Synthetic")
    index = w.proxy.index(0, 1)
    rect = w.table.visualRect(index)
    with qtbot.waitSignal(w.caseActivated, timeout=2000) as blocker:
        qtbot.mouseClick(w.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(w.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [w.visible_case_ids()[0]]


def test_enter_in_the_filter_box_opens_the_only_match(qtbot, fake_store):
    w = _widget(qtbot, fake_store)
    qtbot.keyClicks(w.filter_edit, "Roe")
    with qtbot.waitSignal(w.caseActivated, timeout=2000) as blocker:
        qtbot.keyClick(w.filter_edit, Qt.Key.Key_Return)
    assert blocker.args == w.visible_case_ids()


def test_empty_store_shows_a_hint(qtbot):
    w = CaseListWidget()
    qtbot.addWidget(w)
    w.set_cases([])
    w.show()
    assert w.empty_label.isVisible()
    assert "Open demo case" in w.empty_label.text()


def test_person_names():
    assert format_person_name("Doe^Jane") == "Doe, Jane"
    assert format_person_name("Doe^Jane^Mary") == "Doe, Jane Mary"
    assert format_person_name("Anonymous") == "Anonymous"
    assert format_person_name("Doe^") == "Doe"
