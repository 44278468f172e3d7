"""Report versions and sign-off in the store; verification of a stored report or a file.

Life of a report (issue 7)
--------------------------
``create_report`` (role with "report", i.e. a physicist) makes **version 1**, a
``draft``: the content (:func:`~dosimetry_core.reporting.content.build_report_content`
plus a ``report`` section with id, version and amendment), its figures and its PDF.
A draft may be regenerated (same id and version) as long as nobody signed it.
``sign(..., as_="mpe")`` (physicist) makes it ``mpe-signed``; then
``sign(..., as_="practitioner")`` (physician) makes it ``signed``, which completes it.
The practitioner cannot sign first; nobody signs the same role twice.  After the first
signature the content never changes: ``amend`` (a role with "amend-report") creates
version n+1 (a new report id, a draft) from the case as it is now, with the reason; the
old version is marked ``superseded`` and stays readable.

Hashes (SHA-256, lowercase hex)
-------------------------------
* ``content_hash`` = SHA-256 of the canonical content JSON (the ``content_json`` column);
* ``inputs_hash`` = SHA-256 of the canonical JSON of ``content["inputs"]`` (the keys of
  every volume and the hashes of every stored result the numbers come from);
* ``signature_hash`` = SHA-256 of the canonical JSON of ``{report_id, version,
  content_hash, inputs_hash, username, role, signed_as, at, previous_signature_hash}``
  (the practitioner's signature covers the MPE's);
* the PDF and the figure PNGs are stored in ``<store>/report_files/ab/cdef...`` named by
  the SHA-256 of their bytes (``pdf_blob_key``), outside the voxel blob folder so that
  :meth:`CaseStore.collect_garbage` never touches them.

Files and personal signatures (issue 13)
----------------------------------------
The PDF is the reportlab document with the manifest embedded inside it (a stream
referenced from the catalog, :mod:`dosimetry_core.reporting.pades`): report id,
version, status, hashes, the canonical content JSON, the signature records.  The
JSON export is the same manifest with the signature rows.

*Store with personal keys* (a department CA, :mod:`dosimetry_core.store.keys`):
the PDF is rendered once, as the draft; each sign-off adds a PAdES signature
(field ``MPE`` / ``Practitioner``) by the signer's key as an incremental update,
and the same key signs the canonical content JSON (``content_signature``, stored
with the signature row and the signer's certificate).  The stored PDF is the one
signed so far.  :func:`check_report_file` validates every PAdES signature against
a trust root (``--trust CA.pem``, or the CA pinned in the store folder with
``--store``): intact, valid, issued by that CA, the signer's role may sign that
field, and the last signature covers the whole file; a file with signatures and
no trust anchor is a problem, since a file alone cannot prove who signed it.
With a store, the file must also be the stored record of its report id (same
content hash, same signers and certificates), and the signers' certificates
must not be revoked (disabled account) at signing time.

*Single-user store* (no accounts, hence no keys): signing keeps the hash-only
record (``signature_hash``) and the page says "unsigned (single-user store)".
Such a file (like an unsigned draft) is accepted only when ``--store`` holds the
same bytes (the stored PDF) or, for a JSON export, the same content and
signature records; on its own it is reported as unsigned.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dosimetry_core.errors import IntegrityError, InvalidInputError, StoreError
from dosimetry_core.reporting.content import canonical_json, sha256_hex
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store import keys, report_rows
from dosimetry_core.store.case_store import verify_volume_blob
from dosimetry_core.store.permissions import Actor, require
from dosimetry_core.store.report_rows import ReportRow, SignatureRow, StoredReport
from dosimetry_core.store.repository import CaseRepository

FILES_DIRNAME = "report_files"
MANIFEST_FORMAT = "mrt-dose-report-manifest/1"
MARKER = b"%MRTDOSE-REPORT "
SIGN_ROLES = {"mpe": "sign-mpe", "practitioner": "sign-practitioner"}
DRAFT, MPE_SIGNED, SIGNED, SUPERSEDED = "draft", "mpe-signed", "signed", "superseded"


@dataclass(frozen=True)
class ReportRecord:
    """One report version as stored (``content`` parsed from ``content_json``)."""

    report_id: str
    case_id: str
    version: int
    status: str
    created_at: datetime
    created_by: str
    content_hash: str
    inputs_hash: str
    pdf_blob_key: str | None
    supersedes: str | None
    amendment_reason: str | None
    content: dict[str, Any]
    signatures: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "case_id": self.case_id,
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "content_hash": self.content_hash,
            "inputs_hash": self.inputs_hash,
            "pdf_blob_key": self.pdf_blob_key,
            "supersedes": self.supersedes,
            "amendment_reason": self.amendment_reason,
            "signatures": self.signatures,
        }


# ------------------------------------------------------------------ files
def _files_root(store: CaseRepository) -> Path:
    return Path(store.path) / FILES_DIRNAME


def file_path(store: CaseRepository, key: str) -> Path:
    """Where the report file (PDF or PNG) with SHA-256 ``key`` is kept."""
    from dosimetry_core.store.blobs import BlobStore

    BlobStore.check_key(key)
    return _files_root(store) / key[:2] / key[2:]


def put_file(store: CaseRepository, data: bytes) -> str:
    """Store ``data`` under its SHA-256 (atomic write, fsync); return the key."""
    key = sha256_hex(data)
    path = file_path(store, key)
    if path.is_file():
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write report file {path}: {exc}") from exc
    return key


def get_file(store: CaseRepository, key: str) -> bytes:
    """Bytes of a report file, checked against its key (IntegrityError when changed)."""
    path = file_path(store, key)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"report file {key[:16]} is missing ({path}): {exc}") from exc
    if sha256_hex(data) != key:
        raise IntegrityError(f"report file {key[:16]} was modified ({path}): hash mismatch")
    return data


# ------------------------------------------------------------------ hashing
def signature_hash(
    *,
    report_id: str,
    version: int,
    content_hash: str,
    inputs_hash: str,
    username: str,
    role: str,
    signed_as: str,
    at: str,
    previous_signature_hash: str | None,
) -> str:
    """SHA-256 of what a signature covers (module docstring)."""
    return sha256_hex(
        canonical_json(
            {
                "report_id": report_id,
                "version": int(version),
                "content_hash": content_hash,
                "inputs_hash": inputs_hash,
                "username": username,
                "role": role,
                "signed_as": signed_as,
                "at": at,
                "previous_signature_hash": previous_signature_hash,
            }
        )
    )


def manifest(record: ReportRecord, content_json: str, pdf_sha256: str | None) -> dict[str, Any]:
    """The self-verifying manifest embedded in the PDF and written as the JSON export."""
    return {
        "format": MANIFEST_FORMAT,
        "report": {
            k: v
            for k, v in record.to_dict().items()
            if k not in ("signatures", "pdf_blob_key", "created_at")
        },
        "content_json": content_json,
        "signatures": record.signatures,
        "pdf_sha256": pdf_sha256,
    }


def _pdf_with_manifest(pdf: bytes, record: ReportRecord, content_json: str) -> bytes:
    from dosimetry_core.reporting.pades import embed_manifest

    m = manifest(record, content_json, sha256_hex(pdf))
    return embed_manifest(pdf, canonical_json(m))


def split_pdf(data: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """(PDF bytes, embedded manifest or None; ``{}`` when unreadable) of a report PDF file.

    Reads the manifest embedded in the catalog; files of earlier versions (a
    ``%MRTDOSE-REPORT`` comment appended after the PDF) are still read.
    """
    from dosimetry_core.reporting.pades import read_manifest

    embedded = read_manifest(data)
    if embedded is not None:
        return data, embedded
    i = data.rfind(b"\n" + MARKER)
    if i < 0:
        return data, None
    line = data[i + 1 + len(MARKER) :].split(b"\n", 1)[0]
    try:
        m = json.loads(base64.b64decode(line, validate=True).decode("utf-8"))
    except ValueError:
        return data[:i], {}
    return data[:i], m if isinstance(m, dict) else {}


# ------------------------------------------------------------------ store access
def _to_record(stored: StoredReport) -> ReportRecord:
    row = stored.row
    try:
        content = json.loads(row.content_json)
    except ValueError:
        content = {}
    return ReportRecord(
        report_id=row.report_id,
        case_id=row.case_id,
        version=int(row.version),
        status=row.status,
        created_at=row.created_at,
        created_by=row.created_by,
        content_hash=row.content_hash,
        inputs_hash=row.inputs_hash,
        pdf_blob_key=row.pdf_blob_key,
        supersedes=row.supersedes,
        amendment_reason=row.amendment_reason,
        content=content,
        signatures=[
            {
                "username": s.username,
                "role": s.role,
                "signed_as": s.signed_as,
                "at": s.at.isoformat(),
                "content_hash": s.content_hash,
                "inputs_hash": s.inputs_hash,
                "signature_hash": s.signature_hash,
                **(
                    {"certificate_pem": s.cert_pem, "content_signature": s.content_signature}
                    if s.cert_pem
                    else {}
                ),
            }
            for s in stored.signatures
        ],
    )


def _load(store: CaseRepository, report_id: str) -> tuple[StoredReport, ReportRecord]:
    stored = report_rows.load_report(store, report_id)
    if stored is None:
        raise InvalidInputError(f"no report {report_id!r} in this store")
    return stored, _to_record(stored)


def load_report(store: CaseRepository, report_id: str) -> ReportRecord:
    """A stored report version (any status), with its signatures in signing order."""
    return _load(store, report_id)[1]


def list_reports(store: CaseRepository, case_id: str) -> list[ReportRecord]:
    """Every report version of a case, oldest first."""
    return [_to_record(r) for r in report_rows.case_reports(store, case_id)]


def report_pdf(store: CaseRepository, report_id: str) -> bytes:
    """The stored PDF of a report (checked against its hash)."""
    rec = load_report(store, report_id)
    if not rec.pdf_blob_key:
        raise InvalidInputError(f"report {report_id} has no PDF")
    return get_file(store, rec.pdf_blob_key)


def _audit(
    store: CaseRepository, actor: Actor, action: str, case_id: str, details: dict[str, Any]
) -> None:
    """Audit-trail entry for a report action (issue 7)."""
    from dosimetry_core.store import audit

    audit.record(store, actor, action, case_id, details)


def _render(store: CaseRepository, record: ReportRecord, content_json: str) -> str:
    """Render the PDF of ``record`` (figures from the store's report files); return its key."""
    from dosimetry_core.reporting.pdf import render_report_pdf

    content = json.loads(content_json)
    figures = {n: get_file(store, k) for n, k in (content.get("figures") or {}).items()}
    personal = keys.pinned_ca(store) is not None
    pdf = render_report_pdf(
        content,
        figures,
        report={
            "report_id": record.report_id,
            "version": record.version,
            "status": record.status,
            "content_hash": record.content_hash,
            "inputs_hash": record.inputs_hash,
        },
        signatures=record.signatures,
        personal_signatures=personal,
    )
    return put_file(store, _pdf_with_manifest(pdf, record, content_json))


def _new_content(
    store: CaseRepository,
    case_id: str,
    report_id: str,
    version: int,
    actor: Actor,
    now: datetime,
    supersedes: str | None,
    reason: str | None,
) -> tuple[str, str, str]:
    """(content JSON, content hash, inputs hash) of a new version; figures stored."""
    from dosimetry_core.reporting.content import build_report_content
    from dosimetry_core.reporting.figures import report_figures

    content = build_report_content(store, case_id)
    figs = report_figures(store, content)
    content["figures"] = {name: put_file(store, png) for name, png in figs.items()}
    content["report"] = {
        "report_id": report_id,
        "version": version,
        "created_at": now.isoformat(),
        "created_by": actor.username,
        "supersedes": supersedes,
        "amendment_reason": reason,
    }
    text = canonical_json(content)
    return text, sha256_hex(text), sha256_hex(canonical_json(content["inputs"]))


def _record(
    report_id: str,
    case_id: str,
    version: int,
    status: str,
    now: datetime,
    actor: Actor,
    text: str,
    c_hash: str,
    i_hash: str,
    supersedes: str | None,
    reason: str | None,
    signatures: list[dict[str, Any]] | None = None,
) -> ReportRecord:
    return ReportRecord(
        report_id,
        case_id,
        version,
        status,
        now,
        actor.username,
        c_hash,
        i_hash,
        None,
        supersedes,
        reason,
        json.loads(text),
        signatures or [],
    )


# ------------------------------------------------------------------ actions
def create_report(store: CaseRepository, actor: Actor, case_id: str) -> ReportRecord:
    """Make (or regenerate, while unsigned) the draft report of a case (module docstring).

    Raises
    ------
    PermissionDeniedError
        If the actor's role may not prepare reports.
    InvalidInputError
        If the case has no protocol run, or its newest report is signed (amend it).
    """
    require(actor, "report")
    store.load_case(case_id)  # CaseNotFoundError first
    latest = report_rows.newest_report(store, case_id)
    if latest is not None and latest.status != DRAFT:
        raise InvalidInputError(
            f"case {case_id} already has report {latest.report_id} version {latest.version} "
            f"({latest.status}); a signed report cannot be changed: amend it "
            f"(mrtdose amend {latest.report_id} --reason TEXT)"
        )
    report_id = latest.report_id if latest is not None else f"rep-{uuid.uuid4().hex[:12]}"
    version = int(latest.version) if latest is not None else 1
    supersedes = latest.supersedes if latest is not None else None
    reason = latest.amendment_reason if latest is not None else None
    now = datetime.now().replace(microsecond=0)
    text, c_hash, i_hash = _new_content(
        store, case_id, report_id, version, actor, now, supersedes, reason
    )
    rec = _record(
        report_id, case_id, version, DRAFT, now, actor, text, c_hash, i_hash, supersedes, reason
    )
    pdf_key = _render(store, rec, text)
    row = ReportRow(
        report_id=report_id,
        case_id=case_id,
        version=version,
        status=DRAFT,
        created_at=now,
        created_by=actor.username,
        content_json=text,
        content_hash=c_hash,
        inputs_hash=i_hash,
        pdf_blob_key=pdf_key,
        supersedes=supersedes,
        amendment_reason=reason,
    )
    with store.transaction():
        if latest is None:
            report_rows.insert_report(store, row)
        elif not report_rows.update_report(store, row, expected_status=DRAFT):
            raise InvalidInputError(f"report {report_id} was signed meanwhile: amend it")
        _audit(store, actor, "report-create", case_id, {"report_id": report_id, "version": version})
    return load_report(store, report_id)


def sign(
    store: CaseRepository,
    actor: Actor,
    report_id: str,
    as_: str = "mpe",
    *,
    password: str | None = None,
) -> ReportRecord:
    """Sign a report version as ``"mpe"`` (physicist, first) or ``"practitioner"`` (second).

    In a store with personal keys the signer's key (unlocked with ``password``, or
    at this process's log-in) embeds a PAdES signature in the stored PDF, signs the
    content JSON, and signs the audit head (checkpoint); in a single-user store the
    record is hash-only (module docstring).

    Raises
    ------
    PermissionDeniedError
        If the actor's role may not sign as ``as_`` (nothing changes).
    InvalidInputError
        Wrong order, role already signed, superseded report, unknown ``as_``.
    IntegrityError
        If the stored report does not verify (it is not signed).
    AuthenticationError
        Wrong password for the signer's key.
    """
    from dosimetry_core.reporting import pades
    from dosimetry_core.store.users import signing_identity

    if as_ not in SIGN_ROLES:
        raise InvalidInputError(f"sign as 'mpe' or 'practitioner', not {as_!r}")
    require(actor, SIGN_ROLES[as_])
    identity = signing_identity(store, actor, password)  # refusals change nothing
    problems = verify(store, report_id)
    if problems:
        raise IntegrityError(f"report {report_id} is not intact, not signed: {problems[0]}")
    with store.transaction():
        stored, rec = _load(store, report_id)
        row = stored.row
        done = {s["signed_as"] for s in rec.signatures}
        if rec.status == SUPERSEDED:
            raise InvalidInputError(f"report {report_id} is superseded: sign the newest version")
        if as_ in done:
            raise InvalidInputError(
                f"report {report_id} is already signed as {as_}; a signed report cannot be "
                "changed (amend it for a correction)"
            )
        if as_ == "practitioner" and "mpe" not in done:
            raise InvalidInputError(
                f"report {report_id}: the medical physics expert signs first, then the practitioner"
            )
        at = datetime.now().replace(microsecond=0)
        prev = rec.signatures[-1]["signature_hash"] if rec.signatures else None
        h = signature_hash(
            report_id=report_id,
            version=rec.version,
            content_hash=row.content_hash,
            inputs_hash=row.inputs_hash,
            username=actor.username,
            role=actor.role,
            signed_as=as_,
            at=at.isoformat(),
            previous_signature_hash=prev,
        )
        cert_text = content_sig = None
        if identity is not None:
            key, cert, ca_cert = identity
            cert_text = keys.cert_pem(cert)
            content_sig = keys.sign_bytes(key, row.content_json.encode("utf-8"))
        report_rows.insert_signature(
            store,
            SignatureRow(
                report_id=report_id,
                username=actor.username,
                role=actor.role,
                signed_as=as_,
                at=at,
                content_hash=row.content_hash,
                inputs_hash=row.inputs_hash,
                signature_hash=h,
                cert_pem=cert_text,
                content_signature=content_sig,
            ),
        )
        status = SIGNED if as_ == "practitioner" else MPE_SIGNED
        details: dict[str, Any] = {"report_id": report_id, "signature_hash": h}
        if identity is not None and row.pdf_blob_key:
            signed_pdf = pades.sign_pdf(
                get_file(store, row.pdf_blob_key),
                key=key,
                cert=cert,
                ca_cert=ca_cert,
                signed_as=as_,
                reason=(
                    f"{as_} sign-off of report {report_id} version {rec.version} "
                    f"(content SHA-256 {row.content_hash})"
                ),
            )
            pdf_key = put_file(store, signed_pdf)
            details["certificate_sha256"] = keys.fingerprint(cert)
        else:
            _, new = _load(store, report_id)
            new = _with_status(new, status)
            pdf_key = _render(store, new, row.content_json)
        details["pdf_sha256"] = pdf_key
        report_rows.set_report_status(store, report_id, status, pdf_blob_key=pdf_key)
        _audit(store, actor, f"report-sign-{as_}", rec.case_id, details)
        if identity is not None and cert_text is not None:
            audit_trail.record_checkpoint(store, actor.username, key, cert_text)
    return load_report(store, report_id)


def _with_status(rec: ReportRecord, status: str) -> ReportRecord:
    d = dict(rec.__dict__)
    d["status"] = status
    return ReportRecord(**d)


def amend(store: CaseRepository, actor: Actor, report_id: str, reason: str) -> ReportRecord:
    """New version of a signed report, from the case as it is now, with ``reason``.

    The old version stays readable with status ``superseded``.

    Raises
    ------
    PermissionDeniedError
        If the actor's role may not amend reports.
    InvalidInputError
        Empty reason; the report is an unsigned draft (regenerate it) or superseded.
    """
    require(actor, "amend-report")
    if not reason or not reason.strip():
        raise InvalidInputError("an amendment needs a reason (--reason TEXT)")
    old = load_report(store, report_id)
    if old.status == DRAFT:
        raise InvalidInputError(
            f"report {report_id} is an unsigned draft: regenerate it (mrtdose report) instead"
        )
    if old.status == SUPERSEDED:
        raise InvalidInputError(f"report {report_id} is already superseded: amend the newest")
    new_id = f"rep-{uuid.uuid4().hex[:12]}"
    version = old.version + 1
    now = datetime.now().replace(microsecond=0)
    text, c_hash, i_hash = _new_content(
        store, old.case_id, new_id, version, actor, now, report_id, reason.strip()
    )
    rec = _record(
        new_id,
        old.case_id,
        version,
        DRAFT,
        now,
        actor,
        text,
        c_hash,
        i_hash,
        report_id,
        reason.strip(),
    )
    pdf_key = _render(store, rec, text)
    with store.transaction():
        if not report_rows.set_report_status(
            store, report_id, SUPERSEDED, expected_status=old.status
        ):
            raise InvalidInputError(f"report {report_id} was changed meanwhile; try again")
        report_rows.insert_report(
            store,
            ReportRow(
                report_id=new_id,
                case_id=old.case_id,
                version=version,
                status=DRAFT,
                created_at=now,
                created_by=actor.username,
                content_json=text,
                content_hash=c_hash,
                inputs_hash=i_hash,
                pdf_blob_key=pdf_key,
                supersedes=report_id,
                amendment_reason=reason.strip(),
            ),
        )
        _audit(
            store,
            actor,
            "report-amend",
            old.case_id,
            {"report_id": new_id, "supersedes": report_id, "reason": reason.strip()},
        )
    return load_report(store, new_id)


# ------------------------------------------------------------------ verification
def _check_signatures(
    report_id: str,
    version: int,
    content_hash: str,
    inputs_hash: str,
    signatures: list[dict[str, Any]],
    where: str,
) -> list[str]:
    problems = []
    prev = None
    for i, s in enumerate(signatures):
        who = f"{where}signature {i + 1} ({s.get('signed_as')} by {s.get('username')})"
        if s.get("content_hash") != content_hash or s.get("inputs_hash") != inputs_hash:
            problems.append(f"{who} covers other content than the report's")
        h = signature_hash(
            report_id=report_id,
            version=version,
            content_hash=content_hash,
            inputs_hash=inputs_hash,
            username=str(s.get("username")),
            role=str(s.get("role")),
            signed_as=str(s.get("signed_as")),
            at=str(s.get("at")),
            previous_signature_hash=prev,
        )
        if h != s.get("signature_hash"):
            problems.append(f"{who}: signature hash does not match (record altered)")
        prev = s.get("signature_hash")
    order = [s.get("signed_as") for s in signatures]
    if order not in ([], ["mpe"], ["mpe", "practitioner"]):
        problems.append(f"{where}signatures out of order or repeated: {order}")
    return problems


def _check_content(
    content_json: str, content_hash: str, inputs_hash: str, report_id: str, version: int, where: str
) -> list[str]:
    problems = []
    if sha256_hex(content_json) != content_hash:
        problems.append(f"{where}content hash does not match the content (content altered)")
    try:
        content = json.loads(content_json)
    except ValueError:
        return [*problems, f"{where}content is not valid JSON"]
    if canonical_json(content) != content_json:
        problems.append(f"{where}content is not in canonical form (altered)")
    if sha256_hex(canonical_json(content.get("inputs"))) != inputs_hash:
        problems.append(f"{where}inputs hash does not match the inputs manifest")
    rep = content.get("report") or {}
    if rep.get("report_id") != report_id or rep.get("version") != version:
        problems.append(f"{where}content belongs to {rep.get('report_id')} v{rep.get('version')}")
    return problems


def _expected_status(n_sigs: int) -> str:
    return {0: DRAFT, 1: MPE_SIGNED}.get(n_sigs, SIGNED)


def verify(store: CaseRepository, report_id: str, *, check_inputs: bool = False) -> list[str]:
    """Problems of a stored report version (empty when intact).

    Recomputes the content hash, the inputs hash and each signature hash; checks the
    signing order, the status, the PDF file against its key and the manifest embedded
    in it against the database, the figure files, and (``check_inputs``) that every
    input volume is still in the store with its hash.
    """
    try:
        stored, rec = _load(store, report_id)
    except InvalidInputError as exc:
        return [str(exc)]
    row, successor = stored.row, stored.superseded_by
    w = f"report {report_id}: "
    problems = _check_content(
        row.content_json, row.content_hash, row.inputs_hash, report_id, rec.version, w
    )
    problems += _check_signatures(
        report_id, rec.version, row.content_hash, row.inputs_hash, rec.signatures, w
    )
    if successor is not None and rec.status != SUPERSEDED:
        problems.append(f"{w}superseded by {successor} but its status is {rec.status}")
    if rec.status == SUPERSEDED and successor is None:
        problems.append(f"{w}status superseded but no version supersedes it")
    if rec.status != SUPERSEDED and rec.status != _expected_status(len(rec.signatures)):
        problems.append(
            f"{w}status {rec.status} does not match its {len(rec.signatures)} signature(s)"
        )
    if rec.pdf_blob_key:
        try:
            pdf = get_file(store, rec.pdf_blob_key)
        except IntegrityError as exc:
            problems.append(f"{w}PDF: {exc}")
        else:
            m = split_pdf(pdf)[1] or {}
            if m.get("content_json") != row.content_json:
                problems.append(f"{w}the PDF holds other content than the database")
            ca_cert = keys.pinned_ca(store)
            if ca_cert is not None:
                checks, found = _pades_problems(pdf, ca_cert, w)
                problems += found
                problems += _rows_vs_pdf(checks, rec.signatures, row.content_json, ca_cert, w)
                problems += _signer_account_problems(store, rec.signatures, w)
            else:
                sig_db = [s["signature_hash"] for s in rec.signatures]
                sig_pdf = [s.get("signature_hash") for s in m.get("signatures") or []]
                if sig_pdf != sig_db:
                    problems.append(f"{w}the PDF's signatures differ from the database's")
    else:
        problems.append(f"{w}no PDF")
    problems += _audited_signature_problems(store, report_id, rec.signatures, w)
    for name, key in (rec.content.get("figures") or {}).items():
        try:
            get_file(store, key)
        except (IntegrityError, StoreError) as exc:
            problems.append(f"{w}figure {name}: {exc}")
    if check_inputs:
        for v in (rec.content.get("inputs") or {}).get("volumes") or []:
            err = verify_volume_blob(store, str(v["key"]))
            if err:
                problems.append(f"{w}input {v['role']}: {err}")
    return problems


def _audited_signature_problems(
    store: CaseRepository, report_id: str, sigs: list[dict[str, Any]], w: str
) -> list[str]:
    """Signature rows against the audit trail's ``report-sign-*`` entries of the report.

    A signature row deleted (with the status and PDF set back) or inserted leaves
    the rows and the audited sign-offs different; the audit chain itself is anchored
    by signed checkpoints.
    """
    audited = [
        (e.action.removeprefix("report-sign-"), str(e.details.get("signature_hash")))
        for e in audit_trail.entries(store)
        if e.action.startswith("report-sign-") and e.details.get("report_id") == report_id
    ]
    rows = [(str(s.get("signed_as")), str(s.get("signature_hash"))) for s in sigs]
    if audited != rows:
        return [
            f"{w}the signatures {[r[0] for r in rows]} differ from the sign-offs in the audit "
            f"trail {[a[0] for a in audited]} (signature rows deleted, inserted or changed)"
        ]
    return []


def _pades_problems(pdf: bytes, trust: Any, w: str) -> tuple[list[Any], list[str]]:
    """Validate the PAdES signatures of ``pdf`` against ``trust``; check field order and roles."""
    from dosimetry_core.reporting import pades

    checks, found = pades.validate(pdf, trust)
    problems = [w + x for x in found]
    order = [c.signed_as for c in checks]
    if order not in ([], ["mpe"], ["mpe", "practitioner"]):
        problems.append(f"{w}PDF signatures out of order, repeated or unknown: {order}")
    for c in checks:
        if c.signed_as in SIGN_ROLES and not Actor(c.signer, c.role).may(SIGN_ROLES[c.signed_as]):
            problems.append(
                f"{w}signature {c.field}: {c.signer} ({c.role or 'no role'}) may not sign as "
                f"{c.signed_as}"
            )
    return checks, problems


def _rows_vs_pdf(
    checks: list[Any], sigs: list[dict[str, Any]], content_json: str, ca_cert: Any, w: str
) -> list[str]:
    """Signature records (rows or JSON) against the PDF's signatures and the content."""
    problems = []
    if len(checks) != len(sigs):
        problems.append(
            f"{w}the PDF holds {len(checks)} personal signature(s), the record {len(sigs)} "
            "(a signature row inserted or removed, or another copy of the file)"
        )
    problems += _record_signature_problems(sigs, content_json, ca_cert, w)
    for c, s in zip(checks, sigs, strict=False):
        if c.signed_as != s.get("signed_as") or c.signer != s.get("username"):
            problems.append(
                f"{w}the record says {s.get('signed_as')} by {s.get('username')}, the PDF "
                f"signature {c.field} is by {c.signer} (re-attributed)"
            )
        pem = s.get("certificate_pem")
        if pem and keys.fingerprint(keys.load_cert(pem)) != c.certificate_sha256:
            problems.append(
                f"{w}the record's certificate of {s.get('username')} is not the one that "
                f"signed field {c.field}"
            )
    return problems


def _record_signature_problems(
    sigs: list[dict[str, Any]], content_json: str, ca_cert: Any, w: str
) -> list[str]:
    """Each signature record carries a certificate of the CA naming its user, whose key
    signed the content JSON."""
    problems = []
    for i, s in enumerate(sigs):
        who = f"{w}signature {i + 1} ({s.get('signed_as')} by {s.get('username')})"
        pem = s.get("certificate_pem")
        if not pem:
            problems.append(f"{who}: no personal signature (inserted without a key)")
            continue
        try:
            cert = keys.load_cert(pem)
        except IntegrityError as exc:
            problems.append(f"{who}: {exc}")
            continue
        name, role = keys.subject_fields(cert)
        if ca_cert is None or not keys.issued_by(cert, ca_cert):
            problems.append(f"{who}: certificate not issued by the trusted CA")
        if name != s.get("username") or role != s.get("role"):
            problems.append(f"{who}: the certificate names {name} ({role})")
        if not keys.verify_bytes(cert, content_json.encode("utf-8"), s.get("content_signature")):
            problems.append(f"{who}: the signature of the content does not verify")
    return problems


def _signer_account_problems(
    store: CaseRepository, sigs: list[dict[str, Any]], w: str
) -> list[str]:
    """Signers' accounts: present, intact, certificate not revoked when they signed."""
    from dosimetry_core.store.users import account_state

    problems = []
    for s in sigs:
        user = str(s.get("username"))
        _fp, revoked_at, problem = account_state(store, user)
        if problem:
            problems.append(f"{w}signer {user}: {problem}")
            continue
        at = str(s.get("at"))
        if revoked_at is not None and at >= revoked_at.isoformat():
            problems.append(
                f"{w}signer {user}: certificate revoked at {revoked_at.isoformat()} "
                f"(account disabled), signature dated {at}"
            )
    return problems


def _load_trust(trust: str | Path | None) -> Any:
    if trust is None:
        return None
    try:
        data = Path(trust).read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read the trust anchor {trust}: {exc.strerror or exc}", field="trust"
        ) from exc
    try:
        return keys.load_cert(data)
    except IntegrityError as exc:
        raise InvalidInputError(
            f"{trust} is not a PEM certificate (--trust CA.pem)", field="trust"
        ) from exc


