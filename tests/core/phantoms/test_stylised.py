"""Stylised phantom: exact volumes, nesting, voxelisation and analytic outlines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from dosimetry_core.imaging.resample import rigid_transform
from dosimetry_core.model import Geometry
from dosimetry_core.phantoms.stylised import (
    CONTOUR_TOLERANCE_MM,
    Ellipsoid,
    EllipticCylinder,
    HalfSpace,
    adult_male_phantom,
    compartment_occupancy,
    label_map,
    shape_occupancy,
    sphere,
)

PHANTOM = adult_male_phantom()
ORGANS = [o.name for o in PHANTOM.organs if not o.name.startswith("tumour")]


def _grid(spacing: float, center, extent_mm=(620.0, 620.0, 580.0)) -> Geometry:
    n = [int(round(e / spacing)) for e in extent_mm]
    origin = np.asarray(center) - spacing * (np.asarray(n) - 1) / 2
    return Geometry((n[2], n[1], n[0]), (spacing,) * 3, tuple(origin))


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# ------------------------------------------------------------ exact volumes
@pytest.mark.parametrize("name", PHANTOM.names)
def test_closed_form_volume_equals_integral_of_section_areas(name):
    shape = PHANTOM.organ(name).shape
    lo, hi = shape.bounds_mm()
    breaks = [float(z) for z in np.linspace(lo[2], hi[2], 9)]
    total = sum(
        quad(shape.section_area_mm2, a, b, limit=200, epsabs=1e-7)[0]
        for a, b in zip(breaks[:-1], breaks[1:], strict=True)
    )
    assert shape.volume_ml() == pytest.approx(total * 1e-3, rel=1e-6)


def test_known_volumes_of_simple_shapes():
    assert Ellipsoid((0, 0, 0), (10, 20, 30)).volume_ml() == pytest.approx(
        4 / 3 * math.pi * 6000e-3
    )
    half = Ellipsoid((0, 0, 5), (10, 20, 30), (HalfSpace((0, 0, -1), -5),))
    assert half.volume_ml() == pytest.approx(2 / 3 * math.pi * 6000e-3)
    # cap of a sphere of radius 10 above z = 5: pi h^2 (3r - h) / 3 with h = 5
    cap = Ellipsoid((0, 0, 0), (10, 10, 10), (HalfSpace((0, 0, -1), -5),))
    assert cap.volume_ml() == pytest.approx(math.pi * 25 * 25 / 3 * 1e-3)
    assert sphere((0, 0, 0), 12.0).volume_ml() == pytest.approx(12.0)
    assert EllipticCylinder((0, 0), (3, 4), (0, 10)).volume_ml() == pytest.approx(math.pi * 120e-3)


def test_monte_carlo_volume_of_a_doubly_cut_ellipsoid():
    lung = PHANTOM.organ("lung_left").shape
    lo, hi = lung.bounds_mm()
    p = np.random.default_rng(1).uniform(lo, hi, size=(2_000_000, 3))
    frac = lung.contains(p[:, 0], p[:, 1], p[:, 2]).mean()
    assert frac * np.prod(hi - lo) * 1e-3 == pytest.approx(lung.volume_ml(), rel=3e-3)


# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("name", PHANTOM.names[1:])
def test_organs_lie_inside_their_parent_and_do_not_overlap_their_siblings(name):
    organ = PHANTOM.organ(name)
    lo, hi = organ.shape.bounds_mm()
    p = np.random.default_rng(2).uniform(lo, hi, size=(300_000, 3))
    q = p[organ.shape.contains(p[:, 0], p[:, 1], p[:, 2])]
    assert len(q) > 1000
    assert PHANTOM.organ(organ.parent).shape.contains(q[:, 0], q[:, 1], q[:, 2]).all()
    for sib in PHANTOM.children(organ.parent):
        if sib.name != name:
            assert not sib.shape.contains(q[:, 0], q[:, 1], q[:, 2]).any(), sib.name


def test_masses_are_volume_times_density_and_compartments_add_up_to_the_body():
    total = sum(PHANTOM.compartment_volume_ml(n) for n in PHANTOM.names)
    assert total == pytest.approx(PHANTOM.body.shape.volume_ml(), rel=1e-12)
    liver = PHANTOM.organ("liver")
    expected = (liver.shape.volume_ml() - 14.0) * liver.density_g_cm3
    assert PHANTOM.compartment_mass_g("liver") == pytest.approx(expected)


# ----------------------------------------------------------- voxelisation
@pytest.mark.parametrize(
    "motion",
    [None, rigid_transform((1.0, -2.0, 3.0), (4.0, -6.0, 5.0), PHANTOM.center_mm())],
    ids=["reference", "moved"],
)
def test_voxelised_volumes_match_the_exact_volumes(motion):
    geom = _grid(9.6, PHANTOM.center_mm())
    occ = compartment_occupancy(PHANTOM, geom, motion, n_sub=4)
    for name in ORGANS:
        v = occ[name].voxel_sum() * geom.voxel_volume_ml
        assert v == pytest.approx(PHANTOM.compartment_volume_ml(name), rel=0.02), name
    for name in ("tumour_1", "tumour_3"):
        v = occ[name].voxel_sum() * geom.voxel_volume_ml
        assert v == pytest.approx(PHANTOM.compartment_volume_ml(name), rel=0.03), name


def test_fractions_are_between_0_and_1_and_add_up_to_the_body_fraction():
    geom = _grid(9.6, PHANTOM.center_mm())
    motion = rigid_transform((0.0, 2.0, -3.0), (3.0, 3.0, -3.0), PHANTOM.center_mm())
    occ = compartment_occupancy(PHANTOM, geom, motion, n_sub=3)
    total = np.zeros(geom.shape_zyx)
    for o in occ.values():
        assert o.fraction.min() >= 0.0 and o.fraction.max() <= 1.0
        total[o.box] += o.fraction
    body = shape_occupancy(PHANTOM.body.shape, geom, motion, n_sub=3).dense()
    np.testing.assert_allclose(total, body, atol=1e-5)
    assert total.max() <= 1.0 + 1e-5


def test_a_sphere_voxelises_to_its_volume_and_centroid():
    s = sphere((3.3, -7.1, 12.9), 20.0)
    geom = _grid(4.0, (0.0, 0.0, 0.0), (120.0, 120.0, 120.0))
    occ = shape_occupancy(s, geom, n_sub=5)
    assert occ.voxel_sum() * geom.voxel_volume_ml == pytest.approx(20.0, rel=0.01)
    centroid = geom.index_to_world(occ.centroid_index())
    np.testing.assert_allclose(centroid, (3.3, -7.1, 12.9), atol=0.1)


def test_label_map_paints_children_over_parents():
    geom = _grid(4.8, PHANTOM.center_mm())
    labels = label_map(PHANTOM, geom)
    names = PHANTOM.label_names()
    vox = geom.voxel_volume_ml
    for name in ("liver", "kidney_left", "red_marrow", "tumour_3", "lung_right"):
        organ = PHANTOM.organ(name)
        v = np.count_nonzero(labels == organ.label) * vox
        assert v == pytest.approx(PHANTOM.compartment_volume_ml(name), rel=0.05), name
    assert set(np.unique(labels)) <= set(names)
    # the fat layer sits between the skin and the inner trunk
    assert np.count_nonzero(labels == PHANTOM.fat_label) > 0


# ---------------------------------------------------------------- outlines
def test_outlines_lie_on_the_slice_planes_and_match_the_exact_section_area():
    z_planes = np.arange(-2.5, 560.0, 5.0)
    rois = PHANTOM.roi_contours(z_planes)
    assert [r.name for r in rois] == [o.roi_name for o in PHANTOM.organs]
    for roi, organ in zip(rois, PHANTOM.organs, strict=True):
        assert roi.polygons, roi.name
        by_plane: dict[float, float] = {}
        for poly in roi.polygons:
            assert poly.shape[1] == 3 and len(poly) >= 3
            z = poly[0, 2]
            assert np.all(poly[:, 2] == z)
            assert np.any(np.isclose(z, z_planes))
            by_plane[z] = by_plane.get(z, 0.0) + _polygon_area(poly[:, :2])
        for z, area in by_plane.items():
            exact = organ.shape.section_area_mm2(z)
            if exact > 50.0:
                assert area == pytest.approx(exact, rel=0.02), (roi.name, z)
                # vertices on the surface: the polygon is inscribed, within the tolerance
                assert area <= exact * (1 + 1e-9)
        # every plane that cuts the organ has an outline
        cut = [z for z in z_planes if organ.shape.section_area_mm2(z) > 50.0]
        assert set(cut) <= set(by_plane), roi.name


def test_outline_vertices_are_on_the_analytic_surface():
    kidney = PHANTOM.organ("kidney_left").shape
    assert isinstance(kidney, Ellipsoid)
    (poly,) = kidney.section(140.0)
    cx, cy, cz = kidney.center_mm
    a, b, c = kidney.semi_axes_mm
    f = ((poly[:, 0] - cx) / a) ** 2 + ((poly[:, 1] - cy) / b) ** 2 + ((140.0 - cz) / c) ** 2
    np.testing.assert_allclose(f, 1.0, atol=1e-12)
    # edges stay within the contour tolerance of the ellipse
    mid = (poly + np.roll(poly, -1, axis=0)) / 2
    f_mid = ((mid[:, 0] - cx) / a) ** 2 + ((mid[:, 1] - cy) / b) ** 2 + ((140.0 - cz) / c) ** 2
    assert np.all(f_mid <= 1.0)
    r_min = min(a, b) * math.sqrt(1 - ((140.0 - cz) / c) ** 2)
    assert np.all((1 - np.sqrt(f_mid)) * r_min <= CONTOUR_TOLERANCE_MM * 1.01)
    # the liver section is clipped by its cut plane x + y <= 0
    (liver,) = PHANTOM.organ("liver").shape.section(228.0)
    assert np.all(liver[:, 0] + liver[:, 1] <= 1e-9)


def test_section_area_with_two_in_plane_cuts_is_a_quarter_ellipse():
    import math

    from dosimetry_core.phantoms.stylised import Ellipsoid, HalfSpace

    # two cuts through the centre (x <= 0 and y <= 0) leave a quarter of each z-section
    e = Ellipsoid(
        center_mm=(0.0, 0.0, 0.0),
        semi_axes_mm=(40.0, 25.0, 30.0),
        cuts=(HalfSpace((1.0, 0.0, 0.0), 0.0), HalfSpace((0.0, 1.0, 0.0), 0.0)),
    )
    for z in (0.0, 12.0, -20.0):
        r = math.sqrt(1.0 - (z / 30.0) ** 2)
        assert e.section_area_mm2(z) == pytest.approx(math.pi * 40 * 25 * r * r / 4, rel=1e-5)
