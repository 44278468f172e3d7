"""View-model of the dose step (no Qt): engine settings, the dose table, DVH curves, limits.

What the dose view shows is read here from the case's stored results, so it is
tested without a screen:

* :class:`RunSettings` -- the engine and its options as the user set them, turned
  into the keyword arguments of :func:`dosimetry_core.pipeline.dose.compute_dose`
  (the view runs that through ``session.run``).
* :class:`DoseModel` -- the current (not superseded) dose summaries of the case
  (one per method, :class:`~dosimetry_core.model.results.DoseSummary`), the one
  chosen, a :class:`DoseRow` per VOI with the text of each cell of
  :data:`COLUMNS`, each VOI's cumulative DVH as stored by the core (dose axis in
  Gy, volume in %), and the absorbed-dose limits of a protocol with PASS/FAIL
  (core: :func:`dosimetry_core.protocols.dose_limits.check_dose_limits`).

Every number comes from the core's records; this module only formats them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import DosimetryError
from dosimetry_core.model import Case, DerivedKind
from dosimetry_core.model.results import DoseSummary, DvhCurve, VoiDose
from dosimetry_core.protocols.dose_limits import VoiLimitCheck, check_dose_limits

__all__ = [
    "COLUMNS",
    "COMPONENTS",
    "MC_COLUMNS",
    "DVH_BINS",
    "ENGINES",
    "DoseModel",
    "DoseRow",
    "DvhPlot",
    "RunSettings",
    "engine_label",
    "fmt_gy",
]

ENGINES: tuple[tuple[str, str], ...] = (
    ("led", "Local deposition"),
    ("vsv", "Voxel S-values"),
    ("vsv-density", "Voxel S-values, density-corrected"),
    ("mc", "Monte Carlo"),
)
"""(method of ``compute_dose``, name shown) of each engine."""

COMPONENTS: tuple[tuple[str, str], ...] = (("photon", "photon"), ("total", "total"))
"""Dose component a Monte Carlo target uncertainty applies to (``mc_target_component``)."""

DVH_BINS = 200
"""Equal dose bins of the DVH the step asks the core for (``compute_dose(dvh_bins=)``)."""

COLUMNS: tuple[str, ...] = (
    "VOI",
    "Mean (Gy)",
    "D2 (Gy)",
    "D50 (Gy)",
    "D98 (Gy)",
    "Max (Gy)",
    "SD of mean (Gy)",
    "MC voxel unc. (%)",
    "Limit (Gy)",
    "Limit check",
    "Volume (mL)",
    "Mass (g)",
    "Review",
)
"""Header of the dose table (Gy to 3 decimals as ``mrtdose dose`` prints them)."""

MC_COLUMNS: tuple[str, ...] = ("SD of mean (Gy)", "MC voxel unc. (%)")
"""Columns only a Monte Carlo summary fills (hidden for the deterministic engines)."""

COL = {name: i for i, name in enumerate(COLUMNS)}


def engine_label(method: str) -> str:
    return dict(ENGINES).get(method, method)


def fmt_gy(x: float | None) -> str:
    """A dose in Gy as ``mrtdose dose`` prints it (3 decimals); ``'-'`` when absent."""
    return "-" if x is None else f"{x:.3f}"


def _fmt(x: float | None, decimals: int) -> str:
    return "-" if x is None else f"{x:.{decimals}f}"


# ------------------------------------------------------------------ settings
@dataclass(frozen=True)
class RunSettings:
    """The engine and its options (Monte Carlo ones used only by ``mc``)."""

    method: str = "vsv"
    mc_histories: int = 200_000
    mc_target_uncertainty_percent: float | None = None
    """1-SD relative uncertainty (%) of the mean dose in ``mc_target_voi`` to stop at."""
    mc_target_voi: str | None = None
    mc_target_component: str = "photon"
    dvh_bins: int = DVH_BINS

    @property
    def is_mc(self) -> bool:
        return self.method == "mc"

    def compute_dose_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``compute_dose`` (the core validates them, says what is wrong)."""
        kw: dict[str, Any] = {"method": self.method, "dvh_bins": int(self.dvh_bins)}
        if self.is_mc:
            kw["mc_histories"] = int(self.mc_histories)
            kw["mc_target_component"] = self.mc_target_component
            if self.mc_target_uncertainty_percent is not None:
                # the core takes the relative uncertainty as a fraction (0.02 = 2 %)
                kw["mc_target_uncertainty"] = float(self.mc_target_uncertainty_percent) / 100.0
                kw["mc_target_voi"] = self.mc_target_voi
        return kw

    def describe(self) -> str:
        text = engine_label(self.method)
        if self.is_mc:
            text += f", {self.mc_histories:,} histories"
            if self.mc_target_uncertainty_percent is not None:
                text += (
                    f", until {self.mc_target_uncertainty_percent:g} % ({self.mc_target_component})"
                    f" in {self.mc_target_voi or '?'}"
                )
        return text


