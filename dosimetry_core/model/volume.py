"""Image volumes: an array ``[z, y, x]`` plus its :class:`Geometry` and units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model.geometry import Geometry
from dosimetry_core.model.units import ImageUnits


@dataclass
class Volume:
    """A 3D image: voxel values, where they are, and what they mean.

    Parameters
    ----------
    array
        Voxel values indexed ``[z, y, x]``; shape must equal ``geometry.shape_zyx``.
    geometry
        Grid placement in LPS mm.
    units
        Meaning of the voxel values.
    description
        Free text shown to users (e.g. series description).
    """

    array: NDArray[Any]
    geometry: Geometry
    units: ImageUnits = ImageUnits.UNKNOWN
    description: str = ""

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume needs a 3D array, got {self.array.ndim}D")
        if tuple(self.array.shape) != tuple(self.geometry.shape_zyx):
            raise ValueError(
                f"array shape {self.array.shape} does not match geometry {self.geometry.shape_zyx}"
            )
        self.units = ImageUnits(self.units)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape_zyx

    def total(self) -> float:
        """Sum of voxel values times voxel volume in mL.

        For a Bq/mL volume this is the total activity in Bq.
        """
        return float(np.sum(self.array, dtype=np.float64) * self.geometry.voxel_volume_ml)

    def total_activity_mbq(self) -> float:
        """Total activity in the field of view (MBq); only for Bq/mL volumes."""
        if self.units != ImageUnits.BQML:
            raise ValueError(f"total activity needs a Bq/mL volume, this one is in {self.units}")
        return self.total() * 1e-6

    def with_array(self, array: NDArray[Any], units: ImageUnits | None = None) -> Volume:
        """Same geometry, new values."""
        return Volume(
            array, self.geometry, self.units if units is None else units, self.description
        )


@dataclass(frozen=True)
class VolumeRef:
    """A stored volume: content hash of its voxel data plus what is needed to use it.

    The case model holds references; :mod:`dosimetry_core.store` turns a reference
    back into a :class:`Volume` (``store.load_volume(ref)``).
    """

    key: str
    """Content address (SHA-256 hex of the stored bytes) in the blob store."""
    geometry: Geometry
    units: ImageUnits
    dtype: str
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "geometry": self.geometry.to_dict(),
            "units": str(self.units),
            "dtype": self.dtype,
            "description": self.description,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VolumeRef:
        return cls(
            key=data["key"],
            geometry=Geometry.from_dict(data["geometry"]),
            units=ImageUnits(data["units"]),
            dtype=data["dtype"],
            description=data.get("description", ""),
            meta=dict(data.get("meta", {})),
        )
