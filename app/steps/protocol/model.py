"""View-model of the protocol run and planning step (no Qt): choice, checklist, result tables.

What the "Protocol run" tab shows is computed here from the case and the
core, so it is tested without a screen:

* the protocols of the registry (:func:`dosimetry_core.protocols.registry.list_protocols`)
  with nuclide and name, which of them ``mrtdose run`` runs (Lu-177 and generic
  voxel protocols; the others are planned with the calculators);
* the checklist of the chosen protocol for the open case
  (:func:`dosimetry_core.protocols.planning.run_readiness`: administration,
  time points, registrations, VOIs approved or draft, TIA map);
* the newest stored (not superseded) protocol run of the case
  (``case.protocol_run``, read, never recomputed) as the core expresses it
  (:func:`dosimetry_core.protocols.planning.run_summary`): organ and VOI tables
  (Gy, Gy/GBq, BED and EQD2 in Gy), the limit table (this cycle, earlier
  cycles, cumulative, limit, PASS/FAIL), each VOI's uncertainty budget (% of
  the dose) and the next-cycle activity (GBq) with the binding limit.

Numbers are printed with the precision of ``mrtdose run`` (dose and SD 3
decimals, BED and EQD2 2, TIA 0); the next-cycle activity with 2 decimals in GBq.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dosimetry_core.model.case import Case
from dosimetry_core.protocols.planning import (
    LimitRow,
    ReadinessItem,
    RunSummary,
    VoiSummary,
    run_readiness,
    run_summary,
)
from dosimetry_core.protocols.registry import Protocol, list_protocols

__all__ = [
    "CHECK_COLUMNS",
    "LIMIT_COLUMNS",
    "NUMERIC_COLUMNS",
    "ORGAN_COLUMNS",
    "RUNNABLE_THERAPIES",
    "STATE_MARKS",
    "VOI_COLUMNS",
    "Budget",
    "ProtocolChoice",
    "ProtocolModel",
    "fmt",
]

RUNNABLE_THERAPIES = ("lu177", "generic")
"""Therapies ``run_protocol`` runs end to end; thyroid, mIBG and SIRT use the calculators."""

CHECK_COLUMNS: tuple[str, ...] = ("", "Item", "Detail")
STATE_MARKS = {"ok": "✓", "missing": "✗", "warning": "!", "optional": "–"}
"""Mark of a checklist item's state (first column)."""

ORGAN_COLUMNS: tuple[str, ...] = (
    "Organ",
    "Dose (Gy)",
    "BED (Gy)",
    "EQD2 (Gy)",
    "Per activity (Gy/GBq)",
    "SD (Gy)",
    "Mass (g)",
    "VOIs",
    "Contours",
)
"""Most read first: a narrow step panel scrolls the last columns."""
VOI_COLUMNS: tuple[str, ...] = (
    "VOI",
    "Dose (Gy)",
    "BED (Gy)",
    "EQD2 (Gy)",
    "Per activity (Gy/GBq)",
    "SD (Gy)",
    "TIA (MBq·h)",
    "Role",
    "Contour",
)
NUMERIC_COLUMNS: frozenset[str] = frozenset(
    {
        "Dose (Gy)",
        "BED (Gy)",
        "EQD2 (Gy)",
        "Per activity (Gy/GBq)",
        "SD (Gy)",
        "Mass (g)",
        "TIA (MBq·h)",
        "Cumulative (Gy)",
        "Limit (Gy)",
        "Of limit (%)",
        "This cycle (Gy)",
        "Earlier cycles (Gy)",
    }
)
"""Columns aligned right."""
LIMIT_COLUMNS: tuple[str, ...] = (
    "Organ",
    "Quantity",
    "Cumulative (Gy)",
    "Limit (Gy)",
    "Of limit (%)",
    "Result",
    "This cycle (Gy)",
    "Earlier cycles (Gy)",
    "Source",
)
LIMIT_RESULT_COLUMN = LIMIT_COLUMNS.index("Result")


def fmt(x: float | None, decimals: int) -> str:
    """``x`` with ``decimals`` decimals, ``'-'`` when absent (not defined for this VOI)."""
    return "-" if x is None else f"{x:.{decimals}f}"


@dataclass(frozen=True)
class ProtocolChoice:
    """One protocol of the registry as the chooser lists it."""

    protocol_id: str
    name: str
    nuclide: str
    therapy: str
    runnable: bool

    @property
    def text(self) -> str:
        """``'lu177-dotatate — Lu-177 — Lu-177 DOTATATE (...)'`` (the combo box entry)."""
        return f"{self.protocol_id} — {self.nuclide} — {self.name}"


