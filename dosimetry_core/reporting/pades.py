"""PAdES signatures of report PDFs and the manifest embedded in them (issue 13).

The report manifest (:func:`dosimetry_core.reporting.records.manifest`) is
embedded **inside** the PDF before any signature, as a stream referenced from
the document catalog under :data:`MANIFEST_KEY`, written as an incremental
update of the reportlab PDF (so every later signature's byte range covers it).
Each sign-off adds one PAdES baseline signature (ETSI EN 319 142-1; CMS
``adbe.pkcs7.detached`` / ``ETSI.CAdES.detached`` via pyHanko) in a new
invisible signature field named after the role (:data:`FIELD_NAMES`), as an
incremental update: earlier signatures stay valid, and a verifier can check
that the last signature covers the whole file (pyHanko's
``SignatureCoverageLevel.ENTIRE_FILE``), so bytes appended after it are
detected.

Validation uses :func:`pyhanko.sign.validation.validate_pdf_signature` with a
``ValidationContext`` whose only trust root is the department CA given by the
caller (the pinned ``<store>/trust/ca.pem`` or ``--trust``); a file on its own
proves nothing about who signed it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

MANIFEST_KEY = "/MRTDoseManifest"
"""Catalog key of the embedded manifest stream."""

FIELD_NAMES = {"mpe": "MPE", "practitioner": "Practitioner"}
"""Signature field per sign-off role."""

ROLE_OF_FIELD = {v: k for k, v in FIELD_NAMES.items()}


def _der_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def embed_manifest(pdf: bytes, manifest_json: str) -> bytes:
    """``pdf`` with the manifest stream referenced from its catalog (incremental update)."""
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    stream = generic.StreamObject(stream_data=manifest_json.encode("utf-8"))
    ref = w.add_object(stream)
    w.root[MANIFEST_KEY] = ref
    w.update_root()
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def read_manifest(pdf: bytes) -> dict[str, Any] | None:
    """The manifest embedded in a report PDF (None: none; ``{}``: unreadable)."""
    try:
        r = PdfFileReader(BytesIO(pdf), strict=False)
        obj = r.root.get(MANIFEST_KEY)
        if obj is None:
            return None
        data = obj.get_object().data
        m = json.loads(data.decode("utf-8"))
    except _UNREADABLE:
        return {}
    return m if isinstance(m, dict) else {}


def sign_pdf(
    pdf: bytes,
    *,
    key: Any,
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    signed_as: str,
    reason: str,
) -> bytes:
    """``pdf`` with one more PAdES signature (field :data:`FIELD_NAMES` [signed_as])."""
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=_der_cert(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs([_der_cert(ca_cert)]),
    )
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAMES[signed_as],
        reason=reason,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    out = signers.sign_pdf(
        w,
        meta,
        signer=signer,
        new_field_spec=fields.SigFieldSpec(sig_field_name=FIELD_NAMES[signed_as]),
    )
    return bytes(out.getvalue())


@dataclass(frozen=True)
class PdfSignatureCheck:
    """The result of validating one embedded signature."""

    field: str
    signer: str
    role: str
    signed_as: str | None
    signed_at: str | None
    certificate_sha256: str
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "signer": self.signer,
            "role": self.role,
            "signed_as": self.signed_as,
            "signed_at": self.signed_at,
            "certificate_sha256": self.certificate_sha256,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "covers_whole_file": self.covers_whole_file,
        }


@contextmanager
def _quiet() -> Iterator[None]:
    """pyHanko logs a traceback for every untrusted or broken signature; the problems
    are returned to the caller instead, so its loggers are muted while validating."""
    loggers = [logging.getLogger(n) for n in ("pyhanko", "pyhanko_certvalidator")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


_UNREADABLE = (
    PdfError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    ArithmeticError,
    IndexError,
)
"""What pyHanko's parser raises on a damaged or hostile PDF (a flipped byte in a number
token gives decimal.InvalidOperation, an ArithmeticError): the file is unreadable."""


def count_signatures(pdf: bytes) -> int:
    """Number of embedded signatures (0 when the file is not a readable PDF)."""
    try:
        return len(PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures)
    except _UNREADABLE:
        return 0


def validate(
    pdf: bytes, trust: x509.Certificate | None
) -> tuple[list[PdfSignatureCheck], list[str]]:
    """Validate every signature of ``pdf`` against the trust root ``trust``.

    Returns
    -------
    (checks, problems)
        One check per signature in file order, and the problems found (empty when
        every signature is intact, valid, trusted, and the last covers the whole file).
    """
    from dosimetry_core.store.keys import fingerprint, subject_fields

    problems: list[str] = []
    try:
        r = PdfFileReader(BytesIO(pdf), strict=False)
        sigs = list(r.embedded_signatures)
    except _UNREADABLE as exc:
        return [], [f"the PDF cannot be read ({exc})"]
    # no trust anchor: an empty trust list (never the operating system's)
    vc = ValidationContext(trust_roots=[_der_cert(trust)] if trust is not None else [])
    checks: list[PdfSignatureCheck] = []
    for i, s in enumerate(sigs):
        field = str(s.field_name)
        try:
            with _quiet():
                st = validate_pdf_signature(s, vc)
        except _UNREADABLE as exc:
            problems.append(f"signature {field}: cannot be validated ({exc})")
            continue
        cert = x509.load_der_x509_certificate(s.signer_cert.dump())
        username, role = subject_fields(cert)
        whole = st.coverage == SignatureCoverageLevel.ENTIRE_FILE
        intact, valid = bool(st.intact), bool(st.valid)
        trusted = bool(st.trusted) and trust is not None
        mine: list[str] = []
        if not intact:
            mine.append(f"signature {field} ({username}): the signed bytes were changed")
        if not valid:
            mine.append(f"signature {field} ({username}): the signature value is not valid")
        if trust is not None and not st.trusted:
            mine.append(f"signature {field} ({username}): certificate not issued by the trusted CA")
        if getattr(st, "docmdp_ok", True) is False:
            mine.append(f"signature {field}: the file was modified after it in a forbidden way")
        if i == len(sigs) - 1 and not whole:
            mine.append(
                f"signature {field} ({username}) does not cover the whole file: "
                "bytes were added after the last signature"
            )
        at = st.signer_reported_dt
        checks.append(
            PdfSignatureCheck(
                field=field,
                signer=username,
                role=role,
                signed_as=ROLE_OF_FIELD.get(field),
                signed_at=at.isoformat() if isinstance(at, datetime) else None,
                certificate_sha256=fingerprint(cert),
                intact=intact,
                valid=valid,
                trusted=trusted,
                covers_whole_file=whole,
                problems=tuple(mine),
            )
        )
        problems += mine
    return checks, problems
