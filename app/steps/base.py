"""What every step view is: a QWidget bound to the session, with an id, a title and a permission.

The shell builds each step as ``ViewClass(session)``, shows it in the step
panel when the user picks it, and enables it when ``session.may(action)``
(``action`` None: every logged-in user may look at it).  ``activated()`` is
called each time the step becomes the visible one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtWidgets import QWidget

from app.session import CaseSession

__all__ = ["STEP_ORDER", "StepView", "TourContext", "TourError"]

STEP_ORDER: tuple[str, ...] = (
    "importing",
    "entry",
    "registration",
    "contouring",
    "kinetics",
    "dose",
    "protocol",
    "review",
    "report",
    "export",
    "qa",
)
"""Workflow order: Import → Data entry → Registration → Contouring → Kinetics → Dose →
Protocol run & planning (with the calculators) → Contour review → Report and sign-off →
Exports → QA."""


class StepView(QWidget):
    """Base of a step's view (module docstring)."""

    step_id: str = ""
    title: str = ""
    nav_title: str = ""
    """Shorter text for the step's button in the navigation bar ("" = ``title``); the
    button's tooltip then gives the whole title."""
    action: str | None = None
    """Permission (store.permissions.ACTIONS) needed to work in this step; None: read only."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName(f"step-{self.step_id}")

    def activated(self) -> None:
        """The step became the visible one (refresh what depends on the case)."""


class TourContext(Protocol):
    """What a step's tour driver gets from the tour runner (``app/tour.py``).

    A step package may hold ``tour.py`` with ``drive(view, ctx) -> dict``: it
    works the step through its widgets as a user would (``QTest`` mouse and
    key events, or ``QAction.trigger()``; never a private shortcut around the
    view), waits for the results, and returns the figures on screen at the
    end (read back from the widgets, with units in the keys), which the
    runner writes to ``tour.json`` beside the screenshot.
    """

    window: QWidget
    """The main window."""

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Process events until ``predicate()``; on timeout raise TourError naming ``what``."""
        ...

    def settle(self, seconds: float = 0.3) -> None:
        """Process events for a while (let a redraw happen)."""
        ...

    def password(self, username: str) -> str:
        """The password of one of the tour's accounts (the tour made them)."""
        ...

    def show_step(self, step_id: str) -> StepView:
        """Go to a step through the step navigation (as a user clicks it); returns its view."""
        ...


class TourError(RuntimeError):
    """A tour step did not reach what it should (the message names the step and what)."""
