"""A DICOM storage SCP that files incoming instances and imports them into cases.

``mrtdose listen --port P --ae-title T`` runs :class:`StorageServer` (pynetdicom).

**Where files go.**  Every accepted instance is written, exactly as it was sent
(file meta + dataset in the negotiated transfer syntax), to
``INCOMING/<study>/<instance>.dcm`` where ``INCOMING`` is ``<store folder>/incoming``
unless another folder is given, ``<study>`` the first 16 hex digits of the SHA-256
of the Study Instance UID and ``<instance>`` the first 24 of the SHA-256 of the SOP
Instance UID.  No part of a file name comes from the peer's text, so a hostile
UID cannot climb out of the folder (path traversal); the same instance sent
twice overwrites its own file.  The files are kept after the import (the record
of what was received); delete old study folders when the cases are signed.

**When a study is imported** (the rule).  A study is imported once *every*
association that delivered instances of it has ended (released or aborted) *and*
no instance of it arrived for ``idle_s`` seconds (default 5 s).  So a study sent
over several associations in a row is imported once, whole; a study that arrives
again later is imported again: :func:`dosimetry_core.pipeline.importing.import_directory`
reports the series the store already holds as already present and adds the new
ones -- the same core path, rules and skip reasons as ``mrtdose import``, run on
the study's folder.  Imports run one at a time in one thread.

**Hostile input.**  An instance whose dataset cannot be decoded, that has no or
an invalid SOP Instance / Study Instance UID, or whose SOP Instance UID or SOP
Class UID differ from the C-STORE request's, is refused with a C-STORE failure
status (``0xC210`` cannot understand, ``0xA900`` data set does not match SOP
class) and logged; nothing is written and the SCP goes on.  A file that cannot
be written (disk full) is refused with ``0xA700`` (out of resources), and so is
one that would leave less than the free-space reserve on the incoming folder's
disk (``--min-free-mb``, default 1024 MB): a sender, mistaken or hostile, cannot
fill the disk that also holds the case store.  When a
list of calling AE titles is configured, an association from any other AE title
is rejected (A-ASSOCIATE-RJ, calling AE title not recognised) and the refusal is
logged with the peer's address.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.io.text import printable
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_DOES_NOT_MATCH",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_SUCCESS",
    "AssociationRecord",
    "InstanceFiler",
    "LogLine",
    "RejectedInstance",
    "ScpSettings",
    "StorageServer",
    "StudyImport",
    "check_ae_title",
    "default_incoming_dir",
    "valid_uid",
]

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
DEFAULT_MIN_FREE_MB = 1024.0
"""Free space (MB) the SCP and a retrieve leave on the incoming folder's disk."""
STATUS_DOES_NOT_MATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC210


class LogLine(str):
    """One log line (a ``str``) with the event it reports and that event's typed record.

    ``event`` is ``listening``, ``rejected`` (an instance), ``association`` (ended or
    refused; ``record`` an :class:`AssociationRecord`) or ``import`` (``record`` a
    :class:`StudyImport`).
    """

    event: str
    record: Any

    def __new__(cls, text: str, event: str, record: Any = None) -> LogLine:
        line = super().__new__(cls, printable(text))
        line.event = event
        line.record = record
        return line


LogSink = Callable[[str], None]


def check_ae_title(title: str, field_name: str) -> str:
    """``title`` if it is a valid AE title (1-16 printable ASCII, no backslash), else raise.

    DICOM PS3.5 Table 6.2-1 (VR AE): at most 16 characters of the default
    repertoire, no control characters and no backslash; leading/trailing spaces
    are not significant.
    """
    t = title.strip()
    if not t or len(t) > 16 or any(not (32 <= ord(c) < 127) or c == "\\" for c in t):
        raise InvalidInputError(
            f"--{field_name.replace('_', '-')}: {printable(title)!s} is not a valid AE title "
            "(1 to 16 printable ASCII characters, no backslash)",
            field=field_name,
        )
    return t


def default_incoming_dir(store: CaseRepository) -> Path:
    """``<store folder>/incoming``: where received instances are filed by default."""
    return Path(store.path) / "incoming"


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


_UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")


