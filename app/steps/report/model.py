"""View-model of the report and sign-off step (no Qt): versions, numbers, signatures, rules.

What the "Report and sign-off" step shows is computed here from the store's
records and the core's checks, so it is tested without a screen:

* :func:`load_state` reads, in a worker, everything the step shows of a case
  (:class:`ReportState`): every report version
  (:func:`dosimetry_core.reporting.records.list_reports`), the shown version's
  stored PDF (:func:`~dosimetry_core.reporting.records.report_pdf`), the core's
  check of that version (:func:`~dosimetry_core.reporting.records.verify`) and
  of each PAdES signature in its PDF against the department CA pinned in the store
  (:func:`dosimetry_core.reporting.pades.validate`);
* :class:`ReportModel` turns that state and the user's permissions into table
  rows (numbers of the report content with limits and review flags; versions;
  signatures), the roles the user may sign as, and which buttons are enabled;
* :func:`explain_file_check` puts the core's check of a file from disk
  (:func:`dosimetry_core.reporting.file_check.verify_report_path`) into plain words.

Nothing here computes a dose: every number is read from the report content the
core stored (:mod:`dosimetry_core.reporting.content`), printed with 3 decimals
in Gy as ``mrtdose run`` prints doses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dosimetry_core.errors import DosimetryError
from dosimetry_core.reporting.records import (
    DRAFT,
    MPE_SIGNED,
    SIGNED,
    SUPERSEDED,
    ReportRecord,
)

__all__ = [
    "NUMBER_COLUMNS",
    "PROTOCOL_STEP_TITLE",
    "ROLE_LABELS",
    "SIGNATURE_COLUMNS",
    "VERSION_COLUMNS",
    "FileVerdict",
    "NumberRow",
    "ReportModel",
    "ReportState",
    "explain_file_check",
    "load_state",
    "short_flag",
    "sign_roles_for",
]

PROTOCOL_STEP_TITLE = "Protocol run & planning"
"""The step where a protocol run is made (named when a report cannot be made yet)."""

NUMBER_COLUMNS: tuple[str, ...] = ("Organ / VOI", "Dose (Gy)", "Result", "Review flag", "Limit")
"""Most read first: in a narrow panel the limit text (longest) scrolls."""
VERSION_COLUMNS: tuple[str, ...] = (
    "Version",
    "Status",
    "Created",
    "By",
    "Supersedes",
    "Reason",
)
SIGNATURE_COLUMNS: tuple[str, ...] = (
    "Signer",
    "Role",
    "Signed as",
    "Time",
    "Valid",
    "Chain to department CA",
)
ROLE_LABELS = {"mpe": "MPE", "practitioner": "Practitioner"}
"""Sign-off roles as shown: the medical physics expert (MPE) and the practitioner."""
SIGN_ACTIONS = {"mpe": "sign-mpe", "practitioner": "sign-practitioner"}
QUANTITY_LABELS = {"dose_gy": "dose", "bed_gy": "BED", "eqd2_gy": "EQD2"}
APPROVED = "approved"


def _gy(x: Any) -> str:
    return "-" if x is None else f"{float(x):.3f}"


def _when(text: Any) -> str:
    return str(text or "").replace("T", " ")


# ------------------------------------------------------------------ state (worker)
@dataclass(frozen=True)
class ReportState:
    """What the step shows of one case, read from the store by :func:`load_state`."""

    case_id: str | None
    has_protocol_run: bool
    reports: tuple[ReportRecord, ...] = ()
    shown_id: str | None = None
    """The version shown in the preview (default: the newest)."""
    pdf: bytes | None = None
    """The stored PDF of the shown version (as signed so far)."""
    problems: tuple[str, ...] = ()
    """The core's check of the shown version (empty: intact)."""
    checks: tuple[Any, ...] = ()
    """One :class:`dosimetry_core.reporting.pades.PdfSignatureCheck` per PAdES signature."""
    has_ca: bool = False
    """The store has a department CA (accounts with personal keys)."""
    error: str = ""
    """Why the reports could not be read (shown instead of them)."""
    current_flags: tuple[tuple[str, str, str], ...] = ()
    """(VOI id, name, review flag now) of every VOI of the case, by the core's
    :func:`dosimetry_core.pipeline.voi_review.review_flag` ("" = approved)."""

    @property
    def shown(self) -> ReportRecord | None:
        return next((r for r in self.reports if r.report_id == self.shown_id), None)

    @property
    def newest(self) -> ReportRecord | None:
        return self.reports[-1] if self.reports else None


