"""Roles and what each may do: the rule the core enforces (the GUI only reflects it).

Roles (issue 7): a **technologist** enters administrations, measurements and
imports; a **physicist** does everything a technologist does, computes
(registration, contours, kinetics, dose) and signs a report as medical
physics expert (MPE); a **physician** approves or rejects contours, reads and
signs a report as practitioner; an **admin** manages users (and nothing
clinical).  Reading a case is open to every clinical role.

Reading and exporting are actions too (issue 13), checked by the command line
before a command reads anything (:mod:`dosimetry_core.cli.access`):

* ``read`` (cases, VOIs, measurements, QA records): every clinical role;
* ``read-audit`` (the audit trail: who did what, failed log-ins): the roles
  that answer for the records, physicist (MPE), physician and admin;
* ``export`` (files that carry the patient's name, ID and birth date, or an
  anonymised research set): physicist and physician, who send dose maps,
  structures and reports on; a technologist imports and enters data but does
  not take identifiable data out of the workstation;
* ``qa`` (camera calibration, recovery curves, which scale every later
  import): physicist only;
* ``manage-users`` (also listing the accounts and their lock states): admin.

:func:`require` raises :class:`~dosimetry_core.errors.PermissionDeniedError`
naming the user, the role and the action; callers check before changing
anything, so a refused action changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dosimetry_core.errors import PermissionDeniedError

ROLES = ("technologist", "physicist", "physician", "admin")

ACTIONS: dict[str, str] = {
    "read": "read cases and reports",
    "read-audit": "read the audit trail",
    "import": "import studies",
    "enter-administration": "enter administrations",
    "enter-measurement": "enter probe, blood and dose-rate measurements",
    "register": "register time points",
    "contour": "draw or edit contours",
    "approve-contour": "approve or reject contours",
    "compute": "fit kinetics and compute dose",
    "report": "prepare a dose report",
    "sign-mpe": "sign a report as medical physics expert",
    "sign-practitioner": "sign a report as practitioner",
    "amend-report": "amend a signed report (new version with a reason)",
    "export": "export DICOM and anonymised cases",
    "qa": "record commissioning and QA measurements",
    "manage-users": "create, disable and unlock users",
    "verify": "verify the audit trail and report signatures",
}

_TECH = {"read", "import", "enter-administration", "enter-measurement", "verify"}
PERMISSIONS: dict[str, frozenset[str]] = {
    "technologist": frozenset(_TECH),
    "physicist": frozenset(
        _TECH
        | {
            "register",
            "contour",
            "compute",
            "report",
            "sign-mpe",
            "amend-report",
            "qa",
            "export",
            "read-audit",
        }
    ),
    "physician": frozenset(
        {
            "read",
            "approve-contour",
            "sign-practitioner",
            "amend-report",
            "export",
            "verify",
            "read-audit",
        }
    ),
    "admin": frozenset({"manage-users", "verify", "read-audit"}),
}


@dataclass(frozen=True)
class Actor:
    """Who acts: the logged-in user and the role the account has."""

    username: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise PermissionDeniedError(
                f"unknown role {self.role!r} for user {self.username!r}; roles: {', '.join(ROLES)}"
            )

    def may(self, action: str) -> bool:
        return action in PERMISSIONS[self.role]


def require(actor: Actor, action: str) -> None:
    """Refuse ``action`` unless ``actor``'s role allows it (module docstring)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")  # a programming error
    if not actor.may(action):
        allowed = [r for r in ROLES if action in PERMISSIONS[r]]
        raise PermissionDeniedError(
            f"{actor.username} ({actor.role}) may not {ACTIONS[action]}: "
            f"this needs the role {' or '.join(allowed)}"
        )


SAVE_ACTIONS: dict[str, str] = {
    "import": "import",
    "set-protocol": "enter-administration",
    "enter-administration": "enter-administration",
    "enter-measurement": "enter-measurement",
    "register": "register",
    "registration-review": "register",
    "contour": "contour",
    "approve-contour": "approve-contour",
    "fit": "compute",
    "tia-map": "compute",
    "dose": "compute",
    "protocol-run": "compute",
    "report": "report",
    "export": "export",
    "correct-scan-time": "enter-measurement",
    "remove-time-point": "import",
}
"""Audit action of a case save -> the permission it needs (checked by ``CaseStore.save_case``)."""


def require_for_save(actor: Actor | None, audit_action: str) -> None:
    """Refuse a case save whose audit action the actor's role may not do (None: no session)."""
    if actor is None:
        return
    permission = SAVE_ACTIONS.get(audit_action)
    if permission is None:
        raise ValueError(f"audit action {audit_action!r} has no permission rule")
    require(actor, permission)
