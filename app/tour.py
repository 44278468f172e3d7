"""The self-running tour: the workstation worked through by its own widgets, with screenshots.

``mrt-dosimetry --demo --tour OUT_DIR`` makes a fresh case store in
``OUT_DIR/store`` with its own accounts (an admin made by
:func:`dosimetry_core.store.users.bootstrap_admin`, then a technologist, a
physicist and a physician with random passwords kept in memory only), opens
the window on it and goes through the steps as a user would: the log-in
dialog is filled and accepted through its widgets (the physicist first: the
demo's RTSTRUCT becomes draft VOIs, which needs the "contour" permission),
the demo patient is imported by the window's "Open demo case" action, the
technologist logs in for data entry and the physicist again for
registration (log-out and log-in through the dialog), then the physicist's analysis
(:data:`ANALYSIS_TOUR_STEPS`: contouring, kinetics, dose, protocol run, QA), and each
workflow step is driven by its package's ``tour.drive(view, ctx)``
(``app.steps.<id>.tour``; the viewer's is ``app.viewer.tour``), which clicks and
types (QTest events or ``QAction.trigger()``) and returns the figures read back
from the screen.

After each step the window's frame is grabbed from the screen
(``QScreen.grabWindow``: it captures the VTK view, ``QWidget.grab`` does not)
into ``OUT_DIR/NN-<step>.png``; ``OUT_DIR/tour.json`` is
``{"steps": [{"name": ..., "png": ..., "shown": {...}}]}``.  A step whose
driver is missing fails (it is not skipped).  A modal message box that pops
up during a step (an error the user would see) is closed and fails the step
with its text.

Then the report and sign-off (:data:`REPORT_TOUR_STEPS`, ``app.steps.report.tour``):
``report`` (the physicist makes the report; shown: page count and the kidney
dose beside the preview), ``sign`` (the physicist signs as MPE, then the
physician logs in and signs as practitioner, each typing the password into the
sign dialog; shown: each signer, role and validity) and ``verify`` (the signed
PDF and the department CA certificate saved into ``OUT_DIR`` through "Save signed
PDF…" and "Export CA certificate…", that CA chosen and the PDF dropped on the
verify box; shown: the result).  The signed PDF saved there,
``OUT_DIR/report/<report id>.pdf``, is the tour's report.  Only when the GUI
steps made no signed report does the tour fall back to the core: as the
physicist, in this process (no password ever written to disk), the demo case is
run under the Lu-177 DOTATATE protocol and its report written to ``OUT_DIR/report/``.

Last, ``export`` (as the physician: RT Dose, SEG and the signed report as
Encapsulated PDF written to ``OUT_DIR/export`` through the exports step, then
its population ranges; shown: the files per type and the patient's percentile).

Exit status 0 when every step passed; otherwise 1 with a line on stderr
naming the step that failed and why.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import secrets
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QEventLoop, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.main_window import MainWindow
from app.steps.base import StepView, TourError

log = logging.getLogger(__name__)

__all__ = ["ACCOUNTS", "Tour", "run_tour"]

ACCOUNTS: dict[str, str] = {
    "tour.admin": "admin",
    "tour.tech": "technologist",
    "tour.phys": "physicist",
    "tour.doc": "physician",
}
"""The tour's accounts: user name -> role."""

ANALYSIS_TOUR_STEPS: tuple[tuple[str, str], ...] = (
    ("contouring", "contouring"),
    ("kinetics", "kinetics"),
    ("dose", "dose"),
    ("protocol-run", "protocol"),
    ("qa", "qa"),
)
"""(tour step name, step package) of the physicist's analysis, in tour order, after
registration: each runs when ``app.steps.<package>.tour`` exists, as the physicist."""

PHYSICIAN_TOUR_STEPS: tuple[tuple[str, str], ...] = (("review", "review"),)
"""(tour step name, step package) run as the physician after the analysis steps."""

