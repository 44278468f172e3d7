"""Case model: serialisation round trip and helpers."""

import json
from datetime import datetime

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
    VolumeRef,
)


def _ref(key: str, units=ImageUnits.BQML) -> VolumeRef:
    return VolumeRef(key, Geometry((2, 3, 4), (4.8, 4.8, 4.8)), units, "float32", "x")


def make_case() -> Case:
    t0 = datetime(2026, 3, 2, 9, 30)
    tps = [
        TimePoint(
            acquired_at=datetime(2026, 3, 2 + d, 13, 30),
            modality="NM",
            functional=SeriesInfo(
                f"1.2.3.{i}",
                modality="NM",
                calibration_status=CalibrationStatus.CALIBRATION_FACTOR,
                cps_per_mbq=9.0,
                volume=_ref(f"a{i}"),
            ),
            anatomical=SeriesInfo(f"1.2.4.{i}", modality="CT", volume=_ref(f"c{i}", ImageUnits.HU)),
            duration_s=1200.0,
            total_activity_mbq=5000.0 - i,
        )
        for i, d in enumerate((0, 1))
    ]
    return Case(
        patient=Patient("P1", "Doe^Jane", sex="F", weight_kg=60.0),
        administrations=[Administration("Lu-177", 7400.0, t0, "Lu-177 DOTATATE")],
        time_points=tps,
        vois=[VOI("Kidney L", VoiKind.ORGAN, _ref("m", ImageUnits.MASK))],
        measurements=[Measurement(MeasurementKind.DOSE_RATE, 12.5, "uSv/h", t0, "tech")],
    )


def test_case_round_trips_through_json():
    case = make_case()
    text = json.dumps(case.to_dict())
    back = Case.from_dict(json.loads(text))
    assert back.to_dict() == case.to_dict()
    assert back.time_points[0].functional.calibration_status == CalibrationStatus.CALIBRATION_FACTOR


def test_hours_after_administration_and_time_point_lookup():
    case = make_case()
    tp = case.time_point("1")
    assert case.hours_after_administration(tp) == pytest.approx(4.0)
    assert case.time_point("2").acquired_at == datetime(2026, 3, 3, 13, 30)
    assert case.time_point(tp.time_point_id) is tp
    with pytest.raises(KeyError):
        case.time_point("9")
    assert len(case.volume_refs()) == 5


def test_volume_total_activity_in_mbq():
    g = Geometry((2, 2, 2), (10.0, 10.0, 10.0))  # 1 mL voxels
    v = Volume(np.full((2, 2, 2), 1e6, dtype=np.float32), g, ImageUnits.BQML)
    assert v.total_activity_mbq() == pytest.approx(8.0)
    with pytest.raises(ValueError, match="Bq/mL"):
        v.with_array(v.array, ImageUnits.COUNTS).total_activity_mbq()
    with pytest.raises(ValueError, match="does not match"):
        Volume(np.zeros((2, 2, 3)), g)


def test_registration_round_trips_with_the_case():
    from dosimetry_core.model import Registration, RegistrationStatus

    case = make_case()
    tp = case.sorted_time_points()[1]
    tp.registration = Registration(
        reference_time_point_id=case.sorted_time_points()[0].time_point_id,
        matrix_ref_to_tp=[[1, 0, 0, 5.0], [0, 1, 0, -4.0], [0, 0, 1, 3.0], [0, 0, 0, 1]],
        translation_mm=(5.0, -4.0, 3.0),
        method="rigid MI",
        deformation=_ref("def"),
        quality={"mutual_information": -0.61},
        status=RegistrationStatus.ACCEPTED,
    )
    back = Case.from_dict(json.loads(json.dumps(case.to_dict())))
    assert back.to_dict() == case.to_dict()
    assert back.sorted_time_points()[1].registration.status == RegistrationStatus.ACCEPTED
    assert len(back.volume_refs()) == 6  # the deformation field is a stored volume too


def test_derived_maps_round_trip_and_are_listed_newest_first():
    from dosimetry_core.model import DerivedKind, DerivedMap

    case = make_case()
    old = DerivedMap(
        DerivedKind.DOSE,
        _ref("d1", ImageUnits.GY),
        "LED",
        {"method": "led"},
        created_at=datetime(2026, 3, 9, 10, 0),
        superseded=True,
    )
    new = DerivedMap(
        DerivedKind.DOSE,
        _ref("d2", ImageUnits.GY),
        "VSV",
        {"method": "vsv"},
        created_at=datetime(2026, 3, 9, 11, 0),
    )
    unc = DerivedMap(
        DerivedKind.DOSE_UNCERTAINTY,
        _ref("u", ImageUnits.UNKNOWN),
        "MC SD",
        parent_id=new.derived_id,
    )
    case.derived = [old, new, unc]
    back = Case.from_dict(json.loads(json.dumps(case.to_dict())))
    assert back.to_dict() == case.to_dict()
    assert [d.derived_id for d in back.derived_maps("dose")] == [new.derived_id]
    assert [d.label for d in back.derived_maps(DerivedKind.DOSE, current_only=False)] == [
        "VSV",
        "LED",
    ]
    assert back.find_derived(unc.derived_id).parent_id == new.derived_id
    # the store keeps every referenced blob alive
    assert {"d1", "d2", "u"} <= {r.key for r in back.volume_refs()}
    with pytest.raises(KeyError):
        back.find_derived("map-nope")
