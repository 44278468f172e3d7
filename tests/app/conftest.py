"""Fixtures of the GUI tests: an in-memory case store with a synthetic SPECT/CT case.

``QT_QPA_PLATFORM`` defaults to ``offscreen`` (pyqtgraph draws and ``grab()``
works there); a runner that exports another platform (e.g. ``xcb`` under Xvfb)
keeps it.  Qt warnings fail the test that caused them.

The fake store implements the part of :class:`dosimetry_core.store.CaseStore`
the application uses (``list_cases``, ``find_cases``, ``load_case``,
``load_volume``, ``put_volume``, ``save_case``) so the same tests run against
the real store later.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from dosimetry_core.errors import CaseNotFoundError, StoreError
from dosimetry_core.model import (
    Administration,
    CalibrationStatus,
    Case,
    Geometry,
    ImageUnits,
    Patient,
    SeriesInfo,
    TimePoint,
    Volume,
    VolumeRef,
)

FRAME_UID = "1.2.826.0.1.3680043.8.498.1"
ADMIN_TIME = datetime(2024, 5, 6, 9, 30)
HOURS = (4.0, 24.0, 96.0)
CT_GEOMETRY = Geometry(
    shape_zyx=(40, 64, 64),
    spacing_mm=(6.0, 6.0, 8.0),  # anisotropic: 8 mm slices
    origin_mm=(-189.0, -189.0, -156.0),
    frame_of_reference_uid=FRAME_UID,
)
SPECT_GEOMETRY = Geometry(
    shape_zyx=(32, 32, 32),
    spacing_mm=(12.0, 12.0, 12.0),
    origin_mm=(-186.0, -186.0, -186.0),
    frame_of_reference_uid=FRAME_UID,
)
# hot-sphere centre (LPS mm) and peak concentration (Bq/mL) at each time point
LESION_CENTRES = ((40.0, -20.0, 10.0), (52.0, -20.0, 10.0), (64.0, -8.0, 26.0))
LESION_PEAKS = (250_000.0, 180_000.0, 60_000.0)


# ------------------------------------------------------------ synthetic data
def _world_grid(geom: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, j, i = np.meshgrid(*(np.arange(n) for n in geom.shape_zyx), indexing="ij")
    w = geom.index_to_world(np.stack([k, j, i], axis=-1))
    return w[..., 0], w[..., 1], w[..., 2]


def synthetic_ct(geom: Geometry = CT_GEOMETRY) -> Volume:
    """A stylised trunk in HU: air, soft-tissue body, lungs, spine, liver."""
    x, y, z = _world_grid(geom)
    hu = np.full(geom.shape_zyx, -1000.0, dtype=np.float32)
    body = (x / 160.0) ** 2 + ((y + 10.0) / 110.0) ** 2 <= 1.0
    hu[body] = 30.0
    lungs = ((np.abs(x) - 70.0) / 50.0) ** 2 + ((y + 5.0) / 65.0) ** 2 + (
        (z - 90.0) / 90.0
    ) ** 2 <= 1.0
    hu[lungs & body] = -820.0
    liver = ((x + 60.0) / 75.0) ** 2 + ((y + 5.0) / 60.0) ** 2 + ((z + 10.0) / 55.0) ** 2 <= 1.0
    hu[liver & body] = 60.0
    spine = (x / 18.0) ** 2 + ((y - 60.0) / 18.0) ** 2 <= 1.0
    hu[spine] = 700.0
    return Volume(hu.astype(np.int16), geom, ImageUnits.HU, "CT 5mm B30f")


def synthetic_spect(index: int, geom: Geometry = SPECT_GEOMETRY) -> Volume:
    """Bq/mL: body background, kidneys, liver, and a hot sphere that moves and washes out."""
    x, y, z = _world_grid(geom)
    decay = (1.0, 0.75, 0.35)[index]
    act = np.zeros(geom.shape_zyx, dtype=np.float32)
    body = (x / 160.0) ** 2 + ((y + 10.0) / 110.0) ** 2 <= 1.0
    act[body] = 2_000.0 * decay
    for sx in (-75.0, 75.0):  # kidneys
        kid = ((x - sx) / 30.0) ** 2 + ((y - 35.0) / 35.0) ** 2 + ((z + 60.0) / 55.0) ** 2 <= 1.0
        act[kid] = 60_000.0 * decay
    liver = ((x + 60.0) / 75.0) ** 2 + ((y + 5.0) / 60.0) ** 2 + ((z + 10.0) / 55.0) ** 2 <= 1.0
    act[liver & body] = 15_000.0 * decay
    cx, cy, cz = LESION_CENTRES[index]
    r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
    act += (LESION_PEAKS[index] * np.exp(-r2 / (2 * 18.0**2))).astype(np.float32)
    return Volume(act, geom, ImageUnits.BQML, "SPECT Lu177 OSEM Bq/mL")


def _ref(volume: Volume) -> VolumeRef:
    key = hashlib.sha256(np.ascontiguousarray(volume.array).tobytes()).hexdigest()
    return VolumeRef(
        key, volume.geometry, volume.units, str(volume.array.dtype), volume.description
    )


@dataclass
class FakeCaseSummary:
    """Same fields as :class:`dosimetry_core.store.CaseSummary`."""

    case_id: str
    patient_id: str
    patient_name: str
    protocol: str
    n_time_points: int
    created_at: datetime
    modified_at: datetime | None
    version: int
    description: str


class FakeStore:
    """In-memory stand-in for :class:`dosimetry_core.store.CaseStore`."""

    def __init__(self) -> None:
        self.actor: Any = None
        self.cases: dict[str, Case] = {}
        self.volumes: dict[VolumeRef, Volume] = {}
        self.load_volume_calls = 0

    def put_volume(self, volume: Volume, description: str = "") -> VolumeRef:
        ref = _ref(volume)
        if description:
            ref = VolumeRef(ref.key, ref.geometry, ref.units, ref.dtype, description)
        self.volumes[ref] = volume
        return ref

    def load_volume(self, ref: VolumeRef) -> Volume:
        self.load_volume_calls += 1
        try:
            return self.volumes[ref]
        except KeyError:
            raise StoreError(f"volume {ref.key[:12]} is missing from the store") from None

    def has_users(self) -> bool:
        return False

    def audit_spec(self, action: str, **details: Any) -> tuple[Any, str, dict[str, Any]]:
        return (self.actor, action, details)

    def save_case(self, case: Case, *, audit: Any = None) -> Case:
        saved = copy.deepcopy(case)
        saved.version = case.version + 1
        saved.modified_at = datetime(2024, 6, 1, 12, 0) + timedelta(minutes=len(self.cases))
        self.cases[saved.case_id] = saved
        return copy.deepcopy(saved)

    def load_case(self, case_id: str) -> Case:
        if case_id not in self.cases:
            raise CaseNotFoundError(f"no case {case_id!r} in the store")
        return copy.deepcopy(self.cases[case_id])

    def list_cases(self) -> list[FakeCaseSummary]:
        return [
            FakeCaseSummary(
                case_id=c.case_id,
                patient_id=c.patient.patient_id,
                patient_name=c.patient.name,
                protocol=c.protocol,
                n_time_points=len(c.time_points),
                created_at=c.created_at,
                modified_at=c.modified_at,
                version=c.version,
                description=c.description,
            )
            for c in self.cases.values()
        ]

    def find_cases(self, patient_id: str | None = None) -> list[FakeCaseSummary]:
        return [s for s in self.list_cases() if patient_id is None or s.patient_id == patient_id]


def build_synthetic_case(
    store: FakeStore,
    patient_id: str = "SYN-0001",
    name: str = "Synthetic^Patient",
    protocol: str = "Lu-177 DOTATATE 4-TP",
    n_time_points: int = 3,
) -> Case:
    """A case with ``n_time_points`` SPECT/CT time points (4, 24, 96 h) saved into ``store``."""
    adm = Administration(
        nuclide="Lu-177",
        activity_mbq=7400.0,
        time=ADMIN_TIME,
        radiopharmaceutical="DOTATATE",
    )
    tps = []
    ct = synthetic_ct()
    for n in range(n_time_points):
        spect = synthetic_spect(n)
        ct_n = ct if n < 2 else ct.with_array(ct.array.copy())  # distinct array, same grid
        fref = store.put_volume(spect)
        cref = store.put_volume(ct_n)
        tps.append(
            TimePoint(
                acquired_at=ADMIN_TIME + timedelta(hours=HOURS[n]),
                modality="NM",
                label=f"TP{n + 1}",
                duration_s=1800.0,
                total_activity_mbq=spect.total_activity_mbq(),
                functional=SeriesInfo(
                    series_instance_uid=f"1.2.3.{n}.1",
                    modality="NM",
                    series_description=spect.description,
                    frame_of_reference_uid=FRAME_UID,
                    source_units="BQML",
                    calibration_status=CalibrationStatus.VENDOR_BQML,
                    nuclide="Lu-177",
                    volume=fref,
                ),
                anatomical=SeriesInfo(
                    series_instance_uid=f"1.2.3.{n}.2",
                    modality="CT",
                    series_description=ct.description,
                    frame_of_reference_uid=FRAME_UID,
                    volume=cref,
                ),
            )
        )
    case = Case(
        patient=Patient(patient_id=patient_id, name=name, sex="F", weight_kg=72.0),
        administrations=[adm],
        time_points=tps,
        protocol=protocol,
        description="Synthetic SPECT/CT case for GUI tests",
        created_at=datetime(2024, 5, 6, 8, 0),
    )
    return store.save_case(case)


def populate(store: Any) -> Case:
    """Save the synthetic case (3 time points) and two small other cases into ``store``."""
    case = build_synthetic_case(store)
    build_synthetic_case(store, "P-1002", "Doe^Jane", "Lu-177 PSMA", n_time_points=1)
    build_synthetic_case(store, "P-1003", "Roe^Richard", "I-131 NaI", n_time_points=2)
    return case


def make_fake_store() -> tuple[FakeStore, Case]:
    """An in-memory store holding :func:`populate`'s cases (also used by the screenshot tool)."""
    store = FakeStore()
    return store, populate(store)


