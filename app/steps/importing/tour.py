"""Tour driver of the import step (protocol: :class:`app.steps.base.TourContext`).

Writes a small synthetic patient as DICOM (the demo generator of
:mod:`dosimetry_core.phantoms.demo`, its own patient id so that it becomes a
new case beside the demo case) in a worker, types its folder into the step's
folder box and clicks Import, as a user would after the folder dialog; waits
for the summary and returns what the summary tree shows.  The open case is
left as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.steps.base import TourContext, TourError
from app.steps.importing.view import ImportStepView
from app.workers import Task

__all__ = ["TOUR_PATIENT_ID", "drive", "write_tour_patient"]

TOUR_PATIENT_ID = "MRT-TOUR-IMPORT"
TOUR_PATIENT_NAME = "Tour^Import"
WRITE_TIMEOUT_S = 120.0
IMPORT_TIMEOUT_S = 180.0
"""The small patient is written in ~3 s and imported in ~4 s on two idle cores."""


def write_tour_patient(out_dir: Path, progress: Any = None, cancel: Any = None) -> Path:
    """Write the small demo patient (noise-free, own patient id, with RTSTRUCT) to ``out_dir``."""
    from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom

    config = DemoConfig.small()
    config.noise = False
    config.patient_id = TOUR_PATIENT_ID
    config.patient_name = TOUR_PATIENT_NAME
    write_demo_dicom(out_dir, config, progress=progress, cancel=cancel)
    return out_dir


def drive(view: ImportStepView, ctx: TourContext) -> dict[str, Any]:
    """Import the tour patient through the step's widgets; return the summary (module docstring)."""
    if not view.import_button.isEnabled():
        raise TourError(f"importing: the Import button is disabled for {view.session.user_label()}")
    folder = Path(tempfile.mkdtemp(prefix="mrt-tour-import-"))
    try:
        errors: list[str] = []
        writer = Task(write_tour_patient, folder, description="write the tour patient")
        writer.failed.connect(lambda message, _details: errors.append(message))
        done: list[bool] = []
        writer.finished.connect(lambda: done.append(True))  # after failed/succeeded, GUI thread
        writer.start(view.session.pool)
        ctx.wait_until(lambda: bool(done), WRITE_TIMEOUT_S, "importing: tour patient written")
        if errors or not any(folder.rglob("*.dcm")):
            raise TourError(f"importing: the tour patient was not written: {errors}")
        view.folder_edit.clear()
        QTest.keyClicks(view.folder_edit, str(folder))
        QTest.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
        if not view.model.running:
            raise TourError(f"importing: Import did not start ({view.status_label.text()})")
        ctx.wait_until(
            lambda: not view.model.running and view.task is None,
            IMPORT_TIMEOUT_S,
            "importing: the import finished",
        )
        if view.model.report is None:
            raise TourError(f"importing: no summary ({view.status_label.text()})")
        ctx.settle(0.3)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    cases = view.shown_lines("case")
    if not cases:
        raise TourError(f"importing: no case in the summary ({view.status_label.text()})")
    vois: list[str] = []
    for line in view.shown_lines("vois"):
        vois += line.split(": ", 1)[1].split(", ")
    return {
        "cases": len(cases),
        "case_lines": cases,
        "time_points": view.shown_lines("time-point"),
        "vois_attached": vois,
        "skipped": len(view.shown_lines("skipped")),
        "status": view.status_label.text(),
    }
