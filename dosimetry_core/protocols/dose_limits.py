"""Absorbed-dose limits of a protocol per VOI, and the PASS/FAIL of a dose summary against them.

A protocol (:mod:`dosimetry_core.protocols.registry`) keeps its limits per
organ (``organs[].limits``, each with its ``source``); a VOI belongs to an
organ when its name matches one of the organ's ``voi_patterns``.  This module
answers "which absorbed-dose limit applies to this VOI under this protocol"
and checks the VOI mean absorbed dose of one dose map against it with the same
rule the protocol run uses (:func:`dosimetry_core.pipeline.protocol_run.run_protocol`,
``_limit_checks``): a limit is passed when ``value <= limit``, and of two
variants of one quantity (one marked ``when``, e.g. "risk factors") only the
one matching ``risk_factors`` applies.

Only limits on ``dose_gy`` are returned: BED and EQD2 limits need the
radiobiology of the protocol run.  The value compared is the mean absorbed
dose of the VOI from this dose map alone (this cycle).  A ``cumulative`` limit
is about the sum over the patient's cycles, so a pass here is necessary, not
sufficient: the protocol run adds the earlier cycles.  A limit on an organ made
of several VOIs (both kidneys) is checked here per VOI (each kidney's mean
against the organ limit), the protocol run checks the mass-weighted organ mean.

Sources of the limits are the protocol files' own ``source`` fields, e.g. for
``lu177-dotatate``: kidneys 23 Gy (Emami et al., Int J Radiat Oncol Biol Phys
1991;21:109, external beam), red marrow 2 Gy (Lassmann et al. / EANM, 2008);
``y90-sirt-*``: lungs 30 Gy per treatment, 50 Gy cumulative (Ho et al., Eur J
Nucl Med 1996;23:947; EANM SOP 2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dosimetry_core.model.results import DoseSummary
from dosimetry_core.protocols.registry import Limit, OrganSpec, Protocol, load_protocol

__all__ = [
    "VoiDoseLimit",
    "VoiLimitCheck",
    "applicable_limits",
    "check_dose_limits",
    "voi_dose_limits",
]


@dataclass(frozen=True)
class VoiDoseLimit:
    """An absorbed-dose limit of one protocol organ that applies to a VOI (Gy)."""

    protocol_id: str
    organ_id: str
    organ_label: str
    limit_gy: float
    scope: str
    """``"cycle"`` (this administration) or ``"cumulative"`` (all cycles)."""
    source: str
    when: str | None = None

    def passed(self, dose_gy: float) -> bool:
        """The protocol run's rule: passed when ``dose_gy <= limit_gy``."""
        return float(dose_gy) <= self.limit_gy


@dataclass(frozen=True)
class VoiLimitCheck:
    """The mean absorbed dose of one VOI of a dose summary against one limit."""

    voi_id: str
    voi_name: str
    limit: VoiDoseLimit
    mean_gy: float
    passed: bool
    fraction_of_limit: float


def applicable_limits(organ: OrganSpec, *, risk_factors: bool = False) -> tuple[Limit, ...]:
    """The organ's limits that apply (same variant rule as the protocol run, module docstring)."""
    out = []
    for lim in organ.limits:
        if bool(lim.when) != risk_factors and any(
            other.quantity == lim.quantity and bool(other.when) == risk_factors
            for other in organ.limits
        ):
            continue  # the other variant of this limit applies
        out.append(lim)
    return tuple(out)


def _protocol(protocol: Protocol | str) -> Protocol:
    return load_protocol(protocol) if isinstance(protocol, str) else protocol


def voi_dose_limits(
    protocol: Protocol | str, voi_name: str, *, risk_factors: bool = False
) -> tuple[VoiDoseLimit, ...]:
    """Absorbed-dose limits (``dose_gy``) of ``protocol`` that apply to a VOI named ``voi_name``.

    Parameters
    ----------
    protocol
        A protocol or its id (``load_protocol``; an unknown id raises InvalidInputError).
    voi_name
        Matched against every organ's ``voi_patterns`` (case-insensitive).
    risk_factors
        Use the limits marked ``"when"`` (e.g. kidneys with risk factors) where a
        protocol has such a variant.

    Returns
    -------
    tuple of VoiDoseLimit
        Empty when no organ of the protocol matches or the organ has no dose limit.
    """
    p = _protocol(protocol)
    out: list[VoiDoseLimit] = []
    for organ in p.organs:
        if not organ.matches(voi_name):
            continue
        for lim in applicable_limits(organ, risk_factors=risk_factors):
            if lim.quantity != "dose_gy":
                continue
            out.append(
                VoiDoseLimit(
                    protocol_id=p.id,
                    organ_id=organ.id,
                    organ_label=organ.label,
                    limit_gy=float(lim.value),
                    scope=lim.scope,
                    source=lim.source,
                    when=lim.when or None,
                )
            )
    return tuple(out)


def check_dose_limits(
    summary: DoseSummary,
    protocol: Protocol | str,
    *,
    risk_factors: bool = False,
    vois: Sequence[str] | None = None,
) -> tuple[VoiLimitCheck, ...]:
    """Each VOI's mean absorbed dose in ``summary`` against every limit that applies to it.

    ``vois``: only these VOI ids (default: all).  VOIs without statistics (no
    overlap with the dose grid) are skipped.  Rule and caveats: module docstring.
    """
    p = _protocol(protocol)
    checks: list[VoiLimitCheck] = []
    for v in summary.vois:
        if vois is not None and v.voi_id not in vois:
            continue
        s = v.statistics
        if s is None or s.mean_gy is None:
            continue
        for lim in voi_dose_limits(p, v.voi_name, risk_factors=risk_factors):
            mean = float(s.mean_gy)
            checks.append(
                VoiLimitCheck(
                    voi_id=v.voi_id,
                    voi_name=v.voi_name,
                    limit=lim,
                    mean_gy=mean,
                    passed=lim.passed(mean),
                    fraction_of_limit=mean / lim.limit_gy,
                )
            )
    return tuple(checks)