# ------------------------------------------------------------------ fixtures
@pytest.fixture()
def store_and_case(tmp_path: Any) -> tuple[Any, Case]:
    """The store under test and the synthetic 3-time-point case in it.

    ``MRT_APP_TEST_STORE=real`` runs the GUI tests against
    :class:`dosimetry_core.store.CaseStore` in a temporary directory instead of
    the in-memory fake.
    """
    if os.environ.get("MRT_APP_TEST_STORE", "fake") == "real":
        from dosimetry_core.store import CaseStore

        store: Any = CaseStore(tmp_path / "store")
        return store, populate(store)
    return make_fake_store()


@pytest.fixture()
def fake_store(store_and_case: tuple[Any, Case]) -> Any:
    return store_and_case[0]


@pytest.fixture()
def synthetic_case(store_and_case: tuple[Any, Case]) -> Case:
    return store_and_case[1]


@pytest.fixture()
def shown_errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Replaces the modal error box; collects (title, message, details) instead."""
    from app.common import error_display

    shown: list[tuple[str, str, str]] = []

    def record(parent: Any, title: str, message: str, details: str = "") -> None:
        shown.append((title, message, details))

    monkeypatch.setattr(error_display, "show_error", record)
    monkeypatch.setattr(error_display, "show_info", lambda parent, title, message: None)
    return shown


@pytest.fixture()
def shown_infos(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replaces the modal information box; collects (title, message) instead."""
    from app.common import error_display

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        error_display, "show_info", lambda parent, title, message: shown.append((title, message))
    )
    return shown


