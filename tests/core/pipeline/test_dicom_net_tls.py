"""DICOM over TLS (PS3.15 B.1): the storage SCP and our PACS client, with a test PKI.

Known answers: a caller with a certificate of the trusted CA stores its instances; a
plain-DICOM caller and a caller whose certificate another CA issued get no
association and nothing is filed; our client reaches a TLS peer only when the peer's
certificate is issued by ``--tls-ca`` and made out to the host name we dial; every bad
option or file is named.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.pipeline.dicom_scp import ScpSettings, StorageServer
from dosimetry_core.pipeline.pacs import PacsError, PacsPeer, _associate, retrieve_study
from dosimetry_core.store import CaseStore


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn, key, issuer_cn, issuer_key, *, ca=False, ip=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return b.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert, key=None) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization

    c = folder / f"{name}.crt"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is None:
        return str(c), ""
    k = folder / f"{name}.key"
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(c), str(k)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The department CA (server and client certificates) and a rogue CA with its client."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_key = _key(), _key()
    ca = _cert("Dept CA", ca_key, "Dept CA", ca_key, ca=True)
    rogue = _cert("Rogue CA", rogue_key, "Rogue CA", rogue_key, ca=True)
    server_key, client_key, intruder_key = _key(), _key(), _key()
    out = {
        "ca": _write(d, "ca", ca)[0],
        "rogue_ca": _write(d, "rogue", rogue)[0],
        "server": _write(
            d,
            "server",
            _cert("mrtdose-scp", server_key, "Dept CA", ca_key, ip="127.0.0.1"),
            server_key,
        ),
        "client": _write(d, "client", _cert("PACS", client_key, "Dept CA", ca_key), client_key),
        "intruder": _write(
            d, "intruder", _cert("PACS", intruder_key, "Rogue CA", rogue_key), intruder_key
        ),
        "dir": d,
    }
    return out


def _ct_files(small_demo_dirs) -> list[Path]:
    tp1 = next(small_demo_dirs["siemens-bqml"].glob("tp1*"))
    return sorted((tp1 / "CT").glob("*.dcm"))[:2]


def _send(port: int, paths: list[Path], ctx: ssl.SSLContext | None) -> list[int] | None:
    """C-STORE ``paths``; None when no association was established."""
    from pynetdicom import AE

    ae = AE(ae_title="CTSCANNER")
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
    for c in {
        str(pydicom.filereader.read_file_meta_info(p).MediaStorageSOPClassUID) for p in paths
    }:
        ae.add_requested_context(c, ExplicitVRLittleEndian)
    assoc = ae.associate(
        "127.0.0.1",
        port,
        ae_title="MRTDOSE",
        tls_args=(ctx, "127.0.0.1") if ctx is not None else None,
    )
    if not assoc.is_established:
        return None
    try:
        return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()


def _client_ctx(ca: str, cert: tuple[str, str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def _filed(store_path: Path) -> list[Path]:
    incoming = store_path / "incoming"
    return [p for p in incoming.rglob("*.dcm")] if incoming.exists() else []


def test_scp_over_tls_serves_trusted_callers_only(pki, small_demo_dirs, tmp_path):
    files = _ct_files(small_demo_dirs)
    cert, key = pki["server"]
    settings = ScpSettings(
        ae_title="MRTDOSE",
        port=0,
        host="127.0.0.1",
        idle_s=0.2,
        auto_import=False,
        tls_cert=cert,
        tls_key=key,
        tls_ca=pki["ca"],  # mutual TLS: callers need a certificate of the department CA
    )
    with CaseStore(tmp_path / "store") as store:
        srv = StorageServer(store, settings)
        srv.start()
        try:
            # a modality of the department: its instances are filed
            assert _send(srv.port, files, _client_ctx(pki["ca"], pki["client"])) == [0, 0]
            assert len(_filed(store.path)) == 2
            # plain DICOM on the TLS port: no association, nothing filed
            assert _send(srv.port, files, None) is None
            # TLS with a certificate another CA issued: refused in the handshake
            assert _send(srv.port, files, _client_ctx(pki["ca"], pki["intruder"])) is None
            # TLS without a client certificate: refused too
            assert _send(srv.port, files, _client_ctx(pki["ca"], None)) is None
            # a caller that does not trust our certificate hangs up
            assert _send(srv.port, files, _client_ctx(pki["rogue_ca"], pki["client"])) is None
            assert len(_filed(store.path)) == 2
            # and the SCP still serves the trusted caller
            assert _send(srv.port, files[:1], _client_ctx(pki["ca"], pki["client"])) == [0]
        finally:
            srv.stop(import_pending=False)


def test_our_client_reaches_a_tls_peer_only_with_the_right_ca_and_host(
    pki, small_demo_dirs, tmp_path
):
    from pynetdicom.presentation import build_context

    files = _ct_files(small_demo_dirs)
    sop_class = str(pydicom.filereader.read_file_meta_info(files[0]).MediaStorageSOPClassUID)
    cert, key = pki["server"]
    settings = ScpSettings(
        ae_title="ARCHIVE",
        port=0,
        host="127.0.0.1",
        auto_import=False,
        tls_cert=cert,
        tls_key=key,
    )
    with CaseStore(tmp_path / "store") as store:
        srv = StorageServer(store, settings)
        srv.start()
        try:
            contexts = [build_context(sop_class, ExplicitVRLittleEndian)]
            good = PacsPeer("127.0.0.1", srv.port, "ARCHIVE", tls_ca=pki["ca"])
            assert "(TLS)" in good.words()
            with _associate(good, contexts) as assoc:
                assert int(assoc.send_c_store(files[0]).Status) == 0
            # the peer's certificate is not from the CA we trust
            with pytest.raises(PacsError, match="TLS handshake failed"):
                with _associate(
                    PacsPeer("127.0.0.1", srv.port, "ARCHIVE", tls_ca=pki["rogue_ca"]), contexts
                ):
                    pass
            # plain DICOM to a TLS port: no association either
            with pytest.raises(PacsError):
                with _associate(PacsPeer("127.0.0.1", srv.port, "ARCHIVE"), contexts):
                    pass
            # the certificate names 127.0.0.1, we dial "localhost": host name refused
            with pytest.raises(PacsError, match="TLS handshake failed"):
                with _associate(
                    PacsPeer("localhost", srv.port, "ARCHIVE", tls_ca=pki["ca"]), contexts
                ):
                    pass
            assert len(_filed(store.path)) == 1
        finally:
            srv.stop(import_pending=False)


def test_tls_options_are_checked_before_anything_listens_or_connects(pki, tmp_path):
    cert, key = pki["server"]
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = [
        (dict(tls_key=key), "tls_cert"),  # a key without its certificate
        (dict(tls_cert=cert), "tls_key"),  # a certificate without its key
        (dict(tls_cert=cert, tls_key=str(tmp_path / "missing.key")), "tls_key"),
        (dict(tls_cert=str(junk), tls_key=key), "tls_cert"),
        (dict(tls_cert=cert, tls_key=key, tls_ca=str(junk)), "tls_ca"),
    ]
    for kw, field in cases:
        with pytest.raises(InvalidInputError) as err:
            ScpSettings(ae_title="MRTDOSE", port=0, **kw).checked()
        assert err.value.field == field, (kw, str(err.value))
    with pytest.raises(InvalidInputError) as err:
        PacsPeer("h", 104, "ARCHIVE", tls_cert=pki["client"][0], tls_key=pki["client"][1]).checked()
    assert err.value.field == "tls_ca"
    with pytest.raises(InvalidInputError) as err:
        PacsPeer("h", 104, "ARCHIVE", tls_ca=str(tmp_path / "none.pem")).checked()
    assert err.value.field == "tls_ca"
    # C-MOVE would need the PACS to connect back to a plain SCP: refused, get is offered
    with CaseStore(tmp_path / "s") as store:
        with pytest.raises(InvalidInputError, match="--method get") as err:
            retrieve_study(
                store, PacsPeer("h", 104, "ARCHIVE", tls_ca=pki["ca"]), "1.2.3.4", method="move"
            )
    assert err.value.field == "method"
