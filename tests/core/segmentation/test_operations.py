"""Mask operations against analytic answers (spheres, discs, polygons)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.segmentation import operations as op
from tests.core.segmentation import (
    centred_grid,
    partial_volume_bound_ml,
    sphere_fraction,
    sphere_mask,
    sphere_volume_ml,
    world_coords,
)

ANISO = (2.0, 2.0, 5.0)


# ------------------------------------------------------------------ thresholds
def test_absolute_threshold_on_partial_volume_sphere_gives_analytic_volume():
    geom = centred_grid(100.0, ANISO)
    radius = 25.0
    img = Volume(1000.0 * sphere_fraction(geom, radius), geom, ImageUnits.BQML)
    mask = op.threshold_absolute(img, 500.0)
    vol = mask.sum() * geom.voxel_volume_ml
    assert abs(vol - sphere_volume_ml(radius)) < partial_volume_bound_ml(radius, geom)
    assert vol == pytest.approx(sphere_volume_ml(radius), rel=0.03)


def test_absolute_threshold_window_on_ct():
    geom = Geometry((1, 1, 5), (1.0, 1.0, 1.0))
    ct = Volume(np.array([[[-1000.0, -100.0, 0.0, 40.0, 1200.0]]]), geom, ImageUnits.HU)
    assert op.threshold_absolute(ct, -150, 100).tolist() == [[[False, True, True, True, False]]]
    assert op.threshold_absolute(ct, 200).tolist() == [[[False, False, False, False, True]]]
    with pytest.raises(InvalidInputError, match="below"):
        op.threshold_absolute(ct, 100, -100)


def test_relative_threshold_50_percent_on_blurred_large_sphere():
    geom = centred_grid(140.0, (2.0, 2.0, 2.0))
    radius = 30.0
    img = 1e5 * sphere_fraction(geom, radius, sub=2)
    fwhm_mm = 8.0
    sigma_vox = fwhm_mm / 2.3548 / 2.0
    blurred = Volume(ndimage.gaussian_filter(img, sigma_vox), geom, ImageUnits.BQML)
    mask = op.threshold_relative(blurred, 50.0)
    vol = mask.sum() * geom.voxel_volume_ml
    # For a sphere much larger than the resolution the 50 % iso-surface lies close
    # to the true edge (slightly inside because of the curvature).
    assert vol == pytest.approx(sphere_volume_ml(radius), rel=0.05)


def test_relative_threshold_uses_maximum_inside_region():
    geom = centred_grid(100.0, (2.0, 2.0, 2.0))
    w = world_coords(geom)
    hot = np.linalg.norm(w - (-20.0, 0, 0), axis=-1) <= 10
    warm = np.linalg.norm(w - (20.0, 0, 0), axis=-1) <= 10
    img = Volume(1000.0 * hot + 100.0 * warm, geom, ImageUnits.BQML)
    # 50 % of the global maximum misses the warm sphere ...
    assert not (op.threshold_relative(img, 50.0) & warm).any()
    # ... 50 % of the maximum inside a box around it finds exactly it.
    box = np.zeros(geom.shape_zyx, bool)
    box[:, :, geom.shape_zyx[2] // 2 :] = True
    np.testing.assert_array_equal(op.threshold_relative(img, 50.0, within=box), warm)
    with pytest.raises(InvalidInputError):
        op.threshold_relative(img, 0.0)
    with pytest.raises(InvalidInputError, match="empty"):
        op.threshold_relative(img, 40.0, within=np.zeros(geom.shape_zyx, bool))


# -------------------------------------------------------------- region growing
def _two_spheres():
    geom = centred_grid(100.0, ANISO)
    w = world_coords(geom)
    a = np.linalg.norm(w - (-22.0, 0, 0), axis=-1) <= 15
    b = np.linalg.norm(w - (22.0, 0, 0), axis=-1) <= 15
    img = Volume(np.where(a | b, 800.0, 10.0), geom, ImageUnits.BQML)
    return geom, img, a, b


def test_region_growing_returns_only_the_seeded_sphere():
    geom, img, a, b = _two_spheres()
    grown = op.region_grow(img, seed_world_mm=(22.0, 0.0, 0.0), lower=400.0)
    np.testing.assert_array_equal(grown, b)
    vol = grown.sum() * geom.voxel_volume_ml
    assert abs(vol - sphere_volume_ml(15)) < partial_volume_bound_ml(15, geom)
    k, j, i = np.rint(geom.world_to_index((-22.0, 0.0, 0.0))).astype(int)
    by_index = op.region_grow(img, seed_index=(k, j, i), tolerance_percent=10, connectivity=26)
    np.testing.assert_array_equal(by_index, a)


def test_region_growing_connectivity_and_errors():
    geom = Geometry((3, 3, 3), (1.0, 1.0, 1.0))
    arr = np.zeros((3, 3, 3))
    arr[0, 0, 0] = arr[1, 1, 1] = 5.0  # touch only at a corner
    img = Volume(arr, geom)
    assert op.region_grow(img, seed_index=(0, 0, 0), lower=1, connectivity=6).sum() == 1
    assert op.region_grow(img, seed_index=(0, 0, 0), lower=1, connectivity=26).sum() == 2
    with pytest.raises(InvalidInputError, match="outside the interval"):
        op.region_grow(img, seed_index=(2, 2, 2), lower=1)
    with pytest.raises(InvalidInputError, match="either"):
        op.region_grow(img, lower=1)
    with pytest.raises(InvalidInputError, match="outside the image"):
        op.region_grow(img, seed_index=(5, 0, 0), lower=1)
    with pytest.raises(InvalidInputError, match="connectivity"):
        op.region_grow(img, seed_index=(0, 0, 0), lower=1, connectivity=7)


# -------------------------------------------------------- connected components
def test_connected_components():
    geom, _, a, b = _two_spheres()
    w = world_coords(geom)
    small = np.linalg.norm(w - (0.0, 35.0, 0.0), axis=-1) <= 4  # about 0.27 mL
    mask = a | b | small
    big_b = b | (np.linalg.norm(w - (22.0, 0, 0), axis=-1) <= 16)
    np.testing.assert_array_equal(op.keep_largest_component(a | big_b), big_b)
    np.testing.assert_array_equal(
        op.keep_component_containing(mask, geom, seed_world_mm=(-22.0, 0.0, 0.0)), a
    )
    np.testing.assert_array_equal(op.remove_small_components(mask, geom, 1.0), a | b)
    with pytest.raises(InvalidInputError, match="not inside"):
        op.keep_component_containing(mask, geom, seed_world_mm=(0.0, 0.0, 0.0))
    assert not op.keep_largest_component(np.zeros((2, 2, 2), bool)).any()


def test_fill_holes_3d_and_per_slice():
    geom = centred_grid(60.0, (2.0, 2.0, 2.0))
    solid = sphere_mask(geom, 20)
    shell = solid & ~sphere_mask(geom, 12)
    np.testing.assert_array_equal(op.fill_holes(shell), solid)
    # An axial tube open at both ends: no 3D cavity, but a hole on every axial slice.
    w = world_coords(geom)
    rho = np.hypot(w[..., 0], w[..., 1])
    tube = (rho <= 15) & (rho > 8) & (np.abs(w[..., 2]) < 20)
    np.testing.assert_array_equal(op.fill_holes(tube), tube)
    filled = op.fill_holes(tube, plane="axial")
    np.testing.assert_array_equal(filled, (rho <= 15) & (np.abs(w[..., 2]) < 20))
    # Seen from the side (coronal) the tube's wall has no enclosed holes.
    np.testing.assert_array_equal(op.fill_holes(tube, plane="coronal"), tube)
    with pytest.raises(InvalidInputError, match="plane"):
        op.fill_holes(tube, plane="oblique")  # type: ignore[arg-type]


# ------------------------------------------------------------- grow / shrink
@pytest.mark.parametrize("spacing", [(2.0, 2.0, 5.0), (1.0, 3.0, 6.0), (2.0, 2.0, 2.0)])
@pytest.mark.parametrize("margin", [5.0, 10.0])
def test_grow_sphere_gives_analytic_volume_with_anisotropic_voxels(spacing, margin):
    geom = centred_grid(120.0, spacing)
    radius = 25.0
    grown = op.grow(sphere_mask(geom, radius), geom, margin)
    vol = grown.sum() * geom.voxel_volume_ml
    expected = sphere_volume_ml(radius + margin)
    assert abs(vol - expected) < partial_volume_bound_ml(radius + margin, geom)
    assert vol == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 5.0), (1.0, 3.0, 6.0)])
@pytest.mark.parametrize("margin", [5.0, 10.0])
def test_shrink_sphere_gives_analytic_volume_with_anisotropic_voxels(spacing, margin):
    geom = centred_grid(80.0, spacing)
    radius = 30.0
    shrunk = op.shrink(sphere_mask(geom, radius), geom, margin)
    vol = shrunk.sum() * geom.voxel_volume_ml
    expected = sphere_volume_ml(radius - margin)
    assert abs(vol - expected) < partial_volume_bound_ml(radius - margin, geom)
    assert vol == pytest.approx(expected, rel=0.06)


def test_grow_is_isotropic_in_mm_not_in_voxels():
    geom = Geometry((21, 41, 41), (2.0, 2.0, 5.0))
    seed = np.zeros(geom.shape_zyx, bool)
    seed[10, 20, 20] = True
    grown = op.grow(seed, geom, 10.0)
    k, j, i = np.nonzero(grown)
    assert (k.max() - 10) * 5.0 == 10.0  # two slices of 5 mm
    assert (i.max() - 20) * 2.0 == 10.0  # five columns of 2 mm
    assert (j.max() - 20) * 2.0 == 10.0
    np.testing.assert_array_equal(op.grow_or_shrink(grown, geom, -10.0), seed)


def test_shrink_does_not_erode_at_the_image_border_and_margins_validate():
    geom = Geometry((4, 10, 10), (1.0, 1.0, 1.0))
    full = np.zeros(geom.shape_zyx, bool)
    full[:, :, :5] = True  # touches the border on five sides
    out = op.shrink(full, geom, 1.0)
    assert out[:, :, :4].all() and not out[:, :, 4:].any()
    with pytest.raises(InvalidInputError):
        op.grow(full, geom, -1.0)
    with pytest.raises(InvalidInputError):
        op.shrink(full, geom, -1.0)
    assert not op.grow(np.zeros(geom.shape_zyx, bool), geom, 5.0).any()


def test_effective_radius_matches_margin_on_fine_grids():
    assert op.effective_radius_mm((1.0, 1.0, 1.0), 30.0) == pytest.approx(30.0, abs=0.5)
    assert op.effective_radius_mm((5.0, 2.0, 2.0), 0.0) == 0.0


# ------------------------------------------------------------------ booleans
def test_boolean_operations_are_exact():
    rng = np.random.default_rng(1)
    a = rng.random((6, 7, 8)) < 0.4
    b = rng.random((6, 7, 8)) < 0.5
    c = rng.random((6, 7, 8)) < 0.3
    u, n, s = op.union(a, b), op.intersection(a, b), op.subtract(a, b)
    assert u.sum() == a.sum() + b.sum() - n.sum()
    assert s.sum() == a.sum() - n.sum()
    np.testing.assert_array_equal(op.union(a, b, c), a | b | c)
    np.testing.assert_array_equal(op.intersection(a, b, c), a & b & c)
    np.testing.assert_array_equal(op.subtract(a, b, c), a & ~b & ~c)
    assert u is not a and s is not a  # new arrays


def test_boolean_operations_refuse_different_grids():
    g1 = Geometry((4, 4, 4), (2.0, 2.0, 2.0))
    g2 = Geometry((4, 4, 4), (2.0, 2.0, 2.0), origin_mm=(1.0, 0.0, 0.0))
    m1 = Volume(np.ones((4, 4, 4), bool), g1, ImageUnits.MASK)
    m2 = Volume(np.ones((4, 4, 4), bool), g2, ImageUnits.MASK)
    with pytest.raises(InvalidInputError, match="resample"):
        op.union(m1, m2)
    with pytest.raises(InvalidInputError, match="shapes"):
        op.intersection(np.ones((4, 4, 4), bool), np.ones((4, 4, 5), bool))
    with pytest.raises(InvalidInputError, match="two"):
        op.union(np.ones((4, 4, 4), bool))
    m3 = Volume(np.zeros((4, 4, 4), bool), g1, ImageUnits.MASK)
    assert op.subtract(m1, m3).all()


# -------------------------------------------------------------- interpolation
@pytest.mark.parametrize("method,rel", [("linear", 0.05), ("cubic", 0.03)])
@pytest.mark.parametrize("plane,axis", [("axial", 0), ("coronal", 1), ("sagittal", 2)])
def test_interpolating_a_sphere_drawn_every_fourth_slice(plane, axis, method, rel):
    geom = centred_grid(100.0, (2.0, 2.0, 2.5))
    truth = sphere_mask(geom, 35.0)
    sparse = np.zeros_like(truth)
    sl: list[slice] = [slice(None)] * 3
    sl[axis] = slice(None, None, 4)
    sparse[tuple(sl)] = truth[tuple(sl)]
    out = op.interpolate_slices(sparse, geom, plane, method=method)
    # Shape-based interpolation does not extrapolate beyond the outermost drawn
    # slices and cuts corners on convex outlines: the volume comes out a little low.
    assert out.sum() == pytest.approx(truth.sum(), rel=rel)
    assert out.sum() <= truth.sum()
    dice = 2 * (out & truth).sum() / (out.sum() + truth.sum())
    assert dice > 0.965
    assert (out | sparse).sum() == out.sum()  # nothing drawn is lost


def test_interpolation_between_slices_10_and_20():
    geom = Geometry((30, 40, 40), (1.0, 1.0, 2.0))
    mask = np.zeros(geom.shape_zyx, bool)
    mask[10, 10:20, 10:20] = True
    mask[20, 14:30, 14:30] = True
    out = op.interpolate_slices(mask, geom)
    filled = [k for k in range(30) if out[k].any()]
    assert filled == list(range(10, 21))
    # Halfway the square is halfway in position and size (within a pixel).
    j, i = np.nonzero(out[15])
    assert 11 <= j.min() <= 13 and 23 <= j.max() <= 25
    # Explicit list with an empty slice closes the shape.
    out2 = op.interpolate_slices(mask, geom, drawn_slices=[10, 14])
    assert out2[11].sum() > out2[12].sum() > out2[13].sum()
    with pytest.raises(InvalidInputError, match="outside"):
        op.interpolate_slices(mask, geom, drawn_slices=[10, 40])
    with pytest.raises(InvalidInputError, match="method"):
        op.interpolate_slices(mask, geom, method="spline")  # type: ignore[arg-type]
    # Two identical drawn slices: every slice in between is the same square.
    same = np.zeros(geom.shape_zyx, bool)
    same[[3, 9], 5:15, 5:15] = True
    out3 = op.interpolate_slices(same, geom)
    np.testing.assert_array_equal(out3[3:10], np.broadcast_to(same[3], (7, 40, 40)))


# ------------------------------------------------------------ brush / polygon
def test_paint_disc_area_respects_non_square_pixels():
    geom = Geometry((5, 200, 100), (1.0, 0.5, 3.0), origin_mm=(-50.0, -50.0, -6.0))
    mask = np.zeros(geom.shape_zyx, bool)
    centre = (3.2, -4.1, 0.0)  # z = 0 mm is slice 2
    out = op.paint_disc(mask, geom, "axial", 2, centre, 15.0)
    area_mm2 = out[2].sum() * 1.0 * 0.5
    assert area_mm2 == pytest.approx(np.pi * 15.0**2, rel=0.01)
    assert out.sum() == out[2].sum() and not mask.any()
    # The disc is round in mm: equal extent in x and y.
    j, i = np.nonzero(out[2])
    assert (j.max() - j.min()) * 0.5 == pytest.approx((i.max() - i.min()) * 1.0, abs=1.0)
    erased = op.paint_disc(out, geom, "axial", 2, centre, 5.0, erase=True)
    assert erased[2].sum() * 0.5 == pytest.approx(np.pi * (15**2 - 5**2), rel=0.02)
    coronal = op.paint_disc(mask, geom, "coronal", 100, (0.0, 0.0, 0.0), 6.0)
    assert coronal[:, 100, :].sum() * 3.0 == pytest.approx(np.pi * 36, rel=0.25)
    with pytest.raises(InvalidInputError):
        op.paint_disc(mask, geom, "axial", 9, centre, 5.0)
    with pytest.raises(InvalidInputError):
        op.paint_disc(mask, geom, "axial", 2, centre, 0.0)


def _poly_slice_area(out, geom, k):
    sx, sy, _ = geom.spacing_mm
    return out[k].sum() * sx * sy


def test_fill_polygon_square_and_triangle_areas():
    geom = Geometry((3, 120, 160), (0.5, 0.7, 2.0), origin_mm=(-40.0, -40.0, -2.0))
    mask = np.zeros(geom.shape_zyx, bool)
    z = 0.0  # slice 1
    square = np.array([[-10.3, -10.1, z], [9.9, -10.1, z], [9.9, 10.2, z], [-10.3, 10.2, z]])
    out = op.fill_polygon(mask, geom, "axial", 1, square)
    perimeter = 2 * (20.2 + 20.3)
    tol = perimeter * 0.5 * np.hypot(0.5, 0.7)
    assert abs(_poly_slice_area(out, geom, 1) - 20.2 * 20.3) < tol
    assert _poly_slice_area(out, geom, 1) == pytest.approx(20.2 * 20.3, rel=0.03)
    assert out.sum() == out[1].sum()
    tri = np.array([[-20.0, -15.0, z], [25.0, -15.0, z], [0.0, 30.0, z], [-20.0, -15.0, z]])
    out_t = op.fill_polygon(mask, geom, "axial", 1, tri)  # closing point repeated
    assert _poly_slice_area(out_t, geom, 1) == pytest.approx(0.5 * 45 * 45, rel=0.03)
    # Points inside the square are set, outside not.
    k, j, i = np.rint(geom.world_to_index([[0.0, 0.0, z], [15.0, 0.0, z]])).astype(int).T
    assert out[k[0], j[0], i[0]] and not out[k[1], j[1], i[1]]
    erased = op.fill_polygon(out_t, geom, "axial", 1, square, erase=True)
    assert not (erased & out).any()


def test_fill_polygon_on_a_sagittal_plane():
    geom = Geometry((40, 50, 30), (1.0, 1.0, 2.0))
    x = 10.0  # column 10
    square = np.array([[x, 10.0, 20.0], [x, 30.0, 20.0], [x, 30.0, 60.0], [x, 10.0, 60.0]])
    out = op.fill_polygon(np.zeros(geom.shape_zyx, bool), geom, "sagittal", 10, square)
    assert out[:, :, 10].sum() * 1.0 * 2.0 == pytest.approx(20 * 40, rel=0.1)
    assert out.sum() == out[:, :, 10].sum()


@pytest.mark.parametrize(
    "points,message",
    [
        ([[0, 0, 0], [10, 10, 0], [10, 0, 0], [0, 10, 0]], "intersects itself"),  # bow tie
        ([[0, 0, 0], [10, 0, 0], [10, 10, 0], [5, -5, 0]], "intersects itself"),
        ([[0, 0, 0], [10, 0, 0], [5, 0, 0], [5, 5, 0]], "intersects itself"),  # folds back
        ([[0, 0, 0], [10, 0, 0]], "at least 3"),
        ([[0, 0, 0], [10, 0, 0], [0, 0, 0]], "at least 3"),
        ([[0, 0, 0], [5, 0, 0], [10, 0, 0]], "zero area"),
        ([[0, 0, 0], [10, 0, 0], [10, 10, 5.0], [0, 10, 0]], "off axial slice"),
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_fill_polygon_refuses_bad_polygons(points, message):
    geom = Geometry((5, 30, 30), (1.0, 1.0, 2.0))
    mask = np.zeros(geom.shape_zyx, bool)
    with pytest.raises(InvalidInputError, match=message):
        op.fill_polygon(mask, geom, "axial", 0, np.asarray(points, float))


def test_fill_polygon_accepts_a_concave_polygon():
    geom = Geometry((1, 40, 40), (1.0, 1.0, 1.0))
    # An L shape: 20 x 20 square minus a 10 x 10 corner = 300 mm^2.
    poly = [[0, 0, 0], [20, 0, 0], [20, 10, 0], [10, 10, 0], [10, 20, 0], [0, 20, 0]]
    poly = np.asarray(poly, float) + [5.3, 5.3, 0]
    out = op.fill_polygon(np.zeros(geom.shape_zyx, bool), geom, "axial", 0, poly)
    assert out.sum() == 300
