"""app.workers.Task: progress, result, errors and cancel arrive as signals in the GUI thread."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from PySide6.QtCore import QThread

from app.workers import Task, active_tasks
from dosimetry_core.errors import CalibrationError
from dosimetry_core.progress import check_cancel, report


def _record(task: Task) -> dict[str, list]:
    seen: dict[str, list] = {"progress": [], "succeeded": [], "failed": [], "cancelled": []}
    seen["threads"] = []
    gui = QThread.currentThread()

    def on_progress(f: float, m: str) -> None:
        seen["progress"].append((f, m))
        seen["threads"].append(QThread.currentThread() is gui)

    task.progress.connect(on_progress)
    task.succeeded.connect(lambda r: seen["succeeded"].append(r))
    task.failed.connect(lambda m, d: seen["failed"].append((m, d)))
    task.cancelled.connect(lambda: seen["cancelled"].append(True))
    return seen


def test_progress_and_result_arrive_in_the_gui_thread(qtbot):
    worker_threads = []

    def job(n, *, progress=None, cancel=None):
        worker_threads.append(threading.current_thread() is threading.main_thread())
        for i in range(n):
            report(progress, (i + 1) / n, f"step {i + 1}")
        return n * 10

    task = Task(job, 4)
    seen = _record(task)
    with qtbot.waitSignal(task.finished, timeout=5000):
        task.start()
    assert worker_threads == [False]  # the call ran off the GUI thread
    assert seen["progress"] == [
        (0.25, "step 1"),
        (0.5, "step 2"),
        (0.75, "step 3"),
        (1.0, "step 4"),
    ]
    assert all(seen["threads"])  # ...but the signals were delivered in the GUI thread
    assert seen["succeeded"] == [40]
    assert seen["failed"] == [] and seen["cancelled"] == []
    assert task not in active_tasks()


def test_dosimetry_error_reaches_the_error_path_with_its_message(qtbot):
    def job(*, progress=None, cancel=None):
        report(progress, 0.1, "reading")
        raise CalibrationError("camera 'Intevo 2' has no calibration factor for Lu-177")

    task = Task(job)
    seen = _record(task)
    with qtbot.waitSignal(task.finished, timeout=5000):
        task.start()
    assert seen["failed"] == [("camera 'Intevo 2' has no calibration factor for Lu-177", "")]
    assert seen["succeeded"] == []


def test_unexpected_exception_gives_a_short_message_and_logs_the_traceback(qtbot, caplog):
    def job(*, progress=None, cancel=None):
        return {}["missing key"]

    task = Task(job, description="broken job")
    seen = _record(task)
    with caplog.at_level(logging.ERROR, logger="app.workers"):
        with qtbot.waitSignal(task.finished, timeout=5000):
            task.start()
    ((message, details),) = seen["failed"]
    assert "unexpected error" in message and "KeyError" in message
    assert "Traceback" not in message
    assert "Traceback" in details and "missing key" in details
    assert any(
        "broken job" in r.getMessage() and "Traceback" in r.getMessage() for r in caplog.records
    )


def test_cancel_stops_the_call(qtbot):
    iterations = []

    def job(*, progress=None, cancel=None):
        for i in range(10_000):
            check_cancel(cancel)
            iterations.append(i)
            report(progress, i / 10_000, "working")
            time.sleep(0.002)
        return "finished"

    task = Task(job)
    seen = _record(task)
    task.start()
    qtbot.waitUntil(lambda: len(seen["progress"]) >= 3, timeout=5000)
    with qtbot.waitSignal(task.cancelled, timeout=5000):
        task.cancel()
    qtbot.waitUntil(task.is_done, timeout=5000)
    assert seen["succeeded"] == [] and seen["failed"] == []
    assert len(iterations) < 10_000


def test_result_of_a_call_that_ignored_cancel_is_discarded(qtbot):
    gate = threading.Event()

    def job(*, progress=None, cancel=None):
        gate.wait(5)
        return "late result"

    task = Task(job)
    seen = _record(task)
    task.start()
    task.cancel()
    with qtbot.waitSignal(task.finished, timeout=5000):
        gate.set()
    assert seen["cancelled"] == [True] and seen["succeeded"] == []


def test_without_progress_arguments(qtbot):
    task = Task(lambda a, b: a + b, 2, 3, with_progress=False)
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        task.start()
    assert blocker.args == [5]


def test_a_task_starts_only_once(qtbot):
    task = Task(lambda: None, with_progress=False)
    with qtbot.waitSignal(task.finished, timeout=5000):
        task.start()
    with pytest.raises(RuntimeError):
        task.start()
