"""View-model of the exports step (no Qt): what to export, the checks, the run, the results.

What the exports view shows and sends is decided here, so it is tested without a
screen:

* :class:`ExportForm` -- the user's choices as typed (objects, destination, the
  anonymisation options); :meth:`ExportModel.check` turns them into the keyword
  arguments of :func:`dosimetry_core.pipeline.export.export_case` or refuses them
  with the field named (the same refusals as ``mrtdose export``);
* :func:`report_option` -- which report version goes out as Encapsulated PDF: the
  newest fully signed one, else the newest draft (or MPE-signed only) version,
  labelled as unsigned;
* :func:`run_export` -- the worker call: reads the secret file and the report PDF,
  runs the core export with progress and a cancel check that stops only while
  nothing has been written to the destination, and describes every written file
  (type, file name, SOP Class);
* :func:`population_histogram` -- one organ's population range from the core
  (:func:`~dosimetry_core.reporting.population.population_ranges`,
  :func:`~dosimetry_core.reporting.population_histogram.organ_histogram`).

The project secret
------------------
The secret is handed from the password field (or read from the chosen file
inside the worker) straight to the core; it is never part of a message, a log
line, a label, the settings or the store.  An error whose text happens to
contain it is replaced by one that does not (:func:`run_export`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.model import Case, DerivedKind

__all__ = [
    "FILE_COLUMNS",
    "KIND_LABELS",
    "NO_RETURN_FRACTION",
    "DoseRow",
    "ExportForm",
    "ExportModel",
    "ExportOutcome",
    "ExportedFile",
    "ReportOption",
    "describe_files",
    "destination_note",
    "percentile_text",
    "population_histogram",
    "read_secret_file",
    "report_option",
    "run_export",
    "summary_lines",
]

FILE_COLUMNS: tuple[str, ...] = ("Type", "File", "SOP Class")
KIND_LABELS: dict[str, str] = {
    "RTDOSE": "RT Dose",
    "RTSTRUCT": "RT Structure Set",
    "SEG": "Segmentation (SEG)",
    "DOC": "Encapsulated PDF",
    "CT": "CT image",
    "NM": "NM (SPECT) image",
}
NO_RETURN_FRACTION = 0.8
"""The core reports this fraction just before it writes into the destination folder;
a cancel is honoured up to there, later the export completes (files and audit)."""


# --------------------------------------------------------------------- report
@dataclass(frozen=True)
class ReportOption:
    """The report version offered as Encapsulated PDF."""

    report_id: str
    version: int
    status: str
    signed: bool
    """Fully signed (MPE and practitioner)."""

    @property
    def label(self) -> str:
        if self.signed:
            state = "signed (MPE and practitioner)"
        elif self.status == "mpe-signed":
            state = "UNSIGNED by the practitioner (MPE signature only)"
        else:
            state = "UNSIGNED draft"
        return f"Report version {self.version}, {state} ({self.report_id})"


def report_option(reports: list[Any]) -> ReportOption | None:
    """The newest signed report version, else the newest draft or MPE-signed one.

    ``reports`` are :class:`~dosimetry_core.reporting.records.ReportRecord` s
    (``list_reports``); superseded versions are never offered.
    """
    signed = [r for r in reports if r.status == "signed"]
    pool = signed or [r for r in reports if r.status in ("draft", "mpe-signed")]
    if not pool:
        return None
    r = max(pool, key=lambda rec: int(rec.version))
    return ReportOption(str(r.report_id), int(r.version), str(r.status), r.status == "signed")


# ---------------------------------------------------------------------- form
@dataclass
class ExportForm:
    """What the user chose (text as typed; :meth:`ExportModel.check` judges it)."""

    out_dir: str = ""
    rtdose: bool = True
    rtstruct: bool = False
    seg: bool = False
    report: bool = False
    images: bool = False
    """Re-write the SPECT and CT from the store (always with an anonymised export)."""
    ct_dir: str = ""
    anonymize: bool = False
    secret_file: str = ""
    """Read the secret from this file instead of the password field (when not blank)."""
    date_shift_days: str = ""
    """Blank: a per-patient shift derived from the secret (as ``mrtdose export``)."""
    retain_patient_characteristics: bool = False
    retain_structure_names: bool = True


@dataclass(frozen=True)
class DoseRow:
    derived_id: str
    label: str
    method: str
    created: str

    def text(self) -> str:
        return f"{self.label} ({self.method}, {self.created})"


class ExportModel:
    """What the exports step offers for the open case and a user (module docstring)."""

    def __init__(
        self, case: Case | None, may_export: bool, reports: list[Any] | None = None
    ) -> None:
        self.case = case
        self.may_export = may_export
        self.report = report_option(reports or [])
        self.doses: list[DoseRow] = []
        self.n_vois = 0
        if case is None:
            return
        for d in case.derived_maps(DerivedKind.DOSE):
            created = d.created_at.strftime("%Y-%m-%d %H:%M") if d.created_at else ""
            self.doses.append(
                DoseRow(d.derived_id, d.label, str(d.provenance.get("method", "dose")), created)
            )
        self.n_vois = len(case.vois)

    @property
    def can_export(self) -> bool:
        return self.case is not None and self.may_export

    def denied_reason(self) -> str:
        """Why everything is disabled ("" when the user may export)."""
        if self.case is None:
            return "Open a case to export it"
        if not self.may_export:
            return (
                "Your role may not export DICOM or anonymised cases "
                "(this needs the role physicist or physician)"
            )
        return ""

    def doses_text(self) -> str:
        if not self.doses:
            return "No dose map: compute one in the Dose step first"
        return "; ".join(d.text() for d in self.doses)

    def vois_text(self) -> str:
        return f"{self.n_vois} VOI(s)" if self.n_vois else "No VOI: nothing for RTSTRUCT/SEG"

    def report_text(self) -> str:
        return self.report.label if self.report is not None else "No report for this case yet"

    def check(self, form: ExportForm, typed_secret: str) -> dict[str, Any]:
        """The keyword arguments of :func:`run_export` for ``form``, or a refusal.

        Raises
        ------
        InvalidInputError
            ``field`` names the input: ``out_dir``, ``objects``, ``report``,
            ``secret``, ``date_shift_days``, ``ct_dir``.  The message never
            contains the secret.
        """
        if self.case is None:
            raise InvalidInputError("open a case first")
        out = form.out_dir.strip()
        if not out:
            raise InvalidInputError("choose a destination folder", field="out_dir")
        out_path = Path(out)
        if out_path.exists() and not out_path.is_dir():
            raise InvalidInputError(f"{out}: is a file, not a folder", field="out_dir")
        if not (form.rtdose or form.rtstruct or form.seg or form.report):
            raise InvalidInputError(
                "choose what to export (RT Dose, RTSTRUCT, SEG or the report)", field="objects"
            )
        if form.report and self.report is None:
            raise InvalidInputError("this case has no report to export", field="report")
        shift: int | None = None
        secret_file = form.secret_file.strip()
        if form.anonymize:
            if form.report:
                raise InvalidInputError(
                    "a report PDF cannot be de-identified automatically (its text names the "
                    "patient): export it without anonymisation",
                    field="report",
                )
            if not secret_file and not typed_secret.strip():
                raise InvalidInputError(
                    "an anonymised export needs the project secret: type it or choose the "
                    "secret file",
                    field="secret",
                )
            text = form.date_shift_days.strip()
            if text:
                try:
                    shift = int(text)
                except ValueError:
                    raise InvalidInputError(
                        "date shift: a whole number of days (blank: derived from the secret)",
                        field="date_shift_days",
                    ) from None
        ct_dir = form.ct_dir.strip()
        if ct_dir and not Path(ct_dir).is_dir():
            raise InvalidInputError(f"{ct_dir}: no such folder", field="ct_dir")
        if (form.rtstruct or form.seg) and not (form.anonymize or form.images or ct_dir):
            raise InvalidInputError(
                "RTSTRUCT/SEG reference the CT files: tick 're-write the images' or choose "
                "the folder of the original CT",
                field="ct_dir",
            )
        return {
            "case_id": self.case.case_id,
            "out_dir": out,
            "rtdose": form.rtdose,
            "rtstruct": form.rtstruct,
            "seg": form.seg,
            "report_id": self.report.report_id if form.report and self.report else None,
            "anonymize": form.anonymize,
            "secret_file": secret_file if form.anonymize and secret_file else None,
            "date_shift_days": shift,
            "images": True if form.images else None,
            "ct_dir": ct_dir or None,
            "retain_patient_characteristics": form.anonymize
            and form.retain_patient_characteristics,
            "retain_structure_names": form.retain_structure_names,
        }


def destination_note(out_dir: str) -> str:
    """A warning when the destination already holds files (the export overwrites same names)."""
    text = out_dir.strip()
    if not text:
        return ""
    folder = Path(text)
    try:
        if not folder.is_dir():
            return "" if not folder.exists() else f"{text} is a file, not a folder"
        n = sum(1 for p in folder.rglob("*") if p.is_file())
    except OSError as exc:
        return f"{text}: cannot be read ({exc.strerror})"
    if n == 0:
        return ""
    return f"The folder already holds {n} file(s): files of the same name are overwritten"


# ----------------------------------------------------------------------- run
@dataclass(frozen=True)
class ExportedFile:
    kind: str
    path: Path
    name: str
    """The path under the destination folder (``RTDOSE/RTDOSE_led_....dcm``)."""
    sop_class_uid: str
    sop_class: str
    """The SOP Class's name (pydicom's UID dictionary) or its UID."""

    def cells(self) -> list[str]:
        return [KIND_LABELS.get(self.kind, self.kind), self.name, self.sop_class]


@dataclass
class ExportOutcome:
    """What the worker hands back: the core's result and the files described."""

    result: Any
    """The core's :class:`~dosimetry_core.pipeline.export.ExportResult`."""
    files: list[ExportedFile] = field(default_factory=list)
    late_cancel: bool = False
    """Cancel was asked after the files were being written: the export completed."""


