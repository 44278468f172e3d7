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
from dosimetry_core.model.units import ImageUnits
from dosimetry_core.model.volume import Volume, VolumeRef

__all__ = [
    "VOI",
    "Administration",
    "CalibrationStatus",
    "Case",
    "DerivedKind",
    "DerivedMap",
    "Geometry",
    "ImageUnits",
    "Measurement",
    "MeasurementKind",
    "Patient",
    "Registration",
    "RegistrationStatus",
    "SeriesInfo",
    "TimePoint",
    "Volume",
    "VolumeRef",
    "VoiKind",
    "VoiStatus",
    "new_id",
]
