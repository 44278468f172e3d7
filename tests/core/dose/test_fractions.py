"""VOI fractions on the dose grid (``dosimetry_core.dose._fractions``).

The oracle is the implementation the kernel replaced (kept here): the 0/1 mask
resampled trilinearly onto the dose grid split 3 x 3 x 3 times
(``scipy.ndimage.affine_transform``, ``mode="constant"``), averaged per dose
voxel.  The kernel must give the same float32 numbers bit for bit (the same
voxels pass the 0.5 threshold), on offset, rotated and anisotropic grids and
for masks touching the grid edge; and a sphere's summed fractions must give its
volume.
"""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.dose._fractions import mask_bounding_box, mask_fraction_on_grid
from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import Geometry, ImageUnits, Volume

FOR = "1.2.3"
EYE = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
# rotated 36.87 degrees about z and 16.26 degrees about x (exact Pythagorean cosines)
ROT = ((0.8, -0.6 * 0.96, 0.6 * 0.28), (0.6, 0.8 * 0.96, -0.8 * 0.28), (0.0, 0.28, 0.96))


def reference_fraction(mask, geometry, target, k=3):
    """The dense oversampled resample that ``mask_fraction_on_grid`` replaced."""
    if geometry.same_grid(target):
        return np.asarray(mask, dtype=np.float32)
    spacing = np.asarray(target.spacing_mm, dtype=float)
    fs = spacing / k
    origin = np.asarray(target.origin_mm, float) + target.direction_matrix @ (fs / 2 - spacing / 2)
    nz, ny, nx = target.shape_zyx
    fine = Geometry(
        (nz * k, ny * k, nx * k),
        tuple(float(v) for v in fs),
        tuple(float(v) for v in origin),
        target.direction,
        FOR,
    )
    vals = resample(
        Volume(np.asarray(mask, dtype=np.float32), geometry, ImageUnits.MASK),
        fine,
        order=1,
        fill_value=0.0,
        dtype=np.float32,
    ).array
    return np.asarray(vals.reshape(nz, k, ny, k, nx, k).mean(axis=(1, 3, 5)), dtype=np.float32)


MASK_GRID = Geometry((30, 40, 50), (3.2, 3.2, 5.0), (-10.0, -20.0, -7.5), EYE, FOR)
TARGETS = {
    "offset": Geometry((20, 30, 40), (4.8, 4.8, 4.8), (-12.1, -18.3, -9.0), EYE, FOR),
    "rotated-anisotropic": Geometry((20, 30, 40), (4.1, 4.7, 5.3), (-30.1, -18.3, -9.0), ROT, FOR),
    "finer": Geometry((40, 50, 60), (2.1, 2.9, 3.3), (-5.0, -15.0, -2.0), EYE, FOR),
}


def _masks():
    z, y, x = np.mgrid[:30, :40, :50]
    rng = np.random.default_rng(7)
    return {
        "sphere": (z - 15) ** 2 + ((y - 20) * 0.64) ** 2 + ((x - 25) * 0.64) ** 2 < 60,
        "touching the edge": (x < 10) | (z > 25),
        "random": rng.random((30, 40, 50)) < 0.3,
        "one voxel": (z == 3) & (y == 4) & (x == 5),
        "empty": np.zeros((30, 40, 50), dtype=bool),
    }


@pytest.mark.parametrize("target", list(TARGETS), ids=list(TARGETS))
@pytest.mark.parametrize("name", list(_masks()))
def test_same_numbers_as_the_dense_oversampled_resample(name, target):
    mask = _masks()[name]
    new = mask_fraction_on_grid(mask, MASK_GRID, TARGETS[target])
    old = reference_fraction(mask, MASK_GRID, TARGETS[target])
    assert new.dtype == np.float32 and new.shape == TARGETS[target].shape_zyx
    assert np.array_equal(new, old)


def test_same_grid_is_the_mask_itself():
    mask = _masks()["random"]
    assert np.array_equal(mask_fraction_on_grid(mask, MASK_GRID, MASK_GRID), mask)


def test_bounding_box():
    mask = np.zeros((5, 6, 7), dtype=bool)
    assert mask_bounding_box(mask) is None
    mask[1, 2:4, 6] = True
    assert mask_bounding_box(mask) == ((1, 2), (2, 4), (6, 7))


