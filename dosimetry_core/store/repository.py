"""The typed interface through which the rest of the program reaches a case store.

:class:`CaseRepository` is what pipeline, reporting, QA, the CLI and the GUI
ask of a store: cases and their voxel arrays, optimistic-concurrency saves with
the audit entry that goes with each change (and, for a computation's results,
the check that the inputs it read are unchanged), one public transaction, and the
logged-in actor.  :class:`dosimetry_core.store.CaseStore` implements it (SQLite
or PostgreSQL); tests may pass any object with the same methods.

Code outside ``dosimetry_core.store`` never touches the store's connections or
SQL: the tables of reports, signatures and QA records are read and written by
functions of the ``store`` package (:mod:`~dosimetry_core.store.report_rows`,
:mod:`~dosimetry_core.store.qa_rows`, :mod:`~dosimetry_core.store.users`,
:mod:`~dosimetry_core.store.audit`), which take a :class:`CaseRepository` and
reach the database through :meth:`CaseStore.connection` /
:meth:`CaseStore.read_connection` (see
:func:`~dosimetry_core.store.case_store.case_store_of`).  A caller that reads,
checks and writes groups those calls in one ``with store.transaction():``.
``tests/core/store/test_repository.py`` checks that nothing else calls a private
store method.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dosimetry_core.model.case import Case
    from dosimetry_core.model.volume import Volume, VolumeRef
    from dosimetry_core.store.case_inputs import CaseInputs
    from dosimetry_core.store.case_store import AuditSpec, CaseSummary
    from dosimetry_core.store.permissions import Actor

__all__ = ["CaseRepository"]


@runtime_checkable
class CaseRepository(Protocol):
    """A case store as the rest of the program sees it.

    Attributes
    ----------
    actor
        The logged-in user (None: nobody logged in; a store with accounts then
        refuses changes).  Audit entries name this actor.
    path
        The store folder (blobs live here; the database may be elsewhere).
    """

    actor: Actor | None
    path: Path

    # cases -----------------------------------------------------------------
    def load_case(self, case_id: str) -> Case:
        """The stored case (CaseNotFoundError if absent)."""
        ...

    def save_case(
        self,
        case: Case,
        *,
        audit: AuditSpec | None = None,
        expected_inputs: CaseInputs | None = None,
    ) -> Case:
        """Insert or update with optimistic concurrency; the audit entry in the same transaction.

        With ``expected_inputs`` (:mod:`dosimetry_core.store.case_inputs`) the save
        is refused, in the same transaction, when the stored case's inputs
        differ from those a computation read (no stale saves).
        """
        ...

    def delete_case(self, case_id: str, *, audit: AuditSpec | None = None) -> None: ...

    def find_cases(self, patient_id: str | None = None) -> list[CaseSummary]: ...

    def list_cases(self) -> list[CaseSummary]: ...

    # volumes ---------------------------------------------------------------
    def put_volume(
        self, volume: Volume, description: str = "", meta: dict[str, Any] | None = None
    ) -> VolumeRef: ...

    def load_volume(self, ref: VolumeRef) -> Volume: ...

    # transactions, accounts, audit -----------------------------------------
    def transaction(self) -> AbstractContextManager[None]:
        """Group writes so that they commit together or not at all (see CaseStore)."""
        ...

    def has_users(self) -> bool:
        """True once the store has accounts: every change then needs a permitted actor."""
        ...

    def audit_spec(self, action: str, **details: Any) -> AuditSpec:
        """``(actor, action, details)`` for a save's audit entry."""
        ...

    def close(self) -> None: ...