def check_report_file(
    path: str | Path,
    *,
    trust: str | Path | None = None,
    store: CaseRepository | None = None,
) -> dict[str, Any]:
    """Check a report PDF or JSON export (module docstring).

    Parameters
    ----------
    trust
        PEM file of the CA to trust (``--trust``); None: the store's pinned CA.
    store
        The store that should hold this file's report (``--store``), or None.

    Returns
    -------
    dict
        ``report_id`` (or None), ``problems`` (empty when intact) and ``signatures``
        (per PAdES signature: field, signer, role, signed_at, intact, trusted,
        covers_whole_file, ...).
    """
    p = Path(path)
    out: dict[str, Any] = {"report_id": None, "problems": [], "signatures": []}
    ca_cert = _load_trust(trust)  # a bad --trust is refused before the file is read
    try:
        data = p.read_bytes()
    except OSError as exc:
        out["problems"] = [f"{p}: cannot read ({exc.strerror or exc})"]
        return out
    is_pdf = not data.lstrip().startswith(b"{")
    if not is_pdf:
        try:
            m = json.loads(data.decode("utf-8"))
        except ValueError:
            out["problems"] = [f"{p}: not a report JSON file (invalid JSON)"]
            return out
    else:
        if not data.startswith(b"%PDF"):
            out["problems"] = [f"{p}: neither a PDF nor a JSON report file"]
            return out
        found = split_pdf(data)[1]
        if found is None:
            out["problems"] = [f"{p}: no embedded report manifest (not made by mrtdose report)"]
            return out
        if not found:
            out["problems"] = [f"{p}: the embedded report manifest is damaged (altered)"]
            return out
        m = found
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        out["problems"] = [f"{p}: not a report manifest ({MANIFEST_FORMAT})"]
        return out
    rep = m.get("report") or {}
    rid, version = str(rep.get("report_id")), rep.get("version")
    out["report_id"] = rep.get("report_id")
    w = f"{p.name}: "
    content_json = str(m.get("content_json"))
    problems = _check_content(
        content_json,
        str(rep.get("content_hash")),
        str(rep.get("inputs_hash")),
        rid,
        version if isinstance(version, int) else -1,
        w,
    )
    if ca_cert is None and store is not None:
        ca_cert = keys.pinned_ca(store)
    stored = report_rows.load_report(store, rid) if store is not None else None
    if store is not None and stored is None:
        problems.append(f"{w}the store holds no report {rid}: not a record of this store")
    db_sigs = _to_record(stored).signatures if stored is not None else None
    if stored is not None and stored.row.content_hash != rep.get("content_hash"):
        problems.append(
            f"{w}the store's report {rid} has content SHA-256 {stored.row.content_hash[:16]}, "
            f"the file {str(rep.get('content_hash'))[:16]}: not the stored record"
        )

    from dosimetry_core.reporting import pades

    n_pades = pades.count_signatures(data) if is_pdf else 0
    json_sigs = [] if is_pdf else list(m.get("signatures") or [])
    personal = n_pades > 0 or any(s.get("certificate_pem") for s in json_sigs)
    if personal:
        if ca_cert is None:
            problems.append(
                f"{w}no trust anchor: a file alone cannot prove who signed it; give "
                "--trust CA.pem (the department CA, from mrtdose user ca-cert) or --store"
            )
        if is_pdf:
            checks, pades_found = _pades_problems(data, ca_cert, w)
            out["signatures"] = [c.to_dict() for c in checks]
            problems += pades_found
            if db_sigs is not None:
                problems += _rows_vs_pdf(checks, db_sigs, content_json, ca_cert, w)
        else:
            problems += _record_signature_problems(json_sigs, content_json, ca_cert, w)
            order = [s.get("signed_as") for s in json_sigs]
            if order not in ([], ["mpe"], ["mpe", "practitioner"]):
                problems.append(f"{w}signatures out of order or repeated: {order}")
            if db_sigs is not None and [s.get("signature_hash") for s in db_sigs] != [
                s.get("signature_hash") for s in json_sigs
            ]:
                problems.append(f"{w}the file's signatures differ from the store's")
        if store is not None:
            problems += _signer_account_problems(store, db_sigs or json_sigs, w)
    else:
        sigs = list(m.get("signatures") or [])
        problems += _check_signatures(
            rid,
            int(version or 0),
            str(rep.get("content_hash")),
            str(rep.get("inputs_hash")),
            sigs,
            w,
        )
        status = rep.get("status")
        if status != SUPERSEDED and status != _expected_status(len(sigs)):
            problems.append(f"{w}status {status} does not match its {len(sigs)} signature(s)")
        if stored is None:
            problems.append(
                f"{w}unsigned ({'single-user store' if sigs else 'draft'}): no personal "
                "signature, nothing proves who made this file; check it with --store"
            )
        elif store is not None and keys.pinned_ca(store) is not None:
            problems.append(
                f"{w}this store signs with personal keys but the file holds no personal "
                "signature (an unsigned copy)"
            )
        elif is_pdf and sha256_hex(data) != stored.row.pdf_blob_key:
            problems.append(f"{w}the file is not the stored PDF of report {rid} (bytes differ)")
        elif not is_pdf and [s.get("signature_hash") for s in db_sigs or []] != [
            s.get("signature_hash") for s in sigs
        ]:
            problems.append(f"{w}the file's signatures differ from the store's")
    out["problems"] = problems
    return out


def verify_report_file(
    path: str | Path,
    *,
    trust: str | Path | None = None,
    store: CaseRepository | None = None,
) -> list[str]:
    """Problems of a report PDF or JSON export (empty when intact): :func:`check_report_file`."""
    return list(check_report_file(path, trust=trust, store=store)["problems"])


def export_manifest(store: CaseRepository, report_id: str) -> dict[str, Any]:
    """The JSON export of a stored report (the manifest of its PDF, with ``pdf_sha256``)."""
    rec = load_report(store, report_id)
    pdf_sha = None
    if rec.pdf_blob_key:
        m = split_pdf(get_file(store, rec.pdf_blob_key))[1] or {}
        pdf_sha = m.get("pdf_sha256")
        # a store with personal keys: the manifest names no signatures (embedded
        # before them); the export carries the signature rows with their certificates
    text = _load(store, report_id)[0].row.content_json
    return manifest(rec, text, pdf_sha)