def valid_uid(value: object) -> bool:
    """Whether ``value`` is a DICOM UID (PS3.5 section 9.1: digits and dots, at most 64)."""
    return isinstance(value, str) and len(value) <= 64 and _UID_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class RejectedInstance:
    """An instance refused with a C-STORE failure status (reason in words)."""

    sop_instance_uid: str
    status: int
    reason: str

    def words(self) -> str:
        return printable(
            f"{self.sop_instance_uid or '(no SOP Instance UID)'}: status 0x{self.status:04X}, "
            f"{self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FiledInstance:
    """An instance written to the incoming folder."""

    study_instance_uid: str
    sop_instance_uid: str
    path: Path


class InstanceFiler:
    """Checks one C-STORE request and files it under ``incoming_dir`` (module docstring).

    Used by the storage SCP and by a C-GET/C-MOVE retrieve
    (:mod:`dosimetry_core.pipeline.pacs`), which gives ``expected_study_uid``: an
    instance of another study is refused.
    """

    def __init__(
        self,
        incoming_dir: Path,
        expected_study_uid: str | None = None,
        min_free_mb: float = DEFAULT_MIN_FREE_MB,
    ) -> None:
        self.incoming_dir = Path(incoming_dir)
        self.expected_study_uid = expected_study_uid
        self.min_free_bytes = max(0, int(float(min_free_mb) * 1024 * 1024))

    def _free_bytes(self) -> int | None:
        """Free bytes on the incoming folder's disk (its nearest existing parent)."""
        here = self.incoming_dir
        while not here.exists() and here.parent != here:
            here = here.parent
        try:
            return int(shutil.disk_usage(here).free)
        except OSError:
            return None  # unknown: the write itself will say

    def study_folder(self, study_instance_uid: str) -> Path:
        return self.incoming_dir / _digest(study_instance_uid, 16)

    def file(self, event: Any) -> tuple[int, FiledInstance | RejectedInstance]:
        """Check and write the instance of a pynetdicom ``EVT_C_STORE`` event.

        Returns the C-STORE status and what became of the instance; never raises.
        """
        req = event.request
        req_sop = str(getattr(req, "AffectedSOPInstanceUID", "") or "")
        req_class = str(getattr(req, "AffectedSOPClassUID", "") or "")
        try:
            ds = event.dataset
            for _elem in ds.iterall():  # decode every element now (pydicom is lazy)
                pass
            sop = ds.get("SOPInstanceUID")
            sop_class = ds.get("SOPClassUID")
            study = ds.get("StudyInstanceUID")
        except Exception as exc:  # hostile or broken bytes: refuse, keep serving
            return self._reject(
                req_sop,
                STATUS_CANNOT_UNDERSTAND,
                f"the data set cannot be decoded ({type(exc).__name__}: {exc})",
            )
        if not valid_uid(sop):
            return self._reject(
                req_sop, STATUS_DOES_NOT_MATCH, "no valid SOP Instance UID (0008,0018)"
            )
        if str(sop) != req_sop:
            return self._reject(
                req_sop,
                STATUS_DOES_NOT_MATCH,
                f"SOP Instance UID (0008,0018) {sop} differs from the C-STORE request's",
            )
        if str(sop_class or "") != req_class:
            return self._reject(
                req_sop,
                STATUS_DOES_NOT_MATCH,
                "SOP Class UID (0008,0016) differs from the C-STORE request's",
            )
        if not valid_uid(study):
            return self._reject(
                req_sop, STATUS_DOES_NOT_MATCH, "no valid Study Instance UID (0020,000D)"
            )
        if self.expected_study_uid is not None and str(study) != self.expected_study_uid:
            return self._reject(
                req_sop,
                STATUS_DOES_NOT_MATCH,
                f"instance of study {study}, not of the study requested",
            )
        folder = self.study_folder(str(study))
        path = folder / f"{_digest(str(sop), 24)}.dcm"
        try:
            encoded = event.encoded_dataset()
            free = self._free_bytes()
            if free is not None and free - len(encoded) < self.min_free_bytes:
                return self._reject(
                    req_sop,
                    STATUS_OUT_OF_RESOURCES,
                    f"the incoming folder's disk has {free / 2**20:.0f} MB free; filing "
                    f"this instance would leave less than the reserve of "
                    f"{self.min_free_bytes / 2**20:.0f} MB (--min-free-mb)",
                )
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(encoded)
            tmp.replace(path)
        except OSError as exc:
            return self._reject(
                req_sop,
                STATUS_OUT_OF_RESOURCES,
                f"cannot write to the incoming folder ({exc.strerror or exc})",
            )
        return STATUS_SUCCESS, FiledInstance(str(study), str(sop), path)

    @staticmethod
    def _reject(sop: str, status: int, reason: str) -> tuple[int, RejectedInstance]:
        return status, RejectedInstance(sop, status, reason)


@dataclass
class AssociationRecord:
    """One association with the SCP: who, what was received, how it ended."""

    number: int
    calling_ae: str
    address: str
    port: int
    started_at: datetime
    outcome: str = "open"
    """``open``, ``released``, ``aborted``, ``closed`` (the connection dropped without
    release or abort) or ``refused``."""
    received: int = 0
    stored: int = 0
    rejected: list[RejectedInstance] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)
    """Study Instance UIDs of the stored instances."""

    def words(self) -> str:
        who = (
            f"association #{self.number} from AE {self.calling_ae!r} at {self.address}:{self.port}"
        )
        if self.outcome == "refused":
            return printable(f"{who} refused: calling AE title not in the allowed list")
        text = (
            f"{who} {self.outcome}: {self.received} instance(s) received, {self.stored} stored, "
            f"{len(self.rejected)} rejected; {len(self.studies)} study(ies) queued for import"
        )
        text += "".join(f"; rejected {r.words()}" for r in self.rejected)
        return printable(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "calling_ae": self.calling_ae,
            "address": self.address,
            "port": self.port,
            "started_at": self.started_at.isoformat(),
            "outcome": self.outcome,
            "received": self.received,
            "stored": self.stored,
            "rejected": [r.to_dict() for r in self.rejected],
            "studies": sorted(self.studies),
        }


