"""Conversion between :class:`~dosimetry_core.model.Volume` and SimpleITK images.

The two conventions agree (ARCHITECTURE rule 5): SimpleITK's ``GetArrayFromImage``
returns ``[z, y, x]``, its spacing is in index order (i, j, k), its origin is the
centre of voxel ``[0, 0, 0]`` in LPS mm, and its direction matrix (row-major,
flattened) has column c = LPS direction of index axis c.  No axis is flipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray

from dosimetry_core.model import Geometry, ImageUnits, Volume


def geometry_to_sitk(image: sitk.Image, geometry: Geometry) -> sitk.Image:
    """Set origin, spacing and direction of ``image`` from ``geometry`` (in place)."""
    image.SetOrigin(tuple(float(v) for v in geometry.origin_mm))
    image.SetSpacing(tuple(float(v) for v in geometry.spacing_mm))
    image.SetDirection(tuple(float(v) for v in geometry.direction_matrix.reshape(-1)))
    return image


def geometry_from_sitk(image: sitk.Image, frame_of_reference_uid: str = "") -> Geometry:
    """The :class:`Geometry` of a 3D SimpleITK image."""
    size = image.GetSize()
    if len(size) != 3:
        raise ValueError(f"a 3D image is needed, got {len(size)}D")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    return Geometry(
        shape_zyx=(size[2], size[1], size[0]),
        spacing_mm=image.GetSpacing(),
        origin_mm=image.GetOrigin(),
        direction=tuple(tuple(r) for r in direction),
        frame_of_reference_uid=frame_of_reference_uid,
    )


def array_to_sitk(
    array: NDArray[Any], geometry: Geometry, *, is_vector: bool = False
) -> sitk.Image:
    """SimpleITK image of an array ``[z, y, x]`` (or ``[z, y, x, c]`` with ``is_vector``)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=is_vector)
    return geometry_to_sitk(image, geometry)


def to_sitk(volume: Volume, dtype: Any = None) -> sitk.Image:
    """SimpleITK image with the voxel values and exact geometry of ``volume``.

    Parameters
    ----------
    volume
        Source volume.
    dtype
        Optional NumPy dtype to cast the voxels to first (e.g. ``np.float32``
        for registration); booleans become uint8.
    """
    arr = volume.array
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return array_to_sitk(arr, volume.geometry)


def from_sitk(
    image: sitk.Image,
    units: ImageUnits = ImageUnits.UNKNOWN,
    description: str = "",
    frame_of_reference_uid: str = "",
) -> Volume:
    """:class:`Volume` from a scalar 3D SimpleITK image (array copied, ``[z, y, x]``)."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("from_sitk needs a scalar image; use sitk.GetArrayFromImage for vectors")
    geom = geometry_from_sitk(image, frame_of_reference_uid)
    return Volume(sitk.GetArrayFromImage(image), geom, units, description)