@dataclass(frozen=True)
class Budget:
    """The uncertainty budget of one VOI as the bar chart draws it (% of the dose, 1 SD)."""

    voi_name: str
    names: tuple[str, ...]
    rel_sd_percent: tuple[float, ...]
    total_percent: float | None

    def caption(self) -> str:
        total = "-" if self.total_percent is None else f"{self.total_percent:.1f} %"
        return f"{self.voi_name}: combined relative SD of the dose {total} (1 SD)"


class ProtocolModel:
    """Choice, checklist and stored result of the protocol step (module docstring).

    Parameters
    ----------
    case
        The open case (None: nothing to show, nothing to run).
    may_compute
        ``session.may("compute")``: without it the run is refused (the rest is shown).
    protocols
        The protocols to offer (default: the registry's).
    """

    def __init__(
        self,
        case: Case | None,
        may_compute: bool,
        protocols: Sequence[Protocol] | None = None,
        selected: str | None = None,
    ) -> None:
        self.case = case
        self.may_compute = bool(may_compute)
        self._protocols = {
            p.id: p for p in (protocols if protocols is not None else list_protocols())
        }
        self.choices: list[ProtocolChoice] = [
            ProtocolChoice(
                p.id, p.name, p.nuclide or "any", p.therapy, p.therapy in RUNNABLE_THERAPIES
            )
            for p in self._protocols.values()
        ]
        run = case.protocol_run if case is not None else None
        self.summary: RunSummary | None = (
            None if run is None else run_summary(run, self._protocols.get(run.protocol_id))
        )
        self.selected_id: str | None = None
        self.readiness: tuple[ReadinessItem, ...] = ()
        self.select(selected or self._default_choice())

    # -------------------------------------------------------------- choosing
    def _default_choice(self) -> str | None:
        case = self.case
        if case is not None:
            if case.protocol in self._protocols:
                return case.protocol
            if self.summary is not None and self.summary.protocol_id in self._protocols:
                return self.summary.protocol_id
            adm = case.first_administration
            if adm is not None:
                for c in self.choices:
                    if c.runnable and c.nuclide == adm.nuclide:
                        return c.protocol_id
        return next((c.protocol_id for c in self.choices if c.runnable), None)

    def index_of(self, protocol_id: str | None) -> int:
        return next((i for i, c in enumerate(self.choices) if c.protocol_id == protocol_id), -1)

    def select(self, protocol_id: str | None) -> None:
        """Choose a protocol: its checklist for the case is read from the core."""
        self.selected_id = protocol_id if protocol_id in self._protocols else None
        if self.case is None or self.selected_id is None:
            self.readiness = ()
            return
        self.readiness = run_readiness(self.case, self._protocols[self.selected_id])

    @property
    def protocol(self) -> Protocol | None:
        return None if self.selected_id is None else self._protocols[self.selected_id]

    def description(self) -> str:
        """Nuclide, therapy, methods and sources count of the chosen protocol."""
        p = self.protocol
        if p is None:
            return "Choose a protocol."
        methods = ", ".join(p.methods) or "-"
        text = (
            f"{p.name}. Nuclide {p.nuclide or 'any'}; methods: {methods}; "
            f"dose method {p.dose_method}."
        )
        if p.therapy not in RUNNABLE_THERAPIES:
            text += " Planned with the Calculators tab, not run end to end."
        return text

    # ------------------------------------------------------------------ run
    def run_refusal(self) -> str:
        """Why Run is disabled ('' when it is enabled)."""
        if self.case is None:
            return "Open a case first."
        if not self.may_compute:
            return "Your role may look at protocol runs but not compute them."
        p = self.protocol
        if p is None:
            return "Choose a protocol."
        if p.therapy not in RUNNABLE_THERAPIES:
            return f"{p.id} is planned with the Calculators tab."
        missing = [i.item for i in self.readiness if i.state == "missing"]
        if missing:
            return "The case lacks: " + ", ".join(missing) + "."
        return ""

    @property
    def can_run(self) -> bool:
        return not self.run_refusal()

    def checklist_rows(self) -> list[list[str]]:
        """[mark, item, detail] per checklist item."""
        return [[STATE_MARKS.get(i.state, "?"), i.item, i.detail] for i in self.readiness]

    # --------------------------------------------------------------- result
    def header(self) -> str:
        s = self.summary
        if s is None:
            return "No protocol run stored for this case yet: choose a protocol and Run."
        who = f" by {s.user}" if s.user else ""
        earlier = (
            f"; cumulative over {len(s.previous_cycle_cases)} earlier cycle(s): "
            + ", ".join(s.previous_cycle_cases)
            if s.previous_cycle_cases
            else "; no earlier cycle of this patient under this protocol"
        )
        return (
            f"Run {s.protocol_id}, {s.method} ({s.dose_method}), {s.nuclide} "
            f"{s.administered_activity_gbq:.3f} GBq net administered; "
            f"computed {s.computed_at.replace('T', ' ')}{who}{earlier}"
        )

    def organ_rows(self) -> list[list[str]]:
        if self.summary is None:
            return []
        rows = []
        for o in self.summary.organs:
            flags = sorted({f for f in o.review_flags if f})
            rows.append(
                [
                    o.label,
                    fmt(o.dose_gy, 3),
                    fmt(o.bed_gy, 2),
                    fmt(o.eqd2_gy, 2),
                    fmt(o.dose_per_activity_gy_per_gbq, 3),
                    fmt(o.dose_sd_gy, 3),
                    fmt(o.mass_g, 1),
                    ", ".join(o.vois),
                    "; ".join(flags) or "approved",
                ]
            )
        return rows

    def voi_rows(self) -> list[list[str]]:
        if self.summary is None:
            return []
        return [
            [
                v.voi_name,
                fmt(v.dose_gy, 3),
                fmt(v.bed_gy, 2),
                fmt(v.eqd2_gy, 2),
                fmt(v.dose_per_activity_gy_per_gbq, 3),
                fmt(v.dose_sd_gy, 3),
                fmt(v.tia_mbq_h, 0),
                v.role,
                v.review_flag or "approved",
            ]
            for v in self.summary.vois
        ]

    @property
    def limits(self) -> tuple[LimitRow, ...]:
        return () if self.summary is None else self.summary.limits

    def limit_rows(self) -> list[list[str]]:
        rows = []
        for r in self.limits:
            q = r.quantity_label + (f" ({r.when})" if r.when else "")
            if r.scope != "cumulative":
                q += f", per {r.scope}"
            rows.append(
                [
                    r.organ_label,
                    q,
                    f"{r.cumulative_gy:.2f}",
                    f"{r.limit_gy:g}",
                    f"{r.percent_of_limit:.0f}",
                    "PASS" if r.passed else "FAIL",
                    f"{r.this_cycle_gy:.2f}",
                    f"{r.previous_cycles_gy:.2f}",
                    r.source,
                ]
            )
        return rows

    def limits_text(self) -> str:
        s = self.summary
        if s is None or not s.limits:
            return ""
        return "All limits PASS." if s.all_limits_passed else "A limit is EXCEEDED (FAIL)."

    def next_cycle_text(self) -> str:
        """``'Next cycle: at most 37.78 GBq (net administered)'`` or why there is none."""
        s = self.summary
        if s is None:
            return ""
        nc = s.next_cycle
        if nc.activity_gbq is None:
            return f"Next cycle: no activity proposed ({nc.reason or 'no limit applies'})"
        return f"Next cycle: at most {nc.activity_gbq:.2f} GBq (net administered)"

    def binding_text(self) -> str:
        s = self.summary
        if s is None or s.next_cycle.binding_label is None:
            return ""
        nc = s.next_cycle
        others = "; ".join(
            f"{k}: {v:.2f} GBq" for k, v in sorted(nc.limits_gbq.items(), key=lambda kv: kv[1])
        )
        text = f"Binding constraint: {nc.binding_label}"
        if others:
            text += f". Each limit allows: {others}"
        if nc.assumption:
            text += f". Assumes {nc.assumption}."
        return text

    def warnings_text(self) -> str:
        if self.summary is None or not self.summary.warnings:
            return ""
        return "Warnings: " + "; ".join(self.summary.warnings)

    def voi(self, voi_name: str) -> VoiSummary | None:
        if self.summary is None:
            return None
        return next((v for v in self.summary.vois if v.voi_name == voi_name), None)

    def budget(self, voi_name: str | None) -> Budget | None:
        """The chart's bars for one VOI (None: no such VOI or no budget)."""
        v = self.voi(voi_name) if voi_name else None
        if v is None or not v.budget:
            return None
        return Budget(
            voi_name=v.voi_name,
            names=tuple(b.name for b in v.budget),
            rel_sd_percent=tuple(
                float(b.rel_sd_percent) if b.rel_sd_percent is not None else 0.0 for b in v.budget
            ),
            total_percent=v.dose_rel_sd_percent,
        )

    def default_budget_voi(self) -> str | None:
        """The first organ-at-risk VOI with a budget (the kidney on the demo), else any."""
        if self.summary is None:
            return None
        with_budget = [v for v in self.summary.vois if v.budget]
        limited = {r.organ_id for r in self.limits}
        for v in with_budget:
            if v.organ_id in limited:
                return v.voi_name
        return with_budget[0].voi_name if with_budget else None
