"""PACS panels: "Receive from PACS" (find by Patient ID, retrieve) and "Send results".

Widgets only: every DICOM exchange is a core call of
:mod:`dosimetry_core.pipeline.pacs` run in a worker through
:meth:`app.session.CaseSession.run` (the event loop never waits on the network).
The peer fields start from the store's saved peer (``<store folder>/pacs.json``,
the file ``mrtdose pacs ... --save-peer`` writes); "Save peer" writes it back.
A refusal (bad field, unreachable PACS, failed C-STORE) is shown in the panel's
red line, naming the field or the instance, and nothing else changes.

Permissions: Retrieve needs ``import``, Send needs ``export``
(:meth:`CaseSession.may`); the buttons are disabled otherwise, with the reason
in their tooltip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common.error_display import inline_error_label
from app.common.widgets import named, read_only_table
from app.session import CaseSession
from dosimetry_core.errors import DosimetryError
from dosimetry_core.pipeline.pacs import PacsPeer, StudyMatch

__all__ = ["PeerForm", "ReceivePanel", "SendPanel", "peer_file"]

PEER_FILENAME = "pacs.json"


def peer_file(session: CaseSession) -> Path | None:
    """The saved peer of the session's store (``<store folder>/pacs.json``), or None."""
    store = session.store
    path = getattr(store, "path", None)
    return Path(path) / PEER_FILENAME if path is not None else None


