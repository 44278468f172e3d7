"""What every step view is: a QWidget bound to the session, with an id, a title and a permission.

The shell builds each step as ``ViewClass(session)``, shows it in the step
panel when the user picks it, and enables it when ``session.may(action)``
(``action`` None: every logged-in user may look at it).  ``activated()`` is
called each time the step becomes the visible one.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.session import CaseSession

__all__ = ["STEP_ORDER", "StepView"]

STEP_ORDER: tuple[str, ...] = (
    "importing",
    "entry",
    "registration",
    "contouring",
    "kinetics",
    "dose",
    "review",
    "qa",
)
"""Workflow order: Import → Data entry → Registration → Contouring → Kinetics → Dose →
Review & sign → QA."""


class StepView(QWidget):
    """Base of a step's view (module docstring)."""

    step_id: str = ""
    title: str = ""
    action: str | None = None
    """Permission (store.permissions.ACTIONS) needed to work in this step; None: read only."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName(f"step-{self.step_id}")

    def activated(self) -> None:
        """The step became the visible one (refresh what depends on the case)."""
