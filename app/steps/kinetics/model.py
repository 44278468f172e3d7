"""View-model of the kinetics step (no Qt): VOI rows, model table, plot data, options.

Everything shown is read from the case's stored kinetics record
(:class:`~dosimetry_core.model.results.KineticsRecord`, written by
:func:`~dosimetry_core.pipeline.kinetics.compute_kinetics`) through the core's
read-only helpers of :mod:`dosimetry_core.pipeline.kinetics_review`; this module
only arranges those numbers as text with units and decides what the user may do:

* :class:`KineticsModel` -- one :class:`VoiRow` per VOI of the case (review
  flag, fitted model, TIA ± SD), for the selected VOI the model table
  (:data:`TABLE_COLUMNS`), the plot data (:class:`PlotData`: points with 1-SD
  error bars, every candidate's curve, the selected model's residuals), the
  single-time-point comparison, the population half-life, the TIA map line,
  and which actions are permitted (``session.may("compute")``).
* :class:`FitRequest` -- the options of a fit (model, partial-volume recovery)
  as keyword arguments of :func:`~dosimetry_core.pipeline.kinetics_review.fit_case_kinetics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dosimetry_core.model import Case, DerivedKind
from dosimetry_core.model.results import VoiKinetics
from dosimetry_core.pipeline.kinetics_review import (
    CandidateRow,
    ModelCurve,
    RecoveryChoice,
    StpRow,
    candidate_curves,
    candidate_rows,
    point_sd_mbq,
    population_half_life,
    stp_comparison,
)

__all__ = [
    "MODEL_CHOICES",
    "RECOVERY_MODES",
    "STP_METHODS",
    "TABLE_COLUMNS",
    "VOI_COLUMNS",
    "FitRequest",
    "KineticsModel",
    "PlotData",
    "VoiRow",
    "fmt_value_sd",
]

MODEL_CHOICES: tuple[str, ...] = ("auto", "mono", "biexp-uptake", "biexp", "triexp", "trapezoid")
"""Model requests of the core fit (``auto``: AICc selection)."""

RECOVERY_MODES: tuple[tuple[str, str], ...] = (
    ("none", "none"),
    ("fwhm", "PSF FWHM"),
    ("record", "QA record"),
)
STP_METHODS: tuple[tuple[str, str], ...] = (("haenscheid", "Hänscheid"), ("madsen", "Madsen"))

VOI_COLUMNS: tuple[str, ...] = ("VOI", "Kind", "Review", "Model", "TIA ± SD (MBq·h)")
TABLE_COLUMNS: tuple[str, ...] = (
    "Model",
    "AICc",
    "Weight",
    "Parameters ± SD",
    "Half-lives (h)",
    "TIA ± SD (MBq·h)",
    "Fit",
)
STP_COLUMNS: tuple[str, ...] = ("Scan (h)", "STP TIA (MBq·h)", "Difference (%)")
SELECTED_MARK = "✔ "


def fmt_value_sd(value: float | None, sd: float | None, unit: str = "", fmt: str = ".4g") -> str:
    """``'0.01733 ± 5.8e-05 1/h'``; ``'-'`` without a value; the SD left out when unknown."""
    if value is None:
        return "-"
    text = f"{value:{fmt}}"
    if sd is not None:
        text += f" ± {sd:{fmt}}"
    return f"{text} {unit}".strip()


def _tia(value: float | None, sd: float | None) -> str:
    return fmt_value_sd(value, sd, "", ".1f")


@dataclass(frozen=True)
class VoiRow:
    """One VOI as the VOI list shows it."""

    voi_id: str
    name: str
    kind: str
    review_flag: str
    kinetics: VoiKinetics | None

    def cells(self) -> list[str]:
        k = self.kinetics
        if k is None:
            model, tia = "not fitted", "-"
        elif k.error:
            model, tia = "failed", "-"
        else:
            model = k.model or "-"
            if k.model_requested not in ("", "auto"):
                model += " (override)"
            tia = _tia(k.tia_mbq_h, k.tia_sd_mbq_h)
        return [self.name, self.kind, self.review_flag or "-", model, tia]


@dataclass(frozen=True)
class PlotData:
    """What the TAC and residual plots draw for one VOI (h after administration, MBq)."""

    time_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    sd_mbq: tuple[float, ...]
    sd_source: str
    curves: tuple[ModelCurve, ...]
    residuals_mbq: tuple[float, ...]
    """The selected model minus the data at each scan (MBq, as the core stores them);
    empty for the trapezoid or without a fit."""
    selected_model: str | None


@dataclass(frozen=True)
class FitRequest:
    """Options of a core fit (keyword arguments of ``fit_case_kinetics``)."""

    vois: tuple[str, ...] | None = None
    model: str | None = None
    recovery_fwhm_mm: float | None = None
    recovery_record_id: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "vois": list(self.vois) if self.vois is not None else None,
            "model": self.model,
            "recovery_fwhm_mm": self.recovery_fwhm_mm,
            "recovery_record_id": self.recovery_record_id,
        }

    def describe(self) -> str:
        what = "all VOIs" if self.vois is None else ", ".join(self.vois)
        model = "each VOI's model" if self.model is None else f"model {self.model}"
        if self.recovery_fwhm_mm is not None:
            rec = f"PSF FWHM {self.recovery_fwhm_mm:g} mm"
        elif self.recovery_record_id:
            rec = f"recovery record {self.recovery_record_id}"
        else:
            rec = "no partial-volume correction"
        return f"{what}, {model}, {rec}"


@dataclass
class KineticsModel:
    """Rows, tables and permitted actions of the kinetics step (module docstring)."""

    case: Case | None
    may_compute: bool
    recovery_records: list[RecoveryChoice] = field(default_factory=list)
    rows: list[VoiRow] = field(init=False)

    def __post_init__(self) -> None:
        from dosimetry_core.pipeline.voi_review import review_flag

        self.may_compute = bool(self.may_compute)
        self.rows = []
        if self.case is None:
            return
        record = self.case.kinetics
        for voi in self.case.vois:
            kin = record.voi(voi.voi_id) if record is not None else None
            self.rows.append(VoiRow(voi.voi_id, voi.name, str(voi.kind), review_flag(voi), kin))

    # --------------------------------------------------------------- queries
    def row(self, voi_id: str | None) -> VoiRow | None:
        return next((r for r in self.rows if r.voi_id == voi_id), None)

    def index_of(self, voi_id: str | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r.voi_id == voi_id), -1)

    def find(self, name: str) -> VoiRow | None:
        """The VOI row called ``name`` (case-insensitive)."""
        return next((r for r in self.rows if r.name.lower() == name.lower()), None)

    def kinetics(self, voi_id: str | None) -> VoiKinetics | None:
        r = self.row(voi_id)
        return r.kinetics if r is not None else None

    @property
    def n_fitted(self) -> int:
        return sum(1 for r in self.rows if r.kinetics is not None and not r.kinetics.error)

    @property
    def can_fit(self) -> bool:
        return self.may_compute and bool(self.rows)

    def can_override(self, voi_id: str | None) -> bool:
        return self.may_compute and self.row(voi_id) is not None

    @property
    def can_tia_map(self) -> bool:
        return self.may_compute and self.case is not None and len(self.case.time_points) >= 2

    # ------------------------------------------------------------ the VOI
    def candidates(self, voi_id: str | None) -> tuple[CandidateRow, ...]:
        k = self.kinetics(voi_id)
        return candidate_rows(k) if k is not None else ()

    def table(self, voi_id: str | None) -> list[list[str]]:
        """Cells of :data:`TABLE_COLUMNS`, one row per candidate; the selected one marked."""
        out = []
        for c in self.candidates(voi_id):
            params = "\n".join(
                f"{p.name} = {fmt_value_sd(p.value, p.sd, p.unit)}" for p in c.parameters
            )
            half = "\n".join(
                f"{k.removeprefix('T_half_')} {v:.4g}" for k, v in c.half_lives_h if v is not None
            )
            status = "ok" if c.converged and c.well_conditioned else "; ".join(c.warnings) or "no"
            out.append(
                [
                    (SELECTED_MARK if c.selected else "") + c.model,
                    "-" if c.aicc is None else f"{c.aicc:.2f}",
                    "-" if c.akaike_weight is None else f"{c.akaike_weight:.3f}",
                    params or "-",
                    half or "-",
                    _tia(c.tia_mbq_h, c.tia_sd_mbq_h),
                    status,
                ]
            )
        return out

    def summary(self, voi_id: str | None) -> str:
        """One line on the selected VOI: model, TIA ± SD, TIAC, how it was chosen."""
        r = self.row(voi_id)
        if r is None:
            return "Select a VOI." if self.rows else "This case has no VOIs."
        k = r.kinetics
        if k is None:
            return f"{r.name}: not fitted yet (Fit all VOIs)."
        if k.error:
            return f"{r.name}: the fit failed: {k.error}"
        how = str(k.fit.get("selection", "")) if k.fit else ""
        tiac = fmt_value_sd(k.tiac_h, k.tiac_sd_h, "h")
        text = (
            f"{r.name}: {k.model}, TIA {_tia(k.tia_mbq_h, k.tia_sd_mbq_h)} MBq·h, TIAC {tiac}"
            f" (net administered {k.administered_activity_mbq:.1f} MBq)"
        )
        if k.model_requested not in ("", "auto"):
            text += f"; model forced: {k.model_requested}"
        elif how:
            text += f"; {how}"
        if k.recovery:
            text += f"; partial-volume correction: {k.recovery}"
        return text

    def warnings(self, voi_id: str | None) -> str:
        k = self.kinetics(voi_id)
        return "; ".join(k.warnings) if k is not None else ""

    def plot(self, voi_id: str | None) -> PlotData | None:
        k = self.kinetics(voi_id)
        if k is None or not k.tac.time_h:
            return None
        sd, source = point_sd_mbq(k)
        residuals: tuple[float, ...] = ()
        for c in self.candidates(voi_id):
            if c.selected and c.model != "trapezoid":
                residuals = c.residuals_mbq
        return PlotData(
            tuple(k.tac.time_h),
            tuple(k.tac.activity_mbq),
            sd,
            source,
            candidate_curves(k) if not k.error else (),
            residuals,
            k.model,
        )

    # ----------------------------------------------------------- options
    def stp(
        self, voi_id: str | None, method: str, t_eff_h: float | None = None
    ) -> tuple[list[list[str]], str]:
        """Cells of :data:`STP_COLUMNS` and a note (why there are none)."""
        k = self.kinetics(voi_id)
        if k is None or k.error or k.tia_mbq_h is None:
            return [], "Fit the VOI first."
        if method == "madsen" and t_eff_h is None:
            return [], "Madsen needs an effective half-life (h): give one or use the population's."
        rows: tuple[StpRow, ...] = stp_comparison(k, method, t_eff_h=t_eff_h)
        cells = []
        for r in rows:
            if r.error:
                cells.append([f"{r.time_h:.1f}", "-", r.error])
                continue
            assert r.tia_mbq_h is not None and r.relative_difference is not None
            cells.append(
                [f"{r.time_h:.1f}", f"{r.tia_mbq_h:.1f}", f"{100 * r.relative_difference:+.1f}"]
            )
        name = dict(STP_METHODS)[method]
        ref = _tia(k.tia_mbq_h, k.tia_sd_mbq_h)
        note = f"{name} from each scan against the {k.model} fit ({ref} MBq·h)"
        if method == "madsen":
            note += f", T_eff {t_eff_h:g} h"
        return cells, note

    def population(self, voi_id: str | None) -> tuple[float | None, str]:
        """(population T_eff in h or None, the text shown with its source or why none)."""
        r = self.row(voi_id)
        if r is None or self.case is None:
            return None, ""
        p = population_half_life(self.case, r.name)
        if p.t_eff_h is None:
            return None, f"Population T_eff: none ({p.note})"
        sd = fmt_value_sd(p.t_eff_h, p.t_eff_sd_h, "h", ".3g")
        n = f", n = {p.n_patients}" if p.n_patients else ""
        text = (
            f"Population T_eff ({p.organ}, {p.radiopharmaceutical}): {sd} "
            f"({p.statistic}{n}); source: {p.source}"
        )
        k = r.kinetics
        if k is not None:
            fitted = [
                f"{name.removeprefix('T_half_')} {v:.3g} h" for name, v in k.half_lives_h if v
            ]
            if fitted:
                text += "; fitted: " + ", ".join(fitted)
        return p.t_eff_h, text

    def recovery_labels(self) -> list[tuple[str, str, bool]]:
        """(record id, label, usable) of the stored QA recovery records, newest first."""
        out = []
        for c in self.recovery_records:
            state = "valid" if c.valid_now else "expired"
            if not c.intact:
                state = "TAMPERED"
            elif not c.has_curve:
                state = "no RC curve"
            label = f"{c.measured_at:%Y-%m-%d} {c.nuclide} {c.device_key} ({state}, {c.created_by})"
            out.append((c.record_id, label, c.usable))
        return out

    def tia_map_text(self) -> str:
        """The case's current voxel-wise TIA map, or that there is none."""
        if self.case is None:
            return ""
        maps = self.case.derived_maps(DerivedKind.TIA_MAP)
        if not maps:
            return "Voxel-wise TIA map: none yet."
        m = maps[0]
        by = f" by {m.created_by}" if m.created_by else ""
        return f"Voxel-wise TIA map: {m.label}, made {m.created_at:%Y-%m-%d %H:%M}{by} (MBq·h/mL)."

    @property
    def has_tia_map(self) -> bool:
        return self.case is not None and bool(self.case.derived_maps(DerivedKind.TIA_MAP))

    def tia_map_id(self) -> str | None:
        if self.case is None:
            return None
        maps = self.case.derived_maps(DerivedKind.TIA_MAP)
        return maps[0].derived_id if maps else None
