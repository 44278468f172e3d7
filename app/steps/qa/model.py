"""View-model of the QA and commissioning step (no Qt): forms, results, chart data, record rows.

The step is not tied to a case.  What it shows is computed here from the
core's results so that it is tested without a screen:

* :class:`CalibrationForm` / :class:`RecoveryForm` -- the text the user typed,
  turned into the arguments of the core calls
  (:func:`dosimetry_core.qa.qa_runs.run_camera_calibration`,
  :func:`~dosimetry_core.qa.qa_runs.run_recovery`), mirroring the options of
  ``mrtdose qa calibrate | recovery``; a refused entry raises
  :class:`~dosimetry_core.errors.InvalidInputError` with ``field`` naming the box.
* :class:`CalibrationSummary` -- factor with its SD (cps/MBq), device, dates,
  PASS/FAIL of the constancy check and :class:`ConstancyChart` (factor against
  date with the tolerance band).
* :class:`RecoverySummary` -- measured RC per sphere volume, the fitted RC(V)
  curve sampled on a log-spaced volume axis (values from the core's curve) and
  the fitted parameters with their units.
* :class:`RecordsModel` -- rows of the QA record list (kind, device, nuclide,
  dates, validity, author, constancy, hash check), filterable by kind.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.qa.qa_runs import CalibrationRun, QaRecordRow, RecoveryRun, qa_record_rows
from dosimetry_core.qa.recovery import MODELS, RecoveryCurve
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "GEOMETRIES",
    "KIND_FILTERS",
    "NUCLIDE_CHOICES",
    "RECORD_COLUMNS",
    "RECOVERY_MODELS",
    "CalibrationForm",
    "CalibrationSummary",
    "ConstancyChart",
    "RecordsModel",
    "RecoveryForm",
    "RecoverySummary",
    "author_name",
    "latest_camera_chart",
    "parse_time",
]

GEOMETRIES: tuple[str, ...] = ("cylinder", "point")
RECOVERY_MODELS: tuple[str, ...] = tuple(MODELS)
NUCLIDE_CHOICES: tuple[str, ...] = ("", "Lu-177", "I-131", "Y-90", "Ga-68", "Tc-99m", "In-111")
"""Nuclide menu; "" = take it from the scan header (the CLI's default)."""
KIND_FILTERS: tuple[str, ...] = (
    "",
    "camera-calibration",
    "recovery",
    "well-counter",
    "probe",
    "dead-time",
)
"""Kind filter of the record list; "" = every kind."""
RECORD_COLUMNS: tuple[str, ...] = (
    "Kind",
    "Nuclide",
    "Measured",
    "Valid until",
    "Validity",
    "Value",
    "Constancy",
    "Made by",
    "Signature",
    "Device",
)
TIME_FORMAT = "%Y-%m-%d %H:%M"


def parse_time(text: str, field_name: str, what: str, *, required: bool) -> datetime | None:
    """A local date-time typed as ``YYYY-MM-DD HH:MM`` (ISO accepted, like the CLI)."""
    t = text.strip()
    if not t:
        if required:
            raise InvalidInputError(f"enter the {what} (YYYY-MM-DD HH:MM)", field=field_name)
        return None
    try:
        value = datetime.fromisoformat(t.replace(" ", "T", 1))
    except ValueError as exc:
        raise InvalidInputError(
            f"{what} {t!r} is not a date-time (use e.g. 2026-02-23 08:00)", field=field_name
        ) from exc
    return value.replace(tzinfo=None)


def _number(text: str, field_name: str, what: str, unit: str, *, required: bool) -> float | None:
    t = text.strip().replace(",", ".")
    if not t:
        if required:
            raise InvalidInputError(f"enter the {what} ({unit})", field=field_name)
        return None
    try:
        value = float(t)
    except ValueError as exc:
        raise InvalidInputError(f"{what} {t!r} is not a number ({unit})", field=field_name) from exc
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number ({unit})", field=field_name)
    return value


def _folder(text: str) -> str:
    folder = text.strip()
    if not folder:
        raise InvalidInputError("choose the phantom's DICOM folder", field="dicom_dir")
    if not os.path.isdir(folder):
        raise InvalidInputError(f"{folder}: no such folder", field="dicom_dir")
    return folder


def author_name(actor: Any) -> str:
    """Who the record names as its maker: the logged-in user, else (single-user store)
    ``$MRTDOSE_USER`` or ``$USER`` as the CLI does."""
    if actor is not None:
        return str(actor.username)
    return os.environ.get("MRTDOSE_USER") or os.environ.get("USER") or "unknown"


# ------------------------------------------------------------- calibration
@dataclass
class CalibrationForm:
    """What the calibration form holds (text as typed); options of ``mrtdose qa calibrate``."""

    folder: str = ""
    activity_mbq: str = ""
    activity_time: str = ""
    nuclide: str = ""
    geometry: str = "cylinder"
    margin_mm: str = "40"
    activity_sd_percent: str = ""
    valid_until: str = ""
    tolerance_percent: str = "5"

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~dosimetry_core.qa.qa_runs.run_camera_calibration`
        (without the store); raises InvalidInputError naming the box."""
        if self.geometry not in GEOMETRIES:
            raise InvalidInputError(f"unknown geometry {self.geometry!r}", field="geometry")
        return {
            "dicom_dir": _folder(self.folder),
            "activity_mbq": _number(
                self.activity_mbq, "activity_mbq", "source activity", "MBq", required=True
            ),
            "activity_time": parse_time(
                self.activity_time, "activity_time", "assay time", required=True
            ),
            "nuclide": self.nuclide.strip() or None,
            "geometry": self.geometry,
            "margin_mm": _number(self.margin_mm, "margin_mm", "VOI margin", "mm", required=True),
            "activity_sd_percent": _number(
                self.activity_sd_percent,
                "activity_sd_percent",
                "activity uncertainty",
                "%",
                required=False,
            ),
            "valid_until": parse_time(
                self.valid_until, "valid_until", "end of validity", required=False
            ),
            "tolerance_percent": _number(
                self.tolerance_percent, "tolerance_percent", "tolerance", "%", required=False
            ),
        }


@dataclass(frozen=True)
class ConstancyChart:
    """Factor (cps/MBq) against measurement date, and the tolerance band.

    ``x_s`` are POSIX seconds of the local measurement times (a date axis shows
    them); the band is ``reference ± tolerance %`` with the reference the mean
    of the records before the newest one (the core's baseline,
    :func:`~dosimetry_core.qa.records.compare_constancy`), or the only value.
    """

    x_s: tuple[float, ...]
    values_cps_per_mbq: tuple[float, ...]
    statuses: tuple[str, ...]
    reference_cps_per_mbq: float | None
    tolerance_percent: float

    @property
    def band_cps_per_mbq(self) -> tuple[float, float] | None:
        if self.reference_cps_per_mbq is None:
            return None
        r, t = self.reference_cps_per_mbq, self.tolerance_percent / 100.0
        return (r * (1.0 - t), r * (1.0 + t))

    @classmethod
    def from_trend(cls, trend: list[dict[str, Any]], tolerance_percent: float) -> ConstancyChart:
        pts = [
            (datetime.fromisoformat(t["measured_at"]).timestamp(), float(t["value"]), t["status"])
            for t in trend
            if isinstance(t.get("value"), int | float)
        ]
        values = [p[1] for p in pts]
        ref: float | None
        if len(values) > 1:
            ref = float(np.mean(values[:-1]))
        else:
            ref = values[0] if values else None
        return cls(
            tuple(p[0] for p in pts),
            tuple(values),
            tuple(str(p[2]) for p in pts),
            ref,
            float(tolerance_percent),
        )


def _date(value: datetime | None) -> str:
    return value.strftime(TIME_FORMAT) if value is not None else "-"


@dataclass(frozen=True)
class CalibrationSummary:
    """What the calibration result panel shows (every number with its unit)."""

    factor_text: str
    device_text: str
    device_key: str
    measured_text: str
    valid_until_text: str
    activity_text: str
    verdict: str
    """``PASS`` or ``FAIL`` (constancy beyond the tolerance)."""
    verdict_text: str
    chart: ConstancyChart
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_run(cls, run: CalibrationRun) -> CalibrationSummary:
        cal, rec = run.calibration, run.record
        dev = cal.device.to_dict()
        device_text = " · ".join(
            p for p in (dev["manufacturer"], dev["model"], dev["serial"], dev["collimator"]) if p
        )
        c = run.constancy
        tol = float(c.get("tolerance_percent", run.tolerance_percent))
        passed = rec.status != "warning"
        verdict = "PASS" if passed else "FAIL"
        n_prev = int(c.get("n_previous", 0))
        if n_prev == 0:
            why = "first record of this camera: baseline"
        else:
            parts = []
            if c.get("deviation_from_previous_percent") is not None:
                parts.append(f"{c['deviation_from_previous_percent']:+.1f} % vs previous")
            if c.get("deviation_from_baseline_percent") is not None:
                parts.append(
                    f"{c['deviation_from_baseline_percent']:+.1f} % vs mean of {n_prev} earlier"
                )
            why = ", ".join(parts)
        return cls(
            factor_text=f"{cal.cps_per_mbq:.4g} ± {cal.cps_per_mbq_sd:.2g} cps/MBq",
            device_text=device_text or rec.device_key,
            device_key=rec.device_key,
            measured_text=f"{_date(rec.measured_at)} ({cal.nuclide})",
            valid_until_text=_date(rec.valid_until),
            activity_text=(
                f"{cal.activity_at_scan_mbq:.4g} MBq at the scan start, "
                f"{cal.duration_s:.0f} s, {cal.counts_in_voi:.4g} counts in the VOI"
            ),
            verdict=verdict,
            verdict_text=f"Constancy {verdict} (tolerance ± {tol:g} %; {why})",
            chart=ConstancyChart.from_trend(run.trend, tol),
            warnings=tuple(cal.warnings),
        )


# ---------------------------------------------------------------- recovery
@dataclass
class RecoveryForm:
    """What the recovery form holds; options of ``mrtdose qa recovery``."""

    folder: str = ""
    sphere_kbq_ml: str = ""
    background_kbq_ml: str = ""
    activity_time: str = ""
    nuclide: str = ""
    model: str = "gaussian-psf"
    valid_until: str = ""
    tolerance_percent: str = "5"
    store_result: bool = True
    diameters_mm: str = ""
    """Sphere inner diameters separated by spaces; "" = the NEMA IEC six (``--diameter-mm``)."""
    centers_json: str = ""
    """JSON file of sphere centres [[x, y, z], ...] (LPS mm); "" = found (``--centers-json``)."""

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~dosimetry_core.qa.qa_runs.run_recovery` (no store)."""
        if self.model not in RECOVERY_MODELS:
            raise InvalidInputError(f"unknown RC model {self.model!r}", field="model")
        return {
            "dicom_dir": _folder(self.folder),
            "sphere_kbq_ml": _number(
                self.sphere_kbq_ml, "sphere_kbq_ml", "sphere concentration", "kBq/mL", required=True
            ),
            "background_kbq_ml": _number(
                self.background_kbq_ml,
                "background_kbq_ml",
                "background concentration",
                "kBq/mL",
                required=True,
            ),
            "activity_time": parse_time(
                self.activity_time, "activity_time", "time of the concentrations", required=False
            ),
            "nuclide": self.nuclide.strip() or None,
            "model": self.model,
            "valid_until": parse_time(
                self.valid_until, "valid_until", "end of validity", required=False
            ),
            "tolerance_percent": _number(
                self.tolerance_percent, "tolerance_percent", "tolerance", "%", required=True
            ),
            "store_result": bool(self.store_result),
            "diameters_mm": self._diameters(),
            "centers_lps_mm": self._centres(),
        }

    def _diameters(self) -> list[float] | None:
        words = self.diameters_mm.replace(",", " ").split()
        if not words:
            return None
        try:
            values = [float(w) for w in words]
        except ValueError as exc:
            raise InvalidInputError(
                f"sphere diameters {self.diameters_mm!r}: numbers in mm separated by spaces",
                field="diameters_mm",
            ) from exc
        return values

    def _centres(self) -> list[list[float]] | None:
        import json

        path = self.centers_json.strip()
        if not path:
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot read sphere centres {path}: {exc}", field="centers_json"
            ) from exc
        return data


CURVE_POINTS = 120


@dataclass(frozen=True)
class RecoverySummary:
    """Measured RCs per sphere and the fitted RC(V) curve (from the core's fit)."""

    diameters_mm: tuple[float, ...]
    volumes_ml: tuple[float, ...]
    rc: tuple[float, ...]
    rc_sd: tuple[float | None, ...]
    curve_volumes_ml: tuple[float, ...]
    curve_rc: tuple[float, ...]
    fitted_rc: tuple[float | None, ...]
    """The core's curve at each sphere volume."""
    model: str
    parameters_text: str
    record_text: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def sphere_cells(self) -> list[list[str]]:
        """Rows of the sphere table: diameter (mm), volume (mL), RC, SD, fitted RC."""
        return [
            [
                f"{d:.0f}",
                f"{v:.2f}",
                f"{r:.3f}",
                "-" if s is None else f"{s:.3f}",
                "-" if f is None else f"{f:.3f}",
            ]
            for d, v, r, s, f in zip(
                self.diameters_mm,
                self.volumes_ml,
                self.rc,
                self.rc_sd,
                self.fitted_rc,
                strict=True,
            )
        ]

    @classmethod
    def from_curve_dict(
        cls,
        spheres: list[dict[str, Any]],
        curve: dict[str, Any] | None,
        record_text: str = "",
        warnings: tuple[str, ...] = (),
    ) -> RecoverySummary:
        """From the payload of a recovery run or a stored recovery record."""
        vols = [float(s["volume_ml"]) for s in spheres]
        cv: list[float] = []
        cr: list[float] = []
        fitted: list[float | None] = [None] * len(vols)
        text = "no RC(V) curve fitted"
        model = ""
        if curve:
            fit = RecoveryCurve.from_dict(curve)
            model = fit.model
            lo = min(vols) / 2.0 if vols else 0.1
            hi = max(vols) * 4.0 if vols else 100.0
            cv = [float(v) for v in np.geomspace(lo, hi, CURVE_POINTS)]
            cr = [fit(v) for v in cv]
            fitted = [fit(v) for v in vols]
            sds = fit.to_dict()["parameter_sd"]
            names = {"fwhm_mm": "FWHM", "a_ml": "a", "b": "b"}
            pieces = []
            for k, v in fit.parameters.items():
                unit = fit.parameter_units.get(k, "")
                unit = "" if unit in ("", "1") else f" {unit}"
                pieces.append(f"{names.get(k, k)} = {v:.3g} ± {sds[k]:.2g}{unit}")
            text = f"RC(V) {model}: " + ", ".join(pieces)
            if fit.chi2 is not None:
                text += f" (χ² = {fit.chi2:.3g}, {fit.dof} dof)"
        return cls(
            diameters_mm=tuple(float(s["diameter_mm"]) for s in spheres),
            volumes_ml=tuple(vols),
            rc=tuple(float(s["recovery"]) for s in spheres),
            rc_sd=tuple(
                None if s.get("recovery_sd") is None else float(s["recovery_sd"]) for s in spheres
            ),
            curve_volumes_ml=tuple(cv),
            curve_rc=tuple(cr),
            fitted_rc=tuple(fitted),
            model=model,
            parameters_text=text,
            record_text=record_text,
            warnings=tuple(warnings),
        )

    @classmethod
    def from_run(cls, run: RecoveryRun) -> RecoverySummary:
        if run.record is not None:
            rec = f"Stored as {run.record.record_id} for {run.device_key} ({run.nuclide})"
        else:
            rec = f"Not stored (analysis only) · {run.device_key} ({run.nuclide})"
        return cls.from_curve_dict(
            run.payload["spheres"], run.payload["curve"], rec, tuple(run.warnings)
        )


# ----------------------------------------------------------------- records
def _value_text(row: QaRecordRow) -> str:
    if row.value is None:
        return "-"
    names = {"cps_per_mbq": "CF", "fwhm_mm": "FWHM", "cps_per_bq": "eff", "dead_time_s": "τ"}
    return f"{names.get(row.value_name, row.value_name)} {row.value:.4g} {row.value_unit}".strip()


class RecordsModel:
    """The QA record list (module docstring); ``kind`` "" shows every kind."""

    def __init__(self) -> None:
        self.rows: list[QaRecordRow] = []
        self.kind = ""

    def load(
        self, store: CaseRepository | None, kind: str = "", now: datetime | None = None
    ) -> None:
        self.kind = kind
        if store is None:
            self.rows = []
            return
        # the core lists oldest first (ties in storing order): show newest first
        self.rows = list(reversed(qa_record_rows(store, kind=kind or None, now=now)))

    @staticmethod
    def cells(row: QaRecordRow) -> list[str]:
        """The text of each column of :data:`RECORD_COLUMNS`."""
        return [
            row.kind,
            row.nuclide,
            _date(row.measured_at),
            _date(row.valid_until),
            row.validity,
            _value_text(row),
            row.status,
            row.created_by or "-",
            "verified" if row.hash_ok else "ALTERED",
            row.device_key,
        ]

    def summary(self) -> str:
        if not self.rows:
            return (
                "No QA records" + (f" of kind {self.kind}" if self.kind else "") + " in the store."
            )
        n_valid = sum(1 for r in self.rows if r.validity == "valid")
        bad = sum(1 for r in self.rows if not r.hash_ok)
        text = f"{len(self.rows)} record(s), {n_valid} valid"
        if bad:
            text += f"; {bad} fail the signature check"
        return text + "."


def latest_camera_chart(store: CaseRepository | None) -> tuple[str, str, ConstancyChart] | None:
    """Device key, nuclide and constancy chart of the most recent camera calibration
    (shown before any run), or None when the store holds none."""
    from dosimetry_core.qa.records import DEFAULT_TOLERANCE_PERCENT, constancy_trend, list_records

    if store is None:
        return None
    records = list_records(store, kind="camera-calibration")
    if not records:
        return None
    last = records[-1]
    tol = (last.payload.get("constancy") or {}).get("tolerance_percent")
    trend = constancy_trend(store, "camera-calibration", last.device_key, last.nuclide)
    chart = ConstancyChart.from_trend(trend, float(tol or DEFAULT_TOLERANCE_PERCENT))
    return last.device_key, last.nuclide, chart
