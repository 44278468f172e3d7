"""The main window: a shell around the case session.

Left, the case list (the core's worklist with its filters).  In the middle, the
case header (patient, administration, protocol and the protocol's checklist),
the step navigation (Import → Data entry → Registration → Contouring →
Kinetics → Dose → Review & sign → QA, showing the steps whose view exists)
and a splitter with the viewer and the step panel.  Below, the status bar:
who is logged in and in which role, the viewer's readout under the cursor, a
progress bar while a session job runs, and the session's messages.

The window holds no physics and never saves: opening, creating and changing
cases goes through :class:`app.session.CaseSession`; every error reaches the
user through :mod:`app.common.error_display`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDockWidget,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import dosimetry_core
from app.common import error_display
from app.common.case_list import CaseListWidget, format_person_name
from app.session import CaseSession
from app.steps.base import STEP_ORDER, StepView
from app.viewer.panel import ViewerPanel
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import CalibrationStatus, Case, TimePoint
from dosimetry_core.physics.decay import net_administered_activity_mbq

log = logging.getLogger(__name__)

APP_NAME = "MRT Dosimetry"

STEP_TITLES: dict[str, str] = {
    "importing": "Import",
    "entry": "Data entry",
    "registration": "Registration",
    "contouring": "Contouring",
    "kinetics": "Kinetics",
    "dose": "Dose",
    "protocol": "Protocol run",
    "review": "Review and sign",
    "qa": "QA",
}

__all__ = ["APP_NAME", "CaseHeader", "MainWindow", "discover_steps"]


# ------------------------------------------------------------------- helpers
def _fmt_dt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "–"


def _fmt_mbq(value: float | None) -> str:
    return f"{value:,.1f} MBq" if value is not None else "–"


def discover_steps() -> tuple[list[type[StepView]], list[str]]:
    """The step views that exist, in workflow order, and why any failed to load.

    A step exists when ``app.steps.<id>.view`` imports and defines a
    :class:`~app.steps.base.StepView` subclass.  A package without ``view.py``
    is simply not shown; a ``view.py`` that fails to import is reported (not
    hidden) in the second list.
    """
    views: list[type[StepView]] = []
    problems: list[str] = []
    for step_id in STEP_ORDER:
        name = f"app.steps.{step_id}.view"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in (f"app.steps.{step_id}", name):
                continue
            log.exception("step %s cannot be loaded", step_id)
            problems.append(f"{step_id}: {exc}")
            continue
        except Exception as exc:  # a bug in a step must not stop the workstation
            log.exception("step %s cannot be loaded", step_id)
            problems.append(f"{step_id}: {type(exc).__name__}: {exc}")
            continue
        found = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, StepView)
            and obj is not StepView
            and obj.__module__ == name
        ]
        if found:
            views.append(found[0])
    return views, problems


# ---------------------------------------------------------------- header
class CaseHeader(QFrame):
    """Patient, administration, protocol with its checklist, and the time point on screen."""

    FIELDS = (
        ("patient", "Patient"),
        ("administration", "Administration"),
        ("activity", "Administered"),
        ("protocol", "Protocol"),
        ("acquired", "Acquired"),
        ("calibration", "Calibration"),
        ("units", "Voxel units"),
        ("total", "Total in FOV"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("caseHeader")
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(0)
        layout_rows = (
            ("patient", "administration", "activity", "protocol"),
            ("acquired", "calibration", "units", "total"),
        )
        titles = dict(self.FIELDS)
        for r, keys in enumerate(layout_rows):
            for c, key in enumerate(keys):
                cap = QLabel(titles[key], self)
                cap.setObjectName("caption")
                val = QLabel("–", self)
                val.setObjectName("value")
                val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                # long values must not widen the window past the screen (the tooltip has them)
                val.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                val.setMinimumWidth(60)
                grid.addWidget(cap, 2 * r, c)
                grid.addWidget(val, 2 * r + 1, c)
                self._values[key] = val
        for c in range(4):
            grid.setColumnStretch(c, 1)
        self.checklist_label = QLabel("", self)
        self.checklist_label.setObjectName("checklist")
        self.checklist_label.setWordWrap(True)
        self.checklist_label.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.checklist_label, 4, 0, 1, 5)
        self.warning_label = QLabel(self)
        self.warning_label.setObjectName("warning")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        grid.addWidget(self.warning_label, 5, 0, 1, 5)
        self.checklist: list[dict[str, Any]] = []
        self.set_case(None)

    def value(self, key: str) -> str:
        """Text shown for a field (see :attr:`FIELDS`)."""
        return self._values[key].text()

    def _set(self, key: str, text: str) -> None:
        self._values[key].setText(text)
        self._values[key].setToolTip(text)

    def set_case(self, case: Case | None) -> None:
        for lab in self._values.values():
            lab.setText("–")
        self.checklist = []
        self.checklist_label.setText("")
        if case is None:
            self._set("patient", "No case open")
            self.set_time_point(None, None)
            return
        p = case.patient
        name = format_person_name(p.name) or "(no name)"
        self._set("patient", f"{name}  ({p.patient_id})")
        adm = case.first_administration
        if adm is None:
            self._set("administration", "not recorded")
        else:
            rp = adm.radiopharmaceutical
            what = (
                rp
                if adm.nuclide and adm.nuclide in rp
                else " ".join(s for s in (adm.nuclide, rp) if s)
            )
            cycle = (
                f" · cycle {adm.cycle}" if len(case.administrations) > 1 or adm.cycle > 1 else ""
            )
            self._set("administration", f"{what} · {_fmt_dt(adm.time)}{cycle}")
            text = _fmt_mbq(adm.activity_mbq)
            if adm.residual_activity_mbq:
                text += f" (net {_fmt_mbq(net_administered_activity_mbq(adm))})"
            self._set("activity", text)
        self._set_protocol(case)
        self.set_time_point(None, None)

    def _set_protocol(self, case: Case) -> None:
        from dosimetry_core.protocols.registry import checklist, load_protocol

        if not case.protocol:
            self._set("protocol", "none chosen")
            self.checklist_label.setText("No protocol: its checklist appears once one is chosen.")
            return
        try:
            protocol = load_protocol(case.protocol)
        except DosimetryError:
            self._set("protocol", case.protocol)
            self.checklist_label.setText(
                f"{case.protocol!r} is not a protocol of this installation: no checklist."
            )
            return
        self._set("protocol", protocol.id)
        self.checklist = checklist(case, protocol)
        have = [i["item"] for i in self.checklist if i["present"]]
        missing = [
            f"{i['item']} ({i['detail']})" + ("" if i["required"] else " optional")
            for i in self.checklist
            if not i["present"]
        ]
        lines = [f"{protocol.name} needs {len(self.checklist)} item(s); present: {len(have)}."]
        lines.append("Missing: " + "; ".join(missing) if missing else "Nothing is missing.")
        self.checklist_label.setText("\n".join(lines))

    def set_time_point(self, case: Case | None, tp: TimePoint | None) -> None:
        for key in ("acquired", "calibration", "units", "total"):
            self._values[key].setText("–")
        self.warning_label.hide()
        if case is None or tp is None:
            return
        hours = case.hours_after_administration(tp)
        after = f" ({hours:.1f} h p.i.)" if hours is not None else ""
        self._set("acquired", f"{_fmt_dt(tp.acquired_at)}{after} · {tp.modality}")
        f = tp.functional
        cal = str(f.calibration_status)
        if f.cps_per_mbq:
            cal += f" ({f.cps_per_mbq:.3g} cps/MBq)"
        self._set("calibration", cal)
        self._set("units", str(tp.units))
        self._set("total", _fmt_mbq(tp.total_activity_mbq))
        if f.calibration_status == CalibrationStatus.UNCALIBRATED:
            self.warning_label.setText(
                "This series is not calibrated: voxel values are counts, "
                "not activity concentration."
            )
            self.warning_label.show()


# ------------------------------------------------------------ main window
class MainWindow(QMainWindow):
    """The workstation window over one case session (module docstring).

    Parameters
    ----------
    store
        A case store (:class:`dosimetry_core.store.CaseStore` or the same
        methods); None opens the window without a store.  Ignored when
        ``session`` is given.
    store_path
        Shown in the title, the log-in dialog and the About box.
    store_opener
        ``opener(path) -> store`` used by File › Open store….
    session
        The session to show (default: a new one over ``store``).
    """

    STEP_PANEL_WIDTH = 420
    """Width (px) the step panel gets when a step is chosen and it was narrower."""

    caseOpened = Signal(str)
    """A case was opened and its header filled (argument: case id)."""

    def __init__(
        self,
        store: Any = None,
        store_path: str | Path | None = None,
        store_opener: Callable[[Path], Any] | None = None,
        parent: QWidget | None = None,
        *,
        session: CaseSession | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session or CaseSession(store, store_path, parent=self)
        self._store_opener = store_opener
        self._owned_store: Any = None
        self._demo_task: Any = None
        self.demo_dialog: QProgressDialog | None = None
        self.login_dialog: Any | None = None
        self.last_error = ""
        self.step_views: dict[str, StepView] = {}
        self._step_pages: dict[str, QScrollArea] = {}
        self.step_buttons: dict[str, QToolButton] = {}

        self.setWindowTitle(APP_NAME)
        self.resize(1480, 940)
        self._build_central()
        self._build_dock()
        self._build_menus()
        self._build_status_bar()

        s = self.session
        s.storeChanged.connect(self.refresh_cases)
        s.caseListChanged.connect(self.refresh_cases)
        s.userChanged.connect(self._on_user_changed)
        s.caseChanged.connect(self._on_case_changed)
        s.busyChanged.connect(self._on_busy)
        s.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._on_user_changed()
        self.refresh_cases()

    # ============================================================ layout
    def _build_central(self) -> None:
        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(8, 8, 8, 8)
        col.setSpacing(6)
        self.header = CaseHeader(central)
        col.addWidget(self.header)

        self.step_bar = QWidget(central)
        self.step_bar.setObjectName("stepBar")
        bar = QHBoxLayout(self.step_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(0)
        self._step_group = QButtonGroup(self)
        self._step_group.setExclusive(True)
        self.step_stack = QStackedWidget(central)
        self.step_stack.setObjectName("stepPanel")
        views, self.step_problems = discover_steps()
        for n, cls in enumerate(views):
            view = cls(self.session)
            step_id = cls.step_id
            self.step_views[step_id] = view
            # a scroll area lets the step panel shrink below the view's own minimum width
            scroll = QScrollArea(self.step_stack)
            scroll.setObjectName(f"stepScroll-{step_id}")
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(view)
            self._step_pages[step_id] = scroll
            self.step_stack.addWidget(scroll)
            b = QToolButton(self.step_bar)
            full_title = cls.title or STEP_TITLES.get(step_id, step_id)
            b.setText(cls.nav_title or full_title)
            b.setProperty("fullTitle", full_title)
            b.setCheckable(True)
            b.setObjectName(f"stepButton-{step_id}")
            b.setProperty("segment", True)
            b.setProperty(
                "position", "first" if n == 0 else ("last" if n == len(views) - 1 else "middle")
            )
            b.clicked.connect(lambda _checked=False, sid=step_id: self.show_step(sid))
            self._step_group.addButton(b)
            self.step_buttons[step_id] = b
            bar.addWidget(b)
        bar.addStretch(1)
        if not views:
            hint = QLabel("No workflow step is installed.", self.step_bar)
            hint.setObjectName("hint")
            bar.addWidget(hint)
        # the bar scrolls sideways rather than widening the window past a small screen
        self.step_bar_scroll = QScrollArea(central)
        self.step_bar_scroll.setObjectName("stepBarScroll")
        self.step_bar_scroll.setWidget(self.step_bar)
        self.step_bar_scroll.setWidgetResizable(True)
        self.step_bar_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.step_bar_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.step_bar_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.step_bar_scroll.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.step_bar_scroll.horizontalScrollBar().rangeChanged.connect(self._fit_step_bar)
        self._fit_step_bar()
        col.addWidget(self.step_bar_scroll)

        self.viewer = ViewerPanel(self.session, central)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, central)
        self.splitter.setObjectName("centralSplitter")
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(self.step_stack)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.step_stack.setVisible(bool(self.step_views))
        col.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.viewer.timePointShown.connect(self._on_time_point_shown)

    def _build_dock(self) -> None:
        self.case_list = CaseListWidget(self)
        self.case_list.caseActivated.connect(self.open_case)
        self.case_list.refreshRequested.connect(self.refresh_cases)
        self.case_dock = QDockWidget("Cases", self)
        self.case_dock.setObjectName("caseDock")
        self.case_dock.setWidget(self.case_list)
        self.case_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.case_dock)
        self.resizeDocks([self.case_dock], [250], Qt.Orientation.Horizontal)

    def _action(
        self, text: str, slot: Callable[[], Any], shortcut: Any = None, tip: str = ""
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(lambda _checked=False: slot())
        return a

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.action_open_store = self._action(
            "Open store…", self.open_store_dialog, QKeySequence.StandardKey.Open
        )
        self.action_open_demo = self._action(
            "Open demo case",
            self.open_demo_case,
            tip="Import the synthetic demo patient if needed and open it",
        )
        self.action_import = self._action(
            "Import DICOM folder…",
            self.import_dicom_folder,
            "Ctrl+I",
            "Scan a folder tree and import its SPECT/CT and PET/CT studies",
        )
        self.action_new_case = self._action(
            "New case from protocol…", self.new_case_dialog, "Ctrl+N"
        )
        self.action_refresh = self._action(
            "Refresh case list", self.refresh_cases, QKeySequence.StandardKey.Refresh
        )
        self.action_quit = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        file_menu.addAction(self.action_open_store)
        if "importing" in self.step_views:
            file_menu.addAction(self.action_import)
        file_menu.addAction(self.action_open_demo)
        file_menu.addAction(self.action_new_case)
        file_menu.addAction(self.action_refresh)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)

        user_menu = bar.addMenu("&User")
        self.action_login = self._action("Log in…", self.show_login)
        self.action_logout = self._action("Log out", self.session.logout)
        self.action_change_password = self._action("Change password…", self.change_password)
        for a in (self.action_login, self.action_logout, self.action_change_password):
            user_menu.addAction(a)

        view_menu = bar.addMenu("&View")
        self.action_reset_view = self.viewer.reset_action
        view_menu.addAction(self.action_reset_view)
        view_menu.addAction(self.viewer.side_action)
        view_menu.addSeparator()
        view_menu.addAction(self.case_dock.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self.action_about = self._action(f"About {APP_NAME}", self.show_about)
        help_menu.addAction(self.action_about)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.user_label = QLabel("", self)
        self.user_label.setObjectName("userLabel")
        self.cursor_label = QLabel("", self)
        self.cursor_label.setObjectName("cursorInfo")
        self.busy_bar = QProgressBar(self)
        self.busy_bar.setObjectName("busyBar")
        self.busy_bar.setRange(0, 0)  # indeterminate: some session job is running
        self.busy_bar.setMaximumWidth(140)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        sb.addPermanentWidget(self.cursor_label, 1)
        sb.addPermanentWidget(self.busy_bar)
        sb.addPermanentWidget(self.user_label)
        self.viewer.cursorInfo.connect(self.cursor_label.setText)
        if self.step_problems:
            sb.showMessage("Some steps could not be loaded: " + "; ".join(self.step_problems))

    # ============================================================ store
    @property
    def store(self) -> Any:
        return self.session.store

    @property
    def case(self) -> Case | None:
        return self.session.case

    def set_store(self, store: Any, path: str | Path | None = None) -> None:
        """Use another store (the session closes the case and logs out)."""
        if self._owned_store is not None and self._owned_store is not store:
            self._close_owned_store()
        self.session.set_store(store, path)
        if self.session.needs_login:
            self.show_login()

    def refresh_cases(self) -> None:
        s = self.session
        if s.store is None:
            self.case_list.set_unavailable("No case store is open (File › Open store…).")
            return
        if s.needs_login:
            self.case_list.set_unavailable("Log in (User › Log in…) to see the cases.")
            return
        try:
            self.case_list.refresh_from(s.store, s.actor)
        except DosimetryError as exc:
            self._show_error("Case list", str(exc))
        except Exception as exc:  # the store failed for a reason that is not the user's
            log.exception("listing cases failed")
            self._show_error("Case list", f"The case list could not be read: {exc}")

    def open_store_dialog(self) -> None:
        start = self.session.store_path or str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open case store", start)
        if path:
            self.open_store(Path(path))

    def open_store(self, path: Path) -> bool:
        """Open the store at ``path``; on failure keep the current one and say why."""
        try:
            opener = self._store_opener
            if opener is None:
                from dosimetry_core.store import CaseStore

                opener = CaseStore
            store = opener(Path(path))
        except Exception as exc:
            if not isinstance(exc, DosimetryError):
                log.exception("opening store %s failed", path)
            self._show_error("Open store", f"The case store at {path} cannot be opened: {exc}")
            return False
        self.set_store(store, path)
        self._owned_store = store
        self.statusBar().showMessage(f"Store {path}", 5000)
        return True

    def _close_owned_store(self) -> None:
        store, self._owned_store = self._owned_store, None
        close = getattr(store, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing must not stop the window from closing
                log.exception("closing the store failed")

    # ============================================================= user
    def show_login(self) -> Any | None:
        """Open the log-in dialog (window-modal, returns at once); None without a store."""
        from app.common.login import LoginDialog

        if self.session.store is None:
            self._show_error("Log in", "No case store is open (File › Open store…).")
            return None
        if self.login_dialog is not None and self.login_dialog.isVisible():
            return self.login_dialog
        dialog = LoginDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _r: setattr(self, "login_dialog", None))
        self.login_dialog = dialog
        dialog.open()
        return dialog

    def change_password(self) -> None:
        from app.common.login import ChangePasswordDialog

        dialog = ChangePasswordDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_user_changed(self) -> None:
        s = self.session
        self.user_label.setText(s.user_label())
        has_store = s.store is not None
        logged_in = s.actor is not None
        self.action_login.setEnabled(has_store and s.has_accounts)
        self.action_logout.setEnabled(logged_in)
        self.action_change_password.setEnabled(logged_in)
        usable = has_store and not s.needs_login
        self.action_open_demo.setEnabled(usable and s.may("import"))
        self.action_import.setEnabled(usable and s.may("import") and "importing" in self.step_views)
        self.action_new_case.setEnabled(
            usable and (s.may("import") or s.may("enter-administration"))
        )
        self.action_refresh.setEnabled(usable)
        self.case_list.setEnabled(usable)
        self._update_steps()
        self.refresh_cases()

    def _fit_step_bar(self, *_range: int) -> None:
        """Height of the step bar: its buttons, plus the scroll bar only while one is needed."""
        sb = self.step_bar_scroll.horizontalScrollBar()
        extra = sb.sizeHint().height() if sb.maximum() > 0 else 0
        self.step_bar_scroll.setFixedHeight(self.step_bar.sizeHint().height() + extra)

    def _update_steps(self) -> None:
        s = self.session
        may_look = s.store is not None and not s.needs_login
        for step_id, view in self.step_views.items():
            allowed = may_look and (view.action is None or s.may(view.action))
            button = self.step_buttons[step_id]
            button.setEnabled(allowed)
            why = "" if allowed else self._why_disabled(view)
            full = str(button.property("fullTitle") or "")
            shown = full if button.text() != full else ""
            button.setToolTip("\n".join(t for t in (shown, why) if t))
            view.setEnabled(allowed)
            if not allowed and button.isChecked():
                self._step_group.setExclusive(False)
                button.setChecked(False)
                self._step_group.setExclusive(True)
                self.step_stack.setCurrentIndex(-1)

    def _why_disabled(self, view: StepView) -> str:
        s = self.session
        if s.store is None:
            return "No case store is open"
        if s.needs_login:
            return "Log in first"
        return f"{s.user_label()} may not work in this step ({view.action})"

    # ============================================================= steps
    def show_step(self, step_id: str) -> StepView | None:
        """Show a step's view in the step panel (if the user may); returns the view."""
        view = self.step_views.get(step_id)
        button = self.step_buttons.get(step_id)
        if view is None or button is None or not button.isEnabled():
            return None
        if not button.isChecked():
            button.setChecked(True)
        self.step_stack.setCurrentWidget(self._step_pages[step_id])
        self.step_stack.show()
        # the step gets the width it needs on a small screen: first the case list, then
        # the viewer's layer/VOI column give way (View › Cases and View › Layers and VOIs
        # bring them back)
        page = self._step_pages[step_id]
        bar = page.verticalScrollBar().sizeHint().width()
        want = max(self.STEP_PANEL_WIDTH, view.minimumSizeHint().width() + bar + 4)
        made_room = []
        if self.splitter.width() - self.viewer.minimumSizeHint().width() < want:
            if self.case_dock.isVisible():
                self.case_dock.hide()
                made_room.append("case list (View › Cases)")
                QApplication.processEvents()
        if self.splitter.width() - self.viewer.minimumSizeHint().width() < want:
            if self.viewer.side_action.isChecked():
                self.viewer.side_action.setChecked(False)
                made_room.append("layers and VOIs (View › Layers and VOIs)")
                QApplication.processEvents()
        if made_room:
            self.statusBar().showMessage("Hidden to make room: " + ", ".join(made_room), 6000)
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if total > 0 and sizes[1] < want - 40:
            # the step just chosen gets a usable width; the viewer keeps the rest
            step_width = min(want, total - self.viewer.minimumSizeHint().width())
            self.splitter.setSizes([total - step_width, step_width])
        view.activated()
        return view

    def current_step(self) -> str | None:
        page = self.step_stack.currentWidget()
        return next((sid for sid, p in self._step_pages.items() if p is page), None)

    def import_dicom_folder(self) -> None:
        """File › Import DICOM folder…: show the importing step and let it ask for the folder."""
        view = self.show_step("importing")
        if view is None:
            self._show_error("Import", f"{self.session.user_label()} may not import studies.")
            return
        ask = getattr(view, "ask_folder", None)
        if callable(ask):
            ask()

    # ============================================================= case
    @Slot(str)
    def open_case(self, case_id: str) -> bool:
        """Open a case through the session; errors are shown, not raised."""
        try:
            self.session.open_case(case_id)
        except DosimetryError as exc:
            self._show_error("Open case", str(exc))
            return False
        except Exception as exc:
            log.exception("loading case %s failed", case_id)
            self._show_error("Open case", f"The case {case_id} could not be loaded: {exc}")
            return False
        return True

    def _on_case_changed(self, case: Case | None) -> None:
        self.header.set_case(case)
        if case is None:
            self.setWindowTitle(APP_NAME)
            return
        tp = self.viewer.current_time_point()
        if tp is not None:
            self.header.set_time_point(case, tp)
        self.case_list.select_case(case.case_id)
        name = format_person_name(case.patient.name) or case.patient.patient_id
        self.setWindowTitle(f"{name} ({case.patient.patient_id}) — {APP_NAME}")
        self.caseOpened.emit(case.case_id)

    def _on_time_point_shown(self, time_point_id: str) -> None:
        case = self.session.case
        if case is None:
            return
        tp = next((t for t in case.time_points if t.time_point_id == time_point_id), None)
        self.header.set_time_point(case, tp)

    def new_case_dialog(self) -> None:
        from app.common.new_case import NewCaseDialog

        dialog = NewCaseDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.new_case = dialog
        dialog.open()

    # ============================================================= demo
    def open_demo_case(self) -> None:
        """Import the demo patient if missing (in a session job with progress), then open it."""
        s = self.session
        if s.store is None:
            self._show_error("Demo case", "No case store is open (File › Open store…).")
            return
        if self._demo_task is not None:
            return
        from dosimetry_core.pipeline import demo

        dialog = QProgressDialog("Preparing the demo patient…", "Cancel", 0, 1000, self)
        dialog.setWindowTitle("Demo case")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setValue(0)
        self.demo_dialog = dialog

        def progress(fraction: float, message: str) -> None:
            dialog.setValue(int(round(fraction * 1000)))
            dialog.setLabelText(message or "…")

        def done() -> None:
            self._demo_task = None
            dialog.hide()
            dialog.deleteLater()
            self.demo_dialog = None

        def ready(case_id: str) -> None:
            done()
            s.notify_case_list_changed()
            self.open_case(case_id)

        def failed(message: str, details: str) -> None:
            done()
            self._show_error("Demo case", message, details)

        def cancelled() -> None:
            done()
            self.statusBar().showMessage("Demo import cancelled", 5000)

        task = s.run(
            demo.ensure_demo_case,
            s.store,
            description="demo import",
            on_success=ready,
            on_failure=failed,
            on_progress=progress,
            on_cancelled=cancelled,
            reload_case=False,
        )
        dialog.canceled.connect(task.cancel)
        self._demo_task = task
        dialog.show()

    # ============================================================ misc
    def show_about(self) -> None:
        store = self.session.store_path or "none"
        error_display.show_info(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME}</b> {dosimetry_core.__version__}<br>"
            "Dosimetry workstation for molecular radiotherapy.<br><br>"
            f"Case store: {store}<br>"
            f"User: {self.session.user_label()}<br>"
            f"PySide6 {pyside_version}",
        )

    def _on_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)

    def _show_error(self, title: str, message: str, details: str = "") -> None:
        self.last_error = message
        error_display.show_error(self, title, message, details)

    def ask(self, title: str, text: str) -> bool:
        """Yes/No question (tests replace it)."""
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        s = self.session
        unsaved = s.unsaved_changes
        if unsaved and not self.ask(
            "Unsaved changes",
            "These edits are not saved:\n  " + "\n  ".join(unsaved) + "\n\nClose and lose them?",
        ):
            event.ignore()
            return
        if s.busy:
            names = ", ".join(t.description for t in s.jobs())
            if not self.ask("Jobs running", f"Still running: {names}.\n\nCancel them and close?"):
                event.ignore()
                return
        s.cancel_jobs()
        self.viewer.close()
        self._close_owned_store()
        super().closeEvent(event)
