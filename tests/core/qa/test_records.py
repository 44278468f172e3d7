"""QA records: constancy, validity look-up, hashes, permissions, device keys."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.qa.records import (
    compare_constancy,
    device_key_from_dataset,
    list_records,
    lookup_calibration,
    store_record,
    verify_record,
)
from dosimetry_core.store.permissions import Actor

T0 = datetime(2026, 1, 10, 9, 0)
KEY = "Vendor | Model | SN1 | MEGP | 187.56-229.24 keV | OSEM 4i8s"


def _cal(store, value, days, **kw):
    return store_record(
        store,
        "camera-calibration",
        KEY,
        "Lu-177",
        T0 + timedelta(days=days),
        {"cps_per_mbq": value},
        **kw,
    )


def test_constancy_hand_example(store):
    r1 = _cal(store, 9.0, 0)
    r2 = _cal(store, 9.2, 30)
    r3 = _cal(store, 9.9, 60)
    assert r1.status == "ok" and r1.payload["constancy"]["n_previous"] == 0
    # 9.2 vs 9.0: +2.22 % -> ok
    assert r2.status == "ok"
    assert r2.payload["constancy"]["deviation_from_previous_percent"] == pytest.approx(2.2222, 1e-3)
    # 9.9 vs 9.2: +7.61 %; vs mean 9.1: +8.79 % -> warning at 5 %
    assert r3.status == "warning"
    c = r3.payload["constancy"]
    assert c["deviation_from_previous_percent"] == pytest.approx(7.6087, 1e-3)
    assert c["deviation_from_baseline_percent"] == pytest.approx(8.7912, 1e-3)
    # a wider (edited) tolerance accepts it
    assert compare_constancy(9.9, [9.0, 9.2], tolerance_percent=10.0).status == "ok"


def test_lookup_validity(store):
    r1 = _cal(store, 9.0, 0, validity_days=90)
    r2 = _cal(store, 9.1, 100, validity_days=90)
    assert lookup_calibration(store, KEY, "Lu-177", T0 - timedelta(days=1)) is None
    assert lookup_calibration(store, KEY, "Lu-177", T0 + timedelta(days=50)).record_id == (
        r1.record_id
    )
    assert lookup_calibration(store, KEY, "Lu-177", T0 + timedelta(days=95)) is None  # gap
    assert lookup_calibration(store, KEY, "Lu-177", T0 + timedelta(days=120)).record_id == (
        r2.record_id
    )
    assert lookup_calibration(store, KEY, "I-131", T0 + timedelta(days=120)) is None
    assert lookup_calibration(store, "other", "Lu-177", T0 + timedelta(days=120)) is None


def test_hash_detects_tampering(store):
    _cal(store, 9.0, 0)
    (rec,) = list_records(store)
    assert verify_record(rec)
    rec.payload["cps_per_mbq"] = 9.5
    assert not verify_record(rec)


def test_permission_checked_before_storing(store):
    with pytest.raises(PermissionDeniedError):
        _cal(store, 9.0, 0, actor=Actor("tech", "technologist"))
    assert list_records(store) == []
    rec = _cal(store, 9.0, 0, actor=Actor("anna", "physicist"))
    assert rec.created_by == "anna"


def test_bad_record_inputs(store):
    with pytest.raises(InvalidInputError, match="kind"):
        store_record(store, "nonsense", KEY, "Lu-177", T0, {})
    with pytest.raises(InvalidInputError, match="before the measurement"):
        _cal(store, 9.0, 0, valid_until=T0 - timedelta(days=1))
    with pytest.raises(InvalidInputError, match="tolerance"):
        compare_constancy(1.0, [1.0], tolerance_percent=0.0)


def test_device_key_from_dataset():
    ds = Dataset()
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ManufacturerModelName = "Discovery NM/CT 670"
    ds.StationName = "NM1"
    det = Dataset()
    det.CollimatorGridName = "MEGP"
    ds.DetectorInformationSequence = Sequence([det])
    rng = Dataset()
    rng.EnergyWindowLowerLimit = "187.6"
    rng.EnergyWindowUpperLimit = "229.2"
    ew = Dataset()
    ew.EnergyWindowRangeSequence = Sequence([rng])
    ds.EnergyWindowInformationSequence = Sequence([ew])
    ds.ConvolutionKernel = "OSEM 4i8s"
    ds.CorrectedImage = ["ATTN", "SCAT"]
    key = device_key_from_dataset(ds)
    # no DeviceSerialNumber: the station name identifies the camera
    assert key.key == (
        "GE MEDICAL SYSTEMS | Discovery NM/CT 670 | NM1 | MEGP | 187.6-229.2 keV | "
        "OSEM 4i8s; ATTN,SCAT"
    )


def test_stored_record_is_in_the_audit_trail(store):
    audit = pytest.importorskip("dosimetry_core.store.audit")
    rec = _cal(store, 9.0, 0, actor=Actor("anna", "physicist"))
    (entry,) = [e for e in audit.entries(store) if e.action == "qa-camera-calibration"]
    assert entry.username == "anna"
    assert entry.details["record_id"] == rec.record_id
    assert entry.details["record_hash"] == rec.record_hash
