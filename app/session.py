"""The case session: the one holder of the store, the logged-in user and the open case.

Every view reaches the store through a :class:`CaseSession`; no view saves by
itself.  A change goes through :meth:`CaseSession.change` (a quick edit: the
session calls a core function with the store and the case, the core checks the
role, saves and audits in one transaction) or :meth:`CaseSession.run` (a long
core call in a worker thread, with progress and cancel).  After either, the
session reloads the case from the store, so what every view shows is what is
stored, and emits :attr:`CaseSession.caseChanged`.

The permission rule lives in the core (:mod:`dosimetry_core.store.permissions`):
:meth:`CaseSession.may` only asks it.  A store without accounts is a
single-user store: everything is allowed except managing users.

Signals
-------
storeChanged()
    Another store was opened (or closed): case lists must be re-read.
userChanged()
    Log-in, log-out or another user.
caseChanged(object)
    The open case (a :class:`~dosimetry_core.model.Case`) after it was opened,
    saved or reloaded, or ``None`` when it was closed.
caseListChanged()
    A case was created, imported or deleted.
busyChanged(bool)
    A session job started (True) or the last one ended (False).
message(str)
    Short status text (who saved what, when).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.workers import Task
from dosimetry_core.errors import DosimetryError, StoreError
from dosimetry_core.model import Case
from dosimetry_core.store.permissions import Actor
from dosimetry_core.store.repository import CaseRepository

log = logging.getLogger(__name__)

__all__ = ["CaseSession"]


class CaseSession(QObject):
    """Store, user and open case of one workstation window (module docstring).

    Parameters
    ----------
    store
        The case store (None: no store open yet).
    store_path
        Shown in titles and dialogs.
    """

    storeChanged = Signal()
    userChanged = Signal()
    caseChanged = Signal(object)
    caseListChanged = Signal()
    busyChanged = Signal(bool)
    message = Signal(str)

    def __init__(
        self,
        store: CaseRepository | None = None,
        store_path: str | Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._store_path = str(store_path) if store_path else ""
        self._case: Case | None = None
        self._dirty: dict[str, str] = {}
        self._jobs: set[Task] = set()
        self.pool = QThreadPool(self)
        """Threads for session jobs (two: a load does not wait for a long computation)."""
        self.pool.setMaxThreadCount(2)
        self.last_saved: tuple[str, datetime] | None = None
        """Who saved the open case last through this session, and when."""

    # ------------------------------------------------------------------ store
    @property
    def store(self) -> CaseRepository | None:
        return self._store

    @property
    def store_path(self) -> str:
        return self._store_path

    def set_store(self, store: CaseRepository | None, path: str | Path | None = None) -> None:
        """Use another store: closes the case and logs out (accounts belong to a store)."""
        self.close_case()
        self._store = store
        self._store_path = str(path) if path else ""
        self.userChanged.emit()
        self.storeChanged.emit()

    def _require_store(self) -> CaseRepository:
        if self._store is None:
            raise StoreError("no case store is open (File › Open store…)")
        return self._store

    # ------------------------------------------------------------------- user
    @property
    def actor(self) -> Actor | None:
        return self._store.actor if self._store is not None else None

    @property
    def has_accounts(self) -> bool:
        """True when the store has user accounts (then a log-in is needed to change anything)."""
        return self._store is not None and bool(self._store.has_users())

    @property
    def needs_login(self) -> bool:
        return self.has_accounts and self.actor is None

    def user_label(self) -> str:
        """'dr.md (physician)', 'single-user store' or 'not logged in' for the status bar."""
        if self._store is None:
            return "no store"
        actor = self.actor
        if actor is not None:
            return f"{actor.username} ({actor.role})"
        return "not logged in" if self.has_accounts else "single-user store"

    def login(self, username: str, password: str) -> Actor:
        """Log in with the core's rules (lockout, disabled accounts); raises AuthenticationError."""
        from dosimetry_core.store.users import authenticate

        store = self._require_store()
        actor = authenticate(store, username, password)  # type: ignore[arg-type]
        store.actor = actor
        self.userChanged.emit()
        self.message.emit(f"Logged in as {actor.username} ({actor.role})")
        return actor

    def logout(self) -> None:
        """Forget the user; the open case is closed (its views show nothing a stranger may see)."""
        if self._store is None or self._store.actor is None:
            return
        name = self._store.actor.username
        self.close_case()
        self._store.actor = None
        self.userChanged.emit()
        self.message.emit(f"{name} logged out")

    def change_password(self, old_password: str, new_password: str) -> None:
        """Change the logged-in user's password (the old one is checked again)."""
        from dosimetry_core.store.users import authenticate, set_password

        store = self._require_store()
        actor = self.actor
        if actor is None:
            raise StoreError("log in first to change your password")
        authenticate(store, actor.username, old_password)  # type: ignore[arg-type]
        set_password(store, actor, actor.username, new_password)  # type: ignore[arg-type]
        self.message.emit(f"Password of {actor.username} changed")

    def may(self, action: str) -> bool:
        """Whether the current user may do ``action`` (names in store.permissions.ACTIONS)."""
        if self._store is None:
            return False
        actor = self.actor
        if actor is None:
            return not self.has_accounts and action != "manage-users"
        return actor.may(action)

    # ------------------------------------------------------------------- case
    @property
    def case(self) -> Case | None:
        return self._case

    def open_case(self, case_id: str) -> Case:
        """Load a case and make it the open one (raises the store's errors)."""
        store = self._require_store()
        if self.needs_login:
            raise StoreError("log in to open a case of this store")
        case = store.load_case(case_id)
        self._case = case
        self._dirty.clear()
        self.caseChanged.emit(case)
        return case

    def close_case(self) -> None:
        if self._case is None:
            return
        self._case = None
        self._dirty.clear()
        self.caseChanged.emit(None)

    def reload(self) -> Case | None:
        """Read the open case again from the store (after a save by the core or another process)."""
        if self._case is None or self._store is None:
            return None
        self._case = self._store.load_case(self._case.case_id)
        self.caseChanged.emit(self._case)
        return self._case

    # ------------------------------------------------------------ unsaved work
    def set_dirty(self, key: str, description: str | None) -> None:
        """A view has unsaved edits (``description``) or none any more (None)."""
        if description:
            self._dirty[key] = description
        else:
            self._dirty.pop(key, None)

    @property
    def unsaved_changes(self) -> list[str]:
        """Descriptions of the edits views hold that are not saved yet."""
        return list(self._dirty.values())

    # ---------------------------------------------------------------- changes
    def change(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Apply a quick core change to the open case: ``fn(store, case, *args, **kwargs)``.

        The core function checks the role, validates, saves and audits in one
        transaction.  The case is then reloaded from the store and
        ``caseChanged`` emitted.  On an error nothing is saved and the open
        case is reloaded as stored (a refused value never stays half-applied
        in memory); the error propagates for the view to show.
        """
        store = self._require_store()
        case = self._case
        if case is None:
            raise StoreError("open a case first")
        try:
            result = fn(store, case, *args, **kwargs)
        except BaseException:
            self._reload_quietly()
            raise
        self._saved(case.case_id)
        return result

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        description: str = "",
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[str, str], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        reload_case: bool = True,
        with_progress: bool = True,
        **kwargs: Any,
    ) -> Task:
        """Run a long core call in a worker thread: ``fn(*args, progress=, cancel=, **kwargs)``.

        The caller passes the store and case it wants (``session.store``,
        ``session.case``) in ``args``.  When it succeeds and ``reload_case``
        is true the open case is reloaded (the core saved it) and
        ``caseChanged`` emitted before ``on_success(result)``.  Returns the
        started :class:`~app.workers.Task` (cancel with ``task.cancel()``).
        """
        task = Task(fn, *args, description=description, with_progress=with_progress, **kwargs)
        case_id = self._case.case_id if self._case is not None else None

        def succeeded(result: Any) -> None:
            if reload_case and case_id is not None and self._case is not None:
                if self._case.case_id == case_id:
                    self._saved(case_id)
            if on_success is not None:
                on_success(result)

        def failed(message: str, details: str) -> None:
            if reload_case and case_id is not None:
                self._reload_quietly()
            if on_failure is not None:
                on_failure(message, details)

        task.succeeded.connect(succeeded)
        task.failed.connect(failed)
        if on_progress is not None:
            task.progress.connect(on_progress)
        if on_cancelled is not None:
            task.cancelled.connect(on_cancelled)
        task.finished.connect(lambda t=task: self._job_done(t))
        was_idle = not self._jobs
        self._jobs.add(task)
        if was_idle:
            self.busyChanged.emit(True)
        task.start(self.pool)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def jobs(self) -> list[Task]:
        return list(self._jobs)

    def cancel_jobs(self, wait_s: float = 10.0) -> None:
        """Ask every running job to stop and wait (at most ``wait_s``) for the threads."""
        for task in list(self._jobs):
            task.cancel()
        self.pool.waitForDone(int(wait_s * 1000))

    def create_case(
        self,
        patient_id: str,
        name: str = "",
        birth_date: date | None = None,
        sex: str = "",
        protocol_id: str = "",
        description: str = "",
    ) -> Case:
        """Create a case through the core (role checked, audited), list it and open it.

        Raises the core's :class:`~dosimetry_core.errors.InvalidInputError`
        (``field`` names the refused value) or
        :class:`~dosimetry_core.errors.PermissionDeniedError`; nothing is saved then.
        """
        from dosimetry_core.pipeline.cases import create_case

        store = self._require_store()
        case = create_case(
            store, patient_id, name, birth_date, sex, protocol_id, description=description
        )
        self.caseListChanged.emit()
        self.message.emit(f"Case created for patient {case.patient.patient_id}")
        return self.open_case(case.case_id)

    def notify_case_list_changed(self) -> None:
        """Tell the case lists to re-read (after an import or a new case)."""
        self.caseListChanged.emit()

    # ---------------------------------------------------------------- helpers
    def _job_done(self, task: Task) -> None:
        self._jobs.discard(task)
        if not self._jobs:
            self.busyChanged.emit(False)

    def _saved(self, case_id: str) -> None:
        store = self._require_store()
        self._case = store.load_case(case_id)
        actor = self.actor
        who = actor.username if actor is not None else "single user"
        self.last_saved = (who, datetime.now().replace(microsecond=0))
        self.caseChanged.emit(self._case)
        self.message.emit(
            f"Saved by {who} at {self.last_saved[1].strftime('%H:%M:%S')} "
            f"(case version {self._case.version})"
        )

    def _reload_quietly(self) -> None:
        try:
            self.reload()
        except DosimetryError:
            log.exception("reloading the case after a failed change")
