"""DICOM over TLS (PS3.15 Annex B.1, the TLS Secure Transport Connection Profile).

Hospital networks increasingly refuse plain DICOM: patient data crosses the wire in
clear text, and anybody on the network can pose as a modality.  These helpers build
the :class:`ssl.SSLContext` that pynetdicom takes (``AE.associate(tls_args=...)``
for our requests, ``AE.start_server(ssl_context=...)`` for the storage SCP):

* **client** (``mrtdose pacs ...``): TLS 1.2 or newer, the PACS's certificate
  verified against ``--tls-ca`` and its host name checked; with ``--tls-cert`` /
  ``--tls-key`` we present our own certificate (PACS that require mutual TLS);
* **server** (``mrtdose listen``): our certificate and key; with ``--tls-ca`` every
  caller must present a certificate issued by that CA (mutual TLS), so that an
  unknown machine cannot even open an association.

Every file problem is an :class:`~dosimetry_core.errors.InvalidInputError` naming
the option.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from dosimetry_core.errors import InvalidInputError

__all__ = ["client_context", "server_context"]


def _file(path: str, option: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInputError(
            f"{option}: {path} is not a file", field=option[2:].replace("-", "_")
        )
    return str(p)


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    if bool(cert) != bool(key):
        raise InvalidInputError(
            "--tls-cert and --tls-key go together (the certificate and its private key)",
            field="tls_cert" if not cert else "tls_key",
        )
    if not cert:
        return
    try:
        ctx.load_cert_chain(_file(cert, "--tls-cert"), _file(key, "--tls-key"))
    except ssl.SSLError as exc:
        raise InvalidInputError(
            f"--tls-cert/--tls-key: not a PEM certificate and its unencrypted private key "
            f"({exc.reason or exc})",
            field="tls_cert",
        ) from exc


def _load_ca(ctx: ssl.SSLContext, ca: str) -> None:
    try:
        ctx.load_verify_locations(cafile=_file(ca, "--tls-ca"))
    except ssl.SSLError as exc:
        raise InvalidInputError(
            f"--tls-ca: {ca} holds no PEM CA certificate ({exc.reason or exc})", field="tls_ca"
        ) from exc


def client_context(ca: str, cert: str = "", key: str = "") -> ssl.SSLContext:
    """Context for an association we request: the peer verified against ``ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks the host name
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca(ctx, ca)
    _load_chain(ctx, cert, key)
    return ctx


def server_context(cert: str, key: str, ca: str = "") -> ssl.SSLContext:
    """Context of the storage SCP; with ``ca`` callers must show a certificate it issued."""
    if not cert:
        raise InvalidInputError(
            "--tls-cert: the SCP's certificate is needed for TLS", field="tls_cert"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key)
    if ca:
        _load_ca(ctx, ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
