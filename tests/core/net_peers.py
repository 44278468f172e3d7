"""Loopback DICOM peers for the networking tests: dcmtk's dcmqrscp and storescp, free ports.

Every peer is a subprocess stopped at the end of its fixture.  A test that needs a
dcmtk binary is skipped, with the binary named, when it is missing (CI installs
Debian's dcmtk).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PATIENT_ID = "MRT-DEMO-001"


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"dcmtk's {binary} is not installed (apt-get install dcmtk)")
    return path


def wait_port(port: int, proc: subprocess.Popen[str], timeout_s: float = 20.0) -> None:
    """Wait until something accepts connections on ``port`` (or the process died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode}: {proc.stdout}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate one peer process we started (by its own handle)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def storescu(
    port: int, called_ae: str, calling_ae: str, *files: Path
) -> subprocess.CompletedProcess[str]:
    """dcmtk storescu of ``files`` (folders are scanned for ``*.dcm``) to loopback ``port``."""
    args = [need("storescu"), "-aet", calling_ae, "-aec", called_ae]
    if any(f.is_dir() for f in files):
        args += ["+sd", "+r", "+sp", "*.dcm"]
    return subprocess.run(
        [*args, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class QrPeer:
    """A dcmqrscp archive on loopback holding one study of the demo patient."""

    port: int
    called_ae: str
    move_port: int
    """Port dcmqrscp has for our AE title MRTDOSE (C-MOVE destination)."""
    study_uid: str
    n_instances: int


def start_dcmqrscp(root: Path, demo_tp: Path) -> Iterator[QrPeer]:
    """dcmqrscp (fork mode) with a config in ``root``, loaded with ``demo_tp``'s files."""
    import pydicom

    binary = need("dcmqrscp")
    port, move_port = free_port(), free_port()
    db = root / "db"
    db.mkdir(parents=True)
    cfg = root / "dcmqrscp.cfg"
    cfg.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\n"
        f"mrtdose = (MRTDOSE, 127.0.0.1, {move_port})\n"
        "HostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nPACS {db} RW (200, 1024mb) ANY\nAETable END\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_port(port, proc)
        files = sorted(demo_tp.rglob("*.dcm"))
        done = storescu(port, "PACS", "LOADER", *files)
        assert done.returncode == 0, done.stderr
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        yield QrPeer(port, "PACS", move_port, study, len(files))
    finally:
        stop(proc)


@dataclass
class StoreScp:
    """dcmtk storescp writing what it receives into ``folder``."""

    port: int
    ae_title: str
    folder: Path


def start_storescp(folder: Path) -> Iterator[StoreScp]:
    binary = need("storescp")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "-aet", "TESTSCP", "-od", str(folder), "-fe", ".dcm", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port(port, proc)
        yield StoreScp(port, "TESTSCP", folder)
    finally:
        stop(proc)


def dciodvfy_errors(path: Path) -> list[str]:
    """'Error' lines of dciodvfy for one file."""
    out = subprocess.run([need("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if "Error" in line]
