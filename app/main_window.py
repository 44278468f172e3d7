"""The main window: case list dock, case header, time-point selector, fused viewer.

The window reads the case through the store API and shows it; every number it
displays (activities, hours after administration, units, calibration) comes
from the model or the core.  Long work (loading volumes, fusing SPECT onto the
CT grid, importing the demo patient) runs in :class:`app.workers.Task` s; every
error reaches the user through :mod:`app.views.error_display`.

Later workflow steps (registration, contouring, kinetics, dose, review and
sign-off) appear here when their views exist; nothing is shown for them before.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QDockWidget,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QProgressDialog,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import dosimetry_core
from app.views import error_display
from app.views.case_list import CaseListWidget, format_person_name
from app.views.fused_viewer import COLORMAPS, CT_PRESETS, FusedViewer, VoiOutline, fused_overlay
from app.workers import Task
from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import VOI, CalibrationStatus, Case, TimePoint, Volume
from dosimetry_core.physics.decay import net_administered_activity_mbq
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

log = logging.getLogger(__name__)

APP_NAME = "MRT Dosimetry"

__all__ = ["APP_NAME", "CaseHeader", "MainWindow", "TimePointSelector", "time_point_label"]


# ------------------------------------------------------------------- helpers
def time_point_label(case: Case, tp: TimePoint, position: int) -> str:
    """'TP1 · 4.0 h · NM': label, hours after the first administration, modality."""
    name = tp.label or f"TP{position}"
    hours = case.hours_after_administration(tp)
    when = f"{hours:.1f} h" if hours is not None else "time unknown"
    return f"{name} · {when} · {tp.modality}"


def _fmt_dt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "–"


def _fmt_mbq(value: float | None) -> str:
    return f"{value:,.1f} MBq" if value is not None else "–"


@dataclass
class TimePointData:
    """What the viewer needs for one time point, loaded in a worker."""

    ct: Volume | None
    spect: Volume | None
    overlay: Volume | None
    vois: list[VoiOutline] = field(default_factory=list)


def load_time_point_data(
    store: Any,
    tp: TimePoint,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    vois: Sequence[VOI] = (),
) -> TimePointData:
    """Load the CT and functional volumes of ``tp`` and fuse the SPECT onto the CT grid."""
    ct = spect = overlay = None
    if tp.anatomical is not None and tp.anatomical.volume is not None:
        report(progress, 0.05, "loading CT")
        ct = store.load_volume(tp.anatomical.volume)
    check_cancel(cancel)
    if tp.functional.volume is not None:
        report(progress, 0.4, f"loading {tp.modality}")
        spect = store.load_volume(tp.functional.volume)
    check_cancel(cancel)
    if ct is not None and spect is not None:
        report(progress, 0.7, "fusing onto the CT grid")
        overlay = fused_overlay(ct, spect)
    outlines: list[VoiOutline] = []
    if ct is not None:
        mine = [v for v in vois if v.time_point_id == tp.time_point_id]
        for n, voi in enumerate(mine):
            check_cancel(cancel)
            report(progress, 0.85 + 0.15 * n / max(len(mine), 1), f"loading VOI {voi.name}")
            mask = store.load_volume(voi.mask)
            if mask.geometry.same_grid(ct.geometry):
                outlines.append(
                    VoiOutline(
                        voi.name, mask.array.astype(bool), tuple(voi.color_rgb), str(voi.status)
                    )
                )
    report(progress, 1.0, "ready")
    return TimePointData(ct, spect, overlay, outlines)


# ------------------------------------------------------ time-point selector
class TimePointSelector(QWidget):
    """Segmented buttons, one per time point; exactly one is checked."""

    currentIndexChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._group.idToggled.connect(self._on_toggled)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._buttons: list[QToolButton] = []
        self._updating = False

    def set_items(self, labels: list[str], tooltips: list[str] | None = None) -> None:
        self._updating = True
        try:
            for b in self._buttons:
                self._group.removeButton(b)
                b.deleteLater()
            self._buttons = []
            for n, text in enumerate(labels):
                b = QToolButton(self)
                b.setText(text)
                b.setCheckable(True)
                b.setObjectName("segment")
                b.setProperty(
                    "position",
                    "first" if n == 0 else ("last" if n == len(labels) - 1 else "middle"),
                )
                if tooltips:
                    b.setToolTip(tooltips[n])
                self._group.addButton(b, n)
                self._layout.addWidget(b)
                self._buttons.append(b)
            if self._buttons:
                self._buttons[0].setChecked(True)
        finally:
            self._updating = False

    def labels(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def count(self) -> int:
        return len(self._buttons)

    def current_index(self) -> int:
        return self._group.checkedId()

    def set_current_index(self, index: int) -> None:
        if 0 <= index < len(self._buttons):
            self._buttons[index].setChecked(True)

    def button(self, index: int) -> QToolButton:
        return self._buttons[index]

    def _on_toggled(self, button_id: int, checked: bool) -> None:
        if checked and not self._updating:
            self.currentIndexChanged.emit(button_id)


# ---------------------------------------------------------------- header
class CaseHeader(QFrame):
    """Who, what was given, and what the selected time point is (values from the model)."""

    FIELDS = (
        ("patient", "Patient"),
        ("administration", "Administration"),
        ("activity", "Administered"),
        ("acquired", "Acquired"),
        ("calibration", "Calibration"),
        ("units", "Units"),
        ("total", "Total activity in FOV"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("caseHeader")
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(0)
        # two rows: case-level facts on top, time-point facts below
        layout_rows = (
            ("patient", "administration", "activity"),
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
                grid.addWidget(cap, 2 * r, c)
                grid.addWidget(val, 2 * r + 1, c)
                self._values[key] = val
        grid.setColumnStretch(4, 1)
        self.warning_label = QLabel(self)
        self.warning_label.setObjectName("warning")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        grid.addWidget(self.warning_label, 4, 0, 1, 5)
        self.set_case(None)

    def value(self, key: str) -> str:
        """Text shown for a field (see :attr:`FIELDS`)."""
        return self._values[key].text()

    def set_case(self, case: Case | None) -> None:
        for lab in self._values.values():
            lab.setText("–")
        if case is None:
            self._values["patient"].setText("No case open")
            self.set_time_point(None, None)
            return
        p = case.patient
        name = format_person_name(p.name) or "(no name)"
        self._values["patient"].setText(f"{name}  ({p.patient_id})")
        adm = case.first_administration
        if adm is None:
            self._values["administration"].setText("not recorded")
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
            self._values["administration"].setText(f"{what} · {_fmt_dt(adm.time)}{cycle}")
            net = net_administered_activity_mbq(adm)
            text = _fmt_mbq(adm.activity_mbq)
            if adm.residual_activity_mbq:
                text += f" (net {_fmt_mbq(net)})"
            self._values["activity"].setText(text)

    def set_time_point(self, case: Case | None, tp: TimePoint | None) -> None:
        for key in ("acquired", "calibration", "units", "total"):
            self._values[key].setText("–")
        self.warning_label.hide()
        if case is None or tp is None:
            return
        hours = case.hours_after_administration(tp)
        after = f" ({hours:.1f} h p.i.)" if hours is not None else ""
        self._values["acquired"].setText(f"{_fmt_dt(tp.acquired_at)}{after} · {tp.modality}")
        f = tp.functional
        cal = str(f.calibration_status)
        if f.cps_per_mbq:
            cal += f" ({f.cps_per_mbq:.3g} cps/MBq)"
        self._values["calibration"].setText(cal)
        self._values["units"].setText(str(tp.units))
        self._values["total"].setText(_fmt_mbq(tp.total_activity_mbq))
        warnings = []
        if f.calibration_status == CalibrationStatus.UNCALIBRATED:
            warnings.append(
                "This series is not calibrated: voxel values are counts, "
                "not activity concentration."
            )
        ct = tp.anatomical
        if ct is None:
            warnings.append("This time point has no CT; the functional image is shown alone.")
        elif (
            ct.frame_of_reference_uid
            and f.frame_of_reference_uid
            and ct.frame_of_reference_uid != f.frame_of_reference_uid
        ):
            warnings.append(
                "CT and functional series have different frames of reference: the fusion "
                "shown uses scanner coordinates and may be misaligned until registration."
            )
        if warnings:
            self.warning_label.setText("  ".join(warnings))
            self.warning_label.show()


# ------------------------------------------------------------ main window
class MainWindow(QMainWindow):
    """The workstation window over one case store.

    Parameters
    ----------
    store
        A :class:`dosimetry_core.store.CaseStore` (or anything with the same
        methods); None opens the window without a store.
    store_path
        Shown in the title and the About box.
    store_opener
        ``opener(path) -> store`` used by File › Open store…; defaults to
        :class:`dosimetry_core.store.CaseStore`.
    """

    caseOpened = Signal(str)
    """A case was loaded and its time points listed (argument: case id)."""
    timePointDisplayed = Signal(int)
    """The viewer now shows this time point (0-based position in time order)."""

    TIME_POINT_CACHE_SIZE = 3

    def __init__(
        self,
        store: Any = None,
        store_path: str | Path | None = None,
        store_opener: Callable[[Path], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._store_path = str(store_path) if store_path else ""
        self._store_opener = store_opener
        self._owned_store: Any = None  # a store this window opened itself, closed by it
        self._case: Case | None = None
        self._time_points: list[TimePoint] = []
        self._tp_cache: OrderedDict[str, TimePointData] = OrderedDict()
        self._tp_tasks: dict[str, Task] = {}
        self._shown_tp: int = -1
        self._demo_task: Task | None = None
        self._import_task: Task | None = None
        self.last_import: Any = None
        # one background thread for store access and fusion: loads never race each other
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

        self.setWindowTitle(APP_NAME)
        self.resize(1480, 940)
        self._build_central()
        self._build_dock()
        self._build_menus()
        self._build_status_bar()
        self._update_actions()
        self.refresh_cases()

    # ============================================================ layout
    def _build_central(self) -> None:
        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(8, 8, 8, 8)
        col.setSpacing(8)
        self.header = CaseHeader(central)
        tp_row = QHBoxLayout()
        tp_row.setSpacing(10)
        self.tp_caption = QLabel("Time point", central)
        self.tp_caption.setObjectName("caption")
        self.time_point_selector = TimePointSelector(central)
        self.time_point_selector.currentIndexChanged.connect(self.select_time_point)
        self.tp_hint = QLabel("", central)
        self.tp_hint.setObjectName("hint")
        tp_row.addWidget(self.tp_caption)
        tp_row.addWidget(self.time_point_selector)
        tp_row.addWidget(self.tp_hint)
        tp_row.addStretch(1)
        self.viewer = FusedViewer(central)
        self.viewer.cursorInfo.connect(self._on_cursor_info)
        col.addWidget(self.header)
        col.addLayout(tp_row)
        col.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

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
        self.resizeDocks([self.case_dock], [448], Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.action_open_store = QAction("Open store…", self)
        self.action_open_store.setShortcut(QKeySequence.StandardKey.Open)
        self.action_open_store.triggered.connect(self.open_store_dialog)
        self.action_open_demo = QAction("Open demo case", self)
        self.action_open_demo.setStatusTip(
            "Import the synthetic demo patient if needed and open it"
        )
        self.action_open_demo.triggered.connect(self.open_demo_case)
        self.action_import = QAction("Import DICOM folder…", self)
        self.action_import.setShortcut(QKeySequence("Ctrl+I"))
        self.action_import.setStatusTip(
            "Scan a folder tree and import its SPECT/CT and PET/CT studies"
        )
        self.action_import.triggered.connect(self._ask_import_folder)
        self.action_refresh = QAction("Refresh case list", self)
        self.action_refresh.setShortcut(QKeySequence.StandardKey.Refresh)
        self.action_refresh.triggered.connect(self.refresh_cases)
        self.action_quit = QAction("Quit", self)
        self.action_quit.setShortcut(QKeySequence.StandardKey.Quit)
        self.action_quit.triggered.connect(self.close)
        for a in (
            self.action_open_store,
            self.action_import,
            self.action_open_demo,
            self.action_refresh,
        ):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)

        view_menu = bar.addMenu("&View")
        self.action_reset_view = QAction("Reset view", self)
        self.action_reset_view.setShortcut(QKeySequence("Ctrl+0"))
        self.action_reset_view.triggered.connect(lambda: self.viewer.reset_view())
        view_menu.addAction(self.action_reset_view)
        self.action_show_vois = QAction("Show VOI outlines", self)
        self.action_show_vois.setCheckable(True)
        self.action_show_vois.setChecked(True)
        self.action_show_vois.toggled.connect(self.viewer.set_vois_visible)
        view_menu.addAction(self.action_show_vois)
        cmap_menu = view_menu.addMenu("Colour map")
        self._cmap_group = QActionGroup(self)
        self._cmap_group.setExclusive(True)
        self.colormap_actions: dict[str, QAction] = {}
        for name in COLORMAPS:
            a = QAction(name, self, checkable=True)
            a.setChecked(name == self.viewer.colormap_name())
            a.triggered.connect(lambda _checked=False, n=name: self.viewer.set_colormap(n))
            self._cmap_group.addAction(a)
            cmap_menu.addAction(a)
            self.colormap_actions[name] = a
        self.viewer.cmap_combo.currentTextChanged.connect(self._sync_colormap_menu)
        ct_menu = view_menu.addMenu("CT window")
        for name, (w, lvl) in CT_PRESETS.items():
            a = QAction(f"{name}  (W {w:.0f} / L {lvl:.0f})", self)
            a.triggered.connect(lambda _checked=False, n=name: self.viewer.set_ct_preset(n))
            ct_menu.addAction(a)
        view_menu.addSeparator()
        self.action_prev_tp = QAction("Previous time point", self)
        self.action_prev_tp.setShortcut(QKeySequence("Ctrl+PgUp"))
        self.action_prev_tp.triggered.connect(lambda: self._step_time_point(-1))
        self.action_next_tp = QAction("Next time point", self)
        self.action_next_tp.setShortcut(QKeySequence("Ctrl+PgDown"))
        self.action_next_tp.triggered.connect(lambda: self._step_time_point(1))
        view_menu.addAction(self.action_prev_tp)
        view_menu.addAction(self.action_next_tp)
        view_menu.addSeparator()
        view_menu.addAction(self.case_dock.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self.action_about = QAction(f"About {APP_NAME}", self)
        self.action_about.triggered.connect(self.show_about)
        help_menu.addAction(self.action_about)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("", self)
        self.cursor_label.setObjectName("cursorInfo")
        self.load_progress = QProgressBar(self)
        self.load_progress.setRange(0, 100)
        self.load_progress.setMaximumWidth(160)
        self.load_progress.setTextVisible(False)
        self.load_progress.hide()
        sb.addPermanentWidget(self.cursor_label, 1)
        sb.addPermanentWidget(self.load_progress)

    # ============================================================ store
    @property
    def store(self) -> Any:
        return self._store

    @property
    def case(self) -> Case | None:
        return self._case

    def set_store(self, store: Any, path: str | Path | None = None) -> None:
        """Use another store: close the case and list the new store's cases."""
        self._close_case()
        if self._owned_store is not None and self._owned_store is not store:
            self._close_owned_store()
        self._store = store
        self._store_path = str(path) if path else ""
        self._update_actions()
        self.refresh_cases()

    def refresh_cases(self) -> None:
        if self._store is None:
            self.case_list.set_cases([])
            return
        try:
            self.case_list.refresh_from(self._store)
        except DosimetryError as exc:
            self._show_error("Case list", str(exc))
        except Exception as exc:  # the store failed for a reason that is not the user's
            log.exception("listing cases failed")
            self._show_error("Case list", f"The case list could not be read: {exc}")

    def open_store_dialog(self) -> None:
        start = self._store_path or str(Path.home())
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
        except DosimetryError as exc:
            self._show_error("Open store", f"The case store at {path} cannot be opened: {exc}")
            return False
        except Exception as exc:
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

    # ============================================================= case
    @Slot(str)
    def open_case(self, case_id: str) -> bool:
        """Load a case, list its time points and show the first one."""
        if self._store is None:
            self._show_error("Open case", "No case store is open (File › Open store…).")
            return False
        try:
            case = self._store.load_case(case_id)
        except DosimetryError as exc:
            self._show_error("Open case", str(exc))
            return False
        except Exception as exc:
            log.exception("loading case %s failed", case_id)
            self._show_error("Open case", f"The case {case_id} could not be loaded: {exc}")
            return False
        self._close_case()
        self._case = case
        self._time_points = case.sorted_time_points()
        labels = [time_point_label(case, tp, n + 1) for n, tp in enumerate(self._time_points)]
        tips = [
            f"{tp.functional.series_description or tp.modality}\nacquired {_fmt_dt(tp.acquired_at)}"
            for tp in self._time_points
        ]
        self.time_point_selector.set_items(labels, tips)
        self.tp_hint.setText("" if self._time_points else "this case has no time points yet")
        self.header.set_case(case)
        self.case_list.select_case(case_id)
        name = format_person_name(case.patient.name) or case.patient.patient_id
        self.setWindowTitle(f"{name} ({case.patient.patient_id}) — {APP_NAME}")
        self._update_actions()
        self.statusBar().showMessage(f"Opened case {case.case_id}", 4000)
        self.caseOpened.emit(case.case_id)
        if self._time_points:
            self.select_time_point(0)
        return True

    def time_point_labels(self) -> list[str]:
        return self.time_point_selector.labels()

    def current_time_point_index(self) -> int:
        return self.time_point_selector.current_index()

    def displayed_time_point_index(self) -> int:
        """Index of the time point the viewer shows (-1: none yet)."""
        return self._shown_tp

    @Slot(int)
    def select_time_point(self, index: int) -> None:
        """Show time point ``index`` (0-based, time order); loads it in the background."""
        if self._case is None or not 0 <= index < len(self._time_points):
            return
        if self.time_point_selector.current_index() != index:
            self.time_point_selector.set_current_index(index)  # re-enters via the signal
            return
        tp = self._time_points[index]
        data = self._tp_cache.get(tp.time_point_id)
        if data is not None:
            self._tp_cache.move_to_end(tp.time_point_id)
            self._display(index, data)
            return
        if tp.time_point_id in self._tp_tasks:
            return  # already loading; it is displayed when ready if still selected
        task = Task(
            load_time_point_data,
            self._store,
            tp,
            vois=list(self._case.vois) if self._case is not None else [],
            description=f"load {tp.label or index}",
        )
        tp_id = tp.time_point_id
        task.progress.connect(self._on_load_progress)
        task.succeeded.connect(lambda data, i=index, t=tp_id: self._on_tp_loaded(i, t, data))
        task.failed.connect(lambda msg, details, i=index: self._on_tp_failed(i, msg, details))
        task.finished.connect(lambda t=tp_id: self._on_tp_task_finished(t))
        self._tp_tasks[tp_id] = task
        self.load_progress.setValue(0)
        self.load_progress.show()
        self.statusBar().showMessage(f"Loading {self.time_point_labels()[index]}…")
        task.start(self._pool)

    def _on_load_progress(self, fraction: float, message: str) -> None:
        self.load_progress.setValue(int(round(fraction * 100)))

    def _on_tp_loaded(self, index: int, tp_id: str, data: TimePointData) -> None:
        if self._case is None or index >= len(self._time_points):
            return
        if self._time_points[index].time_point_id != tp_id:
            return  # another case was opened meanwhile
        self._tp_cache[tp_id] = data
        while len(self._tp_cache) > self.TIME_POINT_CACHE_SIZE:
            self._tp_cache.popitem(last=False)
        if self.current_time_point_index() == index:
            self._display(index, data)

    def _on_tp_failed(self, index: int, message: str, details: str) -> None:
        self._show_error("Load time point", message, details)
        # the selector goes back to the time point still on screen
        if self.current_time_point_index() == index and self._shown_tp >= 0:
            self.time_point_selector.set_current_index(self._shown_tp)

    def _on_tp_task_finished(self, tp_id: str) -> None:
        self._tp_tasks.pop(tp_id, None)
        if not self._tp_tasks:
            self.load_progress.hide()
            self.statusBar().clearMessage()

    def _display(self, index: int, data: TimePointData) -> None:
        try:
            self.viewer.set_time_point(data.ct, data.spect, data.overlay)
            self.viewer.set_vois(data.vois)
        except Exception as exc:
            log.exception("displaying time point %d failed", index)
            self._show_error("Display", f"This time point cannot be displayed: {exc}")
            return
        self._shown_tp = index
        # the header describes the image on screen, so it changes with it
        self.header.set_time_point(self._case, self._time_points[index])
        self.timePointDisplayed.emit(index)

    def _step_time_point(self, step: int) -> None:
        n = self.time_point_selector.count()
        if n:
            self.select_time_point(max(0, min(n - 1, self.current_time_point_index() + step)))

    def _close_case(self) -> None:
        for task in self._tp_tasks.values():
            task.cancel()
        self._tp_tasks.clear()
        self.load_progress.hide()
        self._case = None
        self._time_points = []
        self._tp_cache.clear()
        self._shown_tp = -1
        self.time_point_selector.set_items([])
        self.header.set_case(None)
        self.viewer.clear()
        self.setWindowTitle(APP_NAME)

    # ============================================================= demo
    def open_demo_case(self) -> None:
        """Import the demo patient if missing (with a progress dialog), then open it."""
        if self._store is None:
            self._show_error("Demo case", "No case store is open (File › Open store…).")
            return
        if self._demo_task is not None:
            return
        from dosimetry_core.pipeline import demo

        task = Task(demo.ensure_demo_case, self._store, description="demo import")
        task.succeeded.connect(self._on_demo_ready)
        task.finished.connect(self._on_demo_finished)
        self._demo_task = task
        self.demo_dialog = self._start_with_progress(
            task, "Demo case", "Preparing the demo patient…", "Demo import cancelled"
        )

    def _start_with_progress(
        self, task: Task, title: str, label: str, cancelled_message: str
    ) -> QProgressDialog:
        """Run ``task`` behind a window-modal progress dialog with Cancel.

        Progress and cancel are wired; failures go to the one error path.  The
        caller closes the dialog when the task finishes (:meth:`_close_dialog`).
        """
        dialog = QProgressDialog(label, "Cancel", 0, 1000, self)
        dialog.setWindowTitle(title)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setValue(0)
        task.progress.connect(
            lambda f, m: (dialog.setValue(int(round(f * 1000))), dialog.setLabelText(m or "…"))
        )
        dialog.canceled.connect(task.cancel)
        task.failed.connect(lambda msg, details: self._show_error(title, msg, details))
        task.cancelled.connect(lambda: self.statusBar().showMessage(cancelled_message, 5000))
        dialog.show()
        task.start(self._pool)
        return dialog

    @staticmethod
    def _close_dialog(dialog: QProgressDialog | None) -> None:
        if dialog is not None:
            dialog.hide()
            dialog.deleteLater()

    # =========================================================== import
    def _ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import DICOM folder", str(Path.home()))
        if folder:
            cf, ok = QInputDialog.getDouble(
                self,
                "Camera calibration",
                "Calibration factor for count-based SPECT (cps/MBq);\n"
                "leave 0 when the series are in Bq/mL or no factor is known:",
                0.0,
                0.0,
                1e6,
                4,
            )
            if ok:
                self.import_folder(folder, cf if cf > 0 else None)

    def import_folder(
        self, folder: str | Path, calibration_cps_per_mbq: float | None = None
    ) -> None:
        """Import a DICOM folder tree in a worker; report cases, skipped files and warnings."""
        if self._store is None:
            self._show_error("Import", "No case store is open (File › Open store…).")
            return
        if self._import_task is not None:
            return
        from dosimetry_core.pipeline import importing

        task = Task(
            importing.import_directory,
            self._store,
            Path(folder),
            calibration_cps_per_mbq=calibration_cps_per_mbq,
            description="DICOM import",
        )
        task.succeeded.connect(self._on_import_done)
        task.finished.connect(self._on_import_finished)
        self._import_task = task
        self.import_dialog = self._start_with_progress(
            task, "Import DICOM", f"Importing {folder}…", "Import cancelled"
        )

    def _on_import_done(self, result: Any) -> None:
        self.last_import = result
        self.refresh_cases()
        lines = []
        for c in result.cases:
            verb = "New case" if c.created else "Case updated"
            lines.append(
                f"{verb} for patient {c.patient_id}: {c.new_time_points} time point(s) added"
            )
        if not result.cases:
            lines.append("No time point was imported.")
        if result.skipped:
            lines.append(f"\n{len(result.skipped)} file(s) or series skipped:")
            lines += [f"  {Path(s.path).name}: {s.reason}" for s in result.skipped[:12]]
            if len(result.skipped) > 12:
                lines.append(f"  … and {len(result.skipped) - 12} more")
        if result.warnings:
            lines.append("\nWarnings:")
            lines += [f"  {w}" for w in result.warnings[:8]]
        error_display.show_info(self, "Import DICOM", "\n".join(lines))
        if result.cases:
            self.open_case(result.cases[0].case_id)

    def _on_import_finished(self) -> None:
        self._import_task = None
        self._close_dialog(getattr(self, "import_dialog", None))
        self.import_dialog = None

    def _on_demo_ready(self, case_id: str) -> None:
        self.refresh_cases()
        self.open_case(case_id)

    def _on_demo_finished(self) -> None:
        self._demo_task = None
        self._close_dialog(getattr(self, "demo_dialog", None))
        self.demo_dialog = None

    # ============================================================ misc
    def show_about(self) -> None:
        store = self._store_path or "none"
        error_display.show_info(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME}</b> {dosimetry_core.__version__}<br>"
            "Dosimetry workstation for molecular radiotherapy.<br><br>"
            f"Case store: {store}<br>"
            f"PySide6 {pyside_version}",
        )

    def _sync_colormap_menu(self, name: str) -> None:
        action = self.colormap_actions.get(name)
        if action is not None and not action.isChecked():
            action.setChecked(True)

    def _on_cursor_info(self, text: str) -> None:
        self.cursor_label.setText(text)

    def _update_actions(self) -> None:
        has_store = self._store is not None
        has_case = self._case is not None
        self.action_open_demo.setEnabled(has_store)
        self.action_refresh.setEnabled(has_store)
        self.action_prev_tp.setEnabled(has_case)
        self.action_next_tp.setEnabled(has_case)
        self.case_list.setEnabled(has_store)

    def _show_error(self, title: str, message: str, details: str = "") -> None:
        self.last_error = message
        error_display.show_error(self, title, message, details)

    def closeEvent(self, event: QCloseEvent) -> None:
        for task in [*self._tp_tasks.values(), *([self._demo_task] if self._demo_task else [])]:
            task.cancel()
        self._pool.waitForDone(10_000)
        self._close_owned_store()
        super().closeEvent(event)
