"""DICOM Segmentation (SEG, PS3.3 A.51) export with highdicom and import.

* :func:`export_seg` writes BINARY segments on the grid of the referenced CT
  (every slice of every segment is stored, empty frames included, so the grid
  is fully described by the file), with segment descriptions carrying
  SNOMED CT property category/type codes and algorithm type MANUAL.
* :func:`read_seg` rebuilds, per segment, the mask and its
  :class:`~dosimetry_core.model.Geometry` from the Plane Position /
  Plane Orientation / Pixel Measures functional groups (no CT needed).

Exported on the CT grid, the round trip is exact: identical masks and the same
grid.  The slice axis of the rebuilt grid always points along
row x column cosines (right-handed, as for every scanner image); a left-handed
mask grid (slices stored towards decreasing position) comes back with its k axis
reversed -- the same voxels at the same LPS positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dosimetry_core.errors import DicomError, InvalidInputError
from dosimetry_core.io._dicom_common import get_floats, get_str, get_value, read_dataset
from dosimetry_core.model import Geometry

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

MaskSpec = tuple[NDArray[np.bool_], tuple[int, int, int], str]
"""(mask [z, y, x], display colour RGB, kind: ORGAN, GTV/LESION, ...)."""

_LESION_KINDS = {"GTV", "CTV", "PTV", "LESION", "TUMOUR", "TUMOR"}


def _property_codes(name: str, kind: str) -> tuple[object, object]:
    """(category, type) SNOMED CT codes for a segment (CID 7150 / 7151 subset)."""
    from pydicom.sr.codedict import codes

    sct = codes.SCT
    lname = name.lower()
    if kind.upper() in _LESION_KINDS or "tumo" in lname or "lesion" in lname:
        return sct.MorphologicallyAbnormalStructure, sct.Neoplasm
    table = [
        ("kidney", sct.Kidney),
        ("liver", sct.Liver),
        ("spleen", sct.Spleen),
        ("lung", sct.Lung),
        ("parotid", sct.ParotidGland),
        ("marrow", sct.BoneMarrow),
        ("spine", sct.Bone),
        ("bone", sct.Bone),
    ]
    for key, code in table:
        if key in lname:
            return sct.Organ, code
    return sct.Organ, sct.Organ


def _load(refs: Sequence[Path | str | Dataset]) -> list[Dataset]:
    out = []
    for r in refs:
        out.append(r if isinstance(r, Dataset) else read_dataset(Path(r)))
    return out


def _order_on_grid(datasets: list[Dataset], geometry: Geometry) -> list[Dataset]:
    """The CT slices sorted by slice index k of ``geometry``; refuses another grid."""
    nz, ny, nx = geometry.shape_zyx
    by_k: dict[int, Dataset] = {}
    d = geometry.direction_matrix
    for ds in datasets:
        ipp = get_floats(ds, "ImagePositionPatient")
        iop = get_floats(ds, "ImageOrientationPatient")
        ps = get_floats(ds, "PixelSpacing")
        if ipp is None or iop is None or ps is None:
            raise InvalidInputError("a referenced CT slice has no position/orientation/spacing")
        idx = geometry.world_to_index(np.asarray(ipp))
        k = int(round(float(idx[0])))
        ok = (
            abs(idx[0] - k) < 1e-3
            and np.all(np.abs(idx[1:]) < 1e-3)
            and np.allclose(iop[:3], d[:, 0], atol=1e-4)
            and np.allclose(iop[3:], d[:, 1], atol=1e-4)
            and np.allclose([ps[1], ps[0]], geometry.spacing_mm[:2], atol=1e-4)
            and int(get_value(ds, "Rows", 0)) == ny
            and int(get_value(ds, "Columns", 0)) == nx
            and 0 <= k < nz
        )
        if not ok:
            raise InvalidInputError(
                "the masks are not on the grid of the referenced CT; resample them onto the "
                "CT grid before exporting a SEG"
            )
        by_k[k] = ds
    if sorted(by_k) != list(range(nz)):
        raise InvalidInputError(
            f"the referenced CT has {len(by_k)} of the {nz} slices of the mask grid"
        )
    return [by_k[k] for k in range(nz)]


def export_seg(
    path: str | Path,
    masks: Mapping[str, MaskSpec],
    geometry: Geometry,
    referenced_ct: Sequence[Path | str | Dataset],
    *,
    series_description: str = "Segmentation",
    series_number: int = 300,
    series_instance_uid: str = "",
    sop_instance_uid: str = "",
    content_label: str = "MRTDOSE",
    manufacturer: str = "MRTDOSE",
    manufacturer_model_name: str = "mrtdose",
    software_versions: str = "mrtdose 0.1",
    device_serial_number: str = "0",
) -> Path:
    """Write masks on the CT grid as a BINARY DICOM SEG (one segment per mask).

    Parameters
    ----------
    path
        Output file (folder created).
    masks
        ``{segment label: (mask [z, y, x], colour RGB, kind)}``; kind ORGAN,
        GTV/LESION, ... selects the property category/type codes.
    geometry
        Grid of the masks = grid of the referenced CT.
    referenced_ct
        The CT slices (paths or data sets), any order.
    series_instance_uid, sop_instance_uid
        The object's UIDs (default: new random ones).

    Raises
    ------
    InvalidInputError
        No masks, a mask of the wrong shape, or masks not on the CT grid.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    if not masks:
        raise InvalidInputError("no masks to export")
    sources = _order_on_grid(_load(referenced_ct), geometry)
    arrays = []
    descriptions = []
    for number, (name, (mask, colour, kind)) in enumerate(masks.items(), start=1):
        m = np.asarray(mask)
        if m.shape != geometry.shape_zyx:
            raise InvalidInputError(
                f"segment {name!r}: mask shape {m.shape} does not match the grid "
                f"{geometry.shape_zyx}"
            )
        arrays.append(m.astype(bool))
        category, prop = _property_codes(name, kind or "")
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name[:64],
                segmented_property_category=category,  # type: ignore[arg-type]
                segmented_property_type=prop,  # type: ignore[arg-type]
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
                display_color=hd.color.CIELabColor.from_rgb(*[int(c) for c in colour]),
            )
        )
    pixels = np.stack(arrays, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid or str(generate_uid()),
        series_number=int(series_number),
        sop_instance_uid=sop_instance_uid or str(generate_uid()),
        instance_number=1,
        manufacturer=manufacturer,
        manufacturer_model_name=manufacturer_model_name,
        software_versions=software_versions,
        device_serial_number=device_serial_number,
        content_label=content_label[:16].upper().replace(" ", "_"),
        omit_empty_frames=False,
        series_description=series_description[:64],
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def _seg_item(ds: Dataset, frame_item: Dataset | None, keyword: str) -> Dataset | None:
    """Functional group ``keyword`` of a frame, falling back to the shared groups."""
    for container in (frame_item, _first(ds, "SharedFunctionalGroupsSequence")):
        if container is None:
            continue
        seq = get_value(container, keyword)
        if seq:
            return seq[0]
    return None


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    seq = get_value(ds, keyword)
    return seq[0] if seq else None


def read_seg(
    path: str | Path,
) -> dict[str, tuple[NDArray[np.bool_], Geometry, tuple[int, int, int] | None]]:
    """Masks of a DICOM SEG: ``{segment label: (mask [z, y, x], geometry, colour RGB)}``.

    FRACTIONAL segments are thresholded at half their maximum value.  Labels
    that repeat get the segment number appended.

    Raises
    ------
    DicomError
        Not a Segmentation, or frames that do not form a regular grid.
    """
    import highdicom as hd

    path = Path(path)
    ds = read_dataset(path)
    if get_str(ds, "SOPClassUID") != SEGMENTATION_STORAGE:
        raise DicomError("not a DICOM Segmentation (SEG)", str(path))
    pixels = np.asarray(ds.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if get_str(ds, "SegmentationType") == "FRACTIONAL":
        max_value = float(get_value(ds, "MaximumFractionalValue", 255) or 255)
        pixels = pixels >= 0.5 * max_value
    else:
        pixels = pixels.astype(bool)
    frames = get_value(ds, "PerFrameFunctionalGroupsSequence") or []
    if len(frames) != len(pixels):
        raise DicomError(
            f"{len(pixels)} frames of pixels but {len(frames)} per-frame groups", str(path)
        )
    segments: dict[int, tuple[str, tuple[int, int, int] | None]] = {}
    for item in get_value(ds, "SegmentSequence") or []:
        number = int(item.SegmentNumber)
        lab = get_value(item, "RecommendedDisplayCIELabValue")
        colour = None
        if lab is not None and len(lab) == 3:
            colour = hd.color.CIELabColor.from_dicom_value(tuple(int(v) for v in lab)).to_rgb()
        segments[number] = (get_str(item, "SegmentLabel") or f"Segment {number}", colour)

    positions: list[NDArray[np.float64]] = []
    seg_numbers: list[int] = []
    orientation = None
    spacing = None
    for f in frames:
        pos = _seg_item(ds, f, "PlanePositionSequence")
        ori = _seg_item(ds, f, "PlaneOrientationSequence")
        meas = _seg_item(ds, f, "PixelMeasuresSequence")
        ident = _seg_item(ds, f, "SegmentIdentificationSequence")
        ipp = get_floats(pos, "ImagePositionPatient") if pos is not None else None
        iop = get_floats(ori, "ImageOrientationPatient") if ori is not None else None
        ps = get_floats(meas, "PixelSpacing") if meas is not None else None
        if ipp is None or iop is None or ps is None or ident is None:
            raise DicomError(
                "a frame has no plane position, orientation or pixel spacing", str(path)
            )
        if orientation is None:
            orientation, spacing = np.asarray(iop), np.asarray(ps)
        elif not np.allclose(iop, orientation, atol=1e-4):
            raise DicomError("frames with different orientations are not supported", str(path))
        positions.append(np.asarray(ipp))
        seg_numbers.append(int(ident.ReferencedSegmentNumber))
    assert orientation is not None and spacing is not None
    row, col = orientation[:3], orientation[3:]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    pos_arr = np.asarray(positions)
    along = pos_arr @ normal
    # distinct planes, by increasing position along the normal (right-handed grid)
    planes: list[float] = []
    for a in np.sort(along):
        if not planes or a - planes[-1] > 1e-3:
            planes.append(float(a))
    p = np.asarray(planes)
    if len(p) > 1:
        steps = np.diff(p)
        dz = float(np.mean(steps))
        if np.max(np.abs(steps - dz)) > 1e-3 * max(dz, 1.0):
            raise DicomError("SEG frames are not equally spaced; cannot build a grid", str(path))
    else:
        meas = _seg_item(ds, frames[0], "PixelMeasuresSequence")
        dz = (
            (
                get_floats(meas, "SpacingBetweenSlices")
                or get_floats(meas, "SliceThickness")
                or [1.0]
            )[0]
            if meas is not None
            else 1.0
        )
    first_plane = int(np.argmin(np.abs(along - p[0])))
    origin = pos_arr[first_plane]
    # every frame must sit on the in-plane origin of the grid
    inplane = (pos_arr - origin) @ np.column_stack([row, col])
    if np.max(np.abs(inplane)) > 1e-3:
        raise DicomError(
            "SEG frames are shifted within their planes; not a regular grid", str(path)
        )
    geometry = Geometry(
        (len(p), int(ds.Rows), int(ds.Columns)),
        (float(spacing[1]), float(spacing[0]), float(dz)),
        tuple(origin),
        tuple(map(tuple, np.column_stack([row, col, normal]))),
        get_str(ds, "FrameOfReferenceUID"),
    )
    k_of_frame = np.rint((along - p[0]) / dz).astype(int)
    out: dict[str, tuple[NDArray[np.bool_], Geometry, tuple[int, int, int] | None]] = {}
    for number, (label, colour) in segments.items():
        mask = np.zeros(geometry.shape_zyx, dtype=bool)
        sel = np.flatnonzero(np.asarray(seg_numbers) == number)
        mask[k_of_frame[sel]] = pixels[sel]
        key = label if label not in out else f"{label} ({number})"
        out[key] = (mask, geometry, colour)
    return out
