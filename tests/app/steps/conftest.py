"""Fixtures of the step tests: a real case store in a temporary folder with a small case.

``entry_store`` holds one case (patient, a Lu-177 administration two days ago,
one time point a day later, no images: data entry needs none) and, on request,
accounts of a technologist and a physician.  ``entry_session`` is a
:class:`app.session.CaseSession` on it with the case open.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dosimetry_core.model import Administration, Case, Patient, SeriesInfo, TimePoint
from dosimetry_core.store import CaseStore

ENTRY_T0 = (datetime.now() - timedelta(days=2)).replace(second=0, microsecond=0)
"""Administration time of the entry case (in the past: future times are refused)."""
ENTRY_CASE_ID = "case-entry"
ENTRY_PASSWORDS = {"root": "admin-pass-1234", "tom": "tech-pass-1234", "dora": "md-pass-12345"}


def make_entry_case() -> Case:
    tp = TimePoint(
        acquired_at=ENTRY_T0 + timedelta(hours=24),
        modality="NM",
        functional=SeriesInfo(series_instance_uid="1.2.826.0.1.3680043.8.498.77"),
        label="TP1",
    )
    adm = Administration(
        nuclide="Lu-177",
        activity_mbq=7400.0,
        time=ENTRY_T0,
        radiopharmaceutical="DOTATATE",
        administration_id="adm-entry-1",
    )
    return Case(
        patient=Patient("P-ENTRY", name="Entry^Test", weight_kg=70.0),
        administrations=[adm],
        time_points=[tp],
        case_id=ENTRY_CASE_ID,
    )


@pytest.fixture()
def entry_store(tmp_path: Any) -> Any:
    store = CaseStore(tmp_path / "entry-store")
    store.save_case(make_entry_case())
    yield store
    store.close()


def add_entry_accounts(store: Any) -> None:
    """A technologist ``tom`` and a physician ``dora`` (the admin is ``root``)."""
    from dosimetry_core.store.users import bootstrap_admin, create_user

    admin = bootstrap_admin(store, "root", ENTRY_PASSWORDS["root"])
    create_user(store, admin, "tom", ENTRY_PASSWORDS["tom"], "technologist")
    create_user(store, admin, "dora", ENTRY_PASSWORDS["dora"], "physician")


@pytest.fixture()
def entry_session(qapp: Any, entry_store: Any) -> Any:
    from app.session import CaseSession

    session = CaseSession(entry_store, entry_store.path)
    session.open_case(ENTRY_CASE_ID)
    return session


# ---------------------------------------------- the physicist's analysis (issue 15)
@pytest.fixture(scope="session")
def analysis_store_dir(small_demo_registered_store: Any, tmp_path_factory: Any) -> Any:
    """A store folder built once per session: the small noise-free demo imported (its
    RTSTRUCT as draft VOIs), every time point registered to TP1, and a voxel-wise TIA
    map on the SPECT grid.  No accounts (a single-user store: every action allowed).
    Never open it directly: ``analysis_session`` hands each test its own copy."""
    from dosimetry_core.pipeline.tia_map import compute_tia_map
    from tests.conftest import copy_store

    template, case_id = small_demo_registered_store  # imported and registered once per session
    folder = copy_store(template, tmp_path_factory.mktemp("analysis") / "store")
    with CaseStore(folder) as store:
        compute_tia_map(store, case_id)
    (folder / "CASE_ID").write_text(case_id)
    return folder


@pytest.fixture()
def analysis_store(analysis_store_dir: Any, tmp_path: Any) -> Any:
    """A private copy of ``analysis_store_dir`` (a CaseStore); ``store.case_id`` names its case."""
    import shutil

    folder = tmp_path / "analysis-store"
    shutil.copytree(analysis_store_dir, folder)
    store = CaseStore(folder)
    store.case_id = (folder / "CASE_ID").read_text()  # type: ignore[attr-defined]
    yield store
    store.close()


@pytest.fixture()
def analysis_session(qapp: Any, analysis_store: Any) -> Any:
    """A CaseSession on ``analysis_store`` with its demo case open."""
    from app.session import CaseSession

    session = CaseSession(analysis_store, analysis_store.path)
    session.open_case(analysis_store.case_id)
    yield session
    session.cancel_jobs()
