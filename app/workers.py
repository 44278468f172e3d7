"""Run core calls off the GUI thread and relay what happens as Qt signals.

Core functions follow one convention (ARCHITECTURE rule 3,
:mod:`dosimetry_core.progress`): they take ``progress(fraction, message)`` and a
``cancel()`` check as plain callables.  :class:`Task` supplies both, runs the
call in a :class:`~PySide6.QtCore.QThreadPool`, and turns the outcome into
exactly one of three signals, always followed by ``finished``:

* ``succeeded(result)`` -- the call returned;
* ``failed(message, details)`` -- a :class:`~dosimetry_core.errors.DosimetryError`
  (``details`` empty: its message is meant for the user) or an unexpected
  exception (a short message for the user, the traceback in ``details`` and in
  the log);
* ``cancelled()`` -- the user asked to stop (the call raised
  :class:`~dosimetry_core.errors.Cancelled`, or returned after cancel was
  requested: its result is then discarded).

The call runs in a pool thread, but every public signal is emitted in the
thread that created the :class:`Task` (the GUI thread): the worker emits
private signals that Qt queues to the task's own slots, which re-emit them.
Any callable connected to a public signal -- a lambda included -- therefore
runs in the GUI thread and may touch widgets.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from dosimetry_core.errors import Cancelled, DosimetryError

log = logging.getLogger(__name__)

__all__ = ["Task", "active_tasks", "unexpected_error_message"]

# Tasks stay referenced from Python until they have finished, so neither the
# QObject that carries the signals nor the runnable is garbage-collected while
# a pool thread still uses them.
_ACTIVE: set[Task] = set()
_ACTIVE_LOCK = threading.Lock()


def active_tasks() -> list[Task]:
    """Tasks started and not yet finished (for shutdown and tests)."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def unexpected_error_message(exc: BaseException) -> str:
    """The short text shown to the user for an exception that is a bug, not their input."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    detail = f"{kind}: {text}" if text else kind
    return (
        f"An unexpected error occurred ({detail[:200]}). "
        "The details were written to the log; please report them."
    )


_SUCCEEDED, _FAILED, _CANCELLED = 0, 1, 2


class _Runnable(QRunnable):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self._task = task
        self.setAutoDelete(False)

    def run(self) -> None:  # executed in a pool thread
        self._task._execute()


class Task(QObject):
    """One call of a core function in a worker thread.

    Parameters
    ----------
    fn
        The callable; it is called as ``fn(*args, progress=..., cancel=..., **kwargs)``
        (``progress``/``cancel`` only if ``with_progress`` is true).
    *args, **kwargs
        Passed through to ``fn``.
    with_progress
        Pass the ``progress`` and ``cancel`` keyword arguments (default True).
    description
        Short text naming the job, used in log messages.

    Examples
    --------
    >>> task = Task(ensure_demo_case, store)            # doctest: +SKIP
    >>> task.progress.connect(dialog.on_progress)        # doctest: +SKIP
    >>> task.succeeded.connect(window.open_case)         # doctest: +SKIP
    >>> task.failed.connect(show_error)                  # doctest: +SKIP
    >>> task.start()                                     # doctest: +SKIP
    """

    progress = Signal(float, str)
    """Fraction done in [0, 1] and a message, as reported by the core call."""
    succeeded = Signal(object)
    """The return value of the call."""
    failed = Signal(str, str)
    """Message for the user, and details (traceback) or an empty string."""
    cancelled = Signal()
    finished = Signal()
    """Always emitted last, whatever the outcome."""

    # emitted in the worker thread, queued to this object's thread
    _w_progress = Signal(float, str)
    _w_done = Signal(int, object, str, str)

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        with_progress: bool = True,
        description: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._with_progress = with_progress
        self.description = description or getattr(fn, "__name__", "task")
        self._cancel_event = threading.Event()
        self._runnable: _Runnable | None = None
        self._done = threading.Event()
        self._w_progress.connect(self._relay_progress)
        self._w_done.connect(self._relay_done)

    # ------------------------------------------------------------- control
    def start(self, pool: QThreadPool | None = None) -> Task:
        """Queue the call in ``pool`` (default: the global pool); returns self."""
        if self._runnable is not None:
            raise RuntimeError("a Task can be started only once")
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        self._runnable = _Runnable(self)
        (pool or QThreadPool.globalInstance()).start(self._runnable)
        return self

    def cancel(self) -> None:
        """Ask the call to stop; it stops at its next cancel check."""
        self._cancel_event.set()

    def is_cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the call has returned (not until signals are delivered)."""
        return self._done.wait(timeout_s)

    # ------------------------------------------------------ worker thread
    def _report(self, fraction: float, message: str) -> None:
        self._w_progress.emit(float(fraction), str(message))

    def _execute(self) -> None:
        outcome, payload, message, details = _SUCCEEDED, None, "", ""
        try:
            kwargs = dict(self._kwargs)
            if self._with_progress:
                kwargs["progress"] = self._report
                kwargs["cancel"] = self.is_cancel_requested
            payload = self._fn(*self._args, **kwargs)
            if self.is_cancel_requested():
                outcome, payload = _CANCELLED, None
        except Cancelled:
            log.info("%s cancelled", self.description)
            outcome = _CANCELLED
        except DosimetryError as exc:
            log.info("%s failed: %s", self.description, exc)
            outcome, message = _FAILED, str(exc)
        except Exception as exc:  # a bug: short message for the user, traceback in the log
            details = traceback.format_exc()
            log.error("%s failed unexpectedly\n%s", self.description, details)
            outcome, message = _FAILED, unexpected_error_message(exc)
        self._done.set()
        self._w_done.emit(outcome, payload, message, details)

    # -------------------------------------------------------- GUI thread
    @Slot(float, str)
    def _relay_progress(self, fraction: float, message: str) -> None:
        self.progress.emit(fraction, message)

    @Slot(int, object, str, str)
    def _relay_done(self, outcome: int, payload: object, message: str, details: str) -> None:
        try:
            if outcome == _SUCCEEDED:
                self.succeeded.emit(payload)
            elif outcome == _CANCELLED:
                self.cancelled.emit()
            else:
                self.failed.emit(message, details)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self)
            self.finished.emit()
