"""RTSTRUCT import onto arbitrary grids, export from masks, and their round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dosimetry_core.errors import DicomError
from dosimetry_core.io._contours import marching_squares, rasterize_polygons_2d
from dosimetry_core.io.dicom_read import read_series
from dosimetry_core.io.dicom_scan import scan_directory
from dosimetry_core.io.dicom_write import write_ct_series, write_rtstruct
from dosimetry_core.io.rtstruct import (
    export_rtstruct,
    import_rtstruct,
    rasterize_roi,
    read_rtstruct,
)
from dosimetry_core.io.types import RoiContours
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom
from tests.core.io.conftest import HAVE_DCIODVFY, dciodvfy_errors, make_ctx

FOR_UID = "1.2.826.0.1.3680043.8.498.7"
CENTRE = np.array([3.3, -7.1, 41.7])  # sphere centre, LPS mm (off the voxel grid)
RADIUS = 30.0


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.sum(a & b)) / float(a.sum() + b.sum())


def _centroid_world(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    idx = np.argwhere(mask).astype(float)
    return geometry.index_to_world(idx).mean(axis=0)


def _sphere_polygons(z_values: np.ndarray, n: int = 180) -> list[np.ndarray]:
    polys = []
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    for z in z_values:
        dz = z - CENTRE[2]
        if abs(dz) >= RADIUS:
            continue
        r = np.sqrt(RADIUS**2 - dz**2)
        polys.append(
            np.column_stack([CENTRE[0] + r * np.cos(t), CENTRE[1] + r * np.sin(t), np.full(n, z)])
        )
    return polys


@pytest.fixture(scope="module")
def sphere_rtstruct(tmp_path_factory) -> tuple[Path, Geometry, list[Path]]:
    """A CT with 2 mm slices and an RTSTRUCT of a sphere (exact circles on each slice)."""
    out = tmp_path_factory.mktemp("sphere")
    geometry = Geometry(
        (44, 40, 40), (2.5, 2.5, 2.0), (-45.0, -56.0, -1.0), frame_of_reference_uid=FOR_UID
    )
    ct = write_ct_series(
        Volume(np.zeros(geometry.shape_zyx, np.int16), geometry, ImageUnits.HU),
        out / "CT",
        make_ctx(series_description="CT 2 mm"),
    )
    z = geometry.index_to_world(np.column_stack([np.arange(44), np.zeros(44), np.zeros(44)]))[:, 2]
    rois = [
        RoiContours("Sphere", (255, 0, 0), "GTV", _sphere_polygons(z)),
        RoiContours("Nothing", (0, 0, 255), "ORGAN", []),
    ]
    path = write_rtstruct(out / "RS" / "sphere.dcm", make_ctx(series_description="ext"), ct, rois)
    return path, geometry, ct


# ------------------------------------------------------------------ 2D helpers
def test_marching_squares_refills_exactly_including_holes_and_saddles():
    rng = np.random.default_rng(3)
    for _ in range(100):
        m = rng.random((rng.integers(1, 25), rng.integers(1, 25))) > 0.5
        assert np.array_equal(rasterize_polygons_2d(marching_squares(m), m.shape), m)
    yy, xx = np.mgrid[:60, :60]
    ring = ((yy - 30) ** 2 + (xx - 28) ** 2 < 25**2) & ((yy - 30) ** 2 + (xx - 28) ** 2 >= 10**2)
    polys = marching_squares(ring)
    assert len(polys) == 2  # outer boundary and the hole, separate polygons
    assert np.array_equal(rasterize_polygons_2d(polys, ring.shape), ring)


# ------------------------------------------------------------------ demo import
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    files = write_demo_dicom(out, DemoConfig.small())
    truth = json.loads(files.ground_truth_path.read_text())
    ct = read_series(scan_directory(files.ct_paths[0][0].parent).series[0])
    return files, truth, ct.volume.geometry


def test_demo_true_outlines_volumes(demo):
    files, truth, geometry = demo
    result = import_rtstruct(files.rtstruct_path, geometry)
    assert not result.skipped
    # ROI volume = analytic shape volume (the Liver ROI includes its tumours)
    for name in ("Liver", "Kidney_L", "Kidney_R", "Spleen"):
        want = truth["rois"][name]["shape_volume_ml"]
        assert result.volume_ml(name) == pytest.approx(want, rel=0.03), name
    # the compartment volume of the kidney (nothing carved out) equals its ROI
    assert truth["compartments"]["kidney_left"]["volume_ml"] == pytest.approx(
        truth["rois"]["Kidney_L"]["shape_volume_ml"]
    )
    assert result.rois["Liver"].color_rgb == tuple(truth["rois"]["Liver"]["color_rgb"])
    assert result.rois["Tumour_1"].kind == "GTV"


def test_frame_of_reference_mismatch_is_refused(demo):
    files, _, geometry = demo
    other = geometry.with_frame_of_reference("1.2.3.4.5")
    with pytest.raises(
        DicomError, match="RTSTRUCT refers to frame of reference .* the image is 1.2.3.4.5"
    ) as err:
        import_rtstruct(files.rtstruct_path, other)
    assert "true_outlines.dcm" in str(err.value)


def test_not_an_rtstruct(demo):
    files, _, _ = demo
    with pytest.raises(DicomError, match="not an RT Structure Set"):
        read_rtstruct(files.ct_paths[0][0])


# -------------------------------------------------------- external RTSTRUCT
def test_read_structure_set(sphere_rtstruct):
    path, geometry, _ = sphere_rtstruct
    ss = read_rtstruct(path)
    assert ss.names == ["Sphere", "Nothing"]
    assert ss.frame_of_reference_uid == FOR_UID
    assert ss.referenced_series_uid
    sphere = ss.roi("Sphere")
    assert sphere.number == 1 and sphere.kind == "GTV" and sphere.color_rgb == (255, 0, 0)
    assert len(sphere.polygons) == 30 and sphere.polygons[0].shape == (180, 3)


def test_empty_roi_reported_not_fatal(sphere_rtstruct):
    path, geometry, _ = sphere_rtstruct
    result = import_rtstruct(path, geometry)
    assert result.skipped == ["Nothing"] and "Nothing" not in result.masks
    assert any("'Nothing' has no contours" in w for w in result.warnings)
    assert result.masks["Sphere"].any()


@pytest.mark.parametrize(
    "name,target",
    [
        ("same grid", Geometry((44, 40, 40), (2.5, 2.5, 2.0), (-45.0, -56.0, -1.0))),
        ("5 mm slices, shifted", Geometry((20, 36, 36), (3.0, 3.0, 5.0), (-50.0, -60.0, -3.3))),
        (
            "oblique 30 deg",
            Geometry((26, 30, 30), (3.0, 3.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, _rot_x(30)))),
        ),
    ],
)
def test_contours_off_the_slices_land_in_place(sphere_rtstruct, name, target):
    path, _, _ = sphere_rtstruct
    if name.startswith("oblique"):  # centre the oblique grid on the sphere
        d = np.asarray(target.direction)
        half = np.asarray(target.spacing_mm) * (np.asarray(target.shape_zyx[::-1]) - 1) / 2
        origin = CENTRE + np.array([4.1, -2.7, 3.9]) - d @ half
        target = Geometry(target.shape_zyx, target.spacing_mm, tuple(origin), target.direction)
    target = target.with_frame_of_reference(FOR_UID)
    mask = import_rtstruct(path, target).masks["Sphere"]
    volume = mask.sum() * target.voxel_volume_ml
    want = 4.0 / 3.0 * np.pi * RADIUS**3 / 1000.0
    assert volume == pytest.approx(want, rel=0.05), name
    assert np.linalg.norm(_centroid_world(mask, target) - CENTRE) < 1.0, name


def test_self_intersecting_contour_warned_and_filled_even_odd():
    g = Geometry((3, 20, 20), (1.0, 1.0, 1.0))
    bow = np.array([[2.0, 2.0, 1.0], [17.0, 17.0, 1.0], [17.0, 2.0, 1.0], [2.0, 17.0, 1.0]])
    warnings: list[str] = []
    mask = rasterize_roi([bow], g, roi_name="Bow", warnings=warnings)
    assert any("'Bow'" in w and "self-intersecting" in w and "1.00 mm" in w for w in warnings)
    assert mask[1].any() and not mask[0].any() and not mask[2].any()
    assert mask[1, 9, 4] and mask[1, 9, 15] and not mask[1, 4, 9]  # the two triangles


def test_non_parallel_contours_refused():
    g = Geometry((5, 20, 20), (1.0, 1.0, 1.0))
    axial = np.array([[2.0, 2.0, 1.0], [10.0, 2.0, 1.0], [10.0, 10.0, 1.0]])
    sagittal = np.array([[2.0, 2.0, 1.0], [2.0, 10.0, 1.0], [2.0, 10.0, 4.0]])
    with pytest.raises(DicomError, match="'Mixed': contours lie on non-parallel planes"):
        rasterize_roi([axial, sagittal], g, roi_name="Mixed")


def test_nested_polygon_is_a_hole():
    g = Geometry((1, 30, 30), (1.0, 1.0, 1.0))
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)

    def circle(r):
        return np.column_stack([15 + r * np.cos(t), 15 + r * np.sin(t), np.zeros(64)])

    mask = rasterize_roi([circle(12.0), circle(5.0)], g)
    assert mask[0, 15, 25] and not mask[0, 15, 15]


# -------------------------------------------------------------- export/import
def _ellipsoid(geometry: Geometry, centre, radii) -> np.ndarray:
    idx = np.indices(geometry.shape_zyx).reshape(3, -1).T
    w = geometry.index_to_world(idx) - np.asarray(centre)
    return (np.sum((w / np.asarray(radii)) ** 2, axis=1) <= 1.0).reshape(geometry.shape_zyx)


@pytest.mark.parametrize(
    "spacing,radii,min_dice",
    [
        ((2.0, 2.0, 2.0), (30.0, 22.0, 18.0), 0.98),  # ~50 mL
        ((4.0, 4.0, 3.0), (55.0, 45.0, 40.0), 0.98),  # ~415 mL
        ((2.0, 2.0, 4.0), (4.0, 4.0, 4.0), 0.98),  # 0.27 mL: same grid, still exact
    ],
)
def test_export_import_dice(tmp_path, spacing, radii, min_dice):
    n = int(np.ceil(2.4 * max(radii) / min(spacing)))
    nz = int(np.ceil(2.4 * radii[2] / spacing[2]))
    geometry = Geometry((nz, n, n), spacing, (-60.0, -70.0, 10.0), frame_of_reference_uid=FOR_UID)
    centre = geometry.center_world() + np.array([0.7, -0.4, 0.3])
    mask = _ellipsoid(geometry, centre, radii)
    hollow = mask & ~_ellipsoid(geometry, centre, np.asarray(radii) * 0.4)
    ct = write_ct_series(
        Volume(np.zeros(geometry.shape_zyx, np.int16), geometry, ImageUnits.HU),
        tmp_path / "CT",
        make_ctx(),
    )
    out = export_rtstruct(
        tmp_path / "rs.dcm",
        {"Organ": (mask, (0, 200, 0), "ORGAN"), "Shell": (hollow, (9, 9, 9), "AVOIDANCE")},
        geometry,
        make_ctx(frame_of_reference_uid="", series_description="export"),
        ct,
    )
    back = import_rtstruct(out, geometry)
    assert _dice(mask, back.masks["Organ"]) >= min_dice
    # marching squares at 0.5 separates inside and outside voxel centres: re-filled on
    # the same grid the mask comes back bit-identical, whatever the size of the shape
    assert np.array_equal(mask, back.masks["Organ"]) and np.array_equal(hollow, back.masks["Shell"])
    assert _dice(hollow, back.masks["Shell"]) >= min_dice
    assert back.rois["Organ"].color_rgb == (0, 200, 0) and back.rois["Shell"].kind == "AVOIDANCE"
    if HAVE_DCIODVFY:
        assert dciodvfy_errors(out) == []


def test_export_import_onto_other_grid(tmp_path):
    """Exported on a 2 mm grid, re-imported on a 3.5 mm grid: volume and position kept."""
    geometry = Geometry(
        (40, 50, 50), (2.0, 2.0, 2.0), (-50.0, -50.0, 0.0), frame_of_reference_uid=FOR_UID
    )
    centre = np.array([1.1, -2.3, 39.6])
    mask = _ellipsoid(geometry, centre, (30.0, 25.0, 25.0))
    ct = write_ct_series(
        Volume(np.zeros(geometry.shape_zyx, np.int16), geometry, ImageUnits.HU),
        tmp_path / "CT",
        make_ctx(),
    )
    out = export_rtstruct(
        tmp_path / "rs.dcm", {"Organ": (mask, (1, 2, 3), "ORGAN")}, geometry, make_ctx(), ct
    )
    target = Geometry(
        (24, 30, 30), (3.5, 3.5, 3.5), (-50.0, -50.0, -1.0), frame_of_reference_uid=FOR_UID
    )
    got = import_rtstruct(out, target).masks["Organ"]
    assert got.sum() * target.voxel_volume_ml == pytest.approx(
        mask.sum() * geometry.voxel_volume_ml, rel=0.05
    )
    assert np.linalg.norm(_centroid_world(got, target) - _centroid_world(mask, geometry)) < 1.0
