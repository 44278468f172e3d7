"""The data model: plain dataclasses, no imports of other project packages.

Unit conventions: :mod:`dosimetry_core.model.units`.
Geometry conventions: :mod:`dosimetry_core.model.geometry`.
"""

from dosimetry_core.model.case import (
    VOI,
    Administration,
    CalibrationStatus,
    Case,
    DerivedKind,
    DerivedMap,
    Measurement,
    MeasurementKind,
    Patient,
    Registration,
    RegistrationStatus,
    SeriesInfo,
    TimePoint,
    VoiKind,
    VoiStatus,
    new_id,
)
from dosimetry_core.model.geometry import Geometry
from dosimetry_core.model.results import (
    NET_ACTIVITY_DEFINITION,
    DoseSummary,
    KineticsRecord,
    ProtocolRun,
    Result,
    VoiKinetics,
)
from dosimetry_core.model.units import ImageUnits
from dosimetry_core.model.volume import Volume, VolumeRef

__all__ = [
    "NET_ACTIVITY_DEFINITION",
    "VOI",
    "Administration",
    "CalibrationStatus",
    "Case",
    "DerivedKind",
    "DerivedMap",
    "DoseSummary",
    "Geometry",
    "ImageUnits",
    "KineticsRecord",
    "Measurement",
    "MeasurementKind",
    "Patient",
    "ProtocolRun",
    "Registration",
    "RegistrationStatus",
    "Result",
    "SeriesInfo",
    "TimePoint",
    "Volume",
    "VolumeRef",
    "VoiKinetics",
    "VoiKind",
    "VoiStatus",
    "new_id",
]
