"""The registration step: run, inspect each time point against the reference, accept or reject.

The view gathers input and shows what :mod:`app.steps.registration.model`
announces; the core computes (``register_case`` in a worker through
``session.run``, ``review_registration`` through ``session.change``, both in
:mod:`dosimetry_core.pipeline.registration`).  A physician or technologist sees everything with
every button that changes something disabled (``session.may("register")``).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.run_control import RunControl
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.registration.model import (
    COLUMNS,
    MODES,
    PLANES,
    CompareModel,
    Comparison,
    RegistrationModel,
    load_comparison,
)
from app.workers import Task
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model.case import Case
from dosimetry_core.pipeline.registration import register_case, review_registration

__all__ = ["BLINK_INTERVAL_MS", "RegistrationStepView"]

BLINK_INTERVAL_MS = 500
"""Blink period: reference and time point alternate every half second."""

_INVALID_STYLE = "border: 2px solid #d03030;"
_DIRTY_KEY = "registration-comment"


class RegistrationStepView(StepView):
    """Registration step (module docstring)."""

    step_id = "registration"
    title = "Registration"
    action = "register"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = RegistrationModel(None, False)
        self.compare = CompareModel()
        self._load_task: Task | None = None
        self._loading_id: str | None = None
        self._selected_id: str | None = None
        self._cache: dict[tuple[Any, ...], Comparison] = {}
        self._updating = False
        self._build()
        self._on_mode(0)
        session.caseChanged.connect(self._on_case_changed)
        session.userChanged.connect(self.refresh)
        self._blink_timer = QTimer(self)
        self._blink_timer.setInterval(BLINK_INTERVAL_MS)
        self._blink_timer.timeout.connect(self._toggle_blink)
        self.refresh()

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        root = QVBoxLayout(self)

        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Reference:"))
        self.reference_box = QComboBox(objectName="registrationReference")
        self.reference_box.setToolTip("Time point whose CT the others are registered to")
        run_row.addWidget(self.reference_box)
        self.deformable_box = QCheckBox("Deformable (demons) after rigid")
        self.deformable_box.setObjectName("registrationDeformable")
        run_row.addWidget(self.deformable_box)
        self.run_button = QPushButton("Run registration", objectName="registrationRun")
        self.run_button.clicked.connect(lambda: self._run(None, self.reference_box.currentText()))
        run_row.addWidget(self.run_button)
        self.redo_button = QPushButton("Redo selected", objectName="registrationRedo")
        self.redo_button.setToolTip("Register the selected (rejected) time point again")
        self.redo_button.clicked.connect(self._redo_selected)
        run_row.addWidget(self.redo_button)
        self.progress_bar = QProgressBar(objectName="registrationProgress")
        run_row.addWidget(self.progress_bar, 1)
        self.cancel_button = QPushButton("Cancel", objectName="registrationCancel")
        self.cancel_button.setToolTip("Stop the registration; nothing is saved")
        run_row.addWidget(self.cancel_button)
        root.addLayout(run_row)
        self.status_label = QLabel("", objectName="registrationStatus")
        root.addWidget(self.status_label)
        self.runner = RunControl(
            self,
            self.session,
            progress_bar=self.progress_bar,
            status_label=self.status_label,
            cancel_button=self.cancel_button,
            title="Registration",
            failed_text="Registration failed: nothing was saved.",
            cancelled_text="Registration cancelled: nothing was saved.",
            on_idle=self._update_buttons,
        )

        split = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(split, 1)

        top = QWidget()
        top_l = QVBoxLayout(top)
        top_l.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, len(COLUMNS), objectName="registrationTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selection)
        top_l.addWidget(self.table)
        self.summary_label = QLabel("", objectName="registrationSummary")
        top_l.addWidget(self.summary_label)

        review = QHBoxLayout()
        review.addWidget(QLabel("Comment:"))
        self.comment_edit = QLineEdit(objectName="registrationComment")
        self.comment_edit.setPlaceholderText("Why you accept or reject (required to reject)")
        self.comment_edit.textEdited.connect(self._on_comment_edited)
        review.addWidget(self.comment_edit, 1)
        self.accept_button = QPushButton("Accept", objectName="registrationAccept")
        self.accept_button.clicked.connect(lambda: self._review("accepted"))
        review.addWidget(self.accept_button)
        self.reject_button = QPushButton("Reject", objectName="registrationReject")
        self.reject_button.clicked.connect(lambda: self._review("rejected"))
        review.addWidget(self.reject_button)
        top_l.addLayout(review)
        split.addWidget(top)

        box = QGroupBox("Compare with the reference")
        box_l = QVBoxLayout(box)
        ctl = QHBoxLayout()
        self.mode_box = QComboBox(objectName="registrationMode")
        for m in MODES:
            self.mode_box.addItem(m.capitalize(), m)
        self.mode_box.currentIndexChanged.connect(self._on_mode)
        ctl.addWidget(self.mode_box)
        ctl.addWidget(QLabel("Square:"))
        self.square_spin = QDoubleSpinBox(objectName="registrationSquareMm")
        self.square_spin.setRange(2.0, 200.0)
        self.square_spin.setSingleStep(5.0)
        self.square_spin.setDecimals(0)
        self.square_spin.setSuffix(" mm")
        self.square_spin.setValue(self.compare.square_mm)
        self.square_spin.valueChanged.connect(self._on_square)
        ctl.addWidget(self.square_spin)
        self.blink_auto = QCheckBox(f"Blink every {BLINK_INTERVAL_MS / 1000:g} s")
        self.blink_auto.setObjectName("registrationBlinkAuto")
        self.blink_auto.toggled.connect(self._on_blink_auto)
        ctl.addWidget(self.blink_auto)
        self.blink_button = QPushButton("Toggle", objectName="registrationBlinkToggle")
        self.blink_button.setToolTip("Show the other image (reference / time point)")
        self.blink_button.clicked.connect(self._toggle_blink)
        ctl.addWidget(self.blink_button)
        self.plane_box = QComboBox(objectName="registrationPlane")
        for p in PLANES:
            self.plane_box.addItem(p.capitalize(), p)
        self.plane_box.currentIndexChanged.connect(self._on_plane)
        ctl.addWidget(self.plane_box)
        self.slice_slider = QSlider(Qt.Orientation.Horizontal, objectName="registrationSlice")
        self.slice_slider.valueChanged.connect(self._on_slice)
        ctl.addWidget(self.slice_slider, 1)
        self.outlines_box = QCheckBox("Outlines")
        self.outlines_box.setObjectName("registrationOutlines")
        self.outlines_box.setChecked(True)
        self.outlines_box.toggled.connect(self._on_outlines)
        ctl.addWidget(self.outlines_box)
        box_l.addLayout(ctl)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setObjectName("registrationCompare")
        self.view_box = self.plot.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        box_l.addWidget(self.plot, 1)
        self.caption_label = QLabel("", objectName="registrationCaption")
        box_l.addWidget(self.caption_label)
        split.addWidget(box)
        split.setSizes([260, 420])

    # ------------------------------------------------------------ refreshing
    def activated(self) -> None:
        self.refresh()

    def _on_case_changed(self, _case: Case | None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rebuild rows and buttons from the open case and the user's permission."""
        case = self.session.case
        self.model = RegistrationModel(case, self.session.may("register"))
        self._updating = True
        try:
            current_ref = self.reference_box.currentText()
            self.reference_box.clear()
            choices = self.model.reference_choices()
            self.reference_box.addItems(choices)
            keep = current_ref if current_ref in choices else self.model.reference_label
            if keep in choices:
                self.reference_box.setCurrentText(keep)
            self.table.setRowCount(len(self.model.rows))
            for i, row in enumerate(self.model.rows):
                for j, text in enumerate(row.cells()):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, row.time_point_id)
                    if j in (1, 2):
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    self.table.setItem(i, j, item)
            idx = self.model.index_of(self._selected_id)
            if idx < 0 and self.model.rows:
                idx = next((k for k, r in enumerate(self.model.rows) if not r.is_reference), 0)
            if idx >= 0:
                self.table.selectRow(idx)
                self._selected_id = self.model.rows[idx].time_point_id
            else:
                self.table.clearSelection()
                self._selected_id = None
        finally:
            self._updating = False
        self.summary_label.setText(self.model.summary())
        self._update_buttons()
        self._load_compare()

    def _update_buttons(self) -> None:
        running = self.runner.running
        acts = self.model.actions(self._selected_id)
        may = self.model.may_register
        self.run_button.setEnabled(self.model.can_run and not running)
        self.reference_box.setEnabled(self.model.can_run and not running)
        self.deformable_box.setEnabled(self.model.can_run and not running)
        self.redo_button.setEnabled(acts.redo and not running)
        self.accept_button.setEnabled(acts.accept and not running)
        self.reject_button.setEnabled(acts.reject and not running)
        self.comment_edit.setEnabled(may and (acts.accept or acts.reject) and not running)
        self.cancel_button.setEnabled(running)
        if not may and self.session.case is not None:
            self.run_button.setToolTip("Your role may look at registrations but not change them")
        else:
            self.run_button.setToolTip("Register every time point's CT to the reference CT")

    def selected_time_point_id(self) -> str | None:
        return self._selected_id

    def _on_selection(self) -> None:
        if self._updating:
            return
        items = self.table.selectedItems()
        self._selected_id = items[0].data(Qt.ItemDataRole.UserRole) if items else None
        self._mark_invalid(False)
        self._update_buttons()
        self._load_compare()

    # ------------------------------------------------------------------- run
    def _run(self, time_points: list[str] | None, reference: str) -> None:
        case, store = self.session.case, self.session.store
        if case is None or store is None or self.runner.running:
            return
        actor = self.session.actor
        what = (
            "all time points"
            if time_points is None
            else ", ".join(self.model.row(t).label for t in time_points)
        )
        self.runner.start(
            register_case,
            store,
            case.case_id,
            reference=reference or None,
            deformable=self.deformable_box.isChecked(),
            time_points=time_points,
            user=actor.username if actor is not None else "",
            busy_text=f"Registering {what}…",
            description="Registration",
            on_success=self._run_succeeded,
        )
        self._update_buttons()

    def _redo_selected(self) -> None:
        if self._selected_id is not None and self.model.actions(self._selected_id).redo:
            # a redo keeps the case's reference, whatever the reference box shows
            self._run([self._selected_id], self.model.reference_label)

    def cancel(self) -> None:
        """Stop the running registration (the core saves nothing when cancelled)."""
        self.runner.cancel()

    def is_running(self) -> bool:
        return self.runner.running

    def _run_succeeded(self, result: Any) -> None:
        n = sum(1 for s in result if s.status == "registered")
        skipped = [f"{s.label}: {s.message}" for s in result if s.status == "skipped"]
        text = f"Registered {n} time point(s); review each and accept or reject it."
        if skipped:
            text += " Skipped " + "; ".join(skipped)
        self.status_label.setText(text)

    # ---------------------------------------------------------------- review
    def _review(self, status: str) -> None:
        tp_id = self._selected_id
        if tp_id is None:
            return
        comment = self.comment_edit.text()
        try:
            self.session.change(review_registration, tp_id, status, comment)
        except DosimetryError as exc:
            self._mark_invalid(getattr(exc, "field", None) == "comment")
            error_display.show_error(self, "Registration review", str(exc))
            return
        self._mark_invalid(False)
        self.comment_edit.clear()
        self.session.set_dirty(_DIRTY_KEY, None)
        self.status_label.setText(f"{self.model.row(tp_id).label}: {status}")

    def _on_comment_edited(self, text: str) -> None:
        self._mark_invalid(False)
        self.session.set_dirty(
            _DIRTY_KEY, "a registration review comment not saved" if text.strip() else None
        )

    def _mark_invalid(self, invalid: bool) -> None:
        self.comment_edit.setProperty("invalid", invalid)
        self.comment_edit.setStyleSheet(_INVALID_STYLE if invalid else "")
        if invalid:
            self.comment_edit.setFocus()

    # --------------------------------------------------------------- compare
    def _cache_key(self, tp_id: str) -> tuple[Any, ...] | None:
        case = self.session.case
        if case is None:
            return None
        tp = case.time_point(tp_id)
        reg = tp.registration
        vois = tuple((v.voi_id, v.mask.key) for v in case.vois if v.time_point_id == tp_id)
        if reg is None:
            return (case.case_id, tp_id, None, vois)
        return (case.case_id, tp_id, tuple(map(tuple, reg.matrix_ref_to_tp)), reg.computed_at, vois)

    def _load_compare(self) -> None:
        tp_id = self._selected_id
        store, case = self.session.store, self.session.case
        if tp_id is None or case is None or store is None:
            self._show(None)
            return
        if not self.model.actions(tp_id).inspect:
            self._show(None)
            return
        key = self._cache_key(tp_id)
        if key in self._cache:
            self._show(self._cache[key])
            return
        if self._loading_id == tp_id:
            return
        self._loading_id = tp_id
        self.caption_label.setText("Resampling the time point onto the reference…")

        def loaded(comp: Comparison, key: tuple[Any, ...] | None = key) -> None:
            if key is not None:
                self._cache = {key: comp}  # one pair in memory is enough
            if self._selected_id == comp.time_point_id:
                self._show(comp)

        def failed(message: str, details: str) -> None:
            self.caption_label.setText(message)

        def finished() -> None:
            self._loading_id = None
            self._load_task = None
            if self._selected_id is not None and self._selected_id != tp_id:
                self._load_compare()

        self._load_task = self.session.run(
            load_comparison,
            store,
            case,
            tp_id,
            description="Compare",
            with_progress=False,
            reload_case=False,
            on_success=loaded,
            on_failure=failed,
        )
        self._load_task.finished.connect(finished)

    def is_loading(self) -> bool:
        """A compare pair is being resampled in a worker."""
        return self._load_task is not None

    def comparison_ready(self) -> bool:
        """The compare view shows the selected time point (for tests and the tour)."""
        c = self.compare.comparison
        return c is not None and c.time_point_id == self._selected_id and self._loading_id is None

    def _show(self, comp: Comparison | None) -> None:
        self.compare.set_comparison(comp)
        self._updating = True
        try:
            n = self.compare.n_slices
            self.slice_slider.setEnabled(n > 0)
            self.slice_slider.setRange(0, max(n - 1, 0))
            self.slice_slider.setValue(self.compare.index)
        finally:
            self._updating = False
        self._redraw()

    def _redraw(self) -> None:
        img = self.compare.image()
        self.image_item.setImage(img, autoLevels=False, levels=(0, 255))
        if self.compare.comparison is not None:
            w, h = self.compare.size_mm()
            self.image_item.setRect(QRectF(0.0, 0.0, w, h))
            self.view_box.autoRange(padding=0.0)
        self.caption_label.setText(self.compare.caption())

    def _on_mode(self, _i: int) -> None:
        self.compare.set_mode(self.mode_box.currentData())
        self.square_spin.setEnabled(self.compare.mode == "checkerboard")
        blink = self.compare.mode == "blink"
        self.blink_button.setEnabled(blink)
        self.blink_auto.setEnabled(blink)
        if not blink:
            self.blink_auto.setChecked(False)
        self._redraw()

    def _on_square(self, value: float) -> None:
        self.compare.square_mm = float(value)
        self._redraw()

    def _on_plane(self, _i: int) -> None:
        self.compare.set_plane(self.plane_box.currentData())
        self._show(self.compare.comparison)

    def _on_slice(self, value: int) -> None:
        if self._updating:
            return
        self.compare.index = int(value)
        self._redraw()

    def _on_outlines(self, on: bool) -> None:
        self.compare.show_outlines = bool(on)
        self._redraw()

    def _on_blink_auto(self, on: bool) -> None:
        if on:
            self._blink_timer.start()
        else:
            self._blink_timer.stop()

    def hideEvent(self, event: Any) -> None:
        self.blink_auto.setChecked(False)  # no timer redrawing a hidden view
        super().hideEvent(event)

    def _toggle_blink(self) -> None:
        self.compare.toggle_blink()
        self._redraw()
