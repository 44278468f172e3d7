"""Fixtures of the store tests: a temporary store and a fully populated case.

``make_case`` is a plain function too, so subprocess helpers can import it
(``from tests.core.store.conftest import make_case``).

Backends: every test using the ``store`` (or ``store_url``) fixture runs on
SQLite and, when ``MRTDOSE_TEST_PG_URL`` names a PostgreSQL server (e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/ws``; ``.ci/run`` starts one),
also on PostgreSQL, each test in a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from dosimetry_core.model import (
    VOI,
    Administration,
    CalibrationStatus,
    Case,
    Geometry,
    ImageUnits,
    Measurement,
    MeasurementKind,
    Patient,
    SeriesInfo,
    TimePoint,
    VoiKind,
    Volume,
)
from dosimetry_core.store import CaseStore

SPECT_SHAPE = (6, 8, 10)
CT_SHAPE = (12, 16, 20)


def make_volume(
    shape: tuple[int, int, int], dtype: str, units: ImageUnits, seed: int, spacing_mm: float = 4.8
) -> Volume:
    """Small deterministic volume of the given dtype (noise so that seeds differ)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        array = (rng.random(shape) * 1e4).astype(dtype)
    elif np.dtype(dtype).kind == "b":
        array = rng.random(shape) > 0.7
    else:
        info = np.iinfo(dtype)
        array = rng.integers(
            max(info.min, -1024), min(info.max, 3000), shape, endpoint=True
        ).astype(dtype)
    geometry = Geometry(shape, (spacing_mm, spacing_mm, spacing_mm), (-100.0, -120.0, 30.5 + seed))
    return Volume(array, geometry, units, f"volume {seed}")


def make_case(store: CaseStore, patient_id: str = "P-001", seed: int = 0) -> Case:
    """A case with a patient, an administration, 2 SPECT/CT time points, 2 VOIs and 2 measurements.

    All volumes are stored in ``store`` (the case itself is not saved).
    """
    t0 = datetime(2026, 3, 2, 9, 30)
    time_points = []
    for i, day in enumerate((0, 3)):
        spect = make_volume(SPECT_SHAPE, "float32", ImageUnits.BQML, seed * 10 + i)
        ct = make_volume(CT_SHAPE, "int16", ImageUnits.HU, seed * 10 + 5 + i, spacing_mm=2.4)
        time_points.append(
            TimePoint(
                acquired_at=datetime(2026, 3, 2 + day, 13, 30),
                modality="NM",
                functional=SeriesInfo(
                    f"1.2.826.0.1.{seed}.{i}",
                    study_instance_uid="1.2.826.0.1.99",
                    modality="NM",
                    series_description=f"SPECT TP{i + 1}",
                    calibration_status=CalibrationStatus.CALIBRATION_FACTOR,
                    cps_per_mbq=9.3,
                    corrections=["ATTN", "SCAT"],
                    nuclide="Lu-177",
                    volume=store.put_volume(spect, meta={"series": i}),
                ),
                anatomical=SeriesInfo(
                    f"1.2.826.0.2.{seed}.{i}",
                    modality="CT",
                    volume=store.put_volume(ct, description="CT"),
                ),
                duration_s=1200.0,
                label=f"TP{i + 1}",
                total_activity_mbq=5000.0 / (i + 1),
            )
        )
    mask = make_volume(SPECT_SHAPE, "uint8", ImageUnits.MASK, seed * 10 + 9)
    mask_ref = store.put_volume(mask, description="kidney mask")
    lesion = make_volume(SPECT_SHAPE, "bool", ImageUnits.MASK, seed * 10 + 8)
    return Case(
        patient=Patient(patient_id, "Doe^Jane", date(1961, 5, 17), "F", 61.5, 165.0),
        administrations=[
            Administration(
                "Lu-177",
                7400.0,
                t0,
                "Lu-177 DOTATATE",
                residual_activity_mbq=35.0,
                residual_time=datetime(2026, 3, 2, 10, 0),
                entered_by="tech",
            )
        ],
        time_points=time_points,
        vois=[
            VOI(
                "Kidney L",
                VoiKind.ORGAN,
                mask_ref,
                (0, 255, 0),
                time_points[0].time_point_id,
                history=[{"who": "phys", "what": "drawn"}],
            ),
            VOI("Lesion 1", VoiKind.LESION, store.put_volume(lesion), (255, 0, 0)),
        ],
        measurements=[
            Measurement(
                MeasurementKind.DOSE_RATE, 12.5, "uSv/h", datetime(2026, 3, 2, 14, 0), "tech"
            ),
            Measurement(
                MeasurementKind.BLOOD_SAMPLE,
                1234.0,
                "cpm",
                datetime(2026, 3, 2, 15, 0),
                note="2 mL",
                extra={"well": 3},
            ),
        ],
        protocol="Lu-177 DOTATATE 4 cycles",
        description=f"cycle 1 ({seed})",
        created_at=datetime(2026, 3, 2, 9, 0, seed),
        extra={"origin": "test"},
    )


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    """Folder of a not yet created store."""
    return tmp_path / "case-store"


PG_URL_ENV = "MRTDOSE_TEST_PG_URL"
BACKENDS = ["sqlite", *(["postgresql"] if os.environ.get(PG_URL_ENV) else [])]


def _database_url(base: str, dbname: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the store folder's file), else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    from sqlalchemy import create_engine, text

    base = os.environ[PG_URL_ENV]
    dbname = f"mrt_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {dbname}"))
        yield _database_url(base, dbname)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
    finally:
        admin.dispose()


@pytest.fixture()
def store(store_path: Path, store_url: str | None) -> Iterator[CaseStore]:
    """A fresh store (SQLite in a temporary folder, or PostgreSQL), closed after the test."""
    with CaseStore(store_path, url=store_url) as s:
        yield s


@pytest.fixture()
def saved_case(store: CaseStore) -> Case:
    """A populated case saved once (version 1)."""
    return store.save_case(make_case(store))