class PeerForm(QWidget):
    """Host, port, the PACS's AE title and ours; filled from the saved peer."""

    def __init__(self, session: CaseSession, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName(name)
        self.host = named(QLineEdit(), f"{name}Host")
        self.port = named(QSpinBox(), f"{name}Port")
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.called_ae = named(QLineEdit(), f"{name}CalledAe")
        self.ae_title = named(QLineEdit("MRTDOSE"), f"{name}AeTitle")
        self.save = named(QPushButton("Save peer"), f"{name}Save")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("PACS host", self.host)
        form.addRow("PACS port", self.port)
        form.addRow("PACS AE title", self.called_ae)
        form.addRow("Our AE title", self.ae_title)
        form.addRow("", self.save)
        self.on_error: Callable[[str], None] = lambda _m: None
        """Told a refusal of Save peer (the panel shows it in its red line)."""
        self.on_saved: Callable[[str], None] = lambda _m: None
        self.save.clicked.connect(self._save)
        self.load()

    def load(self) -> None:
        """Fill the fields from the saved peer, if there is one (a bad file is ignored)."""
        from dosimetry_core.pipeline.pacs import load_peer

        path = peer_file(self.session)
        if path is None or not path.is_file():
            return
        try:
            self.set_peer(load_peer(path))
        except DosimetryError:
            return

    def set_peer(self, peer: PacsPeer) -> None:
        self.host.setText(peer.host)
        self.port.setValue(int(peer.port))
        self.called_ae.setText(peer.called_ae)
        self.ae_title.setText(peer.ae_title)

    def peer(self) -> PacsPeer:
        """The peer of the fields (raises InvalidInputError naming the field)."""
        return PacsPeer(
            host=self.host.text().strip(),
            port=int(self.port.value()),
            called_ae=self.called_ae.text().strip(),
            ae_title=self.ae_title.text().strip(),
        ).checked()

    def _save(self) -> None:
        from dosimetry_core.pipeline.pacs import save_peer

        path = peer_file(self.session)
        if path is None:
            return
        try:
            save_peer(self.peer(), path)
        except DosimetryError as exc:
            self.on_error(str(exc))
        except OSError as exc:
            self.on_error(f"cannot save the PACS peer to {path}: {exc.strerror or exc}")
        else:
            self.on_saved(f"PACS peer saved to {path}")


class _Panel(QWidget):
    """Shared: a peer form, a status line, a red refusal line, one running task."""

    def __init__(self, session: CaseSession, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName(name)
        self.peer_form = PeerForm(session, f"{name}Peer", self)
        self.status = named(QLabel(""), f"{name}Status")
        self.status.setWordWrap(True)
        self.error = inline_error_label(self, f"{name}Error")
        self.task: Any = None
        self.peer_form.on_error = self._refuse
        self.peer_form.on_saved = self._saved_peer

    def _saved_peer(self, message: str) -> None:
        self._clear()
        self.status.setText(message)

    def _refuse(self, message: str, _details: str = "") -> None:
        self.task = None
        self.error.setText(message)
        self.error.show()
        self._update()

    def _clear(self) -> None:
        self.error.hide()
        self.error.setText("")

    def _peer(self) -> PacsPeer | None:
        try:
            return self.peer_form.peer()
        except DosimetryError as exc:
            self._refuse(str(exc))
            return None

    def _update(self) -> None:  # pragma: no cover - overridden
        pass


class ReceivePanel(_Panel):
    """Find the studies of a Patient ID on the PACS; retrieve the selected one and import it."""

    COLUMNS = ("Date", "Time", "Description", "Modalities", "Study Instance UID")

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, "pacsReceive", parent)
        self.patient_id = named(QLineEdit(), "pacsPatientId")
        self.patient_id.setPlaceholderText("Patient ID")
        self.find_button = named(QPushButton("Find"), "pacsFind")
        self.studies = read_only_table("pacsStudies", self.COLUMNS)
        self.method = named(QComboBox(), "pacsMethod")
        self.method.addItem("C-GET", "get")
        self.method.addItem("C-MOVE to our AE", "move")
        self.move_port = named(QSpinBox(), "pacsMovePort")
        self.move_port.setRange(1, 65535)
        self.move_port.setValue(11113)
        self.move_port.setToolTip("port the PACS has for our AE title (C-MOVE)")
        self.retrieve = named(QPushButton("Retrieve and import"), "pacsRetrieve")
        self._matches: list[StudyMatch] = []

        top = QHBoxLayout()
        top.addWidget(QLabel("Patient ID"))
        top.addWidget(self.patient_id, 1)
        top.addWidget(self.find_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.method)
        bottom.addWidget(QLabel("port"))
        bottom.addWidget(self.move_port)
        bottom.addStretch(1)
        bottom.addWidget(self.retrieve)
        lay = QVBoxLayout(self)
        lay.addWidget(self.peer_form)
        lay.addLayout(top)
        lay.addWidget(self.studies, 1)
        lay.addLayout(bottom)
        lay.addWidget(self.status)
        lay.addWidget(self.error)

        self.find_button.clicked.connect(self.on_find)
        self.patient_id.returnPressed.connect(self.on_find)
        self.retrieve.clicked.connect(self.on_retrieve)
        self.studies.itemSelectionChanged.connect(self._update)
        self.method.currentIndexChanged.connect(self._update)
        self.patient_id.textChanged.connect(self._update)
        session.userChanged.connect(self._update)
        session.storeChanged.connect(self._update)
        self._update()

    # -------------------------------------------------------------- actions
    def on_find(self) -> None:
        from dosimetry_core.pipeline.pacs import find_studies

        if self.task is not None or not self.find_button.isEnabled():
            return
        self._clear()
        peer = self._peer()
        if peer is None:
            return
        self.status.setText(f"asking {peer.words()}...")
        self.task = self.session.run(
            find_studies,
            peer,
            self.patient_id.text(),
            description="PACS C-FIND",
            with_progress=False,
            reload_case=False,
            on_success=self._found,
            on_failure=self._refuse,
        )
        self._update()

    def _found(self, matches: list[StudyMatch]) -> None:
        self.task = None
        self._matches = list(matches)
        self.studies.setRowCount(0)
        for m in self._matches:
            row = self.studies.rowCount()
            self.studies.insertRow(row)
            for col, text in enumerate(
                (
                    m.study_date,
                    m.study_time[:6],
                    m.study_description,
                    ", ".join(m.modalities),
                    m.study_instance_uid,
                )
            ):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.studies.setItem(row, col, item)
        if self._matches:
            self.studies.selectRow(0)
        self.status.setText(
            f"{len(self._matches)} study(ies) of patient {self.patient_id.text().strip()}"
        )
        self._update()

    def selected_study(self) -> StudyMatch | None:
        rows = self.studies.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._matches):
            return None
        return self._matches[rows[0].row()]

    def on_retrieve(self) -> None:
        from dosimetry_core.pipeline.pacs import retrieve_study

        study = self.selected_study()
        if self.task is not None or study is None or not self.retrieve.isEnabled():
            return
        self._clear()
        peer = self._peer()
        if peer is None:
            return
        self.status.setText(f"retrieving study {study.study_date} {study.study_description}...")
        self.task = self.session.run(
            retrieve_study,
            self.session.store,
            peer,
            study.study_instance_uid,
            method=str(self.method.currentData()),
            move_port=int(self.move_port.value()),
            description="PACS retrieve",
            reload_case=False,
            on_success=self._retrieved,
            on_failure=self._refuse,
            on_progress=lambda f, msg: self.status.setText(msg),
        )
        self._update()

    def _retrieved(self, result: Any) -> None:
        self.task = None
        rep = result.import_report
        lines = [f"{result.stored} instance(s) received"]
        if rep is not None:
            lines += rep.summary_lines()
        self.status.setText("\n".join(lines))
        self.session.notify_case_list_changed()
        self._update()

    def _update(self) -> None:
        idle = self.task is None
        has_store = self.session.store is not None
        self.find_button.setEnabled(idle and has_store and bool(self.patient_id.text().strip()))
        may_import = self.session.may("import")
        self.retrieve.setEnabled(idle and may_import and self.selected_study() is not None)
        self.retrieve.setToolTip("" if may_import else "your role may not import")
        self.move_port.setEnabled(self.method.currentData() == "move")