def read_secret_file(path: str) -> str:
    """The project secret in ``path`` (stripped), as ``mrtdose export --secret-file`` reads it.

    The messages name the file, never its content.
    """
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a UTF-8 text file"
        raise InvalidInputError(
            f"{path}: cannot read the secret file ({reason})", field="secret"
        ) from None
    if not secret:
        raise InvalidInputError(f"{path}: the secret file is empty", field="secret")
    return secret


def describe_files(files: dict[str, list[Path]], out_dir: str | Path) -> list[ExportedFile]:
    """Every written file with its SOP Class read back from the file: the results
    (RT Dose, RTSTRUCT, SEG, the report) first, then the re-written images."""
    import pydicom

    order = {kind: n for n, kind in enumerate(KIND_LABELS)}
    out: list[ExportedFile] = []
    for kind in sorted(files, key=lambda k: (order.get(k, len(order)), k)):
        for p in files[kind]:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            uid = ds.get("SOPClassUID")
            name = str(uid.name) if uid is not None else "?"
            try:
                shown = Path(p).relative_to(out_dir).as_posix()
            except ValueError:
                shown = Path(p).name
            out.append(ExportedFile(kind, Path(p), shown, str(uid or ""), name))
    return out


def _scrubbed(exc: BaseException, secret: str | None) -> BaseException | None:
    """An error to raise instead of ``exc`` when its text contains the secret (else None)."""
    if secret and secret in str(exc):
        return InvalidInputError(
            "the export failed; the error message quoted the project secret and is not "
            "shown (nothing else was changed)"
        )
    return None


