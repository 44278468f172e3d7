"""The import step: choose a DICOM folder, import it in a worker, read the summary, open a case.

The view gathers the folder and the calibration factor and shows what
:class:`app.steps.importing.model.ImportModel` announces; the core does the
work (:func:`dosimetry_core.pipeline.importing.import_directory` through
``session.run``, with progress and Cancel).  Only a role that may import
(``session.may("import")``) gets the controls enabled; the core refuses the
others as well.  File › Import calls :meth:`ImportStepView.ask_folder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common import error_display
from app.common.pacs import ReceivePanel
from app.session import CaseSession
from app.steps.base import StepView
from app.steps.importing.model import ImportModel, SummaryNode
from app.workers import Task
from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.pipeline.importing import import_directory

__all__ = ["ImportStepView"]

_INVALID_STYLE = "border: 2px solid #d03030;"
_CASE_ROLE = Qt.ItemDataRole.UserRole
_KIND_ROLE = Qt.ItemDataRole.UserRole + 1


class ImportStepView(StepView):
    """Import step (module docstring)."""

    step_id = "importing"
    title = "Import"
    action = "import"

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.model = ImportModel()
        self.task: Task | None = None
        self._calibration_invalid = False

        self.folder_edit = QLineEdit(objectName="import-folder")
        self.folder_edit.setPlaceholderText("DICOM folder (searched with its sub-folders)")
        self.choose_button = QPushButton("Choose folder…", objectName="import-choose")
        self.calibration_edit = QLineEdit(objectName="import-calibration")
        self.calibration_edit.setPlaceholderText("cps/MBq, for count-based SPECT only")
        self.calibration_edit.setToolTip(
            "Camera calibration factor applied to SPECT series stored in counts; "
            "series in Bq/mL ignore it. Empty: the calibration stored in QA, if any."
        )
        self.import_button = QPushButton("Import", objectName="import-run")
        self.cancel_button = QPushButton("Cancel", objectName="import-cancel")
        self.progress = QProgressBar(objectName="import-progress")
        self.progress.setRange(0, 1000)
        self.status_label = QLabel(objectName="import-status")
        self.status_label.setWordWrap(True)
        self.permission_label = QLabel(objectName="import-permission")
        self.permission_label.setStyleSheet("color: #a05000;")
        self.tree = QTreeWidget(objectName="import-summary")
        self.tree.setHeaderLabels(["Summary"])
        self.tree.setUniformRowHeights(True)
        self.open_button = QPushButton("Open case", objectName="import-open")

        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Folder:"))
        row1.addWidget(self.folder_edit, 1)
        row1.addWidget(self.choose_button)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Calibration factor (cps/MBq):"))
        row2.addWidget(self.calibration_edit)
        row2.addStretch(1)
        row2.addWidget(self.import_button)
        row3 = QHBoxLayout()
        row3.addWidget(self.progress, 1)
        row3.addWidget(self.cancel_button)
        row4 = QHBoxLayout()
        row4.addStretch(1)
        row4.addWidget(self.open_button)
        folder_tab = QWidget()
        layout = QVBoxLayout(folder_tab)
        layout.addWidget(self.permission_label)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.status_label)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row4)
        # the same import from the hospital's PACS (C-FIND, then C-GET or C-MOVE)
        self.pacs_panel = ReceivePanel(session)
        self.tabs = QTabWidget(objectName="import-tabs")
        self.tabs.addTab(folder_tab, "From a folder")
        self.tabs.addTab(self.pacs_panel, "Receive from PACS")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)

        self.choose_button.clicked.connect(self.ask_folder)
        self.import_button.clicked.connect(self.start_import)
        self.cancel_button.clicked.connect(self.cancel_import)
        self.open_button.clicked.connect(self.open_selected_case)
        self.tree.itemSelectionChanged.connect(self._update_enabled)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected_case())
        self.folder_edit.textEdited.connect(lambda _t: self._clear_invalid(self.folder_edit))
        self.calibration_edit.textEdited.connect(self._check_calibration_as_typed)
        self.model.subscribe(self._show_model)
        session.userChanged.connect(self._update_enabled)
        session.storeChanged.connect(self._update_enabled)
        self._show_model()

    # ------------------------------------------------------------- actions
    def ask_folder(self) -> None:
        """Ask for a folder with the file dialog, then import it (File › Import)."""
        if not self._may_import():
            return
        start = self.folder_edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Import DICOM folder", start)
        if folder:
            self.import_folder(folder)

    def import_folder(self, path: str | Path) -> None:
        """Put ``path`` in the folder box and import it (what the file dialog leads to)."""
        self.folder_edit.setText(str(path))
        self._clear_invalid(self.folder_edit)
        self.start_import()

    def start_import(self) -> None:
        """Check the inputs and run the import in a worker (Import button)."""
        if self.model.running or not self._may_import():
            return
        store = self.session.store
        if store is None:
            error_display.show_error(self, "Import", "No case store is open (File › Open store…).")
            return
        try:
            folder, _ = self.model.check(self.folder_edit.text(), self.calibration_edit.text())
        except InvalidInputError as exc:
            self._refuse(exc)
            return
        self.model.started()
        self.task = self.session.run(
            import_directory,
            store,
            folder,
            description=f"import {folder.name}",
            on_success=self._succeeded,
            on_failure=self._failed,
            on_progress=self.model.progressed,
            on_cancelled=self.model.cancelled,
            reload_case=False,
            **self.model.job_kwargs(),
        )
        self.task.finished.connect(self._task_finished)
        self._update_enabled()

    def cancel_import(self) -> None:
        if self.task is not None and not self.task.is_done():
            self.task.cancel()
            self.status_label.setText("Cancelling…")

    def open_selected_case(self) -> None:
        """Open the case of the selected summary line (else the first imported case)."""
        case_id = self.selected_case_id()
        if not case_id:
            return
        try:
            self.session.open_case(case_id)
        except DosimetryError as exc:
            error_display.show_error(self, "Open case", str(exc))

    def selected_case_id(self) -> str:
        items = self.tree.selectedItems()
        if items:
            case_id = str(items[0].data(0, _CASE_ROLE) or "")
            if case_id:
                return case_id
        ids = self.model.case_ids
        return ids[0] if ids else ""

    # ------------------------------------------------------------ outcomes
    def _succeeded(self, report: Any) -> None:
        self.model.finished(report)
        self.session.notify_case_list_changed()
        open_case = self.session.case
        if open_case is not None and open_case.case_id in self.model.case_ids:
            self.session.reload()  # the import added time points or VOIs to the open case
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))

    def _failed(self, message: str, details: str) -> None:
        self.model.failed(message)
        error_display.show_error(self, "Import", message, details)

    def _task_finished(self) -> None:
        self.task = None
        self._update_enabled()

    def _refuse(self, exc: InvalidInputError) -> None:
        box = {"folder": self.folder_edit, "calibration_cps_per_mbq": self.calibration_edit}.get(
            exc.field or ""
        )
        if box is not None:
            box.setStyleSheet(_INVALID_STYLE)
            box.setToolTip(str(exc))
            box.setFocus()
        self.status_label.setText(str(exc))
        error_display.show_error(self, "Import", str(exc))

    def _check_calibration_as_typed(self, text: str) -> None:
        try:
            ImportModel.parse_calibration(text)
        except InvalidInputError as exc:
            self._calibration_invalid = True
            self.calibration_edit.setStyleSheet(_INVALID_STYLE)
            self.calibration_edit.setToolTip(str(exc))
            self.status_label.setText(str(exc))
        else:
            self._calibration_invalid = False
            self._clear_invalid(self.calibration_edit)
            self.status_label.setText(self.model.status)
        self._update_enabled()

    @staticmethod
    def _clear_invalid(box: QLineEdit) -> None:
        box.setStyleSheet("")
        box.setToolTip("")

    # --------------------------------------------------------------- state
    def activated(self) -> None:
        self._update_enabled()

    def _may_import(self) -> bool:
        return self.session.store is not None and self.session.may("import")

    def _update_enabled(self) -> None:
        may = self._may_import()
        running = self.model.running
        for w in (self.folder_edit, self.choose_button, self.calibration_edit):
            w.setEnabled(may and not running)
        self.import_button.setEnabled(may and not running and not self._calibration_invalid)
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(bool(self.selected_case_id()) and not running)
        if self.session.store is None:
            self.permission_label.setText("No case store is open.")
        elif not may:
            self.permission_label.setText(
                f"{self.session.user_label()} may not import studies "
                "(a technologist or physicist imports)."
            )
        else:
            self.permission_label.setText("")
        self.permission_label.setVisible(bool(self.permission_label.text()))

    def _show_model(self) -> None:
        m = self.model
        self.progress.setValue(round(m.progress_fraction * 1000))
        self.status_label.setText(m.status)
        if not m.running:
            self._fill_tree(m.summary())
        self._update_enabled()

    def _fill_tree(self, nodes: list[SummaryNode]) -> None:
        self.tree.clear()

        def add(parent: QTreeWidget | QTreeWidgetItem, node: SummaryNode) -> None:
            item = QTreeWidgetItem([node.text])
            item.setData(0, _CASE_ROLE, node.case_id)
            item.setData(0, _KIND_ROLE, node.kind)
            item.setToolTip(0, node.text)
            if isinstance(parent, QTreeWidget):
                parent.addTopLevelItem(item)
            else:
                parent.addChild(item)
            for child in node.children:
                add(item, child)
            item.setExpanded(node.kind == "case")

        for node in nodes:
            add(self.tree, node)

    # -------------------------------------------------------- read-back
    def shown_lines(self, kind: str) -> list[str]:
        """Texts of the summary lines of one kind, as on screen (tests and the tour)."""
        out: list[str] = []

        def walk(item: QTreeWidgetItem) -> None:
            if item.data(0, _KIND_ROLE) == kind:
                out.append(item.text(0))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out
