"""The case list shows the store's worklist, filters it, and opens a case on Enter or double-click.

The status filters are the core's rule; here with a real store: "Missing
administration" shows only such cases, "Awaiting my approval" shows the case
with submitted VOIs to a physician and nothing to a physicist.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.common.case_list import CaseListWidget, format_person_name


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
    assert rows["P-1003"][4] == "yes" and rows["P-1003"][5] == "–"  # administration, no report
    summaries = {s.patient_id: s for s in fake_store.list_cases()}
    modified = summaries["P-1003"].modified_at or summaries["P-1003"].created_at
    assert rows["P-1003"][6] == modified.strftime("%Y-%m-%d")
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
    w.set_rows([])
    w.show()
    assert w.empty_label.isVisible()
    assert "Open demo case" in w.empty_label.text()


def test_person_names():
    assert format_person_name("Doe^Jane") == "Doe, Jane"
    assert format_person_name("Doe^Jane^Mary") == "Doe, Jane Mary"
    assert format_person_name("Anonymous") == "Anonymous"
    assert format_person_name("Doe^") == "Doe"


def _real_store(tmp_path):
    import numpy as np

    from dosimetry_core.model import VOI, Geometry, VoiKind, VoiStatus, Volume
    from dosimetry_core.pipeline.cases import create_case
    from dosimetry_core.store import CaseStore
    from tests.core.reporting._synthetic import synthetic_case

    store = CaseStore(tmp_path / "s")
    bare = create_case(store, "P-BARE", "Bare^Case", protocol_id="lu177-dotatate").case_id
    full = synthetic_case(store, "P-FULL", 0.5)
    case = store.load_case(full)
    geom = Geometry(shape_zyx=(2, 2, 2), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0))
    mask = store.put_volume(Volume(np.ones((2, 2, 2), dtype=np.uint8), geom))
    case.vois.append(VOI("Kidney_L", VoiKind.ORGAN, mask, status=VoiStatus.SUBMITTED))
    store.save_case(case, audit=store.audit_spec("contour"))
    return store, bare, full


def test_status_filters_show_only_their_cases(qtbot, tmp_path):
    from dosimetry_core.store.permissions import Actor

    store, bare, full = _real_store(tmp_path)
    w = CaseListWidget()
    qtbot.addWidget(w)
    w.show()
    w.refresh_from(store, Actor("dr.md", "physician"))
    assert sorted(w.visible_case_ids()) == sorted([bare, full])
    labels = [w.status_filter.itemText(i) for i in range(w.status_filter.count())]
    assert labels == ["All", "Awaiting my approval", "Missing administration", "Unsigned"]
    w.status_filter.setCurrentIndex(labels.index("Missing administration"))
    assert w.visible_case_ids() == [bare]
    assert [r[4] for r in w.visible_rows()] == ["no"]
    w.status_filter.setCurrentIndex(labels.index("Awaiting my approval"))
    assert w.visible_case_ids() == [full]
    w.status_filter.setCurrentIndex(labels.index("Unsigned"))
    assert sorted(w.visible_case_ids()) == sorted([bare, full])
    # a physicist may not approve contours: nothing awaits their approval, and the list says so
    w.refresh_from(store, Actor("alice", "physicist"))
    w.set_status_filter("awaiting-approval")
    assert w.visible_case_ids() == []
    assert "awaiting my approval" in w.placeholder_text()
    w.set_status_filter("all")
    assert len(w.visible_case_ids()) == 2
    store.close()