class SendPanel(_Panel):
    """Send the open case's results (RT Dose, SEG/RTSTRUCT, signed report) to the PACS."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(session, "pacsSend", parent)
        self.rtdose = named(QCheckBox("RT Dose"), "pacsSendRtdose")
        self.seg = named(QCheckBox("SEG"), "pacsSendSeg")
        self.rtstruct = named(QCheckBox("RTSTRUCT"), "pacsSendRtstruct")
        self.report = named(QCheckBox("Signed report (PDF)"), "pacsSendReport")
        for box in (self.rtdose, self.seg, self.report):
            box.setChecked(True)
        self.ct_dir = named(QLineEdit(), "pacsSendCtDir")
        self.ct_dir.setPlaceholderText("folder of the original CT (optional)")
        self.send = named(QPushButton("Send results"), "pacsSendButton")
        self.case_label = named(QLabel(""), "pacsSendCase")
        row = QHBoxLayout()
        for box in (self.rtdose, self.seg, self.rtstruct, self.report):
            row.addWidget(box)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.peer_form)
        lay.addWidget(self.case_label)
        lay.addLayout(row)
        lay.addWidget(self.ct_dir)
        lay.addWidget(self.send)
        lay.addWidget(self.status)
        lay.addWidget(self.error)
        lay.addStretch(1)
        self.send.clicked.connect(self.on_send)
        session.caseChanged.connect(lambda _c: self._update())
        session.userChanged.connect(self._update)
        self._update()

    def on_send(self) -> None:
        from dosimetry_core.pipeline.pacs import send_case

        case = self.session.case
        if self.task is not None or case is None or not self.send.isEnabled():
            return
        self._clear()
        peer = self._peer()
        if peer is None:
            return
        ct_dir = self.ct_dir.text().strip() or None
        self.status.setText(f"sending case {case.case_id} to {peer.words()}...")
        self.task = self.session.run(
            send_case,
            self.session.store,
            peer,
            case.case_id,
            rtdose=self.rtdose.isChecked(),
            seg=self.seg.isChecked(),
            rtstruct=self.rtstruct.isChecked(),
            report=self.report.isChecked(),
            ct_dir=ct_dir,
            description="PACS send",
            reload_case=False,
            on_success=self._sent,
            on_failure=self._refuse,
            on_progress=lambda f, msg: self.status.setText(msg),
        )
        self._update()

    def _sent(self, result: Any) -> None:
        self.task = None
        lines = [f"sent {len(result.instances)} instance(s) to {result.peer}"]
        lines += [f"  {i.kind} {i.sop_instance_uid}" for i in result.instances]
        lines += [f"warning: {w}" for w in result.warnings]
        self.status.setText("\n".join(lines))
        self._update()

    def _update(self) -> None:
        case = self.session.case
        self.case_label.setText(
            f"Case {case.case_id} · {case.patient.name} ({case.patient.patient_id})"
            if case is not None
            else "No case open"
        )
        may = self.session.may("export")
        self.send.setEnabled(self.task is None and may and self.session.case is not None)
        self.send.setToolTip("" if may else "your role may not export")