# ---------------------------------------------------------------------- rows
@dataclass(frozen=True)
class DvhPlot:
    """One VOI's cumulative DVH as stored by the core: dose (Gy) and volume receiving it (%)."""

    voi_id: str
    voi_name: str
    dose_gy: NDArray[np.float64]
    volume_percent: NDArray[np.float64]
    color_rgb: tuple[int, int, int]


@dataclass(frozen=True)
class DoseRow:
    """One VOI of the chosen dose summary as the table shows it."""

    voi_id: str
    voi_name: str
    cells: tuple[str, ...]
    tooltips: Mapping[int, str]
    has_dvh: bool
    """A DVH is stored with the summary (else one can be computed from the dose map)."""
    limit_failed: bool
    draft: bool
    has_dose: bool = True
    """The VOI has dose statistics (it overlaps the dose grid)."""


def _mc_component(summary: DoseSummary, voi_name: str) -> Mapping[str, Any] | None:
    comps = summary.provenance.get("mc_voi_components") or {}
    comp = comps.get(voi_name)
    return comp if isinstance(comp, Mapping) else None


def _sd_of_mean(summary: DoseSummary, v: VoiDose) -> tuple[str, str]:
    """Cell and tooltip of 'SD of mean': the core's Monte Carlo 1-SD of the VOI mean, if any."""
    comp = _mc_component(summary, v.voi_name)
    if comp is None:
        if summary.method == "mc":
            return "-", "the Monte Carlo run gave no uncertainty for this VOI"
        return "-", f"{engine_label(summary.method)} is deterministic: no statistical SD"
    mean = comp.get("mean_gy")
    total = comp.get("total_rel_uncertainty")
    photon = comp.get("photon_rel_uncertainty")
    tip = (
        "Monte Carlo 1-SD statistical uncertainty of the VOI mean (total dose); "
        f"photon component {comp.get('photon_mean_gy', 0.0):.3f} Gy"
    )
    if photon is not None:
        tip += f" ± {100 * float(photon):.1f} %"
    if total is not None and mean is not None:
        sd = float(total) * float(mean)
        return f"{sd:.3f} ({100 * float(total):.1f} %)", tip
    if comp.get("photon_sd_gy") is not None:
        return f"{float(comp['photon_sd_gy']):.3f} (photon)", tip
    return "-", tip


def _limit_cells(checks: list[VoiLimitCheck]) -> tuple[str, str, str, bool]:
    if not checks:
        return "-", "-", "", False
    limit = "; ".join(f"{c.limit.limit_gy:g} ({c.limit.scope})" for c in checks)
    verdict = "; ".join("PASS" if c.passed else "FAIL" for c in checks)
    tip = "\n".join(
        f"{c.limit.organ_label}: mean {c.mean_gy:.3f} Gy = {100 * c.fraction_of_limit:.0f} % of "
        f"{c.limit.limit_gy:g} Gy ({c.limit.scope}; {c.limit.source})"
        + (
            "; this cycle only, the protocol run adds earlier cycles"
            if c.limit.scope == "cumulative"
            else ""
        )
        for c in checks
    )
    return limit, verdict, tip, any(not c.passed for c in checks)


