"""NIfTI label maps (one integer label per voxel) with a JSON sidecar.

NIfTI stores RAS world coordinates; SimpleITK converts to and from LPS, so the
:class:`~dosimetry_core.model.Geometry` of the volume (LPS) is written and read
unchanged (up to the float32 precision of the NIfTI header).

Sidecar ``<name>.labels.json`` (next to ``<name>.nii.gz``)::

    {"format": "mrtdose-nifti-labels/1",
     "frame_of_reference_uid": "...",
     "labels": {"1": {"name": "Liver", "color_rgb": [160, 80, 40]}, ...}}

Masks must not overlap (a label map holds one label per voxel): overlapping
masks are refused, naming both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry

SIDECAR_FORMAT = "mrtdose-nifti-labels/1"


def _to_sitk(array: NDArray[Any], geometry: Geometry) -> sitk.Image:
    # SimpleITK and Geometry share conventions: [z, y, x] arrays, (i, j, k) spacing,
    # origin = centre of voxel 0 in LPS, direction column c = axis c.
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetOrigin(tuple(float(v) for v in geometry.origin_mm))
    image.SetSpacing(tuple(float(v) for v in geometry.spacing_mm))
    image.SetDirection(tuple(float(v) for v in geometry.direction_matrix.reshape(-1)))
    return image


def _geometry(image: sitk.Image, frame_of_reference_uid: str) -> Geometry:
    size = image.GetSize()
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # re-orthonormalise: the NIfTI header holds float32 values
    u, _, vt = np.linalg.svd(direction)
    direction = u @ vt
    return Geometry(
        (size[2], size[1], size[0]),
        image.GetSpacing(),
        image.GetOrigin(),
        tuple(map(tuple, direction)),
        frame_of_reference_uid,
    )


def sidecar_path(path: str | Path) -> Path:
    """``x.nii.gz`` / ``x.nii`` -> ``x.labels.json``."""
    p = Path(path)
    name = p.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".labels.json")


def write_nifti_labels(
    path: str | Path,
    masks: Mapping[str, NDArray[np.bool_]],
    geometry: Geometry,
    colors: Mapping[str, tuple[int, int, int]] | None = None,
) -> Path:
    """Write masks as one label map (labels 1..n in the order given) plus the sidecar.

    Returns
    -------
    Path
        The NIfTI file (``.nii.gz`` appended when ``path`` has no NIfTI suffix).

    Raises
    ------
    InvalidInputError
        Mask of the wrong shape, or two masks overlap.
    """
    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        path = path.with_name(path.name + ".nii.gz")
    dtype = np.uint8 if len(masks) < 256 else np.uint16
    labels = np.zeros(geometry.shape_zyx, dtype=dtype)
    owner: dict[int, str] = {}
    meta: dict[str, Any] = {}
    for number, (name, mask) in enumerate(masks.items(), start=1):
        m = np.asarray(mask, dtype=bool)
        if m.shape != geometry.shape_zyx:
            raise InvalidInputError(
                f"mask {name!r}: shape {m.shape} does not match the grid {geometry.shape_zyx}"
            )
        taken = labels[m]
        if np.any(taken):
            other = owner[int(taken[taken > 0][0])]
            raise InvalidInputError(
                f"masks {other!r} and {name!r} overlap; a NIfTI label map holds one label per voxel"
            )
        labels[m] = number
        owner[number] = name
        colour = (colors or {}).get(name)
        meta[str(number)] = {
            "name": name,
            "color_rgb": [int(c) for c in colour] if colour is not None else None,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(_to_sitk(labels, geometry), str(path), useCompression=True)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "frame_of_reference_uid": geometry.frame_of_reference_uid,
        "labels": meta,
    }
    sidecar_path(path).write_text(json.dumps(sidecar, indent=1))
    return path


def read_nifti_labels(
    path: str | Path,
) -> tuple[dict[str, NDArray[np.bool_]], Geometry]:
    """Masks and LPS geometry of a label map.

    Names come from the sidecar when present, else ``"Label <n>"`` for every
    non-zero value.  Labels of the sidecar absent from the image give empty
    masks (nothing is lost).
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such NIfTI file")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InvalidInputError(f"{path}: not a readable NIfTI image ({exc})") from exc
    side = sidecar_path(path)
    meta: dict[str, Any] = json.loads(side.read_text()) if side.exists() else {}
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidInputError(f"{path}: not a 3D label map")
    geometry = _geometry(image, str(meta.get("frame_of_reference_uid", "") or ""))
    labels = sitk.GetArrayFromImage(image)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInputError(f"{path}: not a 3D integer label map")
    names: dict[int, str] = {int(k): v["name"] for k, v in (meta.get("labels") or {}).items()}
    for value in np.unique(labels):
        if value != 0 and int(value) not in names:
            names[int(value)] = f"Label {int(value)}"
    return {name: labels == value for value, name in sorted(names.items())}, geometry


def read_nifti_label_colors(path: str | Path) -> dict[str, tuple[int, int, int]]:
    """Colours of the labels from the sidecar (labels without a colour omitted)."""
    side = sidecar_path(path)
    if not side.exists():
        return {}
    meta = json.loads(side.read_text())
    out = {}
    for v in (meta.get("labels") or {}).values():
        if v.get("color_rgb"):
            r, g, b = v["color_rgb"]
            out[v["name"]] = (int(r), int(g), int(b))
    return out
