"""Volumes, masses and voxel statistics of VOIs.

All functions need the mask and the image **on the same voxel grid**.  A mask
drawn on another grid (e.g. a CT contour used on SPECT) is first resampled by
the caller with ``dosimetry_core.imaging.resample.resample(..., order=0)``, or
the image is resampled onto the mask grid; these functions refuse to guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError, UnitsError
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.units import MBQ_PER_BQ
from dosimetry_core.physics.density import HuDensityCalibration


def _mask_on(mask: ArrayLike | Volume, geometry: Geometry, what: str) -> NDArray[np.bool_]:
    if isinstance(mask, Volume):
        if not mask.geometry.same_grid(geometry):
            raise InvalidInputError(
                f"the mask and the {what} are on different voxel grids; resample the mask "
                "(resample(..., order=0)) or the image onto one grid first"
            )
        arr = np.asarray(mask.array)
    else:
        arr = np.asarray(mask)
    if tuple(arr.shape) != tuple(geometry.shape_zyx):
        raise InvalidInputError(
            f"mask shape {arr.shape} does not match the {what} grid {geometry.shape_zyx}; "
            "resample onto one grid first (resample(..., order=0) for masks)"
        )
    return arr.astype(bool, copy=False)


def voi_volume_ml(mask: ArrayLike | Volume, geometry: Geometry) -> float:
    """Volume of a VOI in mL: number of voxels times the voxel volume."""
    m = _mask_on(mask, geometry, "geometry")
    return float(np.count_nonzero(m)) * geometry.voxel_volume_ml


def voi_mass_g(
    mask: ArrayLike | Volume,
    ct_hu: Volume,
    calibration: HuDensityCalibration | None = None,
) -> float:
    """Mass of a VOI in g from the CT density: sum of density x voxel volume.

    Parameters
    ----------
    mask
        Boolean mask ``[z, y, x]`` (or a mask Volume) on the CT grid.
    ct_hu
        CT in HU **on the same grid as the mask**; otherwise the caller
        resamples first (this function raises instead of guessing).
    calibration
        HU to density table; ``None`` loads the default
        (:meth:`HuDensityCalibration.load`).
    """
    if ct_hu.units not in (ImageUnits.HU, ImageUnits.UNKNOWN):
        raise UnitsError(f"a mass needs a CT in HU, this volume is in {ct_hu.units}")
    m = _mask_on(mask, ct_hu.geometry, "CT")
    cal = HuDensityCalibration.load() if calibration is None else calibration
    rho = cal.density_g_cm3(ct_hu.array[m])
    return float(np.sum(rho, dtype=np.float64)) * ct_hu.geometry.voxel_volume_ml


@dataclass(frozen=True)
class VoiStatistics:
    """Voxel statistics of an image inside a VOI.

    ``integral`` is the sum of voxel values times the voxel volume (mL): for a
    Bq/mL image the activity in Bq (``total_activity_mbq`` gives MBq).
    """

    n_voxels: int
    volume_ml: float
    mean: float
    std: float
    min: float
    max: float
    integral: float
    units: ImageUnits

    @property
    def total_activity_mbq(self) -> float:
        """Activity in the VOI (MBq); only for Bq/mL images."""
        if self.units != ImageUnits.BQML:
            raise UnitsError(f"total activity needs a Bq/mL image, this one is in {self.units}")
        return self.integral * MBQ_PER_BQ

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_voxels": self.n_voxels,
            "volume_ml": self.volume_ml,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "integral": self.integral,
            "units": str(self.units),
        }
        if self.units == ImageUnits.BQML:
            out["total_activity_mbq"] = self.total_activity_mbq
        return out


def voi_statistics(volume: Volume, mask: ArrayLike | Volume) -> VoiStatistics:
    """Mean, standard deviation, min, max and integral of ``volume`` inside ``mask``.

    The mask must be on the image grid (see the module note).  For an empty
    VOI the statistics are NaN and the integral 0.
    """
    m = _mask_on(mask, volume.geometry, "image")
    values = np.asarray(volume.array[m], dtype=np.float64)
    n = int(values.size)
    vml = volume.geometry.voxel_volume_ml
    if n == 0:
        nan = float("nan")
        return VoiStatistics(0, 0.0, nan, nan, nan, nan, 0.0, volume.units)
    return VoiStatistics(
        n_voxels=n,
        volume_ml=n * vml,
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        integral=float(values.sum()) * vml,
        units=volume.units,
    )
