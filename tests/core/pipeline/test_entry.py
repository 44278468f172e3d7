"""Technologist data entry in the core: refusals name their field and change nothing,
each entry is audited with who, the net activity matches a hand computation, roles."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.model import (
    Administration,
    Case,
    MeasurementKind,
    Patient,
    SeriesInfo,
    TimePoint,
)
from dosimetry_core.model.quantities import ACTIVITY, from_stored, to_stored
from dosimetry_core.pipeline import entry as E
from dosimetry_core.store import CaseStore
from dosimetry_core.store import audit as audit_trail
from dosimetry_core.store.users import authenticate, bootstrap_admin, create_user

T0 = datetime(2026, 1, 5, 9, 0)
NOW = datetime(2026, 1, 20, 12, 0)
LU177_HALF_LIFE_H = 6.647 * 24.0  # ICRP-107: 6.647 d
PASSWORDS = {"root": "admin-pass-1234", "tom": "tech-pass-1234", "dora": "md-pass-12345"}


def _case() -> Case:
    tp = TimePoint(
        acquired_at=T0 + timedelta(hours=24),
        modality="NM",
        functional=SeriesInfo(series_instance_uid="1.2.3"),
        label="TP1",
    )
    return Case(
        patient=Patient("P-ENTRY", weight_kg=70.0),
        administrations=[
            Administration(
                nuclide="Lu-177", activity_mbq=7400.0, time=T0, radiopharmaceutical="DOTATATE"
            )
        ],
        time_points=[tp],
    )


@pytest.fixture()
def store_case(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = _case()
    store.save_case(case)
    return store, case


def _state(store, case_id):
    return store.load_case(case_id).to_dict(), len(audit_trail.entries(store, case_id))


def _adm_entry(**changes) -> E.AdministrationEntry:
    base = dict(activity_mbq=7400.0, time=T0, nuclide="Lu-177", residual_activity_mbq=0.0)
    base.update(changes)
    return E.AdministrationEntry(**base)


# ------------------------------------------------------------------ refusals
ADMIN_REFUSALS = [
    ("activity_mbq", dict(activity_mbq=-5.0)),
    ("activity_mbq", dict(activity_mbq=0.0)),
    ("activity_mbq", dict(activity_mbq=float("nan"))),
    ("activity_mbq", dict(activity_mbq=float("inf"))),
    ("time", dict(time=NOW + timedelta(minutes=5))),
    ("nuclide", dict(nuclide="Xx-999")),
    ("residual_activity_mbq", dict(residual_activity_mbq=-1.0)),
    # 7400 MBq measured 10 min later is more than the activity once decay-corrected back
    (
        "residual_activity_mbq",
        dict(residual_activity_mbq=7400.0, residual_time=T0 + timedelta(minutes=10)),
    ),
    ("residual_time", dict(residual_activity_mbq=10.0, residual_time=T0 - timedelta(minutes=1))),
    ("cycle", dict(cycle=0)),
]


@pytest.mark.parametrize(("field", "values"), ADMIN_REFUSALS)
def test_administration_refusal_names_its_field_and_changes_nothing(store_case, field, values):
    store, case = store_case
    before = _state(store, case.case_id)
    version = case.version
    with pytest.raises(InvalidInputError) as err:
        E.add_administration(store, case, _adm_entry(**values), now=NOW)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")
    assert _state(store, case.case_id) == before
    assert case.version == version and len(case.administrations) == 1  # caller's case untouched


MEASUREMENT_REFUSALS = [
    (
        "time",
        dict(kind="dose-rate", time=T0 - timedelta(hours=1), dose_rate_usv_h=20.0, distance_m=1.0),
    ),
    (
        "time",
        dict(kind="dose-rate", time=NOW + timedelta(hours=1), dose_rate_usv_h=20.0, distance_m=1.0),
    ),
    (
        "dose_rate_usv_h",
        dict(kind="dose-rate", time=T0 + timedelta(hours=2), dose_rate_usv_h=-1.0, distance_m=1.0),
    ),
    (
        "distance_m",
        dict(kind="dose-rate", time=T0 + timedelta(hours=2), dose_rate_usv_h=20.0, distance_m=0.0),
    ),
    (
        "hematocrit",
        dict(kind="blood", time=T0 + timedelta(hours=1), concentration_bq_ml=900.0, hematocrit=1.0),
    ),
    (
        "hematocrit",
        dict(kind="blood", time=T0 + timedelta(hours=1), concentration_bq_ml=900.0, hematocrit=0.0),
    ),
    ("counts", dict(kind="blood", time=T0 + timedelta(hours=1))),
    (
        "sample_volume_ml",
        dict(kind="blood", time=T0 + timedelta(hours=1), counts=100.0, counting_time_s=60.0),
    ),
    (
        "counting_time_s",
        dict(kind="probe", time=T0 + timedelta(hours=1), counts=100.0, counting_time_s=0.0),
    ),
    ("weight_kg", dict(kind="weight", weight_kg=0.4)),
    ("weight_kg", dict(kind="weight", weight_kg=501.0)),
    ("height_cm", dict(kind="height", height_cm=29.0)),
    ("height_cm", dict(kind="height", height_cm=251.0)),
    (
        "volume_ml",
        dict(
            kind="urine",
            time=T0 + timedelta(hours=6),
            collection_start=T0,
            volume_ml=0.0,
            activity_mbq=100.0,
        ),
    ),
    (
        "collection_start",
        dict(
            kind="urine",
            time=T0 + timedelta(hours=6),
            collection_start=T0 + timedelta(hours=7),
            volume_ml=500.0,
            activity_mbq=100.0,
        ),
    ),
]


@pytest.mark.parametrize(("field", "values"), MEASUREMENT_REFUSALS)
def test_measurement_refusal_names_its_field_and_changes_nothing(store_case, field, values):
    store, case = store_case
    before = _state(store, case.case_id)
    with pytest.raises(InvalidInputError) as err:
        E.add_measurement(store, case, E.MeasurementEntry(**values), now=NOW)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")
    assert _state(store, case.case_id) == before


def test_scan_time_refusals(store_case):
    store, case = store_case
    before = _state(store, case.case_id)
    with pytest.raises(InvalidInputError) as err:
        E.correct_scan_time(store, case, "TP1", T0 - timedelta(hours=1), "clock", now=NOW)
    assert err.value.field == "acquired_at"
    with pytest.raises(InvalidInputError) as err:
        E.correct_scan_time(store, case, "TP1", T0 + timedelta(hours=25), "  ", now=NOW)
    assert err.value.field == "reason"
    with pytest.raises(InvalidInputError) as err:
        E.correct_scan_time(store, case, "TP9", T0 + timedelta(hours=25), "clock", now=NOW)
    assert err.value.field == "time_point"
    assert _state(store, case.case_id) == before


# ------------------------------------------------------------- known answers
def test_net_activity_against_hand_computation_for_lu177(store_case):
    """150 MBq left 10 min after the administration: 150 * 2^(10 min / T1/2) back at t0."""
    store, case = store_case
    adm_id = case.administrations[0].administration_id
    res = E.edit_administration(
        store,
        case,
        adm_id,
        residual_activity_mbq=150.0,
        residual_time=T0 + timedelta(minutes=10),
        measured_by="tom",
        calibrator="CRC-55t #1",
        now=NOW,
    )
    residual_at_t0 = 150.0 * 2.0 ** ((10.0 / 60.0) / LU177_HALF_LIFE_H)
    expected = 7400.0 - residual_at_t0
    assert res.net_activity_mbq == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(7249.8913, abs=1e-3)
    stored = store.load_case(case.case_id)
    rec = E.list_administrations(stored)[0]
    assert rec.net_activity_mbq == pytest.approx(expected, rel=1e-6)
    assert rec.administration.calibrator == "CRC-55t #1" and rec.administration.measured_by == "tom"
    # only the residual fields and who measured changed; the edit is audited before/after
    last = audit_trail.entries(store, case.case_id)[-1]
    assert last.action == "enter-administration" and last.details["operation"] == "edit"
    assert set(last.details["changed"]) == {
        "residual_activity_mbq",
        "residual_time",
        "measured_by",
        "calibrator",
    }
    assert last.details["before"]["residual_activity_mbq"] == 0.0
    assert last.details["values"]["residual_activity_mbq"] == 150.0


def test_activity_units_convert_exactly():
    assert to_stored(ACTIVITY, 200.0, "mCi") == pytest.approx(7400.0)  # 1 mCi = 37 MBq
    assert to_stored(ACTIVITY, 7.4, "GBq") == pytest.approx(7400.0)
    assert from_stored(ACTIVITY, 7400.0, "GBq") == pytest.approx(7.4)
    assert math.isnan(to_stored(ACTIVITY, float("nan"), "GBq"))


def test_old_documents_without_the_new_fields_load():
    d = _case().to_dict()
    for a in d["administrations"]:
        del a["measured_by"], a["calibrator"]
    for t in d["time_points"]:
        del t["acquired_at_original"], t["acquired_at_reason"]
    case = Case.from_dict(d)
    assert (
        case.administrations[0].calibrator == ""
        and case.time_points[0].acquired_at_original is None
    )
    assert Case.from_dict(case.to_dict()).to_dict() == case.to_dict()


# ------------------------------------------------------------------ warnings
def test_plausibility_warnings_are_returned_not_refused(store_case):
    store, case = store_case
    res = E.add_administration(
        store,
        case,
        _adm_entry(activity_mbq=16_000.0, residual_activity_mbq=2_000.0, cycle=2),
        now=NOW,
    )
    assert {w.field for w in res.warnings} == {"activity_mbq", "residual_activity_mbq"}
    assert len(store.load_case(case.case_id).administrations) == 2
    res = E.add_measurement(
        store,
        case,
        E.MeasurementEntry(
            kind="blood", time=T0 + timedelta(hours=1), concentration_bq_ml=800.0, hematocrit=0.65
        ),
        now=NOW,
    )
    assert [w.field for w in res.warnings] == ["hematocrit"]
    res = E.add_measurement(store, case, E.MeasurementEntry(kind="weight", weight_kg=230.0))
    assert [w.field for w in res.warnings] == ["weight_kg"]
    assert store.load_case(case.case_id).patient.weight_kg == 230.0
    ok = E.check_administration(_adm_entry(), now=NOW)
    assert ok.ok and not ok.warnings


# --------------------------------------------------- records, audit, deletion
def test_each_entry_is_audited_with_its_values_and_kinetics_keys(store_case):
    store, case = store_case
    n0 = len(audit_trail.entries(store, case.case_id))
    dr = E.add_measurement(
        store,
        case,
        E.MeasurementEntry(
            kind="dose-rate",
            time=T0 + timedelta(hours=1),
            dose_rate_usv_h=40.0,
            distance_m=1.0,
            background_usv_h=0.2,
            instrument="AD6",
        ),
        now=NOW,
    )
    bl = E.add_measurement(
        store,
        case,
        E.MeasurementEntry(
            kind="blood",
            time=T0 + timedelta(hours=2),
            counts=5000.0,
            counting_time_s=60.0,
            sample_volume_ml=1.0,
            counted_at=T0 + timedelta(hours=3),
            hematocrit=0.42,
        ),
        now=NOW,
    )
    ur = E.add_measurement(
        store,
        case,
        E.MeasurementEntry(
            kind="urine",
            time=T0 + timedelta(hours=6),
            collection_start=T0,
            volume_ml=500.0,
            concentration_bq_ml=2.0e6,
        ),
        now=NOW,
    )
    E.add_measurement(store, case, E.MeasurementEntry(kind="height", height_cm=172.0))
    tp = E.correct_scan_time(
        store, case, "TP1", T0 + timedelta(hours=23, minutes=30), "scanner clock", now=NOW
    )
    stored = store.load_case(case.case_id)
    assert stored.patient.height_cm == 172.0
    m = {x.measurement_id: x for x in stored.measurements}
    dose = m[dr.record["measurement_id"]]
    assert dose.kind == MeasurementKind.DOSE_RATE and dose.unit == "uSv/h"
    assert dose.extra["background"] == 0.2 and dose.extra["distance_m"] == 1.0
    blood = m[bl.record["measurement_id"]]
    assert blood.extra["counting_time_s"] == 60.0 and blood.extra["sample_volume_ml"] == 1.0
    assert blood.extra["hematocrit"] == 0.42
    assert blood.extra["counted_at"] == (T0 + timedelta(hours=3)).isoformat()
    urine = m[ur.record["measurement_id"]]
    assert urine.kind == MeasurementKind.URINE and urine.value == pytest.approx(
        1000.0
    )  # 2 MBq/mL x 500 mL
    tp1 = stored.time_point("TP1")
    assert tp1.acquired_at == T0 + timedelta(hours=23, minutes=30)
    assert (
        tp1.acquired_at_original == T0 + timedelta(hours=24)
        and tp1.acquired_at_reason == "scanner clock"
    )
    assert tp.record["previous_acquired_at"] == (T0 + timedelta(hours=24)).isoformat()
    entries = audit_trail.entries(store, case.case_id)[n0:]
    assert [(e.action, e.details["operation"]) for e in entries] == [
        ("enter-measurement", "add"),
        ("enter-measurement", "add"),
        ("enter-measurement", "add"),
        ("enter-measurement", "set"),
        ("correct-scan-time", "edit"),
    ]
    assert entries[0].details["values"]["value"] == 40.0
    # delete: gone from the case, its values stay in the audit trail
    E.delete_measurement(store, case, bl.record["measurement_id"], reason="haemolysed")
    stored = store.load_case(case.case_id)
    assert bl.record["measurement_id"] not in {x.measurement_id for x in stored.measurements}
    last = audit_trail.entries(store, case.case_id)[-1]
    assert last.details["operation"] == "delete" and last.details["values"]["value"] == 5000.0
    assert last.details["reason"] == "haemolysed"
    with pytest.raises(InvalidInputError) as err:
        E.delete_measurement(store, case, "m-nope")
    assert err.value.field == "measurement_id"


def test_probe_entry_feeds_kinetics(store_case):
    """The extra keys written are the ones kinetics/measurements reads (probe uptake runs)."""
    from dosimetry_core.kinetics.measurements import case_probe_uptake

    store, case = store_case
    for hours, counts in ((24.0, 20_000.0), (48.0, 15_000.0)):
        E.add_measurement(
            store,
            case,
            E.MeasurementEntry(
                kind="probe",
                time=T0 + timedelta(hours=hours),
                counts=counts,
                counting_time_s=60.0,
                background_counts=600.0,
                standard_counts=60_000.0,
                standard_background_counts=600.0,
                standard_counting_time_s=60.0,
                standard_activity_mbq=1.0,
            ),
            now=NOW,
        )
    series = case_probe_uptake(store.load_case(case.case_id))
    # net neck rate over the net standard rate per MBq (standard counted at the reading time)
    assert series.values[0] == pytest.approx((20_000.0 - 600.0) / (60_000.0 - 600.0), rel=1e-9)


# ------------------------------------------------------------------- roles
def test_technologist_allowed_physician_and_anonymous_refused(store_case):
    store, case = store_case
    admin = bootstrap_admin(store, "root", PASSWORDS["root"])
    create_user(store, admin, "tom", PASSWORDS["tom"], "technologist")
    create_user(store, admin, "dora", PASSWORDS["dora"], "physician")
    case = store.load_case(case.case_id)
    before = _state(store, case.case_id)
    entry = E.MeasurementEntry(
        kind="dose-rate", time=T0 + timedelta(hours=1), dose_rate_usv_h=30.0, distance_m=1.0
    )
    store.actor = None
    with pytest.raises(PermissionDeniedError, match="log in"):
        E.add_measurement(store, case, entry, now=NOW)
    store.actor = authenticate(store, "dora", PASSWORDS["dora"])
    with pytest.raises(PermissionDeniedError, match="dora .* may not enter"):
        E.add_measurement(store, case, entry, now=NOW)
    with pytest.raises(PermissionDeniedError):
        E.add_administration(store, case, _adm_entry(cycle=2), now=NOW)
    # the role is checked before the values: a physician learns nothing about them
    with pytest.raises(PermissionDeniedError):
        E.add_administration(store, case, _adm_entry(activity_mbq=-1.0), now=NOW)
    assert _state(store, case.case_id) == before
    store.actor = authenticate(store, "tom", PASSWORDS["tom"])
    res = E.add_measurement(store, case, entry, now=NOW)
    E.add_administration(store, case, _adm_entry(cycle=2), now=NOW)
    stored = store.load_case(case.case_id)
    assert stored.version == before[0]["version"] + 2
    assert (
        next(
            m for m in stored.measurements if m.measurement_id == res.record["measurement_id"]
        ).entered_by
        == "tom"
    )
    last_two = audit_trail.entries(store, case.case_id)[-2:]
    assert [(e.username, e.role, e.action) for e in last_two] == [
        ("tom", "technologist", "enter-measurement"),
        ("tom", "technologist", "enter-administration"),
    ]


def test_dose_rate_at_another_distance_and_probe_without_background_are_warned(store_case):
    store, case = store_case

    def reading(hours: float, distance_m: float) -> E.MeasurementEntry:
        return E.MeasurementEntry(
            kind="dose-rate",
            time=T0 + timedelta(hours=hours),
            dose_rate_usv_h=20.0,
            distance_m=distance_m,
        )

    assert E.add_measurement(store, case, reading(1, 1.0), now=NOW).warnings == ()
    assert E.add_measurement(store, case, reading(2, 1.0), now=NOW).warnings == ()
    res = E.add_measurement(store, case, reading(3, 2.0), now=NOW)
    assert [w.field for w in res.warnings] == ["distance_m"]
    probe = E.MeasurementEntry(
        kind="probe", time=T0 + timedelta(hours=24), counts=1000.0, counting_time_s=60.0
    )
    fields = [w.field for w in E.check_measurement(case, probe, now=NOW).warnings]
    assert fields == ["background_counts", "standard_counts"]


def test_moving_the_administration_after_its_scans_is_refused(store_case):
    store, case = store_case
    before = _state(store, case.case_id)
    adm_id = case.administrations[0].administration_id
    with pytest.raises(InvalidInputError) as err:
        E.edit_administration(store, case, adm_id, time=T0 + timedelta(hours=25), now=NOW)
    assert err.value.field == "time" and "time point TP1" in str(err.value)
    assert _state(store, case.case_id) == before
    # a later cycle is not the first administration: accepted
    E.add_administration(store, case, _adm_entry(time=T0 + timedelta(days=8), cycle=2), now=NOW)