@dataclass
class StudyImport:
    """The import of one received study (the ``mrtdose import`` report of its folder)."""

    study_instance_uid: str
    folder: Path
    associations: list[int]
    report: Any | None = None
    """:class:`dosimetry_core.pipeline.importing.ImportReport`, or None if it failed."""
    error: str = ""

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.report.cases] if self.report is not None else []

    def words(self) -> str:
        assocs = ", ".join(f"#{n}" for n in self.associations)
        head = f"study {self.study_instance_uid} (association {assocs}, folder {self.folder})"
        if self.report is None:
            return printable(f"{head}: import failed: {self.error}")
        rep = self.report
        if rep.cases:
            where = "; ".join(
                f"case {c.case_id} (patient {c.patient_id}, {c.new_time_points} new time "
                f"point(s), {c.time_points} in all)"
                for c in rep.cases
            )
            text = f"{head} imported into {where}"
        elif rep.n_already_present:
            text = f"{head}: the store already held its series"
        else:
            text = f"{head}: nothing imported"
        if rep.skipped:
            text += f"; {len(rep.skipped)} skipped: " + "; ".join(
                f"{s.path}: {s.reason}" for s in rep.skipped
            )
        return printable(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "folder": str(self.folder),
            "associations": list(self.associations),
            "cases": self.case_ids,
            "import": self.report.to_dict() if self.report is not None else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class ScpSettings:
    """How the storage SCP listens and imports."""

    ae_title: str
    port: int
    """TCP port; 0 picks a free one (see :attr:`StorageServer.port`)."""
    host: str = ""
    """Address to bind ("" = every interface; ``127.0.0.1`` for loopback only)."""
    allowed_calling_aes: tuple[str, ...] = ()
    """Calling AE titles accepted; empty = any."""
    incoming_dir: Path | None = None
    """Where instances are filed; default ``<store folder>/incoming``."""
    idle_s: float = 5.0
    """Seconds without a new instance of a study (after its associations ended)
    before it is imported."""
    auto_import: bool = True
    min_free_mb: float = DEFAULT_MIN_FREE_MB
    """Instances that would leave less free space than this on the incoming disk
    are refused (0xA700)."""
    tls_cert: str = ""
    """Our certificate (PEM): DICOM over TLS when set (:mod:`dicom_tls`)."""
    tls_key: str = ""
    """Its private key (PEM, unencrypted)."""
    tls_ca: str = ""
    """With TLS: callers must present a certificate issued by this CA (mutual TLS)."""
    calibration_cps_per_mbq: float | None = None
    allow_activity_above_administered: bool = False

    def checked(self) -> ScpSettings:
        """These settings, validated (clear message naming the option)."""
        check_ae_title(self.ae_title, "ae_title")
        for t in self.allowed_calling_aes:
            check_ae_title(t, "allow_ae")
        if not (0 <= int(self.port) <= 65535):
            raise InvalidInputError(
                f"--port: {self.port} is not a TCP port (0-65535)", field="port"
            )
        if not (self.idle_s >= 0 and self.idle_s < 86400):
            raise InvalidInputError(
                f"--idle-s: {self.idle_s} is not a number of seconds (0 to 86400)", field="idle_s"
            )
        if not (self.min_free_mb >= 0 and self.min_free_mb < 1e9):
            raise InvalidInputError(
                f"--min-free-mb: {self.min_free_mb} is not a size in MB (0 to 1e9)",
                field="min_free_mb",
            )
        if (self.tls_key or self.tls_ca) and not self.tls_cert:
            raise InvalidInputError(
                "--tls-key/--tls-ca need --tls-cert (the SCP's certificate)", field="tls_cert"
            )
        self.tls_context()  # every file problem said before listening
        return self

    def tls_context(self) -> Any:
        """The server :class:`ssl.SSLContext`, or None for plain DICOM."""
        if not self.tls_cert:
            return None
        from dosimetry_core.pipeline.dicom_tls import server_context

        return server_context(self.tls_cert, self.tls_key, self.tls_ca)


#: Storage SOP classes the SCP accepts (every storage class pynetdicom knows).
def _storage_contexts() -> list[Any]:
    from pynetdicom import AllStoragePresentationContexts

    return list(AllStoragePresentationContexts)


@dataclass
class _PendingStudy:
    uid: str
    folder: Path
    last_instance_at: float
    open_associations: set[int] = field(default_factory=set)
    delivered_by: set[int] = field(default_factory=set)


class StorageServer:
    """The storage SCP: start, serve in background threads, stop (module docstring).

    Parameters
    ----------
    store
        The case store the studies are imported into (its permission check runs
        on every import, as in ``mrtdose import``).
    settings
        :class:`ScpSettings`.
    log
        Called with one line per association, per refusal and per study import.
    """

    def __init__(
        self, store: CaseRepository, settings: ScpSettings, log: LogSink | None = None
    ) -> None:
        self.store = store
        self.settings = settings.checked()
        self.incoming_dir = Path(
            settings.incoming_dir
            if settings.incoming_dir is not None
            else default_incoming_dir(store)
        )
        self.filer = InstanceFiler(self.incoming_dir, min_free_mb=self.settings.min_free_mb)
        self._log = log or (lambda line: None)
        self._lock = threading.Lock()
        self._associations: dict[int, AssociationRecord] = {}
        self._by_assoc: dict[int, int] = {}  # id(pynetdicom Association) -> number
        self._pending: dict[str, _PendingStudy] = {}
        self._next_number = 0
        self._importing = False
        self.records: list[AssociationRecord] = []
        """Ended (or refused) associations, in order."""
        self.imports: list[StudyImport] = []
        self._server: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Bind the port and serve in background threads.

        Raises
        ------
        InvalidInputError
            The port cannot be bound (in use, or privileged), field ``port``.
        """
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        try:
            self.incoming_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot create the incoming folder {self.incoming_dir}: {exc.strerror}",
                field="incoming",
            ) from exc
        ae = AE(ae_title=self.settings.ae_title)
        ae.supported_contexts = _storage_contexts()
        ae.add_supported_context(Verification)
        ae.maximum_associations = 8
        if self.settings.allowed_calling_aes:
            ae.require_calling_aet = list(self.settings.allowed_calling_aes)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, self._on_ended, ["released"]),
            (evt.EVT_ABORTED, self._on_ended, ["aborted"]),
            (evt.EVT_CONN_CLOSE, self._on_ended, ["closed"]),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        try:
            self._server = ae.start_server(
                (self.settings.host, int(self.settings.port)),
                block=False,
                evt_handlers=handlers,
                ssl_context=self.settings.tls_context(),
            )
        except OSError as exc:
            raise InvalidInputError(
                f"--port {self.settings.port}: cannot listen ({exc.strerror or exc})",
                field="port",
            ) from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._import_loop, name="scp-import", daemon=True)
        self._thread.start()
        self._log(
            LogLine(
                f"listening as AE {self.settings.ae_title!r} on port {self.port}"
                + (
                    f", calling AE titles allowed: {', '.join(self.settings.allowed_calling_aes)}"
                    if self.settings.allowed_calling_aes
                    else ", any calling AE title"
                )
                + f"; filing into {self.incoming_dir}",
                "listening",
            )
        )

    @property
    def port(self) -> int:
        """The bound TCP port (the one chosen when the settings said 0)."""
        if self._server is None:
            return int(self.settings.port)
        return int(self._server.server_address[1])

    def stop(self, *, import_pending: bool = True) -> None:
        """Stop listening, end open associations, import what is pending, stop the importer."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if import_pending:
            with self._lock:
                for p in self._pending.values():
                    p.last_instance_at = 0.0
                    p.open_associations.clear()
            self.wait_until_idle(timeout_s=600.0)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=600.0)
            self._thread = None

    def __enter__(self) -> StorageServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until no association is open and every received study is imported."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._associations or self._pending or self._importing)
            if not busy:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------- handlers
    def _record_for(self, assoc: Any) -> AssociationRecord:
        key = id(assoc)
        with self._lock:
            number = self._by_assoc.get(key)
            if number is None:
                self._next_number += 1
                number = self._next_number
                self._by_assoc[key] = number
                req = assoc.requestor
                self._associations[number] = AssociationRecord(
                    number=number,
                    calling_ae=str(req.ae_title).strip(),
                    address=str(req.address),
                    port=int(req.port or 0),
                    started_at=datetime.now(),
                )
            return self._associations[number]

    def _on_accepted(self, event: Any) -> None:
        self._record_for(event.assoc)

    def _on_store(self, event: Any) -> int:
        rec = self._record_for(event.assoc)
        status, what = self.filer.file(event)
        with self._lock:
            rec.received += 1
            if isinstance(what, FiledInstance):
                rec.stored += 1
                rec.studies.add(what.study_instance_uid)
                p = self._pending.get(what.study_instance_uid)
                if p is None:
                    p = self._pending[what.study_instance_uid] = _PendingStudy(
                        what.study_instance_uid, what.path.parent, time.monotonic()
                    )
                p.last_instance_at = time.monotonic()
                p.open_associations.add(rec.number)
                p.delivered_by.add(rec.number)
            else:
                rec.rejected.append(what)
        if isinstance(what, RejectedInstance):
            self._log(
                LogLine(f"association #{rec.number}: rejected {what.words()}", "rejected", what)
            )
        return status

    def _on_ended(self, event: Any, how: str) -> None:
        key = id(event.assoc)
        with self._lock:
            number = self._by_assoc.pop(key, None)
            rec = self._associations.pop(number, None) if number is not None else None
            if rec is None:
                return
            rec.outcome = how
            self.records.append(rec)
            for p in self._pending.values():
                p.open_associations.discard(rec.number)
        self._log(LogLine(rec.words(), "association", rec))

    def _on_rejected(self, event: Any) -> None:
        req = event.assoc.requestor
        rec = AssociationRecord(
            number=0,
            calling_ae=str(req.ae_title).strip(),
            address=str(req.address),
            port=int(req.port or 0),
            started_at=datetime.now(),
            outcome="refused",
        )
        with self._lock:
            self._next_number += 1
            rec.number = self._next_number
            self.records.append(rec)
        self._log(LogLine(rec.words(), "association", rec))

    # ------------------------------------------------------------- importing
    def _due(self) -> _PendingStudy | None:
        now = time.monotonic()
        with self._lock:
            for uid, p in self._pending.items():
                if not p.open_associations and now - p.last_instance_at >= self.settings.idle_s:
                    self._importing = True
                    return self._pending.pop(uid)
        return None

    def _import_loop(self) -> None:
        while not self._stop.is_set():
            p = self._due()
            if p is None:
                self._stop.wait(0.05)
                continue
            try:
                if self.settings.auto_import:
                    done = self.import_study(p.uid, p.folder, sorted(p.delivered_by))
                    self._log(LogLine(done.words(), "import", done))
            finally:
                with self._lock:
                    self._importing = False

    def import_study(
        self, study_uid: str, folder: Path, associations: Iterable[int]
    ) -> StudyImport:
        """Import one study's folder with the ``mrtdose import`` core path; never raises."""
        from dosimetry_core.pipeline.importing import import_directory

        done = StudyImport(study_uid, folder, list(associations))
        try:
            done.report = import_directory(
                self.store,
                folder,
                calibration_cps_per_mbq=self.settings.calibration_cps_per_mbq,
                allow_activity_above_administered=self.settings.allow_activity_above_administered,
            )
        except DosimetryError as exc:
            done.error = str(exc)
        except Exception as exc:  # a bug in one import must not stop the SCP
            done.error = f"internal error ({type(exc).__name__}: {exc})"
        with self._lock:
            self.imports.append(done)
        return done
