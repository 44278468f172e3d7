"""The longest event-loop gap during a GUI action (shared by the GUI benchmarks).

A 5 ms ``QTimer`` records the longest interval between its ticks: when the
event loop is blocked (a slow paint, a synchronous computation), the next tick
comes late by that much, so ``longest_ms`` is what a user would feel as a
stall.  The goal of the GUI benchmarks is a longest gap under
:data:`GOAL_GAP_MS`.
"""

from __future__ import annotations

import time

GOAL_GAP_MS = 100.0
"""Longest acceptable event-loop stall (ms), the issue's responsiveness goal."""


class GapMeter:
    """A 5 ms QTimer recording the longest interval between its ticks (ms)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.longest_ms = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_ms = max(self.longest_ms, 1000 * (now - self._last))
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.longest_ms = 0.0
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