def load_state(store: Any, case_id: str | None, shown_id: str | None = None) -> ReportState:
    """Read the reports of ``case_id`` and check the shown one (module docstring).

    ``shown_id`` None or unknown: the newest version.  Errors of the store are
    returned in ``error`` (the step shows them), never raised.
    """
    from dosimetry_core.pipeline.voi_review import review_flag
    from dosimetry_core.reporting import pades
    from dosimetry_core.reporting.records import list_reports, report_pdf, verify
    from dosimetry_core.store import keys

    if store is None or case_id is None:
        return ReportState(None, False)
    try:
        case = store.load_case(case_id)
        has_run = case.protocol_run is not None
        reports = tuple(list_reports(store, case_id))
        ca = keys.pinned_ca(store)
    except DosimetryError as exc:
        return ReportState(case_id, False, error=str(exc))
    flags_now = tuple((v.voi_id, v.name, review_flag(v)) for v in case.vois)
    if not reports:
        return ReportState(case_id, has_run, has_ca=ca is not None, current_flags=flags_now)
    ids = [r.report_id for r in reports]
    shown = shown_id if shown_id in ids else ids[-1]
    problems = list(verify(store, shown))
    pdf: bytes | None = None
    checks: list[Any] = []
    try:
        pdf = report_pdf(store, shown)
    except DosimetryError as exc:
        problems.append(str(exc))
    if pdf is not None and ca is not None and pades.count_signatures(pdf):
        found, _ = pades.validate(pdf, ca)
        checks = list(found)
    return ReportState(
        case_id,
        has_run,
        reports,
        shown,
        pdf,
        tuple(problems),
        tuple(checks),
        has_ca=ca is not None,
        current_flags=flags_now,
    )


# ------------------------------------------------------------------ rows
@dataclass(frozen=True)
class NumberRow:
    """One organ or VOI of the report content as the number table shows it."""

    name: str
    level: str
    """``organ`` or ``voi``."""
    dose: str
    """Dose in Gy, 3 decimals (``-`` when not defined)."""
    dose_gy: float | None
    limit: str
    """The limits on this row, short (``dose ≤ 23 Gy``; ``-`` when none)."""
    limit_detail: str
    """The limits with scope and cumulative value (``dose cumulative 3.949 of 23 Gy``)."""
    result: str
    """``PASS``, ``FAIL`` or empty (no limit on this row)."""
    flag: str
    """The review flag, short (``draft - not approved``), ``approved`` when there is none."""
    flag_detail: str
    """The core's review flag(s) as stated in the report (``approved`` when none)."""

    @property
    def flagged(self) -> bool:
        """A contour of this row is not approved (the cell is shown amber)."""
        return self.flag != APPROVED

    def cells(self) -> list[str]:
        return [self.name, self.dose, self.result, self.flag, self.limit]

    def tooltips(self) -> list[str]:
        return [
            self.name.strip(),
            f"{self.dose} Gy",
            self.result or "no limit on this row",
            self.flag_detail,
            self.limit_detail,
        ]


def short_flag(flag: str) -> str:
    """A short form of the core's review flag for a narrow cell (the full text is the tooltip).

    ``contour not approved (draft)`` -> ``draft - not approved``;
    ``REJECTED contour: why`` -> ``REJECTED: why``; empty -> ``approved``.
    """
    if not flag:
        return APPROVED
    m = re.fullmatch(r"contour not approved \((.+)\)", flag)
    if m:
        return f"{m.group(1)} - not approved"
    if flag.startswith("REJECTED contour"):
        return "REJECTED" + flag[len("REJECTED contour") :]
    return flag


