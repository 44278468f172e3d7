"""Create a case by hand, from a therapy protocol (before any image is imported).

A department often knows the patient and the protocol before the first scan:
the technologist creates the case, the protocol's checklist then says what is
still missing (administration, time points, measurements, VOIs), and imports
and data entry fill it.  The case is saved and audited in one transaction by
the store; a refused role or value saves nothing.
"""

from __future__ import annotations

from datetime import date

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.model import Case, Patient
from dosimetry_core.store.permissions import require
from dosimetry_core.store.repository import CaseRepository

__all__ = ["SEXES", "create_case"]

SEXES = ("", "M", "F", "O")
"""DICOM Patient's Sex codes accepted (empty: unknown)."""

MAX_PATIENT_ID_LENGTH = 64
"""DICOM LO (Patient ID): at most 64 characters."""


def _clean_patient_id(patient_id: str) -> str:
    pid = (patient_id or "").strip()
    if not pid:
        raise InvalidInputError("the patient ID is required", field="patient_id")
    if len(pid) > MAX_PATIENT_ID_LENGTH:
        raise InvalidInputError(
            f"the patient ID has {len(pid)} characters; at most {MAX_PATIENT_ID_LENGTH}",
            field="patient_id",
        )
    if any(not c.isprintable() or c in "\\^" for c in pid):
        raise InvalidInputError(
            "the patient ID may not hold control characters, '\\' or '^'", field="patient_id"
        )
    return pid


def create_case(
    store: CaseRepository,
    patient_id: str,
    name: str = "",
    birth_date: date | None = None,
    sex: str = "",
    protocol_id: str = "",
    *,
    description: str = "",
    today: date | None = None,
) -> Case:
    """Create and save an empty case for a patient under a protocol.

    Parameters
    ----------
    store
        The case store; its logged-in actor needs the ``import`` or
        ``enter-administration`` permission (a store without accounts: anyone).
    patient_id
        Required, never empty (DICOM Patient ID, at most 64 characters).
    name
        DICOM person name (``Family^Given``) or free text.
    birth_date
        Not in the future.
    sex
        ``M``, ``F``, ``O`` or empty.
    protocol_id
        A protocol of :func:`dosimetry_core.protocols.registry.list_protocols`
        (empty: none yet).
    description
        Free text shown in the case list's tooltip.
    today
        The date birth dates are checked against (tests inject it).

    Returns
    -------
    Case
        The stored case (version 1).

    Raises
    ------
    InvalidInputError
        A value is refused; ``field`` names it.  Nothing is saved.
    PermissionDeniedError
        The user may not create cases (or nobody is logged in to a store with accounts).
    """
    actor = store.actor
    if actor is None and store.has_users():
        raise PermissionDeniedError("log in to create a case: this store has user accounts")
    if actor is not None and not actor.may("enter-administration"):
        require(actor, "import")  # raises, naming the roles that may
    pid = _clean_patient_id(patient_id)
    sex_code = (sex or "").strip().upper()
    if sex_code not in SEXES:
        raise InvalidInputError(f"sex must be M, F, O or empty, not {sex!r}", field="sex")
    if birth_date is not None and birth_date > (today or date.today()):
        raise InvalidInputError(
            f"the birth date {birth_date.isoformat()} is in the future", field="birth_date"
        )
    protocol = ""
    if protocol_id:
        from dosimetry_core.protocols.registry import load_protocol

        try:
            protocol = load_protocol(protocol_id).id
        except InvalidInputError as exc:
            raise InvalidInputError(str(exc), field="protocol") from exc
    case = Case(
        patient=Patient(
            patient_id=pid, name=(name or "").strip(), birth_date=birth_date, sex=sex_code
        ),
        protocol=protocol,
        description=description or (f"Created for protocol {protocol}" if protocol else ""),
    )
    return store.save_case(
        case, audit=store.audit_spec("import", created="by hand", protocol=protocol, patient_id=pid)
    )
