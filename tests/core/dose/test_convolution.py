"""Voxel S-value convolution: oracle comparison, conservation, edges, truncation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from dosimetry_core.dose.convolution import (
    DEFAULT_MIN_DENSITY_G_CM3,
    KernelConvolver,
    convolve_dose,
    density_corrected,
    truncate_kernel,
    validate_kernel,
)
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.errors import Cancelled, InvalidInputError


def gaussian_kernel(
    half: tuple[int, int, int], spacing_mm=(4.0, 4.0, 4.0), sigma_mm=5.0, total=1.0
) -> np.ndarray:
    """Energy-conserving Gaussian kernel [z, y, x], sum == ``total``."""
    hz, hy, hx = half
    sx, sy, sz = spacing_mm
    z, y, x = np.meshgrid(
        np.arange(-hz, hz + 1) * sz,
        np.arange(-hy, hy + 1) * sy,
        np.arange(-hx, hx + 1) * sx,
        indexing="ij",
    )
    k = np.exp(-(x**2 + y**2 + z**2) / (2 * sigma_mm**2))
    return k * (total / k.sum())


def brute_force(decays: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """D(t) = sum_s N(s) K(t - s + c) on the input grid, plain loops (oracle)."""
    out = np.zeros(decays.shape)
    c = [n // 2 for n in kernel.shape]
    for s in zip(*np.nonzero(decays), strict=True):
        for t in itertools.product(*(range(n) for n in decays.shape)):
            o = [t[i] - s[i] + c[i] for i in range(3)]
            if all(0 <= o[i] < kernel.shape[i] for i in range(3)):
                out[t] += decays[s] * kernel[o[0], o[1], o[2]]
    return out


def test_matches_brute_force_with_asymmetric_kernel():
    rng = np.random.default_rng(1)
    decays = np.zeros((6, 5, 7))
    decays[rng.integers(0, 6, 8), rng.integers(0, 5, 8), rng.integers(0, 7, 8)] = rng.uniform(
        1, 5, 8
    )
    kernel = rng.uniform(0, 1, (3, 5, 3))  # asymmetric: a flip would show
    dose = convolve_dose(decays, kernel)
    ref = brute_force(decays, kernel)
    assert dose.dtype == np.float32
    assert dose.shape == decays.shape
    np.testing.assert_allclose(dose, ref, rtol=1e-5, atol=1e-5 * ref.max())


@pytest.mark.parametrize("kshape", [(5, 7, 3), (11, 11, 11), (21, 9, 15)])
def test_matches_ndimage_zero_padded_convolution(kshape):
    rng = np.random.default_rng(2)
    decays = rng.uniform(0, 1e6, (17, 14, 12))
    kernel = rng.uniform(0, 1e-9, kshape)
    dose = convolve_dose(decays, kernel)
    ref = ndimage.convolve(decays, kernel, mode="constant", cval=0.0)
    np.testing.assert_allclose(dose, ref, rtol=2e-5, atol=2e-5 * ref.max())


def test_point_source_reproduces_kernel():
    rng = np.random.default_rng(3)
    kernel = rng.uniform(0.1, 1.0, (5, 7, 9)) * 1e-9
    decays = np.zeros((15, 15, 15))
    decays[6, 8, 7] = 2.0e6
    dose = convolve_dose(decays, kernel)
    np.testing.assert_allclose(
        dose[4:9, 5:12, 3:12], 2.0e6 * kernel, rtol=1e-5, atol=1e-6 * dose.max()
    )
    outside = dose.copy()
    outside[4:9, 5:12, 3:12] = 0
    assert np.abs(outside).max() < 1e-6 * dose.max()


def test_uniform_field_interior_dose_equals_energy_over_mass():
    spacing = (4.0, 4.0, 4.0)
    energy_mev = 0.1479  # conserving kernel: all of it absorbed around the source
    voxel_mass_kg = 4.0**3 * 1e-3 * 1e-3  # water, 1 g/cm^3
    total = energy_mev * J_PER_MEV / voxel_mass_kg  # Gy per decay summed over the kernel
    kernel = gaussian_kernel((5, 5, 5), spacing, sigma_mm=5.0, total=total)
    n_per_voxel = 3.0e9
    decays = np.full((40, 40, 40), n_per_voxel)
    dose = convolve_dose(decays, kernel)
    interior = dose[5:-5, 5:-5, 5:-5]
    expected = n_per_voxel * energy_mev * J_PER_MEV / voxel_mass_kg
    np.testing.assert_allclose(interior, expected, rtol=1e-5)
    np.testing.assert_allclose(interior, n_per_voxel * kernel.sum(), rtol=1e-5)
    # dose at the corner lacks the off-grid neighbours: 1/8 of the Gaussian missing
    # from each octant beyond the faces, i.e. less than the interior value
    assert dose[0, 0, 0] < 0.5 * expected


def test_no_wrap_around_and_energy_leaves_the_grid():
    kernel = gaussian_kernel((7, 7, 7), sigma_mm=8.0)
    decays = np.zeros((20, 20, 20))
    decays[0, 10, 10] = 1.0  # on one face
    dose = convolve_dose(decays, kernel)
    # a circular convolution of size 20 would put kernel tails on z = 13..19
    assert np.abs(dose[8:, :, :]).max() < 1e-6 * dose.max()
    assert dose[7, 10, 10] > 0.001 * dose.max()  # the kernel itself reaches z = 7
    # dose on the grid = the part of the kernel that falls on the grid (z >= 0)
    np.testing.assert_allclose(dose.sum(), kernel[7:, :, :].sum(), rtol=1e-5)
    assert dose.sum() < 0.8 * kernel.sum()


def test_linearity():
    rng = np.random.default_rng(4)
    kernel = gaussian_kernel((3, 4, 5), (3.0, 2.5, 4.0), sigma_mm=4.0)
    a = rng.uniform(0, 1, (12, 13, 14))
    b = rng.uniform(0, 1, (12, 13, 14))
    conv = KernelConvolver(kernel, a.shape)
    lhs = conv.convolve(2.5 * a + 0.5 * b)
    rhs = 2.5 * conv.convolve(a) + 0.5 * conv.convolve(b)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-6 * lhs.max())


def test_convolver_reuse_equals_function():
    rng = np.random.default_rng(5)
    kernel = rng.uniform(0, 1, (5, 5, 5))
    conv = KernelConvolver(kernel, (9, 10, 11))
    for _ in range(2):
        m = rng.uniform(0, 1, (9, 10, 11))
        np.testing.assert_allclose(conv.convolve(m), convolve_dose(m, kernel), rtol=1e-6)
    with pytest.raises(InvalidInputError, match="shape"):
        conv.convolve(np.zeros((9, 10, 12)))


def test_padded_size_is_fast_length_of_linear_size():
    conv = KernelConvolver(np.ones((11, 11, 11)), (256, 100, 37))
    for n, k, p in zip(conv.shape, conv.kernel_shape, conv.padded_shape, strict=True):
        assert p >= n + k - 1
        assert p - (n + k - 1) < 0.2 * p


def test_kernel_larger_than_grid_is_cropped_but_exact():
    rng = np.random.default_rng(6)
    kernel = rng.uniform(0, 1, (31, 31, 31))
    decays = rng.uniform(0, 1, (6, 7, 8))
    conv = KernelConvolver(kernel, decays.shape)
    assert conv.kernel_shape == (11, 13, 15)
    ref = ndimage.convolve(decays, kernel[10:21, 9:22, 8:23], mode="constant")
    np.testing.assert_allclose(conv.convolve(decays), ref, rtol=2e-5)


def test_truncation_zeroes_voxels_beyond_radius_anisotropic():
    kernel = np.ones((9, 9, 9))
    spacing = (2.0, 3.0, 5.0)  # x, y, z
    t = truncate_kernel(kernel, 10.0, spacing)
    # z reaches 2 voxels (10 mm), y 3 voxels (9 mm), x 4 voxels (8 mm; 5 would be 10 -> kept)
    assert t.shape == (5, 7, 9)
    hz, hy, hx = 2, 3, 4
    for iz, iy, ix in itertools.product(range(5), range(7), range(9)):
        r = np.sqrt(((iz - hz) * 5.0) ** 2 + ((iy - hy) * 3.0) ** 2 + ((ix - hx) * 2.0) ** 2)
        assert (t[iz, iy, ix] > 0) == (r <= 10.0), (iz, iy, ix, r)
    # a voxel exactly on the sphere is kept: (z=+2 voxels, 0, 0) is at 10 mm
    assert t[hz + 2, hy, hx] == 1.0


def test_truncated_convolution_equals_convolution_with_truncated_kernel():
    rng = np.random.default_rng(7)
    kernel = gaussian_kernel((6, 6, 6), (2.0, 2.0, 3.0), sigma_mm=6.0)
    decays = rng.uniform(0, 1, (16, 16, 16))
    dose = convolve_dose(decays, kernel, truncation_radius_mm=8.0, spacing_mm=(2.0, 2.0, 3.0))
    manual = kernel.copy()
    z, y, x = np.meshgrid(*(np.arange(-6, 7),) * 3, indexing="ij")
    manual[(x * 2.0) ** 2 + (y * 2.0) ** 2 + (z * 3.0) ** 2 > 64.0] = 0
    ref = ndimage.convolve(decays, manual, mode="constant")
    np.testing.assert_allclose(dose, ref, rtol=2e-5, atol=1e-6 * ref.max())
    conv = KernelConvolver(kernel, decays.shape, truncation_radius_mm=8.0, spacing_mm=(2, 2, 3))
    assert conv.kernel_sum_gy_per_bq_s == pytest.approx(manual.sum(), rel=1e-6)
    assert conv.kernel_sum_gy_per_bq_s < kernel.sum()


def test_truncation_needs_spacing():
    with pytest.raises(InvalidInputError, match="spacing"):
        convolve_dose(np.ones((4, 4, 4)), np.ones((3, 3, 3)), truncation_radius_mm=5.0)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (np.ones((4, 3, 3)), "odd"),
        (np.ones((3, 3)), "3-D"),
        (np.full((3, 3, 3), np.nan), "NaN"),
        (-np.ones((3, 3, 3)), "negative"),
        (np.zeros((3, 3, 3)), "zero"),
    ],
)
def test_kernel_validation(kernel, message):
    with pytest.raises(InvalidInputError, match=message):
        validate_kernel(kernel)
    with pytest.raises(InvalidInputError):
        convolve_dose(np.ones((5, 5, 5)), kernel)


def test_decay_map_validation():
    with pytest.raises(InvalidInputError, match="NaN"):
        convolve_dose(np.full((4, 4, 4), np.nan), np.ones((3, 3, 3)))
    with pytest.raises(InvalidInputError, match="3-D"):
        convolve_dose(np.ones((4, 4)), np.ones((3, 3, 3)))


def test_progress_and_cancel():
    calls: list[tuple[float, str]] = []
    convolve_dose(
        np.ones((6, 6, 6)), np.ones((3, 3, 3)), progress=lambda f, m: calls.append((f, m))
    )
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    with pytest.raises(Cancelled):
        convolve_dose(np.ones((6, 6, 6)), np.ones((3, 3, 3)), cancel=lambda: True)


def test_density_correction_analytic():
    dose = np.full((2, 2, 2), 2.0)
    rho = np.array([1.0, 0.5, 2.0, 1.92, 0.26, 0.05, 0.0012, 0.0]).reshape(2, 2, 2)
    out = density_corrected(dose, rho, 1.0)
    expected = 2.0 / np.maximum(rho, DEFAULT_MIN_DENSITY_G_CM3)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.reshape(-1)[1] == pytest.approx(4.0)
    assert out.reshape(-1)[2] == pytest.approx(1.0)
    assert np.all(np.isfinite(out))
    assert out.max() == pytest.approx(2.0 / DEFAULT_MIN_DENSITY_G_CM3)
    # kernel computed in a denser medium; scalar density; custom floor
    np.testing.assert_allclose(density_corrected(dose, 1.04, 1.04), dose, rtol=1e-6)
    np.testing.assert_allclose(
        density_corrected(dose, 0.0, 1.0, min_density_g_cm3=0.25), 8.0, rtol=1e-6
    )
    with pytest.raises(InvalidInputError):
        density_corrected(dose, -rho, 1.0)
    with pytest.raises(InvalidInputError):
        density_corrected(dose, np.ones((3, 3, 3)), 1.0)


def test_anisotropic_grid_point_source_orientation():
    """Kernel axes are [z, y, x]: a kernel elongated along x spreads dose along x."""
    kernel = gaussian_kernel((1, 1, 4), spacing_mm=(1.0, 4.0, 4.0), sigma_mm=2.0)
    decays = np.zeros((9, 9, 9))
    decays[4, 4, 4] = 1.0
    dose = convolve_dose(decays, kernel)
    assert dose[4, 4, 6] > 0.01 * dose.max()
    assert abs(dose[6, 4, 4]) < 1e-6 * dose.max()
    assert abs(dose[4, 6, 4]) < 1e-6 * dose.max()


def test_dose_of_non_negative_input_is_non_negative_and_negative_input_is_kept():
    kernel = gaussian_kernel((5, 5, 5), sigma_mm=3.0)
    decays = np.zeros((24, 24, 24))
    decays[3:6, 3:6, 3:6] = 1e12
    dose = convolve_dose(decays, kernel)
    assert dose.min() >= 0.0
    assert dose[20, 20, 20] < 1e-6 * dose.max()  # beyond the kernel reach: round-off only
    neg = convolve_dose(-decays, kernel)
    np.testing.assert_allclose(neg, -dose, atol=1e-6 * dose.max())
    assert neg.min() < 0


def test_kernel_spectrum_is_computed_once(monkeypatch):
    import scipy.fft

    calls = []
    for name in ("rfft", "rfftn"):
        real = getattr(scipy.fft, name)

        def counting(x, *args, _name=name, _real=real, **kwargs):
            calls.append((_name, np.shape(x)))
            return _real(x, *args, **kwargs)

        monkeypatch.setattr(scipy.fft, name, counting)
    conv = KernelConvolver(np.ones((3, 5, 3)), (8, 8, 8))
    for _ in range(3):
        conv.convolve(np.ones((8, 8, 8)))
    assert calls == [("rfft", (3, 5, 3))] + [("rfftn", (8, 8, 8))] * 3


def test_pruned_transforms_match_scipy_rfftn_irfftn():
    import scipy.fft

    from dosimetry_core.dose.convolution import _irfftn_cropped, _rfftn_small

    rng = np.random.default_rng(8)
    k = rng.uniform(0, 1, (5, 3, 7)).astype(np.float32)
    padded = (20, 18, 24)
    ref = scipy.fft.rfftn(k, s=padded)
    np.testing.assert_allclose(_rfftn_small(k, padded, 1), ref, atol=1e-5 * np.abs(ref).max())
    spec = scipy.fft.rfftn(rng.uniform(0, 1, padded).astype(np.float32))
    full = scipy.fft.irfftn(spec, s=padded)
    out = _irfftn_cropped(spec.copy(), padded, (2, 1, 3), (15, 16, 17), 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, full[2:17, 1:17, 3:20], atol=1e-6)