def _limit_text(check: dict[str, Any]) -> tuple[str, str]:
    q = QUANTITY_LABELS.get(str(check.get("quantity")), str(check.get("quantity")))
    scope = str(check.get("scope") or "")
    limit = check.get("limit")
    if limit is None:
        return q, q
    value = check.get("value")
    return (
        f"{q} ≤ {float(limit):g} Gy",
        f"{q}{' ' + scope if scope else ''} {_gy(value)} of {float(limit):g} Gy",
    )


def number_rows(content: dict[str, Any]) -> list[NumberRow]:
    """Organs (with their limits) then VOIs of a report's content (module docstring)."""
    checks = list(content.get("limit_checks") or [])
    rows: list[NumberRow] = []
    for organ_id, o in (content.get("organs") or {}).items():
        mine = [c for c in checks if c.get("organ_id") == organ_id]
        limits = [_limit_text(c) for c in mine]
        flags = sorted({f for f in (o.get("review_flags") or []) if f})
        rows.append(
            NumberRow(
                name=str(o.get("label") or organ_id),
                level="organ",
                dose=_gy(o.get("dose_gy")),
                dose_gy=o.get("dose_gy"),
                limit="; ".join(short for short, _ in limits) or "-",
                limit_detail="; ".join(long for _, long in limits) or "no limit",
                result=("PASS" if all(c.get("passed") for c in mine) else "FAIL") if mine else "",
                flag="; ".join(dict.fromkeys(short_flag(f) for f in flags)) or APPROVED,
                flag_detail="; ".join(flags) or APPROVED,
            )
        )
    for v in content.get("vois") or []:
        flag = str(v.get("review_flag") or "")
        rows.append(
            NumberRow(
                name=f"  {v.get('voi_name')}",
                level="voi",
                dose=_gy(v.get("dose_gy")),
                dose_gy=v.get("dose_gy"),
                limit="-",
                limit_detail="limits are set on organs",
                result="",
                flag=short_flag(flag),
                flag_detail=flag or APPROVED,
            )
        )
    return rows


def sign_roles_for(may: dict[str, bool]) -> list[str]:
    """The sign-off roles (``mpe``, ``practitioner``) the user's permissions allow."""
    return [role for role, action in SIGN_ACTIONS.items() if may.get(action, False)]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


