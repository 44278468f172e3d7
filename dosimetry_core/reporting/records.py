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

Self-verifying files
--------------------
The PDF is the reportlab document followed by one PDF comment line (ignored by
viewers) ``%MRTDOSE-REPORT <base64 of the manifest JSON>``: the manifest holds the
report id, version, status, hashes, the canonical content JSON, the signature records
and ``pdf_sha256``, the hash of the bytes before the comment.  The JSON export is the
same manifest.  :func:`verify_report_file` recomputes every hash from the file alone.

These are hashes, not cryptographic signatures: they detect any change made without
recomputing them (an edit of a row, a blob, a file), and a change that recomputes
them is caught only against the other copy (database against file).  Protection
against a deliberate forger needs keys (e.g. PAdES) and is not provided.
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
from dosimetry_core.store import report_rows
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
    m = manifest(record, content_json, sha256_hex(pdf))
    b64 = base64.b64encode(canonical_json(m).encode("utf-8"))
    return pdf + b"\n" + MARKER + b64 + b"\n%%EOF\n"


def split_pdf(data: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """(reportlab PDF bytes, embedded manifest or None) of a report PDF file."""
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


def sign(store: CaseRepository, actor: Actor, report_id: str, as_: str = "mpe") -> ReportRecord:
    """Sign a report version as ``"mpe"`` (physicist, first) or ``"practitioner"`` (second).

    Raises
    ------
    PermissionDeniedError
        If the actor's role may not sign as ``as_`` (nothing changes).
    InvalidInputError
        Wrong order, role already signed, superseded report, unknown ``as_``.
    IntegrityError
        If the stored report does not verify (it is not signed).
    """
    if as_ not in SIGN_ROLES:
        raise InvalidInputError(f"sign as 'mpe' or 'practitioner', not {as_!r}")
    require(actor, SIGN_ROLES[as_])
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
            ),
        )
        status = SIGNED if as_ == "practitioner" else MPE_SIGNED
        _, new = _load(store, report_id)
        new = _with_status(new, status)
        pdf_key = _render(store, new, row.content_json)
        report_rows.set_report_status(store, report_id, status, pdf_blob_key=pdf_key)
        _audit(
            store,
            actor,
            f"report-sign-{as_}",
            rec.case_id,
            {"report_id": report_id, "signature_hash": h},
        )
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
            sig_db = [s["signature_hash"] for s in rec.signatures]
            sig_pdf = [s.get("signature_hash") for s in m.get("signatures") or []]
            if sig_pdf != sig_db:
                problems.append(f"{w}the PDF's signatures differ from the database's")
    else:
        problems.append(f"{w}no PDF")
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


def verify_report_file(path: str | Path) -> list[str]:
    """Problems of a report PDF or JSON export checked on its own (empty when intact)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        return [f"{p}: cannot read ({exc.strerror or exc})"]
    pdf_part: bytes | None = None
    if data.lstrip().startswith(b"{"):
        try:
            m = json.loads(data.decode("utf-8"))
        except ValueError:
            return [f"{p}: not a report JSON file (invalid JSON)"]
    else:
        if not data.startswith(b"%PDF"):
            return [f"{p}: neither a PDF nor a JSON report file"]
        pdf_part, found = split_pdf(data)
        if found is None:
            return [f"{p}: no embedded report manifest (not made by mrtdose report)"]
        if not found:
            return [f"{p}: the embedded report manifest is damaged (altered)"]
        m = found
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        return [f"{p}: not a report manifest ({MANIFEST_FORMAT})"]
    rep = m.get("report") or {}
    rid, version = str(rep.get("report_id")), rep.get("version")
    w = f"{p.name}: "
    problems = _check_content(
        str(m.get("content_json")),
        str(rep.get("content_hash")),
        str(rep.get("inputs_hash")),
        rid,
        version if isinstance(version, int) else -1,
        w,
    )
    sigs = m.get("signatures") or []
    problems += _check_signatures(
        rid, int(version or 0), str(rep.get("content_hash")), str(rep.get("inputs_hash")), sigs, w
    )
    status = rep.get("status")
    if status != SUPERSEDED and status != _expected_status(len(sigs)):
        problems.append(f"{w}status {status} does not match its {len(sigs)} signature(s)")
    if pdf_part is not None and sha256_hex(pdf_part) != m.get("pdf_sha256"):
        problems.append(f"{w}the PDF pages were modified after the report was made")
    return problems


def export_manifest(store: CaseRepository, report_id: str) -> dict[str, Any]:
    """The JSON export of a stored report (the manifest of its PDF, with ``pdf_sha256``)."""
    rec = load_report(store, report_id)
    pdf_sha = None
    if rec.pdf_blob_key:
        m = split_pdf(get_file(store, rec.pdf_blob_key))[1] or {}
        pdf_sha = m.get("pdf_sha256")
    text = _load(store, report_id)[0].row.content_json
    return manifest(rec, text, pdf_sha)