@pytest.fixture(autouse=True)
def _fake_store_has_no_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory store keeps no report records: every case reads as "no report".

    Tests with a real :class:`~dosimetry_core.store.CaseStore` read report
    states through the core as the workstation does.
    """
    from dosimetry_core.pipeline import worklist

    real = worklist.report_status

    def status(store: Any, case_id: str) -> str:
        if isinstance(store, FakeStore):
            return worklist.NO_REPORT
        return real(store, case_id)

    monkeypatch.setattr(worklist, "report_status", status)


# Messages the offscreen/xcb platforms print that say nothing about our code.
_IGNORED_QT_MESSAGES = (
    "This plugin does not support propagateSizeHints()",
    "This plugin does not support raise()",
    "This plugin does not support grabbing the keyboard",
)


@pytest.fixture(autouse=True)
def _fail_on_qt_warnings(qtlog: Any) -> Any:
    """A Qt warning, critical or fatal message emitted during a test fails it."""
    yield
    from PySide6.QtCore import QtMsgType

    bad = [
        r.message
        for r in qtlog.records
        if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
        and not any(m in r.message for m in _IGNORED_QT_MESSAGES)
    ]
    if bad:
        pytest.fail("Qt warnings during the test:\n" + "\n".join(bad), pytrace=False)


@pytest.fixture(autouse=True)
def _no_modal_error_box(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A modal error box would block the test run forever: an unexpected one fails the test.

    Tests that expect an error ask for ``shown_errors`` (which replaces this
    recorder with theirs); any other error reaching the one display path is a
    failure naming the message.
    """
    from app.common import error_display

    unexpected: list[tuple[str, str]] = []

    def record(parent: Any, title: str, message: str, details: str = "") -> None:
        unexpected.append((title, message))

    monkeypatch.setattr(error_display, "show_error", record)
    yield unexpected
    if unexpected and error_display.show_error is record:
        pytest.fail(f"unexpected error dialog(s): {unexpected}", pytrace=False)
