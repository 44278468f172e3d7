"""Voxel-grid geometry in DICOM patient coordinates (LPS, millimetres).

Conventions (ARCHITECTURE rule 5)
---------------------------------
* Arrays are indexed ``[z, y, x]`` = ``[k, j, i]``: ``k`` is the slice index,
  ``j`` the row, ``i`` the column.
* ``origin_mm`` is the LPS position (x, y, z) of the **centre** of voxel
  ``[0, 0, 0]`` -- DICOM Image Position (Patient) of the first slice.
* ``spacing_mm`` is given in **index order (i, j, k)** = (column spacing, row
  spacing, slice spacing), as in ITK/SimpleITK.  Note: DICOM Pixel Spacing is
  (row spacing, column spacing); readers swap it.
* ``direction`` is a 3x3 matrix whose **column c** is the LPS unit vector along
  index axis c (c = 0 for i, 1 for j, 2 for k), as in ITK.  For a DICOM image,
  column 0 is the row direction cosine (first triplet of Image Orientation
  (Patient)), column 1 the column direction cosine, column 2 the slice normal
  oriented towards increasing slice index.

So ``world = origin + direction @ (spacing * (i, j, k))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _as_tuple3(values: ArrayLike, name: str) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != 3:
        raise ValueError(f"{name} needs 3 values, got {arr.size}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True)
class Geometry:
    """A regular voxel grid placed in patient space.

    Parameters
    ----------
    shape_zyx
        Number of voxels along (k, j, i), i.e. the NumPy array shape.
    spacing_mm
        Voxel size along (i, j, k) in mm.
    origin_mm
        LPS coordinates (mm) of the centre of voxel [0, 0, 0].
    direction
        3x3 direction cosines, column c = LPS direction of index axis c (i, j, k).
    frame_of_reference_uid
        DICOM Frame of Reference UID; empty when unknown.
    """

    shape_zyx: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[tuple[float, float, float], ...] = (
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
    )
    frame_of_reference_uid: str = ""
    _affine: NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape_zyx)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape_zyx must be 3 positive integers, got {self.shape_zyx}")
        spacing = _as_tuple3(self.spacing_mm, "spacing_mm")
        if min(spacing) <= 0:
            raise ValueError(f"spacing_mm must be positive, got {spacing}")
        origin = _as_tuple3(self.origin_mm, "origin_mm")
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
            raise ValueError("direction must be an orthonormal 3x3 matrix")
        object.__setattr__(self, "shape_zyx", shape)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_mm", origin)
        object.__setattr__(self, "direction", tuple(tuple(float(v) for v in row) for row in d))
        affine = np.eye(4)
        affine[:3, :3] = d * np.asarray(spacing)[None, :]
        affine[:3, 3] = origin
        object.__setattr__(self, "_affine", affine)

    # ------------------------------------------------------------------ basics
    @property
    def direction_matrix(self) -> NDArray[np.float64]:
        """Direction cosines as a 3x3 array (column c = axis c in LPS)."""
        return np.asarray(self.direction, dtype=float)

    @property
    def affine(self) -> NDArray[np.float64]:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS (x, y, z, 1) in mm."""
        return self._affine.copy()

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (cm^3)."""
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz * 1e-3

    @property
    def n_voxels(self) -> int:
        z, y, x = self.shape_zyx
        return z * y * x

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size along (i, j, k) in mm (voxel count times spacing)."""
        z, y, x = self.shape_zyx
        sx, sy, sz = self.spacing_mm
        return (x * sx, y * sy, z * sz)

    # ------------------------------------------------------------- transforms
    def index_to_world(self, index_zyx: ArrayLike) -> NDArray[np.float64]:
        """LPS coordinates (mm) of voxel centres given ``[..., (k, j, i)]`` indices.

        Accepts fractional indices; the last axis holds (k, j, i).
        """
        idx = np.asarray(index_zyx, dtype=float)
        ijk = idx[..., ::-1]
        return ijk @ self._affine[:3, :3].T + self._affine[:3, 3]

    def world_to_index(self, world_mm: ArrayLike) -> NDArray[np.float64]:
        """Fractional ``(k, j, i)`` indices of LPS points ``[..., (x, y, z)]``."""
        pts = np.asarray(world_mm, dtype=float)
        inv = np.linalg.inv(self._affine[:3, :3])
        ijk = (pts - self._affine[:3, 3]) @ inv.T
        return ijk[..., ::-1]

    def contains_world(self, world_mm: ArrayLike, margin_voxels: float = 0.5) -> NDArray[np.bool_]:
        """True for LPS points inside the grid (voxel-centre index within bounds +- margin)."""
        idx = self.world_to_index(world_mm)
        shape = np.asarray(self.shape_zyx, dtype=float)
        return np.all((idx >= -margin_voxels) & (idx <= shape - 1 + margin_voxels), axis=-1)

    def corners_world(self) -> NDArray[np.float64]:
        """LPS coordinates of the 8 corner voxel centres, shape (8, 3)."""
        z, y, x = self.shape_zyx
        idx = np.array([[a, b, c] for a in (0, z - 1) for b in (0, y - 1) for c in (0, x - 1)])
        return self.index_to_world(idx)

    def center_world(self) -> NDArray[np.float64]:
        """LPS coordinates of the grid centre (mm)."""
        z, y, x = self.shape_zyx
        return self.index_to_world([(z - 1) / 2, (y - 1) / 2, (x - 1) / 2])

    def is_axis_aligned(self, atol: float = 1e-4) -> bool:
        """True when the direction matrix is the identity (plain axial LPS grid)."""
        return bool(np.allclose(self.direction_matrix, np.eye(3), atol=atol))

    def same_grid(self, other: Geometry, atol_mm: float = 1e-3) -> bool:
        """True when both grids have the same shape and voxel positions."""
        return (
            self.shape_zyx == other.shape_zyx
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=atol_mm)
            and np.allclose(self.origin_mm, other.origin_mm, atol=atol_mm)
            and np.allclose(self.direction_matrix, other.direction_matrix, atol=1e-6)
        )

    def with_frame_of_reference(self, uid: str) -> Geometry:
        return Geometry(self.shape_zyx, self.spacing_mm, self.origin_mm, self.direction, uid)

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "shape_zyx": list(self.shape_zyx),
            "spacing_mm": list(self.spacing_mm),
            "origin_mm": list(self.origin_mm),
            "direction": [list(r) for r in self.direction],
            "frame_of_reference_uid": self.frame_of_reference_uid,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Geometry:
        return cls(
            shape_zyx=tuple(data["shape_zyx"]),
            spacing_mm=tuple(data["spacing_mm"]),
            origin_mm=tuple(data["origin_mm"]),
            direction=tuple(tuple(r) for r in data["direction"]),
            frame_of_reference_uid=data.get("frame_of_reference_uid", ""),
        )
