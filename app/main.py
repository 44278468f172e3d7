"""Entry point of the workstation GUI (console script ``mrt-dosimetry``).

Usage::

    mrt-dosimetry [--store PATH] [--demo | --case CASE_ID] [--tour OUT_DIR]

The store defaults to ``$MRTDOSE_STORE`` or
:func:`dosimetry_core.store.default_store_path`, as for the ``mrtdose`` CLI.
A store that cannot be opened is reported in a dialog (never a traceback);
the window then opens without a store so another can be chosen.  A store with
user accounts asks for a log-in first.

``--demo --tour OUT_DIR`` runs the self-running tour (:mod:`app.tour`) on a
fresh store in ``OUT_DIR/store`` and exits 0 when every step passed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

import dosimetry_core
from app.common import error_display
from app.main_window import APP_NAME, MainWindow
from app.workers import unexpected_error_message
from dosimetry_core.errors import DosimetryError

log = logging.getLogger("app")

__all__ = ["apply_theme", "build_parser", "main", "open_store", "resolve_store_path"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrt-dosimetry",
        description="Dosimetry workstation for molecular radiotherapy.",
    )
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="case store directory (default: $MRTDOSE_STORE or the per-user default store)",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--demo",
        action="store_true",
        help="open the demo patient, importing it first if the store does not have it",
    )
    what.add_argument("--case", metavar="CASE_ID", help="open this case")
    parser.add_argument(
        "--tour",
        metavar="OUT_DIR",
        help="with --demo: run the self-running tour on a fresh store in OUT_DIR/store, "
        "writing OUT_DIR/NN-<step>.png and OUT_DIR/tour.json (exit 0 when every step passed)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {dosimetry_core.__version__}"
    )
    return parser


def resolve_store_path(store_arg: str | None) -> Path:
    """``--store``, else ``$MRTDOSE_STORE``, else the core's default store path."""
    if store_arg:
        return Path(store_arg).expanduser()
    env = os.environ.get("MRTDOSE_STORE")
    if env:
        return Path(env).expanduser()
    from dosimetry_core.store import default_store_path

    return Path(default_store_path())


def open_store(path: Path) -> Any:
    """Open (or create) the case store at ``path``."""
    from dosimetry_core.store import CaseStore

    return CaseStore(path)


def _store_error_message(path: Path, exc: BaseException) -> str:
    reason = str(exc) if isinstance(exc, DosimetryError) else unexpected_error_message(exc)
    return (
        f"The case store at {path} cannot be opened.\n\n{reason}\n\n"
        "Choose another store with File › Open store…, or start with --store PATH."
    )


def apply_theme(app: QApplication) -> None:
    """Fusion style, a dark palette (reading-room friendly) and the application style sheet."""
    app.setStyle(QStyleFactory.create("Fusion"))
    pal = QPalette()
    base, window, text = QColor("#1b1e23"), QColor("#22262c"), QColor("#dfe3e8")
    pal.setColor(QPalette.ColorRole.Window, window)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, base)
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#23272d"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor("#2a2f36"))
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor("#7d8590"))
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, QColor("#2a2f36"))
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.BrightText, QColor("#ff6b6b"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#2f6db5"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.Link, QColor("#6ea8fe"))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c737d"))
    app.setPalette(pal)
    qss = Path(__file__).with_name("style.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


def _install_excepthook(window_getter: Any) -> None:
    """Exceptions escaping a Qt slot: log the traceback, show a short message."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        details = "".join(traceback.format_exception(kind, exc, tb))
        log.error("unhandled exception\n%s", details)
        message = str(exc) if isinstance(exc, DosimetryError) else unexpected_error_message(exc)
        try:
            error_display.show_error(window_getter(), APP_NAME, message, details)
        except Exception:  # pragma: no cover - never let the hook itself raise
            sys.__excepthook__(kind, exc, tb)

    sys.excepthook = hook


def _run_event_loop(app: QApplication) -> int:
    return app.exec()


def _show_fitted(window: MainWindow) -> None:
    """Show the window at its preferred size, or maximised when the screen is smaller."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        window.show()
        return
    avail = screen.availableGeometry()
    if window.width() > avail.width() or window.height() > avail.height():
        window.resize(min(window.width(), avail.width()), min(window.height(), avail.height()))
        window.move(avail.topLeft())
        window.showMaximized()
    else:
        window.show()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the workstation; returns the event loop's exit code."""
    parser = build_parser()
    args, qt_args = parser.parse_known_args(list(argv) if argv is not None else sys.argv[1:])
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.INFO)

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "mrt-dosimetry", *qt_args])
    elif qt_args:
        log.warning("ignored arguments: %s", " ".join(qt_args))
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("MRT Dosimetry")
    app.setApplicationVersion(dosimetry_core.__version__)
    apply_theme(app)

    if args.tour:
        if not args.demo:
            parser.error("--tour needs --demo")
        from app.tour import run_tour

        return run_tour(Path(args.tour))

    store: Any = None
    store_error = ""
    path: Path | None = None
    try:
        path = resolve_store_path(args.store)
        store = open_store(path)
    except Exception as exc:
        if not isinstance(exc, DosimetryError):
            log.exception("opening the case store failed")
        store_error = _store_error_message(path or Path(args.store or "?"), exc)

    window = MainWindow(store, store_path=path, store_opener=open_store)
    _show_fitted(window)
    _install_excepthook(lambda: window)

    def after_login() -> None:
        if args.case:
            window.open_case(args.case)
        elif args.demo:
            window.action_open_demo.trigger()

    if store_error:
        error_display.show_error(window, "Case store", store_error)
    elif window.session.needs_login:
        dialog = window.show_login()
        if dialog is not None:
            dialog.accepted.connect(after_login)
    else:
        QTimer.singleShot(0, after_login)
    try:
        return _run_event_loop(app)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
