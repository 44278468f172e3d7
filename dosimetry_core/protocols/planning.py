"""What a protocol run needs and what it gave, in the units a physicist reads.

Two pure functions for the protocol run and planning step of the workstation
(and any other front end):

* :func:`run_readiness` -- the protocol's checklist
  (:func:`dosimetry_core.protocols.registry.checklist`: administration, imaging
  and other measurements, a VOI for every organ) completed with what a
  multi-point run reads from the case: the number of time points against the
  method's minimum, the registrations (accepted, proposed, rejected, missing),
  the review state of the protocol's VOIs (approved or not) and a current
  voxel-wise TIA map.
* :func:`run_summary` -- a stored :class:`~dosimetry_core.model.results.ProtocolRun`
  as tables: per VOI the absorbed dose (Gy) and dose per net administered
  activity (Gy/GBq), BED and EQD2 (Gy), the uncertainty budget as percentages
  of the dose; per limit this cycle, earlier cycles and the cumulative value
  against the limit; the next-cycle activity in GBq with the binding
  constraint named.

Nothing here computes dosimetry: the numbers are those of the run (the
protocol run computes them, :mod:`dosimetry_core.pipeline.protocol_run`); this
module only expresses them per GBq and in percent.  The uncertainty budget is
that of Gear et al. 2018 (EANM guidance, Eur J Nucl Med Mol Imaging 45:2456):
``rel_sd`` of each component is its relative 1-SD contribution to the dose,
``variance_fraction`` its share of the dose variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dosimetry_core.model.results import ProtocolRun, VoiRunResult
from dosimetry_core.protocols.registry import Protocol, checklist

__all__ = [
    "BudgetComponent",
    "LimitRow",
    "NextCyclePlan",
    "OrganSummary",
    "ReadinessItem",
    "RunSummary",
    "VoiSummary",
    "quantity_label",
    "run_readiness",
    "run_summary",
]

MBQ_PER_GBQ = 1000.0

_QUANTITY_LABELS = {"dose_gy": "absorbed dose", "bed_gy": "BED", "eqd2_gy": "EQD2"}


def quantity_label(quantity: str) -> str:
    """``'BED'`` for ``'bed_gy'``, ``'absorbed dose'`` for ``'dose_gy'`` (the unit is Gy)."""
    return _QUANTITY_LABELS.get(quantity, quantity)


# ------------------------------------------------------------------ readiness
@dataclass(frozen=True)
class ReadinessItem:
    """One line of the checklist: what the run needs and whether the case has it.

    ``state`` is ``"ok"`` (present), ``"missing"`` (required and absent: the run
    will refuse or the result is incomplete), ``"warning"`` (the run goes ahead
    but the result carries a caveat, e.g. draft contours or proposed
    registrations) or ``"optional"`` (not required and absent).
    """

    item: str
    required: bool
    present: bool
    state: str
    detail: str


def _state(required: bool, present: bool) -> str:
    if present:
        return "ok"
    return "missing" if required else "optional"


def run_readiness(case: Any, protocol: Protocol) -> tuple[ReadinessItem, ...]:
    """The protocol's checklist for ``case`` plus registrations, VOI review and TIA map.

    Parameters
    ----------
    case
        A :class:`~dosimetry_core.model.Case`.
    protocol
        The protocol to be run.

    Returns
    -------
    tuple of ReadinessItem
        The registry's checklist items first (VOI items turn ``"warning"`` when a
        matching VOI is not approved), then ``time points``, ``registrations``
        and ``TIA map``.
    """
    from dosimetry_core.model.case import DerivedKind, RegistrationStatus, VoiStatus

    vois = list(getattr(case, "vois", []))
    items: list[ReadinessItem] = []
    for c in checklist(case, protocol):
        required, present = bool(c["required"]), bool(c["present"])
        state, detail = _state(required, present), str(c["detail"])
        name = str(c["item"])
        if name.startswith("VOI: ") and present:
            organ = next((o for o in protocol.organs if f"VOI: {o.label}" == name), None)
            hits = [v for v in vois if organ is not None and organ.matches(v.name)]
            parts = [f"{v.name} ({v.status})" for v in hits]
            detail = ", ".join(parts) or detail
            if any(v.status != VoiStatus.APPROVED for v in hits):
                state = "warning"
        items.append(ReadinessItem(name, required, present, state, detail))

    tps = case.sorted_time_points()
    n_tp = len(tps)
    if "multi-point" in protocol.methods:
        need = protocol.min_time_points("multi-point")
        ok = n_tp >= need
        detail = f"{n_tp} time point(s); the multi-point method needs {need}"
        if not ok and "single-time-point" in protocol.methods and n_tp == 1:
            detail += " (the single-time-point method will be used)"
            ok = True
        items.append(ReadinessItem("time points", True, ok, _state(True, ok), detail))

    if n_tp > 1:
        regs = [tp.registration for tp in tps[1:]]
        counts = {
            "accepted": sum(
                1 for r in regs if r is not None and r.status == RegistrationStatus.ACCEPTED
            ),
            "proposed": sum(
                1 for r in regs if r is not None and r.status == RegistrationStatus.PROPOSED
            ),
            "rejected": sum(
                1 for r in regs if r is not None and r.status == RegistrationStatus.REJECTED
            ),
            "missing": sum(1 for r in regs if r is None),
        }
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n) + f" (of {len(regs)})"
        if counts["missing"] or counts["rejected"]:
            state = "warning"
            detail += "; the run registers missing ones automatically (proposed, not reviewed)"
        elif counts["proposed"]:
            state = "warning"
            detail += "; review them in the registration step"
        else:
            state = "ok"
        items.append(ReadinessItem("registrations", True, True, state, detail))

    maps = case.derived_maps(DerivedKind.TIA_MAP)
    if maps:
        m = maps[0]
        detail = f"{m.label or 'TIA map'}, made {m.created_at:%Y-%m-%d %H:%M}"
        if m.created_by:
            detail += f" by {m.created_by}"
        items.append(ReadinessItem("TIA map", False, True, "ok", detail))
    else:
        items.append(
            ReadinessItem(
                "TIA map", False, False, "optional", "none yet: the run computes it (multi-point)"
            )
        )
    return tuple(items)


# -------------------------------------------------------------------- summary
@dataclass(frozen=True)
class BudgetComponent:
    """One input of the dose uncertainty: its relative 1-SD contribution, % of the dose."""

    name: str
    rel_sd_percent: float | None
    variance_percent: float | None
    """Share of the dose variance, %."""


@dataclass(frozen=True)
class VoiSummary:
    """One VOI of the run with its dose per net administered activity and budget in %."""

    voi_id: str
    voi_name: str
    role: str
    organ_id: str | None
    review_flag: str
    mass_g: float | None
    tia_mbq_h: float | None
    dose_gy: float | None
    dose_sd_gy: float | None
    dose_per_activity_gy_per_gbq: float | None
    bed_gy: float | None
    eqd2_gy: float | None
    dose_rel_sd_percent: float | None
    budget: tuple[BudgetComponent, ...]


@dataclass(frozen=True)
class OrganSummary:
    """An organ of the protocol (mass-weighted over its VOIs, as the run computed it)."""

    organ_id: str
    label: str
    vois: tuple[str, ...]
    review_flags: tuple[str, ...]
    mass_g: float | None
    dose_gy: float | None
    dose_sd_gy: float | None
    dose_per_activity_gy_per_gbq: float | None
    bed_gy: float | None
    eqd2_gy: float | None


@dataclass(frozen=True)
class LimitRow:
    """A protocol limit checked by the run: this cycle + earlier cycles vs the limit (Gy)."""

    organ_id: str
    organ_label: str
    quantity: str
    quantity_label: str
    scope: str
    this_cycle_gy: float
    previous_cycles_gy: float
    cumulative_gy: float
    limit_gy: float
    percent_of_limit: float
    passed: bool
    source: str
    when: str | None


@dataclass(frozen=True)
class NextCyclePlan:
    """The largest next-cycle activity (GBq, net administered) and the limit binding it."""

    activity_gbq: float | None
    binding: str | None
    """The binding limit as ``'<organ id> <quantity>'`` (the run's key)."""
    binding_label: str | None
    """The same in words, e.g. ``'Kidneys absorbed dose (cumulative 23 Gy)'``."""
    limits_gbq: Mapping[str, float]
    """Activity each cumulative limit allows, GBq."""
    assumption: str | None
    reason: str | None


@dataclass(frozen=True)
class RunSummary:
    """A stored protocol run in the units the result panel shows."""

    result_id: str
    protocol_id: str
    method: str
    dose_method: str
    nuclide: str
    administered_activity_gbq: float
    computed_at: str
    user: str
    organs: tuple[OrganSummary, ...]
    vois: tuple[VoiSummary, ...]
    limits: tuple[LimitRow, ...]
    next_cycle: NextCyclePlan
    previous_cycle_cases: tuple[str, ...]
    all_limits_passed: bool
    warnings: tuple[str, ...]


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def _voi(v: VoiRunResult, activity_gbq: float) -> VoiSummary:
    per = None
    if v.dose_gy is not None and activity_gbq > 0:
        per = float(v.dose_gy) / activity_gbq
    rel = None
    if v.dose_sd_gy is not None and v.dose_gy:
        rel = 100.0 * float(v.dose_sd_gy) / float(v.dose_gy)
    return VoiSummary(
        voi_id=v.voi_id,
        voi_name=v.voi_name,
        role=v.role,
        organ_id=v.organ_id,
        review_flag=v.review_flag,
        mass_g=v.mass_g,
        tia_mbq_h=v.tia_mbq_h,
        dose_gy=v.dose_gy,
        dose_sd_gy=v.dose_sd_gy,
        dose_per_activity_gy_per_gbq=per,
        bed_gy=v.bed_gy,
        eqd2_gy=v.eqd2_gy,
        dose_rel_sd_percent=rel,
        budget=tuple(
            BudgetComponent(c.name, _pct(c.rel_sd), _pct(c.variance_fraction))
            for c in v.uncertainty_budget
        ),
    )


def run_summary(run: ProtocolRun, protocol: Protocol | None = None) -> RunSummary:
    """``run`` per VOI, per limit and for the next cycle (module docstring).

    Parameters
    ----------
    run
        A stored protocol run (``case.protocol_run``).
    protocol
        Its protocol, for organ labels (None: the organ ids and the run's labels).

    Returns
    -------
    RunSummary
        Doses per activity divide by the run's **net** administered activity in
        GBq; the next-cycle activity is a net administered activity in GBq.
    """
    activity_gbq = float(run.administered_activity_mbq) / MBQ_PER_GBQ
    labels = {k: o.label for k, o in run.organs.items()}
    if protocol is not None:
        labels.update({o.id: o.label for o in protocol.organs})

    limits = tuple(
        LimitRow(
            organ_id=c.organ_id,
            organ_label=labels.get(c.organ_id, c.organ_id),
            quantity=c.quantity,
            quantity_label=quantity_label(c.quantity),
            scope=c.scope,
            this_cycle_gy=c.this_cycle,
            previous_cycles_gy=c.previous_cycles,
            cumulative_gy=c.value,
            limit_gy=c.limit,
            percent_of_limit=100.0 * c.fraction_of_limit,
            passed=c.passed,
            source=c.source,
            when=c.when,
        )
        for c in run.limit_checks
    )

    nc = run.next_cycle
    binding_label = None
    if nc.binding:
        organ_id, _, quantity = nc.binding.partition(" ")
        binding_label = f"{labels.get(organ_id, organ_id)} {quantity_label(quantity)}"
        row = next((r for r in limits if r.organ_id == organ_id and r.quantity == quantity), None)
        if row is not None:
            binding_label += f" ({row.scope} limit {row.limit_gy:g} Gy)"
    plan = NextCyclePlan(
        activity_gbq=None if nc.activity_mbq is None else float(nc.activity_mbq) / MBQ_PER_GBQ,
        binding=nc.binding,
        binding_label=binding_label,
        limits_gbq={k: float(v) / MBQ_PER_GBQ for k, v in nc.limits.items()},
        assumption=nc.assumption,
        reason=nc.reason,
    )
    return RunSummary(
        result_id=run.result_id,
        protocol_id=run.protocol_id,
        method=run.method,
        dose_method=run.dose_method,
        nuclide=run.nuclide,
        administered_activity_gbq=activity_gbq,
        computed_at=run.computed_at,
        user=run.user,
        organs=tuple(
            OrganSummary(
                organ_id=k,
                label=labels.get(k, o.label),
                vois=tuple(o.vois),
                review_flags=tuple(o.review_flags),
                mass_g=o.mass_g,
                dose_gy=o.dose_gy,
                dose_sd_gy=o.dose_sd_gy,
                dose_per_activity_gy_per_gbq=o.dose_per_activity_gy_per_gbq,
                bed_gy=o.bed_gy,
                eqd2_gy=o.eqd2_gy,
            )
            for k, o in run.organs.items()
        ),
        vois=tuple(_voi(v, activity_gbq) for v in run.vois),
        limits=limits,
        next_cycle=plan,
        previous_cycle_cases=tuple(run.previous_cycle_cases),
        all_limits_passed=run.all_limits_passed,
        warnings=tuple(run.warnings),
    )