def _row(summary: DoseSummary, v: VoiDose, checks: list[VoiLimitCheck]) -> DoseRow:
    s = v.statistics
    tips: dict[int, str] = {}
    draft = bool(v.review_flag)
    review = v.review_flag or "approved"
    if s is None:
        empty = [v.voi_name] + ["-"] * (len(COLUMNS) - 2) + [review]
        empty[COL["Mean (Gy)"]] = v.error or "no dose"
        return DoseRow(v.voi_id, v.voi_name, tuple(empty), {}, False, False, draft, False)
    sd_text, sd_tip = _sd_of_mean(summary, v)
    tips[COL["SD of mean (Gy)"]] = sd_tip
    limit, verdict, limit_tip, failed = _limit_cells(checks)
    if limit_tip:
        tips[COL["Limit (Gy)"]] = tips[COL["Limit check"]] = limit_tip
    if s.note:
        tips[COL["Mean (Gy)"]] = s.note
    mc_voxel = (
        "-" if v.mc_mean_voxel_uncertainty is None else f"{100 * v.mc_mean_voxel_uncertainty:.1f}"
    )
    if v.mc_mean_voxel_uncertainty is not None:
        tips[COL["MC voxel unc. (%)"]] = (
            "dose-weighted mean of the voxels' relative 1-SD Monte Carlo uncertainty"
        )
    cells: tuple[str, ...] = (
        v.voi_name,
        fmt_gy(s.mean_gy),
        fmt_gy(s.d2_gy),
        fmt_gy(s.d50_gy),
        fmt_gy(s.d98_gy),
        fmt_gy(s.max_gy),
        sd_text,
        mc_voxel,
        limit,
        verdict,
        _fmt(s.volume_ml, 1),
        _fmt(s.mass_g, 1),
        review,
    )
    return DoseRow(v.voi_id, v.voi_name, cells, tips, v.dvh is not None, failed, draft)


