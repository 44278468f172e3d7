"""Fingerprints of the case inputs a long computation read: no stale saves.

A protocol run, a kinetics fit, a TIA map, a dose calculation or a registration
loads a case, computes for seconds to minutes and then saves its results.  If
someone committed an edit of what the computation read in the meantime (a new
kidney contour, a corrected administration, an accepted registration), saving
would put results of the old inputs on top of the new ones: the report would
show a kidney mass of the old mask next to the new mask in its inputs.

The computation therefore records :func:`fingerprint` of the inputs it read
(SHA-256 of the canonical JSON of each component: every VOI's mask reference,
grid, time point and review status; every administration; every time point
with its series, calibration, volumes and registration; the current TIA map)
and saves with ``store.save_case(case, expected_inputs=fp)`` (or
:func:`save_results`), which compares it with the stored case **in the save's
transaction** and refuses with :class:`StaleInputsError` naming what changed.
Changes the computation did not read (a measurement note, the description)
do not block it; the version number alone is not the test.

The component hashes are SHA-256 (FIPS 180-4, NIST 2015) of JSON with sorted
keys and no spaces (the mask voxel data are covered by the blob key, itself the
SHA-256 of the array, :mod:`dosimetry_core.store.blobs`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dosimetry_core.errors import ConcurrentModificationError
from dosimetry_core.model.case import Case, DerivedKind

if TYPE_CHECKING:
    from dosimetry_core.store.case_store import AuditSpec
    from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "ALL_PARTS",
    "CaseInputs",
    "StaleInputsError",
    "changed_inputs",
    "fingerprint",
    "require_unchanged",
    "save_results",
    "stale_message",
]

ALL_PARTS = ("administrations", "time_points", "vois", "tia_map")
"""The input parts a fingerprint can cover.

``administrations``
    Every administration (nuclide, activity, times, residual).
``time_points``
    Every time point: acquisition time, series with calibration and volume
    references, and (as a component of its own) its registration.
``vois``
    Every VOI (or the chosen ones): name, kind, mask reference (blob key =
    content hash, grid), time point, review status.
``tia_map``
    Which TIA map is current (its id and voxel blob).
"""


COMPUTATION_ACTIONS = frozenset({"register", "tia-map", "dose", "fit", "protocol-run"})
"""Audit actions of computations (named in a refusal only when no edit was saved)."""


class StaleInputsError(ConcurrentModificationError):
    """The case inputs a computation read were changed before it saved; nothing was saved."""


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _components(
    case: Case, parts: Iterable[str], voi_ids: tuple[str, ...] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """``({component key: sha256}, {component key: label})`` of the chosen parts."""
    hashes: dict[str, str] = {}
    labels: dict[str, str] = {}
    chosen = set(parts)
    unknown = chosen - set(ALL_PARTS)
    if unknown:
        raise ValueError(f"unknown input parts {sorted(unknown)}; known: {ALL_PARTS}")
    if "administrations" in chosen:
        for adm in case.administrations:
            key = f"administration:{adm.administration_id}"
            hashes[key] = _digest(adm.to_dict())
            labels[key] = f"the administration of {adm.nuclide} ({adm.time:%Y-%m-%d %H:%M})"
    if "time_points" in chosen:
        for tp in case.time_points:
            d = tp.to_dict()
            reg = d.pop("registration")
            name = tp.label or tp.time_point_id
            key = f"time_point:{tp.time_point_id}"
            hashes[key] = _digest(d)
            labels[key] = f"time point {name}"
            rkey = f"registration:{tp.time_point_id}"
            hashes[rkey] = _digest(reg)
            labels[rkey] = f"the registration of time point {name}"
    if "vois" in chosen:
        for voi in case.vois:
            if voi_ids is not None and voi.voi_id not in voi_ids:
                continue
            key = f"voi:{voi.voi_id}"
            hashes[key] = _digest(
                {
                    "name": voi.name,
                    "kind": str(voi.kind),
                    "mask": voi.mask.to_dict(),
                    "time_point_id": voi.time_point_id,
                    "status": str(voi.status),
                }
            )
            labels[key] = f"VOI {voi.name}"
        if voi_ids is not None:
            for vid in voi_ids:
                labels.setdefault(f"voi:{vid}", f"VOI {vid}")
    if "tia_map" in chosen:
        current = case.derived_maps(DerivedKind.TIA_MAP)
        hashes["tia_map"] = _digest(
            None if not current else [current[0].derived_id, current[0].volume.key]
        )
        labels["tia_map"] = "the current TIA map"
    return hashes, labels


@dataclass(frozen=True)
class CaseInputs:
    """What a computation read of a case, as component hashes.

    Attributes
    ----------
    case_id
        The case.
    step
        The computation, in words (``"protocol run"``): named in the refusal.
    version
        The case version the inputs were read from (to find who changed them).
    parts
        The parts covered (subset of :data:`ALL_PARTS`).
    voi_ids
        The VOIs covered; None: every VOI of the case (a VOI added later is a change).
    hashes
        SHA-256 per component (``voi:<id>``, ``time_point:<id>``, ...).
    labels
        Words for each component (``VOI Kidney_L``), for the message.
    """

    case_id: str
    step: str
    version: int
    parts: tuple[str, ...]
    voi_ids: tuple[str, ...] | None
    hashes: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (e.g. for a result's provenance)."""
        return {
            "case_id": self.case_id,
            "step": self.step,
            "version": self.version,
            "parts": list(self.parts),
            "voi_ids": None if self.voi_ids is None else list(self.voi_ids),
            "hashes": dict(self.hashes),
        }