def run_export(
    store: Any,
    case_id: str,
    out_dir: str,
    *,
    secret: str | None = None,
    secret_file: str | None = None,
    report_id: str | None = None,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **options: Any,
) -> ExportOutcome:
    """Export the case (worker thread): the core's ``export_case`` plus the files described.

    Parameters
    ----------
    secret, secret_file
        The project secret as typed, or a file holding it (read here).
    report_id
        Report version filed as Encapsulated PDF (its stored PDF).
    stop, cancel
        Cancel checks (the view's Cancel button; the session's job cancel).  A
        cancel is honoured while nothing is written into ``out_dir``
        (:data:`NO_RETURN_FRACTION`); asked later, the export completes and
        ``late_cancel`` says so.
    options
        ``rtdose``, ``rtstruct``, ``seg``, ``anonymize``, ``date_shift_days``,
        ``images``, ``ct_dir``, ``retain_patient_characteristics``,
        ``retain_structure_names``: as :func:`~dosimetry_core.pipeline.export.export_case`.
    """
    from dosimetry_core.pipeline.export import export_case
    from dosimetry_core.reporting.records import report_pdf

    def stopping() -> bool:
        return bool((stop is not None and stop()) or (cancel is not None and cancel()))

    def relay(fraction: float, message: str) -> None:
        if fraction <= NO_RETURN_FRACTION and stopping():
            raise Cancelled("export cancelled: nothing was written to the destination")
        if progress is not None:
            progress(fraction, message)

    if options.get("anonymize") and secret_file:
        secret = read_secret_file(secret_file)
    try:
        relay(0.0, "reading the report" if report_id else "starting the export")
        pdf = report_pdf(store, report_id) if report_id else None
        result = export_case(
            store,
            case_id,
            out_dir,
            report_pdf=pdf,
            secret=secret if options.get("anonymize") else None,
            progress=relay,
            **options,
        )
    except Cancelled:
        raise
    except Exception as exc:
        clean = _scrubbed(exc, secret)
        if clean is not None:
            raise clean from None
        raise
    late = stopping()
    return ExportOutcome(result, describe_files(result.files, out_dir), late_cancel=late)


