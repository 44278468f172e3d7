"""reporting.file_check.verify_report_path: the check of ``mrtdose verify-report``, callable.

Known answers: a report signed by the MPE and the practitioner is intact against the
exported CA and against the store; one flipped byte is not; a folder named like a
PDF is refused naming the field; and the CLI's ``--json`` output is exactly the
function's result (the CLI calls it).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.reporting.file_check import verify_report_path
from dosimetry_core.reporting.records import report_pdf
from dosimetry_core.store.users import ca_certificate_pem
from tests.core.reporting.test_sig_pades import keyed_store


@pytest.fixture()
def signed(tmp_path: Path) -> Any:
    store, rid = keyed_store(tmp_path / "store")
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(report_pdf(store, rid))
    ca = tmp_path / "ca.pem"
    ca.write_text(ca_certificate_pem(store), encoding="ascii")
    yield store, rid, pdf, ca
    store.close()


def test_intact_against_the_ca_and_the_store_and_a_flipped_byte_is_not(signed: Any) -> None:
    store, rid, pdf, ca = signed
    for kwargs in ({"trust": ca}, {"store": store}):
        out = verify_report_path(pdf, **kwargs)
        assert out["intact"] is True and out["problems"] == [] and out["report_id"] == rid
        assert [s["signed_as"] for s in out["signatures"]] == ["mpe", "practitioner"]
        assert all(s["trusted"] for s in out["signatures"])
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = pdf.with_name("bad.pdf")
    bad.write_bytes(bytes(data))
    out = verify_report_path(bad, trust=ca)
    assert out["intact"] is False and out["problems"]


def test_a_folder_or_a_missing_ca_is_refused_naming_the_field(signed: Any, tmp_path: Path) -> None:
    _, _, pdf, _ = signed
    folder = tmp_path / "x.pdf"
    folder.mkdir()
    with pytest.raises(InvalidInputError) as exc:
        verify_report_path(folder)
    assert exc.value.field == "file"
    with pytest.raises(InvalidInputError) as exc:
        verify_report_path(pdf, trust=tmp_path / "missing.pem")
    assert exc.value.field == "trust"


def test_the_cli_json_is_the_functions_result(signed: Any) -> None:
    from dosimetry_core.cli.main import main

    store, _, pdf, ca = signed
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
            mp.delenv(name, raising=False)
        code = main(["--json", "verify-report", str(pdf), "--trust", str(ca)])
    assert code == 0
    assert json.loads(out.getvalue()) == verify_report_path(str(pdf), trust=str(ca))
