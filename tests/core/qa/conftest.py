"""Synthetic QA phantoms written once per session (our demo SPECT model, known answers)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cylinder_phantom(tmp_path_factory):
    """Uniform cylinder, 100 MBq Lu-177 measured 2 h before the scan, Poisson noise."""
    from dosimetry_core.phantoms.qa_phantoms import write_cylinder_phantom

    return write_cylinder_phantom(tmp_path_factory.mktemp("qa-cylinder"))


@pytest.fixture(scope="session")
def iec_phantom(tmp_path_factory):
    """NEMA IEC body phantom style scan, spheres 800 kBq/mL, background 100 kBq/mL (8:1)."""
    from dosimetry_core.phantoms.qa_phantoms import write_iec_phantom

    return write_iec_phantom(tmp_path_factory.mktemp("qa-iec"))


@pytest.fixture()
def store(tmp_path: Path):
    from dosimetry_core.store import CaseStore

    with CaseStore(tmp_path / "store") as s:
        yield s
