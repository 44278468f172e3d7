"""One long core call at a time for a step: its progress bar, status line and Cancel button.

The analysis steps (registration, kinetics, dose, protocol run) each start a
long core call through :meth:`app.session.CaseSession.run` and show the same
things while it runs: the progress bar (0-1000) and the core's progress message
in the status line, Cancel enabled until pressed, then "Cancelling…".  At the
end the step's own success text, or a failure text plus the error dialog
(:mod:`app.common.error_display`), or a cancellation text; every failure and
cancellation says that nothing was saved, as the core guarantees.  This class
holds that behaviour once; each view keeps only what differs (the call, its
busy text and what success shows).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from app.common import error_display
from app.session import CaseSession
from app.workers import Task

__all__ = ["RunControl"]


class RunControl(QObject):
    """Start, follow and cancel one long core call of a view (module docstring).

    A child of ``owner``: it dies with the view, and Qt then drops the
    connections of the task and the Cancel button to it; it holds the view's
    ``on_idle`` only weakly, so it makes no reference cycle that the garbage
    collector would have to break later (possibly in the middle of a paint).

    Parameters
    ----------
    owner
        The view (parent of the error dialog).
    session
        The case session that runs the call.
    progress_bar, status_label, cancel_button
        The view's widgets; the bar's range is set to 0-1000 here.
    title
        Title of the error dialog ("Dose"), unless :meth:`start` names another.
    failed_text, cancelled_text
        Status line after a failure / a cancellation (say that nothing was saved).
    on_idle
        Called after the call ended, however it ended (re-enable the view's buttons).
    """

    def __init__(
        self,
        owner: QWidget,
        session: CaseSession,
        *,
        progress_bar: QProgressBar,
        status_label: QLabel,
        cancel_button: QPushButton,
        title: str,
        failed_text: str,
        cancelled_text: str,
        on_idle: Callable[[], None],
    ) -> None:
        super().__init__(owner)
        self._owner = weakref.ref(owner)
        self._session = session
        self.progress_bar = progress_bar
        self.status_label = status_label
        self.cancel_button = cancel_button
        self._title = title
        self._failed_text = failed_text
        self._cancelled_text = cancelled_text
        self._on_idle = weakref.WeakMethod(on_idle) if hasattr(on_idle, "__self__") else None
        self._on_idle_fn = None if self._on_idle is not None else on_idle
        self.task: Task | None = None
        progress_bar.setRange(0, 1000)
        progress_bar.setVisible(False)
        cancel_button.setEnabled(False)
        cancel_button.clicked.connect(self.cancel)

    @property
    def running(self) -> bool:
        """A call is under way (until its end was handled)."""
        return self.task is not None

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        busy_text: str,
        description: str,
        on_success: Callable[[Any], None],
        title: str | None = None,
        failed_text: str | None = None,
        **kwargs: Any,
    ) -> bool:
        """Run ``fn(*args, **kwargs)`` through the session; False if one is already running."""
        if self.task is not None:
            return False
        title = title or self._title
        failed = failed_text or self._failed_text
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setText(busy_text)

        def on_failure(message: str, details: str) -> None:
            self.status_label.setText(failed)
            error_display.show_error(self._owner(), title, message, details)

        self.task = self._session.run(
            fn,
            *args,
            description=description,
            on_success=on_success,
            on_failure=on_failure,
            on_progress=self._progress,
            on_cancelled=self._cancelled,
            **kwargs,
        )
        self.task.finished.connect(self._finished)
        self.cancel_button.setEnabled(True)
        return True

    @Slot()
    def cancel(self) -> None:
        """Ask the running call to stop (the core saves nothing when cancelled)."""
        if self.task is not None:
            self.task.cancel()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _cancelled(self) -> None:
        self.status_label.setText(self._cancelled_text)

    def _progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.status_label.setText(message)

    @Slot()
    def _finished(self) -> None:
        self.task = None
        self.progress_bar.setVisible(False)
        self.cancel_button.setEnabled(False)
        idle = self._on_idle() if self._on_idle is not None else self._on_idle_fn
        if idle is not None:
            idle()