def fingerprint(
    case: Case,
    step: str,
    *,
    parts: Iterable[str] = ALL_PARTS,
    vois: Iterable[str] | None = None,
) -> CaseInputs:
    """The fingerprint of the inputs ``step`` reads from ``case`` (module docstring).

    Parameters
    ----------
    case
        The case as loaded by the computation.
    step
        The computation in words, e.g. ``"protocol run"``.
    parts
        Which parts of the case it reads (:data:`ALL_PARTS`).
    vois
        Ids of the VOIs it reads; None: every VOI (then a VOI added meanwhile
        also counts as a change).
    """
    p = tuple(parts)
    voi_ids = None if vois is None else tuple(sorted(set(vois)))
    hashes, labels = _components(case, p, voi_ids)
    return CaseInputs(
        case_id=case.case_id,
        step=step,
        version=int(case.version),
        parts=p,
        voi_ids=voi_ids,
        hashes=hashes,
        labels=labels,
    )


def changed_inputs(expected: CaseInputs, current: Case) -> list[str]:
    """What differs between the inputs read and ``current`` (empty: unchanged).

    Returns
    -------
    list of str
        One phrase per changed component, e.g. ``"VOI Kidney_L was changed"``.
    """
    now, now_labels = _components(current, expected.parts, expected.voi_ids)
    out: list[str] = []
    for key, digest in expected.hashes.items():
        label = expected.labels.get(key, key)
        if key not in now:
            out.append(f"{label} was removed")
        elif now[key] != digest:
            out.append(f"{label} was changed")
    for key in now:
        if key not in expected.hashes:
            out.append(f"{now_labels.get(key, key)} was added")
    return out


def stale_message(
    inputs: CaseInputs, changes: list[str], since: Iterable[tuple[str, str, Any, Any]]
) -> str:
    """The refusal text: what changed, who saved the case meanwhile and when, what to do.

    Parameters
    ----------
    inputs
        The fingerprint taken when the computation read the case.
    changes
        :func:`changed_inputs`.
    since
        ``(action, username, at, case_version)`` of the audited saves of the case
        after ``inputs.version``, oldest first (may be empty).
    """
    saves = list(since)
    edits = [s for s in saves if s[0] not in COMPUTATION_ACTIONS] or saves
    who = ""
    if edits:
        parts = []
        for action, username, at, _version in edits[-3:]:
            when = at.strftime("%H:%M") if hasattr(at, "strftime") else str(at)
            parts.append(f"{action} by {username or 'the system'} at {when}")
        who = " (saved meanwhile: " + ", ".join(parts) + ")"
    what = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    return (
        f"the case changed while the {inputs.step} was computing: {what}{who}; "
        f"nothing was saved, run the {inputs.step} again"
    )


