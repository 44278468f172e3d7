"""CT numbers to transport media: material index and mass density per voxel.

Density: :class:`dosimetry_core.physics.density.HuDensityCalibration` (the generic
bilinear table unless the caller passes a scanner calibration).

Material: five bins by HU, a simplification of the tissue bins of Schneider,
Bortfeld & Schlegel, Phys Med Biol 45:459-478 (2000), table 6 (air -1000..-950,
lung -950..-120, three adipose bins -120..-23, soft tissues and connective tissue
-22..+119, soft-tissue/bone mixtures and bone from +120 upwards).  Their
adipose/soft tissue mixture bin (-22..7) is merged with soft tissue here, and all
their bone bins (+120..+1600) become cortical bone, whose composition differs from
the mixtures mainly in the Ca and P content: the photoelectric part in trabecular
bone is therefore somewhat overestimated below ~100 keV.

======  ============  ==========================
index   medium        HU range (lower bound incl.)
======  ============  ==========================
0       air           HU < -950
1       lung          -950 <= HU < -120
2       adipose       -120 <= HU < -22
3       soft-tissue   -22 <= HU < 120
4       bone          HU >= 120
======  ============  ==========================

The media are those of :mod:`dosimetry_core.physics.materials` (compositions from
the NIST compound database); only their composition is used here, the density of
each voxel comes from the calibration.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.density import HuDensityCalibration
from dosimetry_core.physics.materials import Material, material

MEDIA_BY_INDEX: tuple[str, ...] = ("air", "lung", "adipose", "soft-tissue", "bone")
"""Medium name of each material index."""

HU_LOWER_BOUNDS: tuple[float, ...] = (-950.0, -120.0, -22.0, 120.0)
"""Lowest HU of materials 1..4 (see the module table; Schneider et al. 2000)."""


def ct_to_materials(
    hu: ArrayLike,
    calibration: HuDensityCalibration | None = None,
    *,
    hu_lower_bounds: tuple[float, ...] = HU_LOWER_BOUNDS,
) -> tuple[NDArray[np.uint8], NDArray[np.float32], list[Material]]:
    """Material index and density of each voxel of a CT (HU).

    Parameters
    ----------
    hu
        CT numbers, any shape (normally ``[z, y, x]``).
    calibration
        HU to density table; the generic default (``HuDensityCalibration.load()``)
        when None.
    hu_lower_bounds
        Four increasing HU thresholds separating air | lung | adipose | soft
        tissue | bone (defaults: :data:`HU_LOWER_BOUNDS`).

    Returns
    -------
    (material_index, density_g_cm3, materials)
        ``uint8`` index into ``materials`` and ``float32`` density in g/cm^3, both
        with the shape of ``hu``; ``materials`` lists the five media in index order.
    """
    values = np.asarray(hu)
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidInputError("CT numbers must be numeric")
    if values.size and not np.all(np.isfinite(values)):
        raise InvalidInputError("CT numbers contain NaN or infinite values")
    bounds = np.asarray(hu_lower_bounds, dtype=float)
    if bounds.shape != (len(MEDIA_BY_INDEX) - 1,) or np.any(np.diff(bounds) <= 0):
        raise InvalidInputError(
            f"hu_lower_bounds needs {len(MEDIA_BY_INDEX) - 1} strictly increasing HU values"
        )
    cal = HuDensityCalibration.load() if calibration is None else calibration
    index = np.searchsorted(bounds, values, side="right").astype(np.uint8)
    density = cal.density_g_cm3(values).astype(np.float32)
    return index, density, [material(name) for name in MEDIA_BY_INDEX]