def summary_lines(outcome: ExportOutcome) -> list[str]:
    """The summary under the file list (the same lines as ``mrtdose export`` prints)."""
    res = outcome.result
    lines = [f"Exported {res.n_files} file(s) to {res.out_dir}"]
    lines += [
        f"  {KIND_LABELS.get(kind, kind)}: {len(paths)}"
        for kind, paths in sorted(res.files.items())
    ]
    if res.anonymized:
        lines.append(
            f"Anonymised: patient pseudonym {res.pseudonym}, dates shifted by "
            f"{res.date_shift_days} days (times kept)"
        )
    if outcome.late_cancel:
        lines.append("Cancel came after the files were being written: the export completed.")
    lines += [f"Warning: {w}" for w in res.warnings]
    return lines


# ---------------------------------------------------------------- population
def population_histogram(store: Any, case_id: str) -> dict[str, Any]:
    """Every organ's histogram for the case (worker thread): organ id -> PopulationHistogram.

    Returns ``{"protocol", "unit", "organs": {organ_id: PopulationHistogram}}``.
    """
    from dosimetry_core.reporting.population import population_ranges
    from dosimetry_core.reporting.population_histogram import organ_histogram

    ranges = population_ranges(store, case_id)
    return {
        "protocol": ranges.get("protocol", ""),
        "unit": ranges.get("unit", "Gy/GBq"),
        "organs": {o: organ_histogram(ranges, o) for o in ranges.get("organs", {})},
    }


def percentile_text(h: Any) -> str:
    """``Kidneys: 0.60 Gy/GBq, 50th percentile of 5 patients`` (or why not)."""
    if h.value_gy_per_gbq is None:
        return f"{h.label}: this case has no Gy/GBq value"
    text = f"{h.label}: this patient {h.value_gy_per_gbq:.3g} {h.unit}"
    if h.percentile is not None:
        text += f", percentile rank {h.percentile:.0f} % of {h.n} patient(s)"
    else:
        text += ", no other patients to compare with"
    return text
