"""Query/retrieve from a PACS and send results back (C-FIND, C-GET/C-MOVE, C-STORE).

* :func:`find_studies` -- C-FIND at study level (Study Root model) for one Patient ID.
* :func:`retrieve_study` -- C-GET the study (the peer sends its instances on our
  association), or C-MOVE it to our own AE title (a storage SCP of ours listens on
  ``move_port`` during the retrieve; the PACS must know that AE title's address);
  the instances are filed by :class:`dosimetry_core.pipeline.dicom_scp.InstanceFiler`
  (an instance of another study is refused) and imported with the ``mrtdose import``
  core path (:func:`dosimetry_core.pipeline.importing.import_directory`).
* :func:`send_case` -- the case's results made by the export core
  (:func:`dosimetry_core.pipeline.export.export_case`) into a temporary folder:
  RT Dose, SEG (and/or RTSTRUCT), the newest *signed* report as Encapsulated PDF;
  then C-STORE of each file.  Source images are never sent back.

The peer is a :class:`PacsPeer`; it can be saved as JSON (:func:`load_peer`,
:func:`save_peer`; the CLI's default file is ``<store folder>/pacs.json``).

Errors a user meets -- an unreachable peer, a refused association, a peer that does
not accept a SOP class, a failed C-STORE (naming the SOP Instance UID and the status)
-- are :class:`PacsError` with a message naming the peer or the instance.
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.io.text import printable
from dosimetry_core.pipeline.dicom_scp import (
    FiledInstance,
    InstanceFiler,
    RejectedInstance,
    ScpSettings,
    StorageServer,
    check_ae_title,
    default_incoming_dir,
    valid_uid,
)
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel
from dosimetry_core.progress import report as _progress
from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "PacsError",
    "PacsPeer",
    "RetrieveResult",
    "SendResult",
    "SendFailedError",
    "SentInstance",
    "StudyMatch",
    "find_studies",
    "load_peer",
    "retrieve_study",
    "save_peer",
    "send_case",
]


class PacsError(DosimetryError):
    """The PACS cannot be reached, refused us, or answered with a failure status."""


class SendFailedError(PacsError):
    """Some C-STOREs of :func:`send_case` failed; ``result`` says which were stored."""

    def __init__(self, message: str, result: SendResult) -> None:
        self.result = result
        super().__init__(message)


@dataclass(frozen=True)
class PacsPeer:
    """A DICOM peer (the PACS) and who we are to it."""

    host: str
    port: int
    called_ae: str
    """The PACS's AE title."""
    ae_title: str = "MRTDOSE"
    """Our (calling) AE title."""
    timeout_s: float = 30.0
    """Connection, ACSE and DIMSE timeout."""
    tls_ca: str = ""
    """PEM file of the CA that issued the PACS's certificate: DICOM over TLS when set
    (:mod:`dosimetry_core.pipeline.dicom_tls`); empty = plain DICOM."""
    tls_cert: str = ""
    """Our certificate (PEM), for a PACS that requires mutual TLS."""
    tls_key: str = ""
    """Its private key (PEM, unencrypted)."""

    def checked(self) -> PacsPeer:
        """This peer, validated (messages name the option)."""
        if not self.host or any(c.isspace() or ord(c) < 32 for c in self.host):
            raise InvalidInputError(f"--host: {printable(self.host)!r} is not a host", field="host")
        if not (1 <= int(self.port) <= 65535):
            raise InvalidInputError(
                f"--port: {self.port} is not a TCP port (1-65535)", field="port"
            )
        check_ae_title(self.called_ae, "called_ae")
        check_ae_title(self.ae_title, "ae_title")
        if not (0 < self.timeout_s <= 3600):
            raise InvalidInputError(
                f"--timeout-s: {self.timeout_s} is not a number of seconds (0 to 3600)",
                field="timeout_s",
            )
        if (self.tls_cert or self.tls_key) and not self.tls_ca:
            raise InvalidInputError(
                "--tls-cert/--tls-key need --tls-ca (the CA of the PACS's certificate)",
                field="tls_ca",
            )
        if self.tls_ca:
            self.tls_context()  # every file problem said now, before any connection
        return self

    def tls_context(self) -> Any:
        """The client :class:`ssl.SSLContext`, or None for plain DICOM."""
        if not self.tls_ca:
            return None
        from dosimetry_core.pipeline.dicom_tls import client_context

        return client_context(self.tls_ca, self.tls_cert, self.tls_key)

    def words(self) -> str:
        tls = " (TLS)" if self.tls_ca else ""
        return printable(f"{self.called_ae}@{self.host}:{self.port}{tls}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_peer(path: str | Path) -> PacsPeer:
    """Read a saved peer (JSON with ``host``, ``port``, ``called_ae``, optional ``ae_title``,
    ``timeout_s`` and the TLS files ``tls_ca``, ``tls_cert``, ``tls_key``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"{p}: cannot read the PACS peer file ({exc.strerror})") from exc
    except ValueError as exc:
        raise InvalidInputError(f"{p}: the PACS peer file is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"{p}: the PACS peer file must hold a JSON object")
    try:
        peer = PacsPeer(
            host=str(data["host"]),
            port=int(data["port"]),
            called_ae=str(data["called_ae"]),
            ae_title=str(data.get("ae_title", "MRTDOSE")),
            timeout_s=float(data.get("timeout_s", 30.0)),
            tls_ca=str(data.get("tls_ca", "") or ""),
            tls_cert=str(data.get("tls_cert", "") or ""),
            tls_key=str(data.get("tls_key", "") or ""),
        )
    except KeyError as exc:
        raise InvalidInputError(f"{p}: the PACS peer file has no {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{p}: a value of the PACS peer file is wrong ({exc})") from exc
    return peer.checked()


def save_peer(peer: PacsPeer, path: str | Path) -> Path:
    """Write ``peer`` as JSON to ``path`` (folder created)."""
    p = Path(path)
    peer.checked()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(peer.to_dict(), indent=2) + "\n", encoding="utf-8")
    return p


# ---------------------------------------------------------------- association
def _status_words(status: int, service: str = "") -> str:
    try:
        from pynetdicom.status import code_to_category

        category = str(code_to_category(status))
    except Exception:  # unknown code: the number says it
        category = "unknown"
    return f"0x{status:04X} ({category})"


def _answers_on_port(peer: PacsPeer) -> bool:
    """True when something accepts a TCP connection at the peer's host and port."""
    try:
        with socket.create_connection((peer.host, int(peer.port)), timeout=5.0):
            return True
    except (OSError, ValueError):
        return False


@contextmanager
def _associate(
    peer: PacsPeer,
    contexts: list[Any],
    *,
    ext_neg: list[Any] | None = None,
    handlers: list[Any] | None = None,
) -> Iterator[Any]:
    """An established association with ``peer`` (released at the end); clear errors."""
    from pynetdicom import AE

    peer.checked()
    ae = AE(ae_title=peer.ae_title)
    ae.requested_contexts = contexts
    ae.acse_timeout = peer.timeout_s
    ae.dimse_timeout = peer.timeout_s
    ae.network_timeout = peer.timeout_s
    ae.connection_timeout = min(peer.timeout_s, 10.0)
    tls = peer.tls_context()
    try:
        assoc = ae.associate(
            peer.host,
            int(peer.port),
            ae_title=peer.called_ae,
            ext_neg=ext_neg or None,
            evt_handlers=handlers or None,
            tls_args=(tls, peer.host) if tls is not None else None,
        )
    except (OSError, ValueError) as exc:
        raise PacsError(f"PACS {peer.words()}: cannot connect ({exc})") from exc
    if assoc.is_rejected:
        raise PacsError(
            f"PACS {peer.words()} refused the association from AE {peer.ae_title!r} "
            "(is our AE title configured on the PACS?)"
        )
    if not assoc.is_established and tls is not None and _answers_on_port(peer):
        raise PacsError(
            f"PACS {peer.words()}: no secure association (the TLS handshake failed or the "
            "PACS refused us: is its certificate issued by the CA in --tls-ca and made out "
            "to this host name, does it speak TLS on this port, and does it need our "
            "certificate, --tls-cert/--tls-key?)"
        )
    if not assoc.is_established:
        # pynetdicom reports a refused TCP connection and a peer that accepted the
        # connection but closed it instead of answering (an A-ASSOCIATE-RJ racing the
        # close) alike, as aborted: a plain TCP probe tells which it was
        if _answers_on_port(peer):
            raise PacsError(
                f"PACS {peer.words()} refused the association from AE {peer.ae_title!r} "
                f"(it closed the connection without accepting; is our AE title configured "
                f"on the PACS, and is {peer.called_ae!r} its AE title?)"
            )
        raise PacsError(
            f"PACS {peer.words()} unreachable or not answering (no association; "
            "check host, port and that the PACS is running)"
        )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _check_patient_id(patient_id: str) -> str:
    pid = patient_id.strip()
    if not pid or len(pid) > 64:
        raise InvalidInputError(
            "--patient-id: give a Patient ID (1 to 64 characters)", field="patient_id"
        )
    if any(c in pid for c in "*?\\") or any(ord(c) < 32 for c in pid):
        raise InvalidInputError(
            f"--patient-id {printable(pid)!r}: wildcards (* ?), backslashes and control "
            "characters are refused (a query names one patient)",
            field="patient_id",
        )
    return pid


def _check_study_uid(uid: str) -> str:
    u = uid.strip()
    if not valid_uid(u):
        raise InvalidInputError(
            f"--study-uid {printable(uid)!r} is not a valid Study Instance UID", field="study_uid"
        )
    return u


# ---------------------------------------------------------------------- find
@dataclass(frozen=True)
class StudyMatch:
    """One study of a C-FIND answer."""

    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    modalities: list[str] = field(default_factory=list)
    n_series: int | None = None
    n_instances: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _int_or_none(ds: Any, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def find_studies(peer: PacsPeer, patient_id: str) -> list[StudyMatch]:
    """C-FIND (Study Root, level STUDY) for the studies of ``patient_id``, oldest first.

    Raises
    ------
    InvalidInputError
        Empty Patient ID, or one with wildcards (a query names one patient).
    PacsError
        Peer unreachable, association refused, C-FIND failure status.
    """
    from pydicom.dataset import Dataset
    from pynetdicom.presentation import build_context
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
    )

    pid = _check_patient_id(patient_id)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = pid
    for kw in (
        "PatientName",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ):
        setattr(query, kw, "")
    matches: list[StudyMatch] = []
    with _associate(peer, [build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
        for status, ident in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status:
                raise PacsError(f"PACS {peer.words()}: no answer to the C-FIND (timeout)")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if ident is None or not ident.get("StudyInstanceUID"):
                    continue
                if str(ident.get("PatientID", pid)) not in ("", pid):
                    continue  # a peer answering for another patient: not shown
                matches.append(
                    StudyMatch(
                        study_instance_uid=_text(ident, "StudyInstanceUID"),
                        patient_id=_text(ident, "PatientID") or pid,
                        patient_name=_text(ident, "PatientName"),
                        study_date=_text(ident, "StudyDate"),
                        study_time=_text(ident, "StudyTime"),
                        study_description=_text(ident, "StudyDescription"),
                        accession_number=_text(ident, "AccessionNumber"),
                        modalities=[m for m in _text(ident, "ModalitiesInStudy").split("\\") if m],
                        n_series=_int_or_none(ident, "NumberOfStudyRelatedSeries"),
                        n_instances=_int_or_none(ident, "NumberOfStudyRelatedInstances"),
                    )
                )
            elif code != 0x0000:
                raise PacsError(
                    f"PACS {peer.words()}: C-FIND failed with status {_status_words(code)}"
                )
    matches.sort(key=lambda m: (m.study_date, m.study_time, m.study_instance_uid))
    return matches


# ------------------------------------------------------------------ retrieve
@dataclass
class RetrieveResult:
    """What a C-GET/C-MOVE brought and what its import did."""

    study_instance_uid: str
    method: str
    folder: Path
    received: int = 0
    stored: int = 0
    rejected: list[RejectedInstance] = field(default_factory=list)
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    status: str = ""
    import_report: Any | None = None
    """:class:`dosimetry_core.pipeline.importing.ImportReport` of the retrieved study."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "method": self.method,
            "folder": str(self.folder),
            "received": self.received,
            "stored": self.stored,
            "rejected": [r.to_dict() for r in self.rejected],
            "completed": self.completed,
            "failed": self.failed,
            "warning": self.warning,
            "status": self.status,
            "import": self.import_report.to_dict() if self.import_report is not None else None,
        }


def _retrieve_storage_classes() -> list[str]:
    from pynetdicom import sop_class as sc

    names = [
        "NuclearMedicineImageStorage",
        "PositronEmissionTomographyImageStorage",
        "EnhancedPETImageStorage",
        "CTImageStorage",
        "EnhancedCTImageStorage",
        "RTStructureSetStorage",
        "SegmentationStorage",
        "RTDoseStorage",
        "SecondaryCaptureImageStorage",
        "EncapsulatedPDFStorage",
        "MRImageStorage",
    ]
    return [str(getattr(sc, n)) for n in names if hasattr(sc, n)]


def _follow(
    responses: Iterator[tuple[Any, Any]],
    out: RetrieveResult,
    peer: PacsPeer,
    verb: str,
    cancel: CancelCheck | None,
    progress: ProgressCallback | None,
) -> None:
    for status, _ident in responses:
        if not status:
            raise PacsError(f"PACS {peer.words()}: no answer to the {verb} (timeout)")
        code = int(status.Status)
        out.completed = _int_or_none(status, "NumberOfCompletedSuboperations")
        out.failed = _int_or_none(status, "NumberOfFailedSuboperations")
        out.warning = _int_or_none(status, "NumberOfWarningSuboperations")
        remaining = _int_or_none(status, "NumberOfRemainingSuboperations")
        if code == 0xFF00:
            total = (remaining or 0) + (out.completed or 0) + (out.failed or 0) + (out.warning or 0)
            if total:
                _progress(
                    progress,
                    0.05 + 0.6 * (total - (remaining or 0)) / total,
                    f"{verb}: {total - (remaining or 0)} of {total} instance(s)",
                )
            check_cancel(cancel)
            continue
        out.status = _status_words(code)
        if code not in (0x0000, 0xB000):
            raise PacsError(
                f"PACS {peer.words()}: {verb} of study {out.study_instance_uid} failed with "
                f"status {_status_words(code)} ({out.completed or 0} instance(s) completed, "
                f"{out.failed or 0} failed)"
            )


def retrieve_study(
    store: CaseRepository,
    peer: PacsPeer,
    study_instance_uid: str,
    *,
    method: str = "get",
    move_port: int = 0,
    incoming_dir: str | Path | None = None,
    calibration_cps_per_mbq: float | None = None,
    allow_activity_above_administered: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> RetrieveResult:
    """Retrieve one study by C-GET or C-MOVE, then import it (module docstring).

    Parameters
    ----------
    method
        ``"get"`` (C-GET on one association) or ``"move"`` (C-MOVE to our AE title
        ``peer.ae_title``; a storage SCP of ours listens on ``move_port`` meanwhile,
        the port the PACS has for our AE title).
    incoming_dir
        Where the instances are filed (default ``<store folder>/incoming``, the
        folder of ``mrtdose listen``), under a per-study folder.

    Raises
    ------
    PermissionDeniedError
        The user may not import (checked before anything is asked of the PACS).
    PacsError
        Peer unreachable, association refused, retrieve failure status.
    """
    from pydicom.dataset import Dataset

    from dosimetry_core.pipeline.importing import _require_import_permission, import_directory

    uid = _check_study_uid(study_instance_uid)
    if method == "move" and peer.tls_ca:
        raise InvalidInputError(
            "--method move over TLS: the PACS would connect back to a receiving SCP "
            "that listens without TLS here; use --method get (one secure association)",
            field="method",
        )
    if method not in ("get", "move"):
        raise InvalidInputError(f"--method {method!r}: use get or move", field="method")
    peer.checked()
    _require_import_permission(store)
    folder_root = Path(incoming_dir) if incoming_dir is not None else default_incoming_dir(store)
    filer = InstanceFiler(folder_root, expected_study_uid=uid)
    out = RetrieveResult(uid, method, filer.study_folder(uid))
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = uid
    _progress(progress, 0.02, f"asking {peer.words()} for the study")
    if method == "get":
        _c_get(peer, query, filer, out, progress, cancel)
    else:
        _c_move(store, peer, query, folder_root, move_port, out, progress, cancel)
    check_cancel(cancel)
    if out.stored == 0:
        raise PacsError(
            f"PACS {peer.words()}: no instance of study {uid} was received "
            f"({out.status or 'no status'}; {len(out.rejected)} refused)"
        )
    _progress(progress, 0.7, f"importing {out.stored} instance(s)")
    out.import_report = import_directory(
        store,
        out.folder,
        calibration_cps_per_mbq=calibration_cps_per_mbq,
        allow_activity_above_administered=allow_activity_above_administered,
        cancel=cancel,
    )
    _progress(progress, 1.0, "retrieved and imported")
    return out


def _c_get(
    peer: PacsPeer,
    query: Any,
    filer: InstanceFiler,
    out: RetrieveResult,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> None:
    from pynetdicom import evt
    from pynetdicom.presentation import build_context, build_role
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelGet,
    )

    classes = _retrieve_storage_classes()
    contexts = [build_context(StudyRootQueryRetrieveInformationModelGet)]
    contexts += [build_context(c) for c in classes]
    roles = [build_role(c, scp_role=True) for c in classes]

    def on_store(event: Any) -> int:
        status, what = filer.file(event)
        out.received += 1
        if isinstance(what, FiledInstance):
            out.stored += 1
        else:
            out.rejected.append(what)
        return status

    with _associate(peer, contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        _follow(
            assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet),
            out,
            peer,
            "C-GET",
            cancel,
            progress,
        )


def _c_move(
    store: CaseRepository,
    peer: PacsPeer,
    query: Any,
    folder_root: Path,
    move_port: int,
    out: RetrieveResult,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> None:
    from pynetdicom.presentation import build_context
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelMove,
    )

    if not (1 <= int(move_port) <= 65535):
        raise InvalidInputError(
            "--move-port: C-MOVE needs the port the PACS knows for our AE title",
            field="move_port",
        )
    scp = StorageServer(
        store,
        ScpSettings(
            ae_title=peer.ae_title,
            port=int(move_port),
            incoming_dir=folder_root,
            auto_import=False,
            idle_s=0.0,
        ),
    )
    scp.filer = InstanceFiler(folder_root, expected_study_uid=out.study_instance_uid)
    scp.start()
    try:
        with _associate(peer, [build_context(StudyRootQueryRetrieveInformationModelMove)]) as assoc:
            _follow(
                assoc.send_c_move(query, peer.ae_title, StudyRootQueryRetrieveInformationModelMove),
                out,
                peer,
                "C-MOVE",
                cancel,
                progress,
            )
        scp.wait_until_idle(timeout_s=peer.timeout_s)
    finally:
        scp.stop(import_pending=False)
    for rec in scp.records:
        out.received += rec.received
        out.stored += rec.stored
        out.rejected.extend(rec.rejected)


# ---------------------------------------------------------------------- send
@dataclass(frozen=True)
class SentInstance:
    """One C-STORE of :func:`send_case`."""

    kind: str
    """RTDOSE, SEG, RTSTRUCT or DOC."""
    sop_class_uid: str
    sop_instance_uid: str
    status: int | None
    """C-STORE status (None: not sent, see ``problem``)."""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status in (0x0000, 0xB000, 0xB007, 0xB006)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "status": self.status,
            "ok": self.ok,
            "problem": self.problem,
        }


@dataclass
class SendResult:
    """What :func:`send_case` sent."""

    case_id: str
    peer: str
    instances: list[SentInstance] = field(default_factory=list)
    report_id: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[SentInstance]:
        return [i for i in self.instances if not i.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "peer": self.peer,
            "sent": sum(1 for i in self.instances if i.ok),
            "failed": len(self.failed),
            "report_id": self.report_id,
            "instances": [i.to_dict() for i in self.instances],
            "warnings": list(self.warnings),
        }


def newest_signed_report(store: CaseRepository, case_id: str) -> tuple[str, bytes] | None:
    """The newest report of the case whose status is ``signed`` and its PDF, or None."""
    from dosimetry_core.reporting.records import SIGNED, list_reports, report_pdf

    signed = [r for r in list_reports(store, case_id) if r.status == SIGNED and r.pdf_blob_key]
    if not signed:
        return None
    rec = max(signed, key=lambda r: (r.version, r.created_at))
    return rec.report_id, report_pdf(store, rec.report_id)


def _received_ct(store: CaseRepository, case_id: str, into: Path) -> Path | None:
    """The original CT files of the case's contoured time points, as the PACS sent them.

    A study that came in through ``mrtdose listen`` or ``mrtdose pacs get`` is kept
    under the store's incoming folder, one folder per study
    (:class:`~dosimetry_core.pipeline.dicom_scp.InstanceFiler`).  When the CT series of
    every time point with VOIs is there, its files are linked (or copied) into
    ``into`` and ``into`` is returned: SEG/RTSTRUCT then reference the instances the
    PACS holds.  None when any is missing.
    """
    import os
    import shutil

    from dosimetry_core.pipeline.contour_io import ct_series_files

    case = store.load_case(case_id)
    contoured = {v.time_point_id for v in case.vois}
    filer = InstanceFiler(default_incoming_dir(store))
    found = False
    for tp in case.sorted_time_points():
        if tp.time_point_id not in contoured or tp.anatomical is None:
            continue
        folder = filer.study_folder(tp.anatomical.study_instance_uid)
        if not tp.anatomical.study_instance_uid or not folder.is_dir():
            return None
        try:
            matching = ct_series_files(folder, tp)
        except InvalidInputError:  # the study came, its CT series did not
            return None
        target = into / tp.time_point_id
        target.mkdir(parents=True, exist_ok=True)
        for path in matching:
            try:
                os.symlink(path.resolve(), target / path.name)
            except OSError:  # no symbolic links here (Windows without the privilege)
                shutil.copy2(path, target / path.name)
        found = True
    return into if found else None


def send_case(
    store: CaseRepository,
    peer: PacsPeer,
    case_id: str,
    *,
    rtdose: bool = True,
    seg: bool = True,
    rtstruct: bool = False,
    report: bool = True,
    report_pdf: bytes | None = None,
    ct_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> SendResult:
    """Send a case's results to ``peer`` by C-STORE (module docstring).

    Parameters
    ----------
    report
        Send the newest signed report as Encapsulated PDF (a warning when there is none).
    report_pdf
        A PDF to send instead of the stored signed report.
    ct_dir
        Folder with the original CT files the SEG/RTSTRUCT reference (the CT the
        PACS holds).  Without it, the CT as received from the PACS (``mrtdose
        listen`` / ``pacs get`` keep it in the store's incoming folder) when every
        contoured time point's CT series is there; else the CT is re-written from the
        store for the references (new SOP Instance UIDs, not in the PACS): a
        warning says so.

    Raises
    ------
    PermissionDeniedError
        The user may not export (checked before anything is written or sent).
    PacsError
        Peer unreachable, association refused (nothing sent); after the sends, when
        any C-STORE failed (each failure named with its SOP Instance UID and status;
        the successful ones stay sent).
    """
    import pydicom
    from pynetdicom.presentation import build_context

    from dosimetry_core.pipeline.export import export_case

    peer.checked()
    if store.actor is not None:
        from dosimetry_core.store.permissions import require

        require(store.actor, "export")
    result = SendResult(case_id=case_id, peer=peer.words())
    pdf = report_pdf
    if pdf is None and report:
        found = newest_signed_report(store, case_id)
        if found is None:
            result.warnings.append(f"case {case_id} has no signed report: no report sent")
        else:
            result.report_id, pdf = found
    structures = seg or rtstruct
    if not (rtdose or structures) and pdf is None:
        raise InvalidInputError(
            f"case {case_id}: nothing to send ("
            + ("; ".join(result.warnings) or "no RT Dose, SEG, RTSTRUCT or report selected")
            + ")"
        )
    wanted = {"RTDOSE", "SEG", "RTSTRUCT", "DOC"}
    with tempfile.TemporaryDirectory(prefix="mrtdose-send-") as tmp:
        if structures and ct_dir is None:
            ct_dir = _received_ct(store, case_id, Path(tmp) / "received-ct")
        images = structures and ct_dir is None
        if images:
            result.warnings.append(
                "SEG/RTSTRUCT reference the CT as re-written from the store (new SOP "
                "Instance UIDs the PACS does not hold): give the original CT folder "
                "(--ct-dir) for references to the PACS's CT"
            )
        _progress(progress, 0.0, "writing the DICOM objects")
        exported = export_case(
            store,
            case_id,
            Path(tmp),
            rtdose=rtdose,
            rtstruct=rtstruct,
            seg=seg,
            report_pdf=pdf,
            images=images,
            ct_dir=ct_dir,
        )
        result.warnings.extend(exported.warnings)
        files = [(k, p) for k, paths in exported.files.items() if k in wanted for p in paths]
        if not files:
            raise InvalidInputError(f"case {case_id}: nothing to send (no dose, VOI or report)")
        check_cancel(cancel)
        headers = []
        for kind, path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            headers.append((kind, path, str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
        classes = sorted({h[2] for h in headers})
        with _associate(peer, [build_context(c) for c in classes]) as assoc:
            accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
            for i, (kind, path, sop_class, sop_uid) in enumerate(headers):
                check_cancel(cancel)
                if not assoc.is_established:
                    result.instances.append(
                        SentInstance(kind, sop_class, sop_uid, None, "association lost")
                    )
                    continue
                _progress(
                    progress, 0.3 + 0.7 * i / len(headers), f"sending {kind} {i + 1}/{len(headers)}"
                )
                if sop_class not in accepted:
                    result.instances.append(
                        SentInstance(
                            kind,
                            sop_class,
                            sop_uid,
                            None,
                            f"the PACS does not accept SOP class {sop_class}",
                        )
                    )
                    continue
                st = assoc.send_c_store(path)
                if not st or "Status" not in st:
                    result.instances.append(
                        SentInstance(kind, sop_class, sop_uid, None, "no answer (timeout)")
                    )
                    continue
                code = int(st.Status)
                result.instances.append(SentInstance(kind, sop_class, sop_uid, code))
    _progress(progress, 1.0, "sent")
    if result.failed:
        lines = "; ".join(
            f"{i.kind} {i.sop_instance_uid}: "
            + (f"status {_status_words(i.status)}" if i.status is not None else i.problem)
            for i in result.failed
        )
        raise SendFailedError(
            f"PACS {peer.words()}: {len(result.failed)} of {len(result.instances)} instance(s) "
            f"of case {case_id} not stored: {lines}",
            result,
        )
    return result
