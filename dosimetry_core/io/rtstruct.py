"""RT Structure Set import (contours -> masks on any grid) and export (masks -> contours).

Import
------
:func:`read_rtstruct` reads the ROIs and their CLOSED_PLANAR contours (PS3.3
C.8.8.5 Structure Set, C.8.8.6 ROI Contour, C.8.8.8 RT ROI Observations).
:func:`rasterize_roi` turns the planar polygons of one ROI into a mask on a
:class:`~dosimetry_core.model.Geometry`, also when the contours are not on the
image slices:

* contour planes parallel to the target slices (any in-plane rotation): every
  target slice takes the **nearest contour plane** when it lies within half the
  contour spacing (inside the stack, gaps of up to two contour spacings are
  bridged; no shape-based interpolation), and that plane's polygons are filled
  on the voxel centres of the slice;
* other orientations (oblique target grid): the contours are filled on an
  intermediate grid aligned with the contour planes (in-plane spacing half the
  finest target spacing, slice spacing = contour spacing), which is resampled
  with :func:`dosimetry_core.imaging.resample.resample` (trilinear on the 0/1
  mask, threshold 0.5).

Fill rule (documented choice): **even-odd**.  All polygons of an ROI on one
plane are pooled, so a polygon inside another is a hole (the usual RTSTRUCT
convention for separately stored inner contours).  A self-intersecting polygon
is **not refused**: it is filled by the even-odd rule and a warning naming the
ROI and the plane is returned (nothing is lost, the user sees it).

:func:`rtstruct_to_masks` / :func:`import_rtstruct` rasterise every ROI:
a frame of reference different from the image's is refused
(:class:`~dosimetry_core.errors.DicomError`), ROIs without contours are skipped
and listed in ``skipped`` with a warning.

Export
------
:func:`export_rtstruct` extracts per-slice polygons with marching squares at
the 0.5 iso-level (holes as separate polygons) and writes them with
:func:`dosimetry_core.io.dicom_write.write_rtstruct`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io._contours import (
    marching_squares,
    plane_of,
    rasterize_polygons_2d,
    self_intersects,
)
from dosimetry_core.io._dicom_common import get_floats, get_str, get_value, read_dataset
from dosimetry_core.io.types import DicomWriteContext, RoiContours
from dosimetry_core.model import Geometry, ImageUnits, Volume

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"

#: Polygons whose points deviate more than this from their plane are reported.
PLANARITY_TOLERANCE_MM = 0.05
#: Contour normals within this angle (cosine) count as parallel.
_PARALLEL_COS = 1.0 - 1e-4
#: Upper bound of the intermediate grid used for oblique targets (voxels).
_MAX_INTERMEDIATE_VOXELS = 30_000_000

MaskSpec = tuple[NDArray[np.bool_], tuple[int, int, int], str]
"""(mask [z, y, x], display colour RGB, kind / RT ROI Interpreted Type)."""


@dataclass
class StructureSetRoi:
    """One ROI of a structure set (contours as read, LPS mm)."""

    number: int
    name: str
    color_rgb: tuple[int, int, int] | None
    kind: str
    """RT ROI Interpreted Type (ORGAN, GTV, EXTERNAL, ...); empty when absent."""
    polygons: list[NDArray[np.float64]] = field(default_factory=list)
    """CLOSED_PLANAR contours, each (N, 3) LPS points."""
    frame_of_reference_uid: str = ""
    ignored_contours: int = 0
    """Contours of other geometric types (POINT, OPEN_PLANAR, ...), not rasterised."""


@dataclass
class StructureSet:
    """Content of an RTSTRUCT file."""

    path: Path
    label: str
    frame_of_reference_uid: str
    """Referenced Frame of Reference UID (first item), else that of the ROIs."""
    referenced_series_uid: str
    """Series the contours were drawn on (RT Referenced Series), empty when absent."""
    rois: list[StructureSetRoi]
    warnings: list[str] = field(default_factory=list)

    def roi(self, name: str) -> StructureSetRoi:
        for r in self.rois:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rois]


@dataclass
class RasterizedRois:
    """Masks made from a structure set on one target grid."""

    masks: dict[str, NDArray[np.bool_]]
    rois: dict[str, StructureSetRoi]
    geometry: Geometry
    skipped: list[str] = field(default_factory=list)
    """ROIs without usable contours (not in ``masks``)."""
    warnings: list[str] = field(default_factory=list)

    def volume_ml(self, name: str) -> float:
        return float(self.masks[name].sum()) * self.geometry.voxel_volume_ml


# ====================================================================== reading
def read_rtstruct(path: str | Path) -> StructureSet:
    """Read the ROIs and contours of an RT Structure Set.

    Raises
    ------
    DicomError
        Not DICOM, or not an RT Structure Set (message names the file).
    """
    path = Path(path)
    ds = read_dataset(path)
    sop_class = get_str(ds, "SOPClassUID")
    if sop_class != RT_STRUCTURE_SET_STORAGE and get_str(ds, "Modality") != "RTSTRUCT":
        raise DicomError(
            f"not an RT Structure Set (SOP class {sop_class or 'missing'}, "
            f"modality {get_str(ds, 'Modality') or 'missing'})",
            str(path),
        )
    warnings: list[str] = []
    for_uid, series_uid = "", ""
    ref_fors = get_value(ds, "ReferencedFrameOfReferenceSequence") or []
    if ref_fors:
        for_uid = get_str(ref_fors[0], "FrameOfReferenceUID")
        for study in get_value(ref_fors[0], "RTReferencedStudySequence") or []:
            for series in get_value(study, "RTReferencedSeriesSequence") or []:
                series_uid = series_uid or get_str(series, "SeriesInstanceUID")
    rois: dict[int, StructureSetRoi] = {}
    for item in get_value(ds, "StructureSetROISequence") or []:
        number = int(get_value(item, "ROINumber", 0) or 0)
        rois[number] = StructureSetRoi(
            number=number,
            name=get_str(item, "ROIName") or f"ROI {number}",
            color_rgb=None,
            kind="",
            frame_of_reference_uid=get_str(item, "ReferencedFrameOfReferenceUID"),
        )
    for_uid = for_uid or next((r.frame_of_reference_uid for r in rois.values()), "")
    for obs in get_value(ds, "RTROIObservationsSequence") or []:
        ref = int(get_value(obs, "ReferencedROINumber", -1) or -1)
        if ref in rois:
            rois[ref].kind = get_str(obs, "RTROIInterpretedType")
    for rc in get_value(ds, "ROIContourSequence") or []:
        ref = int(get_value(rc, "ReferencedROINumber", -1) or -1)
        roi = rois.get(ref)
        if roi is None:
            warnings.append(f"ROI contour for unknown ROI number {ref} ignored")
            continue
        colour = get_value(rc, "ROIDisplayColor")
        if colour is not None and len(colour) == 3:
            roi.color_rgb = (int(colour[0]), int(colour[1]), int(colour[2]))
        for contour in get_value(rc, "ContourSequence") or []:
            kind = get_str(contour, "ContourGeometricType") or "CLOSED_PLANAR"
            data = get_floats(contour, "ContourData") or []
            if kind != "CLOSED_PLANAR" or len(data) % 3:
                roi.ignored_contours += 1
                continue
            roi.polygons.append(np.asarray(data, dtype=float).reshape(-1, 3))
    for roi in rois.values():
        if roi.ignored_contours:
            warnings.append(
                f"ROI {roi.name!r}: {roi.ignored_contours} contour(s) that are not "
                "CLOSED_PLANAR ignored"
            )
    return StructureSet(
        path=path,
        label=get_str(ds, "StructureSetLabel"),
        frame_of_reference_uid=for_uid,
        referenced_series_uid=series_uid,
        rois=list(rois.values()),
        warnings=warnings,
    )


# ================================================================ rasterising
@dataclass
class _Plane:
    position: float  # along the stack normal (mm)
    polygons: list[NDArray[np.float64]]


def _clean_polygons(
    polygons: Iterable[NDArray[np.float64]], roi_name: str, warnings: list[str]
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
    """Drop degenerate polygons; return (polygons, their unit normals)."""
    good: list[NDArray[np.float64]] = []
    normals: list[NDArray[np.float64]] = []
    for poly in polygons:
        p = np.asarray(poly, dtype=float).reshape(-1, 3)
        if len(p) >= 2 and np.allclose(p[0], p[-1]):
            p = p[:-1]  # explicitly closed: drop the repeated point
        n, _, dev = plane_of(p) if len(p) >= 3 else (np.zeros(3), 0.0, np.inf)
        if len(p) < 3 or not np.isfinite(dev):
            warnings.append(
                f"ROI {roi_name!r}: degenerate contour ({len(p)} points, no area) skipped"
            )
            continue
        if dev > PLANARITY_TOLERANCE_MM:
            warnings.append(
                f"ROI {roi_name!r}: contour not planar (points up to {dev:.2f} mm off "
                "its plane); filled in its mean plane"
            )
        good.append(p)
        normals.append(n)
    return good, normals


def _group_planes(
    polygons: list[NDArray[np.float64]], normal: NDArray[np.float64], tol_mm: float = 1e-2
) -> list[_Plane]:
    pos = np.array([float(np.mean(p @ normal)) for p in polygons])
    order = np.argsort(pos)
    planes: list[_Plane] = []
    for i in order:
        if planes and abs(pos[i] - planes[-1].position) <= tol_mm:
            planes[-1].polygons.append(polygons[i])
        else:
            planes.append(_Plane(float(pos[i]), [polygons[i]]))
    return planes


def _pick_planes(
    planes: list[_Plane], slice_pos: NDArray[np.float64], single_half: float
) -> list[int]:
    """For each target slice position, the index of the contour plane it takes, or -1."""
    p = np.array([pl.position for pl in planes])
    if len(p) == 1:
        return [0 if abs(s - p[0]) <= single_half + 1e-6 else -1 for s in slice_pos]
    gaps = np.diff(p)
    half = 0.5 * float(np.median(gaps))
    out = []
    for s in slice_pos:
        b = int(np.searchsorted(p, s))
        cands = [c for c in (b - 1, b) if 0 <= c < len(p)]
        best = min(cands, key=lambda c: abs(p[c] - s))
        d = abs(p[best] - s)
        inside_gap = 0 < b < len(p) and (p[b] - p[b - 1]) <= 4.0 * half + 1e-6
        out.append(best if d <= half + 1e-6 or inside_gap else -1)
    return out


def _self_intersection_warnings(
    planes: list[_Plane], to_2d: NDArray[np.float64], roi_name: str, warnings: list[str]
) -> None:
    for plane in planes:
        for poly in plane.polygons:
            if self_intersects(poly @ to_2d.T):
                warnings.append(
                    f"ROI {roi_name!r}: self-intersecting contour on the plane at "
                    f"{plane.position:.2f} mm; filled by the even-odd rule"
                )


def _rasterize_aligned(planes: list[_Plane], geometry: Geometry) -> NDArray[np.bool_]:
    """Fill polygons whose planes are parallel to the slices of ``geometry``."""
    nz, ny, nx = geometry.shape_zyx
    normal = geometry.direction_matrix[:, 2]
    slice_pos = geometry.index_to_world(
        np.column_stack([np.arange(nz), np.zeros(nz), np.zeros(nz)])
    )
    pick = _pick_planes(planes, slice_pos @ normal, 0.5 * geometry.spacing_mm[2])
    mask = np.zeros(geometry.shape_zyx, dtype=bool)
    cache: dict[int, NDArray[np.bool_]] = {}
    for k, m in enumerate(pick):
        if m < 0:
            continue
        if m not in cache:
            polys = [geometry.world_to_index(p)[:, 1:] for p in planes[m].polygons]
            cache[m] = rasterize_polygons_2d(polys, (ny, nx))
        mask[k] = cache[m]
    return mask


def _contour_frame(normal: NDArray[np.float64]) -> NDArray[np.float64]:
    """Right-handed orthonormal frame (columns u, v, n) with n = ``normal``."""
    n = normal / np.linalg.norm(normal)
    a = np.eye(3)[int(np.argmin(np.abs(n)))]
    if abs(n[2]) >= max(abs(n[0]), abs(n[1])):
        a = np.array([1.0, 0.0, 0.0])  # axial-like: keep u along LPS x
    u = a - (a @ n) * n
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    return np.column_stack([u, v, n])


def _rasterize_oblique(
    planes: list[_Plane], normal: NDArray[np.float64], geometry: Geometry
) -> NDArray[np.bool_]:
    from dosimetry_core.imaging.resample import resample

    frame = _contour_frame(normal)
    pts = np.concatenate([p for pl in planes for p in pl.polygons])
    uv = pts @ frame[:, :2]
    positions = np.array([pl.position for pl in planes])
    gap = float(np.median(np.diff(positions))) if len(planes) > 1 else min(geometry.spacing_mm)
    lo = uv.min(axis=0)
    hi = uv.max(axis=0)
    step = 0.5 * min(geometry.spacing_mm)
    n_slices = int(round((positions[-1] - positions[0]) / gap)) + 3
    extent = hi - lo
    while np.prod(np.ceil(extent / step) + 5) * n_slices > _MAX_INTERMEDIATE_VOXELS:
        step *= 1.5
    n_uv = (np.ceil(extent / step) + 5).astype(int)
    origin = (
        frame[:, 0] * (lo[0] - 2 * step)
        + frame[:, 1] * (lo[1] - 2 * step)
        + frame[:, 2] * (positions[0] - gap)
    )
    inter = Geometry(
        (n_slices, int(n_uv[1]), int(n_uv[0])),
        (step, step, gap),
        tuple(origin),
        tuple(map(tuple, frame)),
        geometry.frame_of_reference_uid,
    )
    fine = _rasterize_aligned(planes, inter)
    vol = Volume(fine.astype(np.float32), inter, ImageUnits.MASK, "contour mask")
    out = resample(vol, geometry, order=1, fill_value=0.0, dtype=np.float32)
    return np.asarray(out.array >= 0.5)


def rasterize_roi(
    polygons: Iterable[NDArray[np.float64]],
    geometry: Geometry,
    *,
    roi_name: str = "",
    warnings: list[str] | None = None,
) -> NDArray[np.bool_]:
    """Boolean mask ``[z, y, x]`` on ``geometry`` of one ROI's closed planar contours.

    Parameters
    ----------
    polygons
        (N, 3) LPS polygons, each on one plane; all planes parallel.
    geometry
        Target grid (contours need not lie on its slices; any orientation).
    roi_name
        For messages.
    warnings
        Appended with non-fatal findings (degenerate, non-planar or
        self-intersecting contours).

    Raises
    ------
    DicomError
        Contours of the ROI lie on non-parallel planes.
    """
    warn = warnings if warnings is not None else []
    polys, normals = _clean_polygons(polygons, roi_name, warn)
    if not polys:
        return np.zeros(geometry.shape_zyx, dtype=bool)
    ref = normals[0]
    if any(abs(float(n @ ref)) < _PARALLEL_COS for n in normals):
        raise DicomError(f"ROI {roi_name!r}: contours lie on non-parallel planes; cannot rasterise")
    slice_normal = geometry.direction_matrix[:, 2]
    aligned = abs(float(ref @ slice_normal)) >= _PARALLEL_COS
    normal = slice_normal if aligned else (ref if ref[int(np.argmax(np.abs(ref)))] > 0 else -ref)
    planes = _group_planes(polys, normal)
    frame = _contour_frame(normal)
    _self_intersection_warnings(planes, frame[:, :2].T, roi_name, warn)
    if aligned:
        return _rasterize_aligned(planes, geometry)
    return _rasterize_oblique(planes, normal, geometry)


def rtstruct_to_masks(
    structure_set: StructureSet, geometry: Geometry, names: Iterable[str] | None = None
) -> RasterizedRois:
    """Rasterise the ROIs of ``structure_set`` (all, or ``names``) on ``geometry``.

    Raises
    ------
    DicomError
        The structure set refers to another frame of reference than the image
        (when both are known), or a requested ROI does not exist.
    """
    path = str(structure_set.path)
    ss_for = structure_set.frame_of_reference_uid
    img_for = geometry.frame_of_reference_uid
    if ss_for and img_for and ss_for != img_for:
        raise DicomError(
            f"RTSTRUCT refers to frame of reference {ss_for}, the image is {img_for}; "
            "register the image or choose the structure set of this image",
            path,
        )
    wanted = list(names) if names is not None else structure_set.names
    result = RasterizedRois({}, {}, geometry, warnings=list(structure_set.warnings))
    for name in wanted:
        try:
            roi = structure_set.roi(name)
        except KeyError:
            raise DicomError(f"no ROI named {name!r} in the structure set", path) from None
        if roi.frame_of_reference_uid and img_for and roi.frame_of_reference_uid != img_for:
            raise DicomError(
                f"ROI {name!r}: RTSTRUCT refers to frame of reference "
                f"{roi.frame_of_reference_uid}, the image is {img_for}",
                path,
            )
        if not roi.polygons:
            result.skipped.append(name)
            result.warnings.append(f"ROI {name!r} has no contours; skipped")
            continue
        try:
            mask = rasterize_roi(roi.polygons, geometry, roi_name=name, warnings=result.warnings)
        except DicomError as exc:
            raise DicomError(str(exc), path) from exc
        if not mask.any():
            result.warnings.append(f"ROI {name!r}: no voxel of the image lies inside its contours")
        result.masks[name] = mask
        result.rois[name] = roi
    return result


def import_rtstruct(
    path: str | Path, geometry: Geometry, names: Iterable[str] | None = None
) -> RasterizedRois:
    """:func:`read_rtstruct` followed by :func:`rtstruct_to_masks`."""
    return rtstruct_to_masks(read_rtstruct(path), geometry, names)


# ==================================================================== export
def mask_to_polygons(mask: NDArray[np.bool_], geometry: Geometry) -> list[NDArray[np.float64]]:
    """Closed planar polygons (LPS mm) of a mask, slice by slice (marching squares, 0.5).

    Outer boundaries and holes are separate polygons; filling them with the
    even-odd rule on the same grid gives back the mask.
    """
    m = np.asarray(mask)
    if m.shape != geometry.shape_zyx:
        raise InvalidInputError(
            f"mask shape {m.shape} does not match the grid {geometry.shape_zyx}"
        )
    out: list[NDArray[np.float64]] = []
    for k in np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1)):
        for poly in marching_squares(m[k].astype(np.float64), 0.5):
            idx = np.column_stack([np.full(len(poly), float(k)), poly])
            out.append(geometry.index_to_world(idx))
    return out


def export_rtstruct(
    path: str | Path,
    masks: Mapping[str, MaskSpec],
    geometry: Geometry,
    ctx: DicomWriteContext,
    referenced_ct_paths: list[Path],
) -> Path:
    """Write masks as an RT Structure Set drawn on the CT slices ``referenced_ct_paths``.

    Parameters
    ----------
    path
        Output file.
    masks
        ``{ROI name: (mask [z, y, x] on geometry, colour RGB, kind)}``; kind is the
        RT ROI Interpreted Type (ORGAN, GTV, ...).  An empty mask gives an ROI
        without contours.
    geometry
        Grid of the masks (normally the CT grid).
    ctx
        Patient/study/series attributes; an empty frame of reference UID is taken
        from ``geometry``.
    referenced_ct_paths
        CT slices the contours refer to.

    Raises
    ------
    InvalidInputError
        Mask shape differs from the grid, or the frames of reference disagree.
    """
    for_uid = ctx.frame_of_reference_uid or geometry.frame_of_reference_uid
    if (
        ctx.frame_of_reference_uid
        and geometry.frame_of_reference_uid
        and ctx.frame_of_reference_uid != geometry.frame_of_reference_uid
    ):
        raise InvalidInputError(
            f"masks are in frame of reference {geometry.frame_of_reference_uid}, the "
            f"structure set would be in {ctx.frame_of_reference_uid}"
        )
    rois = []
    for name, (mask, colour, kind) in masks.items():
        try:
            polys = mask_to_polygons(mask, geometry)
        except InvalidInputError as exc:
            raise InvalidInputError(f"ROI {name!r}: {exc}") from exc
        rois.append(RoiContours(name, tuple(int(c) for c in colour), kind or "ORGAN", polys))  # type: ignore[arg-type]
    from dosimetry_core.io.dicom_write import write_rtstruct

    out_ctx = dataclasses.replace(ctx, frame_of_reference_uid=for_uid)
    return write_rtstruct(Path(path), out_ctx, [Path(p) for p in referenced_ct_paths], rois)
