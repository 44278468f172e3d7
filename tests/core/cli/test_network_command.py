"""``mrtdose listen`` (a real process, stopped by SIGTERM) and ``mrtdose pacs find|get|send``.

Known answers: storescu's time point becomes a case of the store, logged with the
calling AE, the address and the case id; an unknown AE is refused and logged; SIGTERM
ends the process with exit 0 and a ``stopped`` line.  ``pacs find --json`` gives the
study loaded into dcmqrscp; ``pacs get`` imports it (exit 0) and a saved peer is used
without options; ``pacs send`` delivers the SEG and the PDF to dcmtk storescp; an
unreachable peer is one line on stderr and exit 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest

from dosimetry_core.cli.main import main
from tests.conftest import copy_store
from tests.core.net_peers import (
    PATIENT_ID,
    free_port,
    start_dcmqrscp,
    start_storescp,
    storescu,
)

ROOT = Path(__file__).resolve().parents[3]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _single_user(monkeypatch):
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE"):
        monkeypatch.delenv(name, raising=False)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tp1_dir(small_demo_dirs) -> Path:
    return next(small_demo_dirs["siemens-bqml"].glob("tp1*"))


class _Lines:
    """The stdout lines of a process, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._q.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        for line in self.lines:
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {self.lines}")


def _listen(store: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(ROOT / ".numba_cache")}
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE"):
        env.pop(name, None)
    first = [] if extra[0] == "--no-json" else [extra[0]]
    argv = ["--store", str(store), *first, "listen", "--port", str(port)]
    argv += ["--ae-title", "MRTDOSE", "--host", "127.0.0.1", "--idle-s", "0.2", *extra[1:]]
    return subprocess.Popen(
        [sys.executable, "-m", "dosimetry_core.cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_listen_imports_refuses_and_stops_on_sigterm(tmp_path, tp1_dir):
    store = tmp_path / "store"
    port = free_port()
    proc = _listen(store, port, "--no-json", "--allow-ae", "STORESCU", "--allow-ae", "MODALITY")
    try:
        out = _Lines(proc)
        out.wait_for(f"listening as AE 'MRTDOSE' on port {port}")
        n = len(list(tp1_dir.rglob("*.dcm")))
        assert storescu(port, "MRTDOSE", "STORESCU", tp1_dir).returncode == 0
        line = out.wait_for("from AE 'STORESCU' at 127.0.0.1")
        assert f"released: {n} instance(s) received, {n} stored, 0 rejected" in line
        imported = out.wait_for("imported into case")
        assert storescu(port, "MRTDOSE", "EVIL", tp1_dir).returncode != 0
        assert "refused" in out.wait_for("from AE 'EVIL' at 127.0.0.1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        out.wait_for("stopped: 2 association(s), 1 study import(s)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    code, text, _ = run("--store", str(store), "--json", "cases")
    [case] = json.loads(text)["cases"]
    assert case["time_points"] == 1 and case["patient_id"] == PATIENT_ID
    assert f"case {case['case_id']}" in imported


def test_listen_json_lines_and_sigint(tmp_path, tp1_dir):
    port = free_port()
    proc = _listen(tmp_path / "store", port, "--json", "--allow-ae", "STORESCU")
    try:
        out = _Lines(proc)
        first = json.loads(out.wait_for('"event": "listening"'))
        assert (first["port"], first["ae_title"]) == (port, "MRTDOSE")
        nm = next(tp1_dir.rglob("NM*/*.dcm"))
        assert storescu(port, "MRTDOSE", "EVIL", nm).returncode != 0
        refused = json.loads(out.wait_for('"event": "association"'))["association"]
        assert (refused["outcome"], refused["calling_ae"], refused["address"]) == (
            "refused",
            "EVIL",
            "127.0.0.1",
        )
        assert storescu(port, "MRTDOSE", "STORESCU", nm).returncode == 0
        imp = json.loads(out.wait_for('"event": "import"'))["import"]
        # one NM file without its CT: the same outcome as mrtdose import of that file
        lone = tmp_path / "lone"
        lone.mkdir()
        shutil.copy(nm, lone / "nm.dcm")
        code, text, _ = run("--store", str(tmp_path / "ref"), "--json", "import", str(lone))
        want = json.loads(text)
        assert len(imp["cases"]) == len(want["cases"]) == 1
        got_tp = imp["import"]["cases"][0]["series"][0]
        want_tp = want["cases"][0]["series"][0]
        assert got_tp == want_tp
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        last = json.loads(out.wait_for('"event": "stopped"'))
        assert (last["associations"], last["imports"]) == (2, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def qr(tmp_path_factory, tp1_dir):
    yield from start_dcmqrscp(tmp_path_factory.mktemp("cli-dcmqrscp"), tp1_dir)


def test_pacs_find_json_get_and_saved_peer(qr, tmp_path):
    store = str(tmp_path / "store")
    peer = ["--host", "127.0.0.1", "--port", str(qr.port), "--called-ae", "PACS"]
    code, text, err = run(
        "--store", store, "pacs", "find", "--patient-id", PATIENT_ID, "--json", *peer
    )
    assert code == 0, err
    data = json.loads(text)
    assert data["patient_id"] == PATIENT_ID
    assert data["peer"] == f"PACS@127.0.0.1:{qr.port}"
    assert [s["study_instance_uid"] for s in data["studies"]] == [qr.study_uid]
    assert data["studies"][0]["patient_name"] == "Demo^Lutetium"
    # get by patient id, saving the peer; then find with the saved peer only
    code, text, err = run(
        "--store", store, "pacs", "get", "--patient-id", PATIENT_ID, "--save-peer", *peer
    )
    assert code == 0, err
    assert f"study {qr.study_uid}: {qr.n_instances} instance(s) received by C-GET" in text
    assert "created" in text
    assert json.loads((tmp_path / "store" / "pacs.json").read_text())["port"] == qr.port
    code, text, err = run("--store", store, "pacs", "find", "--patient-id", PATIENT_ID)
    assert code == 0, err
    assert qr.study_uid in text
    code, text, _ = run("--store", store, "--json", "cases")
    assert [c["time_points"] for c in json.loads(text)["cases"]] == [1]


def test_pacs_errors_are_one_line_exit_1(tmp_path):
    store = str(tmp_path / "store")
    dead = ["--host", "127.0.0.1", "--port", str(free_port()), "--called-ae", "PACS"]
    code, _, err = run("--store", store, "pacs", "find", "--patient-id", PATIENT_ID, *dead)
    assert code == 1
    assert err.startswith("mrtdose: PACS PACS@127.0.0.1:") and "unreachable" in err
    assert err.count("\n") == 1
    code, _, err = run("--store", store, "pacs", "find", "--patient-id", PATIENT_ID)
    assert code == 1 and "no PACS peer: give --host, --port, --called-ae" in err
    code, _, err = run("--store", store, "pacs", "find", "--patient-id", "MRT*", *dead)
    assert code == 1 and "wildcards" in err


def test_pacs_send_seg_and_pdf_to_storescp(small_demo_imported_store, tmp_path, tp1_dir):
    template, case_id = small_demo_imported_store
    store = str(copy_store(template, tmp_path / "store"))
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(PDF)
    for scp in start_storescp(tmp_path / "received"):
        code, text, err = run(
            "--store", store, "--json", "pacs", "send", case_id,
            "--report-pdf", str(pdf), "--ct-dir", str(tp1_dir / "CT"),
            "--host", "127.0.0.1", "--port", str(scp.port), "--called-ae", scp.ae_title,
        )  # fmt: skip
        assert code == 0, err
        data = json.loads(text)
        assert (data["sent"], data["failed"]) == (2, 0)
        assert sorted(i["kind"] for i in data["instances"]) == ["DOC", "SEG"]
        assert any("no dose map" in w for w in data["warnings"])
        got = sorted(str(pydicom.dcmread(p).Modality) for p in scp.folder.glob("*.dcm"))
        assert got == ["DOC", "SEG"]
