"""Department CA, personal keys and keyed checks of the store (issue 13).

Keys and certificates
---------------------
At bootstrap the store makes a department certificate authority: an EC P-256
key pair (FIPS 186-4 curve P-256, SEC 2 ``secp256r1``) and a self-signed X.509
certificate (RFC 5280), valid for :data:`CA_VALIDITY`.  Every account gets its
own EC P-256 key pair and a certificate issued by that CA, whose subject holds
the user name (``CN``) and the role (``title``).  Private keys are stored only
PKCS#8-encrypted (RFC 5958): the passphrase is an argon2id key (RFC 9106)
derived from the owner's password with a random salt, so that the stored key is
no easier to attack than the argon2id password hash beside it.  The CA key is
stored once per active admin, wrapped under that admin's password.  Unlocked
keys live only in memory, on the store object of the process that logged in
(:func:`remember_key`, :func:`unlocked_key`).

The CA certificate is pinned **outside the database** at bootstrap, in
``<store folder>/trust/ca.pem`` (:func:`pin_ca`); verification trusts that
file (or a certificate given with ``--trust``), never the copy in the database.

Keyed checks
------------
* ``users.row_signature``: the CA key signs the security fields of an account
  (:func:`account_payload`: user name, role, active, certificate fingerprint,
  revocation time, fingerprint of the wrapped CA key copy); checked at log-in,
  by ``user list`` and by ``audit --verify``.
* ``users.password_signature``: the account's own key signs its password hash
  (:func:`password_payload`), so that an own password change needs no admin.
* Report signatures: PAdES signatures in the PDF plus an ECDSA signature of the
  canonical content JSON, both by the signer's key
  (:mod:`dosimetry_core.reporting.records`).
* Audit checkpoints: at each report signing and each QA record the acting
  user's key signs ``(seq, entry_hash)`` of the audit head (:func:`checkpoint_payload`).

Threat model: an attacker with write access to the database
-----------------------------------------------------------
Assumed: the attacker can read and write every table (SQL), but cannot write
the store folder's ``trust/ca.pem`` (or the verifier uses ``--trust`` with a
certificate obtained elsewhere) and does not know any user's password.

Cannot, undetected:

* change a role, activate a disabled account, insert an account, swap a
  certificate or a wrapped key: the row signature by the CA no longer
  verifies (log-in refused, ``user list`` / ``audit --verify`` report it);
* swap a password hash (to log in with a password of their own): the password
  signature by the account's key no longer verifies (log-in refused);
* change a clinical number of a signed report, insert a signature row or
  re-attribute one: the PAdES signature and the content-JSON signature do not
  verify against the pinned CA, or name another certificate than the row;
* rewrite or truncate the audit chain up to its newest signed checkpoint: the
  checkpoint signature covers the entry hash, which covers the chain before it;
* replace the CA certificate in the database: the pinned file is used.

Can:

* clear a lockout or a failed-attempt count: these fields change at every
  failed log-in, when no key is unlocked, so they are not signed.  Mitigation:
  every failed log-in is audited, and log-in refuses an account whose newest
  audited lock has not expired nor been lifted by an admin (see
  :mod:`dosimetry_core.store.users`); an attacker must then also rewrite the
  audit entries after the last checkpoint, which ``audit --verify`` cannot see;
* delete or rewrite audit entries made after the newest checkpoint, delete
  whole rows (a report, a user: detected only as absence, e.g. a report id
  that the pinned PDF file names and the store no longer holds);
* edit unsigned data: case documents and draft reports (a draft has no
  signature; its numbers are authenticated only once signed).  A QA row is
  compared with the ``record_hash`` its audit entry recorded
  (:func:`dosimetry_core.store.qa_rows.audit_anchor_problems`), and that entry
  is anchored once a later checkpoint signs the chain
  (:func:`dosimetry_core.store.qa_rows.sign_checkpoint` after each QA record);
* delete every checkpoint together with every personally signed report
  (``audit --verify`` counts one checkpoint per personal signature, so deleting
  checkpoints alone is detected);
* guess passwords offline from the argon2id hashes and wrapped keys it can read
  (each guess costs an argon2id evaluation);
* deny service (delete everything).  Backups and database permissions remain
  the hospital's first defence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argon2.low_level import Type, hash_secret_raw
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dosimetry_core.errors import AuthenticationError, IntegrityError, PermissionDeniedError

if TYPE_CHECKING:
    from dosimetry_core.store.repository import CaseRepository

CA_VALIDITY = timedelta(days=20 * 365)
"""Validity of the department CA certificate (a local policy)."""

USER_CERT_VALIDITY = timedelta(days=10 * 365)
"""Validity of a user certificate (a local policy)."""

KDF_TIME_COST, KDF_MEMORY_KIB, KDF_PARALLELISM = 2, 19456, 1
"""argon2id parameters deriving a key-wrapping passphrase from a password: the
minimum recommended by the OWASP Password Storage Cheat Sheet (2023): m = 19 MiB,
t = 2, p = 1 (RFC 9106 argon2id)."""

TRUST_DIRNAME = "trust"
CA_FILENAME = "ca.pem"
CA_META_KEY = "ca_certificate"
"""``store_meta`` key of the CA certificate (PEM) kept in the database (informative only)."""

_CACHE_ATTR = "_mrt_unlocked_keys"
CA = "__ca__"
"""Name under which the unlocked CA key is remembered on a store object."""

PrivateKey = ec.EllipticCurvePrivateKey


# ------------------------------------------------------------------ key material
def new_key() -> PrivateKey:
    """A new EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _kdf(password: str, salt: bytes) -> bytes:
    raw = hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=KDF_TIME_COST,
        memory_cost=KDF_MEMORY_KIB,
        parallelism=KDF_PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )
    return base64.b64encode(raw)