def _sphere(radius_mm, h_mm, centre_mm):
    n = int(np.ceil(2 * radius_mm / h_mm)) + 6
    origin = tuple(float(c - (n - 1) / 2 * h_mm) for c in centre_mm)
    g = Geometry((n, n, n), (h_mm, h_mm, h_mm), origin, EYE, FOR)
    c = (np.arange(n) - (n - 1) / 2) * h_mm
    z, y, x = np.meshgrid(c, c, c, indexing="ij", sparse=True)
    return (x**2 + y**2 + z**2) <= radius_mm**2, g


@pytest.mark.parametrize(
    "target",
    [
        Geometry((24, 24, 24), (4.8, 4.8, 4.8), (-51.3, -49.9, -52.7), EYE, FOR),
        # centred near the sphere (origin = centre - D (n - 1) / 2 spacing), off by 1.7 mm
        Geometry(
            (24, 26, 28),
            (4.1, 4.4, 5.3),
            tuple(
                float(v)
                for v in np.array([3.0, -0.4, 2.4])
                - np.array(ROT) @ (np.array([27, 25, 23]) / 2 * np.array([4.1, 4.4, 5.3]))
            ),
            ROT,
            FOR,
        ),
    ],
    ids=["offset", "rotated-anisotropic"],
)
def test_sphere_volume_from_fractions(target):
    """Summed fractions x voxel volume = 4/3 pi r^3 within the discretisation error.

    Two errors.  (1) The mask: a sphere of r = 30 mm voxelised at h = 1 mm
    (voxel centres inside); its volume ``n h^3`` is checked against 4/3 pi r^3
    to 0.3 % (surface 4 pi r^2 = 11 310 mm^2 times a random-phase error of
    about h/sqrt(12) per unit area, averaged over ~11 000 surface voxels:
    well under 0.1 %).  (2) The sub-sampling: the trilinearly interpolated mask
    integrates to exactly ``n h^3``; the 3^3 midpoint samples per dose voxel
    err only in the sub-cells the surface layer (h + h_sub thick) crosses,
    each by at most v_sub/2 with a random sign, N_s = 4 pi r^2 (h + h_sub) /
    v_sub of them: SD = sqrt(N_s / 12) v_sub; tolerance 5 SD (~0.5 % here).
    """
    r, h = 30.0, 1.0
    mask, g = _sphere(r, h, (1.3, -2.1, 0.7))
    exact = 4.0 / 3.0 * np.pi * r**3
    mask_volume = float(mask.sum()) * h**3
    assert mask_volume == pytest.approx(exact, rel=3e-3)
    frac = mask_fraction_on_grid(mask, g, target)
    v_t = float(np.prod(target.spacing_mm))
    got = float(frac.astype(np.float64).sum()) * v_t
    h_sub = np.asarray(target.spacing_mm, float) / 3
    v_sub = float(np.prod(h_sub))
    n_s = 4 * np.pi * r**2 * (h + float(h_sub.max())) / v_sub
    tol = 5 * np.sqrt(n_s / 12) * v_sub
    assert abs(got - mask_volume) <= tol
    assert abs(got - exact) <= tol + abs(mask_volume - exact)
    assert 0.0 <= frac.min() and frac.max() <= 1.0


def test_integer_super_sampling_is_the_exact_block_fraction():
    """Dose voxels of 4 x 3 x 2 (x, y, z) aligned mask voxels: the covered fraction, exactly."""
    rng = np.random.default_rng(3)
    mask = rng.random((24, 30, 40)) < 0.4
    g = Geometry((24, 30, 40), (1.0, 1.5, 2.0), (0.0, 0.0, 0.0), EYE, FOR)
    # dose voxel 0 starts at mask voxel (z, y, x) = (-2, 3, -4); centre in mm (x, y, z)
    t = Geometry((14, 9, 11), (4.0, 4.5, 4.0), (-2.5, 6.0, -3.0), EYE, FOR)
    frac = mask_fraction_on_grid(mask, g, t)
    padded = np.zeros((28, 27, 44))
    padded[2:26, :, 4:44] = mask[:, 3:, :]
    expected = padded.reshape(14, 2, 9, 3, 11, 4).mean(axis=(1, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(frac, expected, rtol=0, atol=1e-7)
    # block sums conserve the volume of the mask inside the dose grid
    assert float(frac.astype(np.float64).sum()) * 72.0 == pytest.approx(
        float(mask[:, 3:, :].sum()) * 3.0, rel=1e-6
    )
