"""Progress and cancel conventions for long computations (ARCHITECTURE rule 3).

Every long core function accepts ``progress: ProgressCallback | None`` and
``cancel: CancelCheck | None``.  They are plain callables, never Qt objects;
``app/workers.py`` turns them into signals and the CLI into a text bar.
"""

from __future__ import annotations

from collections.abc import Callable

from dosimetry_core.errors import Cancelled

ProgressCallback = Callable[[float, str], None]
"""``progress(fraction, message)`` with ``fraction`` in [0, 1]."""

CancelCheck = Callable[[], bool]
"""Returns True when the user asked to stop."""


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` if given, clamping the fraction to [0, 1]."""
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), message)


def check_cancel(cancel: CancelCheck | None) -> None:
    """Raise :class:`Cancelled` if the cancel check says so."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled by the user")


def sub_progress(
    progress: ProgressCallback | None, start: float, stop: float
) -> ProgressCallback | None:
    """Map a child task's [0, 1] progress onto ``[start, stop]`` of the parent."""
    if progress is None:
        return None

    def _child(fraction: float, message: str) -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return _child