def wrap_key(key: PrivateKey, password: str) -> str:
    """``key`` as ``argon2id$<salt b64>$<encrypted PKCS#8 PEM>`` (module docstring)."""
    salt = os.urandom(16)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_kdf(password, salt)),
    )
    return f"argon2id${base64.b64encode(salt).decode()}${pem.decode('ascii')}"


def unwrap_key(wrapped: str, password: str, *, whose: str) -> PrivateKey:
    """The private key of :func:`wrap_key` output.

    Raises
    ------
    AuthenticationError
        Wrong password or damaged key (``whose`` names it).
    """
    try:
        scheme, salt_b64, pem = wrapped.split("$", 2)
        if scheme != "argon2id":
            raise ValueError(scheme)
        key = serialization.load_pem_private_key(
            pem.encode("ascii"), _kdf(password, base64.b64decode(salt_b64))
        )
    except (ValueError, TypeError) as exc:
        raise AuthenticationError(
            f"the private key of {whose} cannot be unlocked with this password (or was altered)"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuthenticationError(f"the private key of {whose} is not an EC key")
    return key


def _name(cn: str, title: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if title:
        attrs.append(x509.NameAttribute(NameOID.TITLE, title))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mrtdose department"))
    return x509.Name(attrs)


def make_ca(key: PrivateKey, label: str) -> x509.Certificate:
    """Self-signed CA certificate (basic constraints CA, key cert sign) for ``key``."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    name = _name(f"mrtdose department CA ({label})")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(
    ca_key: PrivateKey, ca_cert: x509.Certificate, public_key: Any, username: str, role: str
) -> x509.Certificate:
    """A user certificate (``CN`` = user name, ``title`` = role) issued by the CA."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(username, role))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + USER_CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_cert(pem: str | bytes) -> x509.Certificate:
    """Parse a PEM certificate (IntegrityError when unreadable)."""
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise IntegrityError(f"a stored certificate is unreadable ({exc})") from exc


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding (hex)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def subject_fields(cert: x509.Certificate) -> tuple[str, str]:
    """(user name, role) named in a user certificate's subject."""

    def get(oid: x509.ObjectIdentifier) -> str:
        a = cert.subject.get_attributes_for_oid(oid)
        return str(a[0].value) if a else ""

    return get(NameOID.COMMON_NAME), get(NameOID.TITLE)


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True when ``cert`` carries a valid signature of the CA."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ------------------------------------------------------------------ signatures
def sign_bytes(key: PrivateKey, data: bytes) -> str:
    """ECDSA-SHA256 signature of ``data`` (base64 of the DER signature)."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def verify_bytes(cert: x509.Certificate, data: bytes, signature_b64: str | None) -> bool:
    """True when ``signature_b64`` is the signature of ``data`` by the certificate's key."""
    if not signature_b64:
        return False
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        return False
    try:
        pub.verify(base64.b64decode(signature_b64), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def account_payload(
    *,
    username: str,
    role: str,
    active: bool,
    cert_fingerprint: str,
    revoked_at: datetime | None,
    ca_key_wrapped: str | None,
) -> bytes:
    """What the CA signs of an account row (module docstring)."""
    return _canonical(
        {
            "kind": "mrtdose-account/1",
            "username": username,
            "role": role,
            "active": bool(active),
            "certificate_sha256": cert_fingerprint,
            "revoked_at": revoked_at.isoformat() if revoked_at else None,
            "ca_key_sha256": hashlib.sha256(ca_key_wrapped.encode()).hexdigest()
            if ca_key_wrapped
            else None,
        }
    )


def password_payload(username: str, password_hash: str, key_wrapped: str) -> bytes:
    """What an account's own key signs: its password hash and its wrapped key."""
    return _canonical(
        {
            "kind": "mrtdose-password/1",
            "username": username,
            "password_hash": password_hash,
            "key_sha256": hashlib.sha256(key_wrapped.encode()).hexdigest(),
        }
    )


def checkpoint_payload(seq: int, entry_hash: str) -> bytes:
    """What an audit checkpoint signs: the head of the chain."""
    return _canonical(
        {"kind": "mrtdose-audit-checkpoint/1", "seq": int(seq), "entry_hash": entry_hash}
    )


# ------------------------------------------------------------------ unlocked keys
def _cache(store: CaseRepository) -> dict[str, PrivateKey]:
    cache = getattr(store, _CACHE_ATTR, None)
    if cache is None:
        cache = {}
        setattr(store, _CACHE_ATTR, cache)
    return cache


def remember_key(store: CaseRepository, name: str, key: PrivateKey) -> None:
    """Keep an unlocked key in memory on this store object (``name``: user or :data:`CA`)."""
    _cache(store)[name] = key


def forget_key(store: CaseRepository, name: str) -> None:
    _cache(store).pop(name, None)


def unlocked_key(store: CaseRepository, name: str) -> PrivateKey | None:
    """The key unlocked in this process for ``name`` (None: not unlocked)."""
    return _cache(store).get(name)


def ca_key_or_refuse(store: CaseRepository, actor_name: str) -> PrivateKey:
    """The unlocked CA key (PermissionDeniedError when no admin logged in on this store)."""
    key = unlocked_key(store, CA)
    if key is None:
        raise PermissionDeniedError(
            f"{actor_name}: the department CA key is not unlocked in this process: "
            "log in as an admin (with the password) before managing accounts"
        )
    return key


# ------------------------------------------------------------------ pinned trust
def store_folder(store: CaseRepository) -> Path:
    """The store's folder (``CaseStore.path``; a database store uses its folder too)."""
    path = getattr(store, "path", None)
    if path is None:
        raise IntegrityError("this store has no folder to pin its CA certificate in")
    return Path(path)


def pinned_ca_path(store: CaseRepository) -> Path:
    return store_folder(store) / TRUST_DIRNAME / CA_FILENAME


def pin_ca(store: CaseRepository, cert: x509.Certificate) -> Path:
    """Write the CA certificate to ``<store>/trust/ca.pem`` (refuses to replace another)."""
    path = pinned_ca_path(store)
    pem = cert_pem(cert)
    if path.exists():
        if path.read_text(encoding="ascii", errors="replace") != pem:
            raise IntegrityError(
                f"{path} already pins another CA certificate; remove it deliberately first"
            )
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pem, encoding="ascii")
    os.replace(tmp, path)
    return path


def pinned_ca(store: CaseRepository) -> x509.Certificate | None:
    """The CA certificate pinned in the store folder (None: a store without accounts/keys)."""
    try:
        path = pinned_ca_path(store)
    except IntegrityError:
        return None
    if not path.is_file():
        return None
    return load_cert(path.read_bytes())


def account_problem(row: Any, ca_cert: x509.Certificate | None) -> str | None:
    """Why an account row fails its keyed checks (None when it passes or no CA exists)."""
    if ca_cert is None:
        return None
    u = row.username
    if not row.cert_pem or not row.row_signature or not row.key_pem:
        return (
            f"account {u} has no certificate signed by the department CA "
            "(inserted outside the program?)"
        )
    cert = load_cert(row.cert_pem)
    if not issued_by(cert, ca_cert):
        return f"account {u}: its certificate was not issued by the pinned department CA"
    if subject_fields(cert)[0] != u:
        return f"account {u}: its certificate names {subject_fields(cert)[0]!r}"
    payload = account_payload(
        username=u,
        role=row.role,
        active=bool(row.active),
        cert_fingerprint=fingerprint(cert),
        revoked_at=row.revoked_at,
        ca_key_wrapped=row.ca_key_pem,
    )
    if not verify_bytes(ca_cert, payload, row.row_signature):
        return (
            f"account {u}: role, state or certificate changed outside the program "
            "(CA signature of the row does not verify)"
        )
    if not verify_bytes(
        cert, password_payload(u, row.password_hash, row.key_pem), row.password_signature
    ):
        return (
            f"account {u}: password hash or key changed outside the program "
            "(signature does not verify)"
        )
    return None