class ReportModel:
    """Rows and rules of the step for one :class:`ReportState` and user (module docstring).

    Parameters
    ----------
    state
        What :func:`load_state` read.
    may
        ``{action: allowed}`` for "report", "sign-mpe", "sign-practitioner",
        "amend-report", "verify" (``session.may``).
    """

    def __init__(self, state: ReportState, may: dict[str, bool]) -> None:
        self.state = state
        self.may = dict(may)

    # ------------------------------------------------------------ texts
    def summary(self) -> str:
        s = self.state
        if s.case_id is None:
            return "No case open."
        if s.error:
            return f"The reports of {s.case_id} cannot be read: {s.error}"
        newest = s.newest
        if newest is None:
            if not s.has_protocol_run:
                return self.no_run_text()
            return f"No report of {s.case_id} yet: a physicist makes it with “Make report”."
        shown = s.shown
        assert shown is not None
        text = f"Report {shown.report_id} version {shown.version}: {shown.status}"
        if shown.status == SUPERSEDED:
            successor = next((r for r in s.reports if r.supersedes == shown.report_id), None)
            text += " — SUPERSEDED" + (f" by version {successor.version}" if successor else "")
        elif shown.status == SIGNED:
            text += " (final: MPE and practitioner signed)"
        elif shown.status == MPE_SIGNED:
            text += " (awaiting the practitioner's signature)"
        else:
            text += " (unsigned draft)"
        return text

    def no_run_text(self) -> str:
        return (
            f"Case {self.state.case_id} has no protocol run: run its protocol in the step "
            f"“{PROTOCOL_STEP_TITLE}” first; the report states that run's doses."
        )

    def make_hint(self) -> str:
        """Why "Make report" is disabled ("" when it is enabled)."""
        s = self.state
        if s.case_id is None:
            return "Open a case first."
        if s.error:
            return s.error
        if not s.has_protocol_run:
            return self.no_run_text()
        if not self.may.get("report", False):
            return "Only a physicist makes the report."
        newest = s.newest
        if newest is not None and newest.status != DRAFT:
            return (
                f"Version {newest.version} is {newest.status}: a signed report is not made "
                "again; amend it (with a reason) for a new version."
            )
        return ""

    def review_changes(self) -> list[str]:
        """VOIs whose contour review changed since the shown report's protocol run.

        The report states the review flags saved with the protocol run; a VOI
        approved (or rejected, or edited) later still carries its old flag in
        this report until the protocol is run again and the report made again
        (or amended, when signed).
        """
        shown = self.state.shown
        if shown is None:
            return []
        now = {vid: (name, flag) for vid, name, flag in self.state.current_flags}
        out = []
        for v in shown.content.get("vois") or []:
            vid = str(v.get("voi_id") or "")
            if vid not in now:
                continue
            then = str(v.get("review_flag") or "")
            name, flag = now[vid]
            if flag != then:
                out.append(
                    f"{name} is now {short_flag(flag)} (the report states {short_flag(then)})"
                )
        return out

    def hints(self) -> list[str]:
        """What the user cannot do now and why (shown under the summary)."""
        s = self.state
        if s.case_id is None or s.error:
            return []
        out = []
        make = self.make_hint()
        if make and make != self.summary() and (s.newest is None or self.may.get("report")):
            out.append(make)
        if s.newest is not None and sign_roles_for(self.may) and not self.sign_roles():
            out.append(self.sign_hint())
        changed = self.review_changes()
        if changed:
            out.append(
                "Contour review changed since this report's protocol run: "
                + "; ".join(changed)
                + ". Run the protocol again, then make the report again (amend it if signed)."
            )
        return out

    def integrity(self) -> str:
        """The core's check of the shown version in words."""
        s = self.state
        if s.shown is None:
            return ""
        if not s.problems:
            return "Stored record intact (content, hashes, signatures, PDF)."
        return "PROBLEM: " + "; ".join(s.problems)

    # ------------------------------------------------------------ rules
    def can_make(self) -> bool:
        return self.make_hint() == ""

    def sign_roles(self) -> list[str]:
        """The roles the user may sign the shown version as, now (MPE first)."""
        shown = self.state.shown
        if shown is None or shown is not self.state.newest or self.state.problems:
            return []
        roles = []
        done = {sig.get("signed_as") for sig in shown.signatures}
        for role in sign_roles_for(self.may):
            if role in done or shown.status in (SIGNED, SUPERSEDED):
                continue
            if role == "practitioner" and "mpe" not in done:
                continue
            roles.append(role)
        return roles

    def sign_hint(self) -> str:
        """Why "Sign…" is disabled ("" when it is enabled)."""
        shown = self.state.shown
        allowed = sign_roles_for(self.may)
        if not allowed:
            return "Only a physicist (MPE) or a physician (practitioner) signs reports."
        if shown is None:
            return "There is no report to sign yet."
        if shown is not self.state.newest:
            return "This version is superseded: sign the newest."
        if self.state.problems:
            return "The stored report is not intact: it cannot be signed."
        if self.sign_roles():
            return ""
        if shown.status == SIGNED:
            return "The report is signed by the MPE and the practitioner (final)."
        if allowed == ["practitioner"] and shown.status == DRAFT:
            return "The MPE signs first, then the practitioner."
        return "You have signed this version already."

    def can_amend(self, reason: str) -> bool:
        """Amend enabled: the user may, the newest version is signed and a reason is typed."""
        return self.amend_allowed() and bool(reason.strip())

    def amend_allowed(self) -> bool:
        shown = self.state.shown
        return (
            self.may.get("amend-report", False)
            and shown is not None
            and shown is self.state.newest
            and shown.status in (MPE_SIGNED, SIGNED)
        )

    def can_save_pdf(self) -> bool:
        return self.state.pdf is not None

    # ------------------------------------------------------------ tables
    def numbers(self) -> list[NumberRow]:
        shown = self.state.shown
        return [] if shown is None else number_rows(shown.content)

    def dose_of(self, name: str) -> float | None:
        """The dose (Gy) of the organ or VOI ``name`` in the shown version's content."""
        for row in self.numbers():
            if row.name.strip() == name:
                return row.dose_gy
        return None

    def versions(self) -> list[list[str]]:
        """Every version, oldest first: version, status, created, by, supersedes, reason."""
        by_id = {r.report_id: r for r in self.state.reports}
        out = []
        for r in self.state.reports:
            sup = by_id.get(r.supersedes or "")
            out.append(
                [
                    str(r.version),
                    r.status,
                    r.created_at.isoformat(sep=" "),
                    r.created_by,
                    f"version {sup.version}" if sup is not None else (r.supersedes or "—"),
                    r.amendment_reason or "—",
                ]
            )
        return out

    def version_ids(self) -> list[str]:
        return [r.report_id for r in self.state.reports]

    def signatures(self) -> list[list[str]]:
        """One row per signature of the shown version (module docstring)."""
        s = self.state
        shown = s.shown
        if shown is None:
            return []
        rows = []
        for i, sig in enumerate(shown.signatures):
            check = s.checks[i] if i < len(s.checks) else None
            if check is not None and (
                check.signer != sig.get("username") or check.signed_as != sig.get("signed_as")
            ):
                check = None
            if s.has_ca:
                if check is None:
                    valid, chain = "no (no PAdES signature in the PDF)", "no"
                else:
                    ok = check.intact and check.valid and not check.problems
                    valid = _yes(ok) if ok else "no: " + "; ".join(check.problems)
                    chain = (
                        "yes: issued by the department CA"
                        if check.trusted
                        else "NO: not issued by the department CA"
                    )
            else:
                own = [p for p in s.problems if f"({sig.get('signed_as')} by" in p]
                valid = "no: " + "; ".join(own) if own else "yes (hash record)"
                chain = "— (single-user store: no personal keys)"
            rows.append(
                [
                    str(sig.get("username", "")),
                    str(sig.get("role", "")),
                    ROLE_LABELS.get(str(sig.get("signed_as")), str(sig.get("signed_as"))),
                    _when(sig.get("at")),
                    valid,
                    chain,
                ]
            )
        return rows