REPORT_TOUR_STEPS: tuple[str, ...] = ("report", "sign", "verify")
"""Tour steps of the report and sign-off (``app.steps.report.tour``), after the review."""

TOUR_MARKER = ".mrt-tour-store"
"""File marking a store folder as made by the tour (only such a folder is replaced)."""

WINDOW_SIZE = (1280, 1000)
DEMO_TIMEOUT_S = 900.0
DEMO_PROTOCOL = "lu177-dotatate"


@dataclass
class StepResult:
    name: str
    png: str
    shown: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Tour:
    """Runs the tour on one window (implements :class:`app.steps.base.TourContext`)."""

    def __init__(self, window: MainWindow, passwords: dict[str, str], out_dir: Path) -> None:
        self.window = window
        self._passwords = passwords
        self.out_dir = out_dir
        self.results: list[StepResult] = []
        self.popups: list[str] = []
        self._watch = QTimer()
        self._watch.setInterval(150)
        self._watch.timeout.connect(self._close_message_boxes)
        self._watch.start()

    # ----------------------------------------------------------- TourContext
    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Process events until ``predicate()``; TourError naming ``what`` on a timeout or popup."""
        end = time.monotonic() + timeout_s
        while True:
            if self.popups:
                raise TourError(f"a message appeared while waiting for {what}: {self.popups[-1]}")
            if predicate():
                return
            if time.monotonic() > end:
                raise TourError(f"{what}: not reached within {timeout_s:g} s")
            self._process_events()

    def settle(self, seconds: float = 0.3) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._process_events()

    @staticmethod
    def _process_events() -> None:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        # The tour runs outside app.exec(): objects passed to deleteLater() would never be
        # deleted (Qt deletes them when control returns to an event loop), so replaced
        # widgets would pile up; delete them here as the event loop would.
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        time.sleep(0.01)

    def password(self, username: str) -> str:
        return self._passwords[username]

    def show_step(self, step_id: str) -> StepView:
        """Click the step's button in the step navigation; the step must then be shown."""
        button = self.window.step_buttons.get(step_id)
        if button is None:
            raise TourError(f"the step {step_id!r} is not in the step navigation")
        if not button.isEnabled():
            raise TourError(f"the step {step_id!r} is disabled for {self.user_label()}")
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
        self.wait_until(lambda: self.window.current_step() == step_id, 10, f"step {step_id} shown")
        return self.window.step_views[step_id]

    # --------------------------------------------------------------- helpers
    def user_label(self) -> str:
        return self.window.user_label.text()

    def _close_message_boxes(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            text = box.text()
            if box.detailedText():
                log.error("tour: %s\n%s", text, box.detailedText())
            self.popups.append(re.sub(r"<[^>]+>", "", text))
            box.done(0)

    def screenshot(self, name: str) -> Path:
        """Grab the window's frame from the screen into ``NN-<name>.png``."""
        window = self.window
        if window.width() > WINDOW_SIZE[0]:
            # A widget's minimum width grew for a moment (e.g. replaced buttons not yet
            # deleted) and Qt widened the window past the screen; a window manager would
            # keep the user's size: so does the tour.
            log.info("tour: window widened to %d px; back to %d", window.width(), WINDOW_SIZE[0])
            window.resize(*WINDOW_SIZE)
            self.settle(0.3)
            log.info("tour: window now %d px wide", window.width())
        self.settle(0.6)
        screen = window.screen() or QApplication.primaryScreen()
        geo = window.frameGeometry().intersected(screen.geometry())  # what the screen shows
        pixmap = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
        path = self.out_dir / f"{len(self.results) + 1:02d}-{name}.png"
        if pixmap.isNull() or not pixmap.save(str(path), "PNG"):
            raise TourError(f"the screenshot {path.name} could not be written")
        return path

    def log_in(self, username: str) -> dict[str, str]:
        """User › Log in…, type the name and password into the dialog, click "Log in"."""
        w = self.window
        if w.session.actor is not None:
            w.action_logout.trigger()
            self.wait_until(lambda: w.session.actor is None, 5, "log-out")
        w.action_login.trigger()
        self.wait_until(lambda: w.login_dialog is not None, 5, "the log-in dialog")
        dialog = w.login_dialog
        if dialog is None:
            raise TourError("the log-in dialog closed before it was filled")
        user = dialog.findChild(QWidget, "loginUser")
        password = dialog.findChild(QWidget, "loginPassword")
        button = dialog.findChild(QWidget, "loginButton")
        if user is None or password is None or button is None:
            raise TourError("the log-in dialog lacks its user, password or button field")
        user.setFocus()
        QTest.keyClicks(user, username)
        QTest.keyClicks(password, self.password(username))
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
        self.wait_until(lambda: w.session.actor is not None, 10, f"log-in of {username}")
        label = self.user_label()
        m = re.fullmatch(r"(.+) \((\w+)\)", label)
        if m is None:
            raise TourError(f"the status bar says {label!r}, not 'user (role)'")
        return {"user": m.group(1), "role": m.group(2)}

    def open_case_from_list(self, case_id: str) -> None:
        """Select the case in the case list and press Enter (as a user opens it)."""
        w = self.window
        self.wait_until(lambda: case_id in w.case_list.visible_case_ids(), 10, "case listed")
        w.case_list.select_case(case_id)
        QTest.keyClick(w.case_list.table, Qt.Key.Key_Return)
        self.wait_until(
            lambda: w.session.case is not None and w.session.case.case_id == case_id,
            30,
            f"case {case_id} opened",
        )
        self.wait_until(w.viewer.is_ready, 300, "the viewer drew the case")

    # ----------------------------------------------------------------- steps
    def run_step(self, name: str, body: Callable[[], dict[str, Any]]) -> bool:
        self.popups.clear()
        log.info("tour step %s", name)
        try:
            shown = body()
            if self.popups:
                raise TourError(f"a message appeared: {self.popups[-1]}")
            png = self.screenshot(name)
        except Exception as exc:
            message = str(exc) if isinstance(exc, TourError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TourError):
                log.error("tour step %s\n%s", name, traceback.format_exc())
            try:
                png = self.screenshot(name)
            except Exception:
                png = Path("")
            self.results.append(StepResult(name, png.name, {}, message))
            return False
        self.results.append(StepResult(name, png.name, shown))
        return True

    def driver(self, module_name: str) -> Callable[[Any, Any], dict[str, Any]]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise TourError(f"no tour driver: {module_name} is missing ({exc})") from exc
        drive = getattr(module, "drive", None)
        if not callable(drive):
            raise TourError(f"{module_name} has no drive(view, ctx)")
        return drive

    def step_driver(self, step_id: str, module_name: str) -> dict[str, Any]:
        drive = self.driver(module_name)
        view = self.show_step(step_id)
        return dict(drive(view, self))

    def write_json(self) -> Path:
        path = self.out_dir / "tour.json"
        steps = [{"name": r.name, "png": r.png, "shown": r.shown} for r in self.results]
        path.write_text(json.dumps({"steps": steps}, indent=2, default=str), encoding="utf-8")
        return path

    def close(self) -> None:
        self._watch.stop()


# ------------------------------------------------------------------ store
def make_tour_store(out_dir: Path) -> tuple[Any, Path, dict[str, str]]:
    """A fresh store in ``OUT_DIR/store`` with the tour's accounts (passwords in memory)."""
    from dosimetry_core.store import CaseStore
    from dosimetry_core.store.permissions import Actor
    from dosimetry_core.store.users import bootstrap_admin, create_user

    store_dir = out_dir / "store"
    if store_dir.exists():
        if not (store_dir / TOUR_MARKER).is_file():
            raise TourError(
                f"{store_dir} exists and was not made by a tour: choose another OUT_DIR"
            )
        shutil.rmtree(store_dir)
    store_dir.mkdir(parents=True)
    (store_dir / TOUR_MARKER).write_text("made by mrt-dosimetry --tour\n", encoding="utf-8")
    store = CaseStore(store_dir)
    passwords = {name: secrets.token_urlsafe(12) for name in ACCOUNTS}
    admin_name = next(n for n, r in ACCOUNTS.items() if r == "admin")
    admin = bootstrap_admin(store, admin_name, passwords[admin_name], full_name="Tour admin")
    for name, role in ACCOUNTS.items():
        if role != "admin":
            create_user(store, admin, name, passwords[name], role, full_name=f"Tour {role}")
    assert isinstance(admin, Actor)
    return store, store_dir, passwords


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def _user(role: str) -> str:
    return next(n for n, r in ACCOUNTS.items() if r == role)


# ----------------------------------------------------------------- report
def write_demo_report(store: Any, actor: Any, case_id: str, out_dir: Path) -> Path:
    """Run the demo case under the protocol and write its report PDF, as ``actor``, by the core."""
    from dosimetry_core.pipeline.protocol_run import run_protocol
    from dosimetry_core.reporting.records import create_report, report_pdf

    previous = store.actor
    store.actor = actor
    try:
        run_protocol(store, case_id, DEMO_PROTOCOL, user=actor.username)
        record = create_report(store, actor, case_id)
        folder = out_dir / "report"
        folder.mkdir(exist_ok=True)
        path = folder / f"{record.report_id}.pdf"
        path.write_bytes(report_pdf(store, record.report_id))
    finally:
        store.actor = previous
    return path


# ------------------------------------------------------------------- main
def run_tour(out_dir: Path, *, report: bool = True) -> int:
    """Run the whole tour (module docstring); returns the exit status."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("[0-9][0-9]-*.png"):
        old.unlink()
    try:
        store, store_dir, passwords = make_tour_store(out_dir)
    except Exception as exc:
        sys.stderr.write(f"tour: the tour's store could not be made: {exc}\n")
        return 1
    window = MainWindow(store, store_path=store_dir)
    window.resize(*WINDOW_SIZE)
    window.move(0, 0)
    window.show()
    tour = Tour(window, passwords, out_dir)
    case_id: list[str] = []
    tour.settle(0.5)

    def login() -> dict[str, Any]:
        # the physicist imports the demo: its RTSTRUCT becomes draft VOIs, which needs "contour"
        return tour.log_in(_user("physicist"))

    def open_demo() -> dict[str, Any]:
        window.action_open_demo.trigger()
        tour.wait_until(lambda: window.session.case is not None, DEMO_TIMEOUT_S, "demo imported")
        tour.wait_until(window.viewer.is_ready, 300, "the viewer drew the demo case")
        case = window.session.case
        assert case is not None
        case_id.append(case.case_id)
        return {
            "patient": window.header.value("patient"),
            "case_id": case.case_id,
            "n_time_points": len(case.time_points),
            "time_points": window.viewer.time_point_labels(),
        }

    def data_entry() -> dict[str, Any]:
        if not case_id:
            raise TourError("no demo case to enter data for (the demo step failed)")
        tour.log_in(_user("technologist"))
        tour.open_case_from_list(case_id[0])
        return tour.step_driver("entry", "app.steps.entry.tour")

    def viewer() -> dict[str, Any]:
        drive = tour.driver("app.viewer.tour")
        if window.session.case is None and case_id:
            tour.open_case_from_list(case_id[0])
        return dict(drive(window.viewer, tour))

    def registration() -> dict[str, Any]:
        if not case_id:
            raise TourError("no demo case to register (the demo step failed)")
        tour.log_in(_user("physicist"))
        tour.open_case_from_list(case_id[0])
        return tour.step_driver("registration", "app.steps.registration.tour")

    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("login", login),
        ("demo-case", open_demo),
        ("data-entry", data_entry),
        ("viewer", viewer),
        ("registration", registration),
    ]

    def physicist_step(step_id: str, role: str = "physicist") -> Callable[[], dict[str, Any]]:
        def body() -> dict[str, Any]:
            if not case_id:
                raise TourError(f"no demo case for {step_id} (the demo step failed)")
            if window.session.actor is None or window.session.actor.role != role:
                tour.log_in(_user(role))
            if window.session.case is None or window.session.case.case_id != case_id[0]:
                tour.open_case_from_list(case_id[0])
            return tour.step_driver(step_id, f"app.steps.{step_id}.tour")

        return body

    # the physicist's analysis (issue 15), each step driven by its package's tour.py
    for name, step_id in ANALYSIS_TOUR_STEPS:
        if _module_exists(f"app.steps.{step_id}.tour"):
            steps.append((name, physicist_step(step_id)))
    if _module_exists("app.steps.importing.tour"):
        steps.append(
            ("importing", lambda: tour.step_driver("importing", "app.steps.importing.tour"))
        )
    # the physician's part (issue 16): the contour review, logged in as the physician
    # (after the import, which a physician may not do)
    for name, step_id in PHYSICIAN_TOUR_STEPS:
        if _module_exists(f"app.steps.{step_id}.tour"):
            steps.append((name, physicist_step(step_id, role="physician")))
    # the report and sign-off (issue 16): make, sign twice, verify the saved file
    gui_report: list[Path] = []
    ctx: Any = tour  # a TourContext (its window is the MainWindow)
    if _module_exists("app.steps.report.tour"):

        def report_view(role: str) -> Any:
            if not case_id:
                raise TourError("no demo case to report on (the demo step failed)")
            if window.session.actor is None or window.session.actor.role != role:
                tour.log_in(_user(role))
            if window.session.case is None or window.session.case.case_id != case_id[0]:
                tour.open_case_from_list(case_id[0])
            return tour.show_step("report")

        def make_report() -> dict[str, Any]:
            drive = tour.driver("app.steps.report.tour")
            return dict(drive(report_view("physicist"), tour))

        def sign_twice() -> dict[str, Any]:
            from app.steps.report.tour import drive_sign

            mpe = drive_sign(report_view("physicist"), ctx)
            practitioner = drive_sign(report_view("physician"), ctx)
            return {
                "mpe_status": mpe["status"],
                "status": practitioner["status"],
                "signatures": practitioner["signatures"],
            }

        def verify_file() -> dict[str, Any]:
            from app.steps.report.tour import drive_verify

            shown = drive_verify(report_view("physician"), ctx, out_dir)
            if shown["intact"]:
                gui_report.append(Path(shown["pdf"]))
            return shown

        steps += [("report", make_report), ("sign", sign_twice), ("verify", verify_file)]
    # the exports (issue 16): RT Dose, SEG and the signed report into OUT_DIR/export, then
    # the population ranges, by the physician still logged in after signing
    if _module_exists("app.steps.export.tour"):
        steps.append(("export", physicist_step("export", role="physician")))
    failed: list[StepResult] = []
    try:
        for name, body in steps:
            if not tour.run_step(name, body):
                failed.append(tour.results[-1])
        json_path = tour.write_json()
        report_path: Path | None = gui_report[0] if gui_report else None
        if report and case_id and report_path is None:
            # fallback: the GUI steps made no signed report; the core writes the draft
            from dosimetry_core.store.permissions import Actor

            try:
                report_path = write_demo_report(
                    store, Actor(_user("physicist"), "physicist"), case_id[0], out_dir
                )
            except Exception as exc:
                failed.append(StepResult("demo-report", "", {}, f"{type(exc).__name__}: {exc}"))
    finally:
        tour.close()
        window.session.cancel_jobs()
        window.ask = lambda title, text: True  # type: ignore[method-assign]  # nobody to ask
        window.close()
        QApplication.processEvents()
        store.close()
    print(f"tour: screenshots and {json_path.name} in {out_dir}")
    if report_path is not None:
        print(f"tour: demo report {report_path}")
    for r in failed:
        sys.stderr.write(f"tour: step {r.name} failed: {r.error}\n")
    return 1 if failed else 0