# --------------------------------------------------------------------- model
class DoseModel:
    """Dose summaries, table rows, DVHs and permitted actions of one case (module docstring).

    Parameters
    ----------
    case
        The open case (None: nothing to show).
    may_compute
        ``session.may("compute")``: without it Run is disabled.
    limits_protocol
        Protocol whose absorbed-dose limits are checked (None: the case's own
        protocol; ``""``: no limits).
    risk_factors
        Use the protocol's "risk factors" variant of a limit.
    """

    def __init__(
        self,
        case: Case | None,
        may_compute: bool,
        limits_protocol: str | None = None,
        risk_factors: bool = False,
    ) -> None:
        self.case = case
        self.may_compute = bool(may_compute)
        self.risk_factors = bool(risk_factors)
        self.summaries: list[DoseSummary] = []
        if case is not None:
            self.summaries = [
                r for r in case.result_records(DoseSummary.kind) if isinstance(r, DoseSummary)
            ]
        self.limits_protocol = (
            (case.protocol if case is not None else "")
            if limits_protocol is None
            else limits_protocol
        )
        self.limits_error = ""
        self.selected: DoseSummary | None = None
        self.rows: list[DoseRow] = []
        self._computed: dict[str, dict[str, DvhCurve]] = {}
        self.select(self.summaries[0].result_id if self.summaries else None)

    # ------------------------------------------------------------ choices
    @staticmethod
    def summary_label(s: DoseSummary) -> str:
        who = f" by {s.created_by}" if s.created_by else ""
        return f"{engine_label(s.method)} ({s.method}), {s.created_at:%Y-%m-%d %H:%M}{who}"

    def choices(self) -> list[tuple[str, str]]:
        """(result id, label) of every current dose summary, newest first."""
        return [(s.result_id, self.summary_label(s)) for s in self.summaries]

    def select(self, result_id: str | None) -> None:
        """Show this summary (unknown or None: the newest current one)."""
        chosen = next((s for s in self.summaries if s.result_id == result_id), None)
        if chosen is None and self.summaries:
            chosen = self.summaries[0]
        self.selected = chosen
        self._build_rows()

    def select_method(self, method: str) -> bool:
        """Show the current summary of ``method``; False when there is none."""
        for s in self.summaries:
            if s.method == method:
                self.select(s.result_id)
                return True
        return False

    def set_limits_protocol(self, protocol_id: str, risk_factors: bool | None = None) -> None:
        self.limits_protocol = protocol_id
        if risk_factors is not None:
            self.risk_factors = bool(risk_factors)
        self._build_rows()

    def _build_rows(self) -> None:
        self.rows = []
        self.limits_error = ""
        s = self.selected
        if s is None:
            return
        checks: list[VoiLimitCheck] = []
        if self.limits_protocol:
            try:
                checks = list(
                    check_dose_limits(s, self.limits_protocol, risk_factors=self.risk_factors)
                )
            except DosimetryError as exc:
                self.limits_error = str(exc)
        for v in s.vois:
            self.rows.append(_row(s, v, [c for c in checks if c.voi_id == v.voi_id]))

    # ------------------------------------------------------------ queries
    def hidden_columns(self) -> list[int]:
        """Columns with nothing to show for the chosen summary (the MC ones unless MC)."""
        if self.selected is not None and self.selected.method == "mc":
            return []
        return [COL[c] for c in MC_COLUMNS]

    @property
    def needs_dvh(self) -> bool:
        """The chosen summary was stored without DVHs and none were computed for it yet."""
        s = self.selected
        if s is None or any(v.dvh is not None for v in s.vois):
            return False
        return s.dose_map_id not in self._computed

    def set_computed_dvhs(self, dose_map_id: str, curves: Mapping[str, DvhCurve]) -> None:
        """DVHs computed by the core for a summary stored without them (``dvh_of_dose_map``)."""
        self._computed[dose_map_id] = dict(curves)

    def row(self, voi_name: str) -> DoseRow:
        for r in self.rows:
            if r.voi_name == voi_name:
                return r
        raise KeyError(voi_name)

    def voi_color(self, voi_id: str) -> tuple[int, int, int]:
        if self.case is not None:
            for v in self.case.vois:
                if v.voi_id == voi_id:
                    return tuple(int(c) for c in v.color_rgb)  # type: ignore[return-value]
        return (200, 200, 200)

    def dvh(self, voi_id: str) -> DvhPlot | None:
        """The cumulative DVH of a VOI of the chosen summary: stored, else computed, else None."""
        s = self.selected
        v = None if s is None else s.voi(voi_id)
        if v is None or s is None:
            return None
        curve = v.dvh
        if curve is None:
            curve = self._computed.get(s.dose_map_id, {}).get(voi_id)
        if curve is None:
            return None
        edges = np.asarray(curve.bin_edges_gy, dtype=np.float64)
        cum = 100.0 * np.asarray(curve.cumulative_fraction, dtype=np.float64)
        n = min(edges.size, cum.size)
        return DvhPlot(v.voi_id, v.voi_name, edges[:n], cum[:n], self.voi_color(v.voi_id))

    @property
    def has_tia_map(self) -> bool:
        return self.case is not None and bool(self.case.derived_maps(DerivedKind.TIA_MAP))

    @property
    def can_run(self) -> bool:
        return self.case is not None and self.may_compute

    def run_hint(self) -> str:
        """Why Run is disabled, or what it will use."""
        if self.case is None:
            return "Open a case first."
        if not self.may_compute:
            return "Your role may look at doses but not compute them."
        if not self.has_tia_map:
            return "This case has no TIA map yet (Kinetics step): the run will be refused."
        return "Compute the absorbed-dose map from the current TIA map."

    def voi_names(self) -> list[str]:
        """VOIs of the case (choices of the Monte Carlo target VOI)."""
        return [] if self.case is None else [v.name for v in self.case.vois]

    def caption(self) -> str:
        """One line under the table: what is shown, warnings, and the limits used."""
        if self.case is None:
            return "No case open."
        s = self.selected
        if s is None:
            return "No dose computed yet for this case: choose an engine and Run."
        parts = [f"{engine_label(s.method)}, {s.nuclide or '?'}: {len(s.vois)} VOI(s)"]
        prov = s.provenance
        if s.method == "mc" and prov.get("mc_histories"):
            parts.append(
                f"{int(prov['mc_histories']):,} histories ({prov.get('mc_stopped_because', '')})"
            )
        if self.limits_error:
            parts.append(f"limits: {self.limits_error}")
        elif self.limits_protocol:
            parts.append(f"absorbed-dose limits of {self.limits_protocol}")
        else:
            parts.append("no protocol: no limits checked")
        text = "; ".join(parts) + "."
        if s.warnings:
            text += " Warning: " + " ".join(s.warnings)
        return text