# ------------------------------------------------------------------ file check
@dataclass(frozen=True)
class FileVerdict:
    """The check of a file from disk in plain words."""

    intact: bool
    headline: str
    lines: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        return "\n".join((self.headline, *self.lines))


def explain_file_check(result: dict[str, Any], *, trust_label: str) -> FileVerdict:
    """Plain words for :func:`~dosimetry_core.reporting.file_check.verify_report_path`'s result.

    ``trust_label`` names the trust anchor used (the CA file, or the store's CA).
    """
    sigs = list(result.get("signatures") or [])
    lines = []
    for s in sigs:
        role = ROLE_LABELS.get(str(s.get("signed_as")), str(s.get("field")))
        state = []
        state.append("intact" if s.get("intact") else "CHANGED after signing")
        state.append("valid" if s.get("valid") else "signature value INVALID")
        state.append(
            f"issued by {trust_label}" if s.get("trusted") else f"NOT issued by {trust_label}"
        )
        lines.append(
            f"• {role}: {s.get('signer')} ({s.get('role')}), signed "
            f"{_when(s.get('signed_at'))} — {', '.join(state)}"
        )
    rid = result.get("report_id") or "unknown report"
    problems = list(result.get("problems") or [])
    if result.get("intact") and not problems:
        n = len(sigs)
        head = (
            f"INTACT: report {rid}, {n} signature(s), each intact, valid and issued by "
            f"{trust_label}; the last one covers the whole file."
            if n
            else f"INTACT: report {rid} is the stored record of this store (no personal signature)."
        )
        return FileVerdict(True, head, tuple(lines))
    head = f"NOT INTACT: {len(problems)} problem(s) with {rid}:"
    return FileVerdict(False, head, tuple([*(f"✗ {p}" for p in problems), *lines]))