def _saves_since(store: CaseRepository, inputs: CaseInputs) -> list[tuple[str, str, Any, Any]]:
    from dosimetry_core.errors import StoreError
    from dosimetry_core.store import audit as audit_trail

    try:
        found = audit_trail.entries(store, inputs.case_id)
    except StoreError:  # a repository without an audit trail
        return []
    out = []
    for e in found:
        version = e.details.get("case_version")
        if isinstance(version, int) and version > inputs.version:
            out.append((e.action, e.username, e.at, version))
    return out


def require_unchanged(
    store: CaseRepository,
    inputs: CaseInputs,
    case: Case,
    *,
    ignore: Iterable[str] = (),
) -> None:
    """Refuse (:class:`StaleInputsError`) if ``case`` no longer has the inputs ``inputs`` recorded.

    For a computation that saves an intermediate step of its own (a protocol run
    registering the time points) and reloads the case: what it read before
    must still hold.  ``ignore``: component kinds its own step changed
    (``"registration"``, ``"voi"``, ``"time_point"``, ``"administration"``,
    ``"tia_map"``).
    """
    skip = tuple(f"{kind}:" for kind in ignore) + tuple(k for k in ignore if ":" not in k)
    kept = {k: v for k, v in inputs.hashes.items() if not k.startswith(skip)}
    reduced = CaseInputs(
        case_id=inputs.case_id,
        step=inputs.step,
        version=inputs.version,
        parts=inputs.parts,
        voi_ids=inputs.voi_ids,
        hashes=kept,
        labels=inputs.labels,
    )
    changes = [c for c in changed_inputs(reduced, case) if not _ignored(c, reduced, case, skip)]
    if changes:
        raise StaleInputsError(stale_message(inputs, changes, _saves_since(store, inputs)))


def _ignored(change: str, inputs: CaseInputs, case: Case, skip: tuple[str, ...]) -> bool:
    """True for an 'added' component of an ignored kind (not in the reduced hashes)."""
    now, labels = _components(case, inputs.parts, inputs.voi_ids)
    return any(
        key.startswith(skip) and change == f"{labels.get(key, key)} was added" for key in now
    )


def save_results(
    store: CaseRepository,
    inputs: CaseInputs,
    apply: Callable[[Case], None],
    *,
    audit: AuditSpec | None = None,
) -> Case:
    """Save a computation's results onto the newest stored case if its inputs are unchanged.

    In one transaction: load the stored case, refuse if the inputs ``inputs``
    recorded have changed (:class:`StaleInputsError`, nothing saved), call
    ``apply(case)`` to put the results into it, and save it with ``audit``.
    Edits of parts the computation did not read (a measurement, the
    description) are kept.

    Parameters
    ----------
    store
        The case store.
    inputs
        :func:`fingerprint` taken when the computation read the case.
    apply
        Puts the results into the freshly loaded case (in place).
    audit
        As for :meth:`~dosimetry_core.store.CaseStore.save_case`.

    Raises
    ------
    StaleInputsError
        If an input was changed meanwhile (the message names it, who saved
        the case since and when); earlier results stay.
    """
    with store.transaction():
        case = store.load_case(inputs.case_id)
        changes = changed_inputs(inputs, case)
        if changes:
            raise StaleInputsError(stale_message(inputs, changes, _saves_since(store, inputs)))
        apply(case)
        return store.save_case(case, audit=audit, expected_inputs=inputs)
