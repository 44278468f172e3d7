"""View-model of the import step (no Qt): the folder, the options, the run, the summary.

The view gathers the folder and the calibration factor, asks this model to
check them (:meth:`ImportModel.check`), starts
:func:`dosimetry_core.pipeline.importing.import_directory` in a worker with
:meth:`ImportModel.job_kwargs`, and shows the summary tree this model builds
from the core's :class:`~dosimetry_core.pipeline.importing.ImportReport`
(:meth:`ImportModel.summary`): each case with its time points in words, the
VOIs attached, the structure sets that could not be attached, the skipped
files with their reasons, and the warnings.  Listeners registered with
:meth:`ImportModel.subscribe` are called after every change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.importing import ImportReport

__all__ = ["ImportModel", "SummaryNode"]


@dataclass
class SummaryNode:
    """One line of the summary tree.

    Attributes
    ----------
    text
        What the line says.
    kind
        ``case``, ``time-point``, ``vois``, ``structure-set``, ``skipped-group``,
        ``skipped``, ``warnings-group``, ``warning``.
    case_id
        The case a ``case`` line (and its children) belongs to; "" otherwise.
    children
        Lines shown under this one.
    """

    text: str
    kind: str
    case_id: str = ""
    children: list[SummaryNode] = field(default_factory=list)


class ImportModel:
    """State of the import step (module docstring)."""

    def __init__(self) -> None:
        self.folder = ""
        self.calibration_cps_per_mbq: float | None = None
        self.running = False
        self.progress_fraction = 0.0
        self.status = "Choose a DICOM folder to import."
        self.report: ImportReport | None = None
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------ listeners
    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # --------------------------------------------------------------- input
    @staticmethod
    def parse_folder(text: str) -> Path:
        """The folder to import; InvalidInputError(field="folder") when it is not one."""
        text = text.strip()
        if not text:
            raise InvalidInputError("choose a folder to import", field="folder")
        path = Path(text).expanduser()
        if not path.exists():
            raise InvalidInputError(f"{path}: no such folder", field="folder")
        if not path.is_dir():
            raise InvalidInputError(
                f"{path} is a file: choose the folder that holds the DICOM files", field="folder"
            )
        return path

    @staticmethod
    def parse_calibration(text: str) -> float | None:
        """Camera calibration factor (cps/MBq) typed by the user; empty: none.

        Only count-based SPECT series use it (vendor Bq/mL series ignore it).
        """
        text = text.strip().replace(",", ".")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise InvalidInputError(
                f"calibration factor must be a number of cps/MBq, got {text!r}",
                field="calibration_cps_per_mbq",
            ) from None
        if not 0 < value < float("inf"):  # refuses NaN too
            raise InvalidInputError(
                f"calibration factor must be a positive number of cps/MBq, got {text}",
                field="calibration_cps_per_mbq",
            )
        return value

    def check(self, folder_text: str, calibration_text: str) -> tuple[Path, float | None]:
        """Validate both inputs (folder first); keep them when valid."""
        folder = self.parse_folder(folder_text)
        calibration = self.parse_calibration(calibration_text)
        self.folder = str(folder)
        self.calibration_cps_per_mbq = calibration
        return folder, calibration

    def job_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``import_directory`` besides store and folder."""
        return {"calibration_cps_per_mbq": self.calibration_cps_per_mbq}

    # ---------------------------------------------------------------- run
    def started(self) -> None:
        self.running = True
        self.progress_fraction = 0.0
        self.report = None
        self.status = f"Importing {self.folder} …"
        self._changed()

    def progressed(self, fraction: float, message: str) -> None:
        self.progress_fraction = max(0.0, min(1.0, float(fraction)))
        self.status = message
        self._changed()

    def finished(self, report: ImportReport) -> None:
        self.running = False
        self.progress_fraction = 1.0
        self.report = report
        n_tp = sum(c.new_time_points for c in report.cases)
        n_voi = sum(len(c.vois_attached) for c in report.cases)
        if report.cases:
            self.status = (
                f"Imported {n_tp} time point(s) and {n_voi} draft VOI(s) into "
                f"{len(report.cases)} case(s)."
            )
        else:
            self.status = "Nothing new was imported (see the summary)."
        self._changed()

    def failed(self, message: str) -> None:
        self.running = False
        self.status = f"Import failed: {message}"
        self._changed()

    def cancelled(self) -> None:
        self.running = False
        self.status = "Import cancelled: nothing was saved."
        self._changed()

    # ------------------------------------------------------------ summary
    @property
    def case_ids(self) -> list[str]:
        """Cases the last import created or changed, in report order."""
        return [c.case_id for c in self.report.cases] if self.report else []

    def summary(self) -> list[SummaryNode]:
        """The summary tree of the last import (empty before one)."""
        rep = self.report
        if rep is None:
            return []
        nodes: list[SummaryNode] = []
        for c in rep.cases:
            node = SummaryNode(c.words(), "case", c.case_id)
            for tp in c.series:
                text = tp.words() + ("" if tp.new else " (already in the case)")
                node.children.append(SummaryNode(text, "time-point", c.case_id))
            for ss in rep.structure_sets:
                if ss.case_id == c.case_id:
                    node.children.append(SummaryNode(ss.words(), "structure-set", c.case_id))
            if c.vois_attached:
                node.children.append(
                    SummaryNode(
                        f"VOIs attached as drafts: {', '.join(c.vois_attached)}",
                        "vois",
                        c.case_id,
                    )
                )
            nodes.append(node)
        shown = set(self.case_ids)
        for ss in rep.structure_sets:
            if not ss.attached or ss.case_id not in shown:
                nodes.append(SummaryNode(ss.words(), "structure-set", ss.case_id))
        if rep.skipped:
            group = SummaryNode(f"{len(rep.skipped)} file(s) or series skipped", "skipped-group")
            group.children = [
                SummaryNode(f"{Path(s.path).name}: {s.reason}", "skipped") for s in rep.skipped
            ]
            nodes.append(group)
        if rep.warnings:
            group = SummaryNode(f"{len(rep.warnings)} warning(s)", "warnings-group")
            group.children = [SummaryNode(w, "warning") for w in rep.warnings]
            nodes.append(group)
        if not rep.cases:
            nodes.insert(0, SummaryNode("No case was created or changed.", "nothing"))
        return nodes
