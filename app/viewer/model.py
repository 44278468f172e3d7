"""What the viewer shows of one time point, loaded off the GUI thread (no Qt here).

:func:`load_view` is the one function the viewer runs in a worker: it loads the
time point's CT and functional image, the case's current TIA and dose maps and
its VOIs, and brings everything onto the **display grid** (the time point's CT;
its SPECT grid when it has no CT) through the core's one resampling function
(:func:`dosimetry_core.imaging.resample.resample`).  VOI volumes and masses come
from :mod:`dosimetry_core.segmentation.mass`.

Frames of reference: a :class:`~dosimetry_core.model.case.Registration` maps a
point of the reference frame to the same anatomical point of its time point
(``matrix_ref_to_tp``).  TIA and dose maps live in the reference frame; a VOI
lives in the frame of its own time point.  :func:`display_to_source_transform`
composes the two registrations into the target-to-source matrix that
``resample(transform=...)`` takes.  A deformable refinement is not applied in
the display (the rigid part is); :attr:`ViewData.warnings` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.imaging.resample import resample
from dosimetry_core.model import Case, DerivedKind, ImageUnits, TimePoint, Volume
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report
from dosimetry_core.segmentation.mass import voi_mass_g, voi_volume_ml

__all__ = [
    "LAYER_NAMES",
    "LayerData",
    "ViewData",
    "VoiRow",
    "display_to_source_transform",
    "format_layer_value",
    "fused_overlay",
    "load_view",
    "time_point_label",
]

LAYER_NAMES: dict[str, str] = {"ct": "CT", "spect": "SPECT", "tia": "TIA", "dose": "Dose"}
"""Layer key -> name shown in the layer table and the readout."""

DISPLAY_UNITS: dict[str, str] = {
    str(ImageUnits.HU): "HU",
    str(ImageUnits.BQML): "Bq/mL",
    str(ImageUnits.MBQH_PER_ML): "MBq·h/mL",
    str(ImageUnits.GY): "Gy",
}
"""Unit code -> unit as written on screen (same unit, typographic form only)."""


def unit_label(units: ImageUnits | str) -> str:
    """How a unit is written on screen (``MBq*h/mL`` -> ``MBq·h/mL``); no conversion."""
    return DISPLAY_UNITS.get(str(units), str(units))


def format_layer_value(value: float | None, units: str) -> str:
    """A voxel value with its unit as the readout shows it: HU whole, others 3 significant."""
    if value is None or not np.isfinite(value):
        return "–"
    if units == "HU":
        return f"{value:.0f} {units}"
    if abs(value) >= 1000:
        return f"{value:,.0f} {units}"
    return f"{value:.3g} {units}"


def fused_overlay(ct: Volume, spect: Volume) -> Volume:
    """The functional volume on the CT grid (linear interpolation, 0 outside), float32.

    Uses the one resampling function of the workstation.  Frames of reference
    are assumed to agree (same scanner session); registration is a later step.
    """
    return resample(spect, ct.geometry, order=1, fill_value=0.0, dtype=np.float32)


def time_point_label(case: Case, tp: TimePoint, position: int) -> str:
    """'TP1 · 4.0 h · NM': label, hours after the first administration, modality."""
    name = tp.label or f"TP{position}"
    hours = case.hours_after_administration(tp)
    when = f"{hours:.1f} h" if hours is not None else "time unknown"
    return f"{name} · {when} · {tp.modality}"


@dataclass
class LayerData:
    """One image layer on the display grid.

    Attributes
    ----------
    key
        ``"ct"``, ``"spect"``, ``"tia"`` or ``"dose"``.
    name
        Name shown (``"SPECT"`` or ``"PET"`` for the functional layer).
    units
        Unit as shown (``"HU"``, ``"Bq/mL"``, ``"MBq·h/mL"``, ``"Gy"``).
    volume
        The layer resampled onto the display grid (same units as stored).
    label
        What the layer is (map label or series description), for tooltips.
    native
        The volume on its own grid when it differs from ``volume`` (the
        functional image: the readout reads its native voxels).
    """

    key: str
    name: str
    units: str
    volume: Volume
    label: str = ""
    native: Volume | None = None

    def value_at_index(self, k: int, j: int, i: int) -> float:
        return float(self.volume.array[k, j, i])


@dataclass
class VoiRow:
    """One line of the VOI list: what the core says about the VOI, and its mask for display.

    ``volume_ml`` is from :func:`~dosimetry_core.segmentation.mass.voi_volume_ml` on
    the VOI's own grid, ``mass_g`` from :func:`~dosimetry_core.segmentation.mass.voi_mass_g`
    with the CT of the VOI's time point (None without a CT).  ``display_mask`` is
    the mask on the display grid (nearest neighbour), None when it has no voxel there.
    """

    voi_id: str
    name: str
    kind: str
    status: str
    color_rgb: tuple[int, int, int]
    volume_ml: float
    mass_g: float | None
    display_mask: NDArray[np.bool_] | None


@dataclass
class ViewData:
    """Everything drawn for one time point (see the module docstring)."""

    time_point_id: str
    layers: dict[str, LayerData]
    vois: list[VoiRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def display(self) -> Volume:
        """The display grid's volume (the CT, or the functional image without a CT)."""
        return self.layers["ct"].volume if "ct" in self.layers else self.layers["spect"].volume


def _matrix_ref_to_tp(tp: TimePoint) -> NDArray[np.float64]:
    reg = tp.registration
    return np.eye(4) if reg is None else np.asarray(reg.matrix_ref_to_tp, dtype=float)


def _reference_id(case: Case, tp: TimePoint) -> str:
    if tp.registration is not None:
        return tp.registration.reference_time_point_id
    for other in case.time_points:
        reg = other.registration
        if reg is not None and reg.reference_time_point_id == tp.time_point_id:
            return tp.time_point_id
    return ""


def display_to_source_transform(
    case: Case, display_tp: TimePoint, source_tp: TimePoint | None
) -> NDArray[np.float64]:
    """4x4 matrix mapping an LPS point of ``display_tp``'s frame to the source frame.

    ``source_tp`` None means the registration reference frame (where TIA and
    dose maps live).  With ``M_x`` the time point's ``matrix_ref_to_tp``
    (identity for the reference and for an unregistered time point) the matrix
    is ``M_source @ inv(M_display)``: back to the reference, then out to the
    source time point.  This is the ``transform`` of
    :func:`~dosimetry_core.imaging.resample.resample` (target to source).
    """
    m_display = _matrix_ref_to_tp(display_tp)
    m_source = np.eye(4) if source_tp is None else _matrix_ref_to_tp(source_tp)
    return np.asarray(m_source @ np.linalg.inv(m_display), dtype=float)


def _on_display(
    volume: Volume, display: Volume, transform: NDArray[np.float64], *, order: int
) -> Volume:
    if np.allclose(transform, np.eye(4)) and volume.geometry.same_grid(display.geometry):
        return volume
    return resample(
        volume,
        display.geometry,
        order=order,
        fill_value=0.0,
        transform=None if np.allclose(transform, np.eye(4)) else transform,
        dtype=np.float32 if order else None,
    )


def load_view(
    store: Any,
    case: Case,
    tp: TimePoint,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    *,
    ct_cache: dict[str, Volume] | None = None,
) -> ViewData:
    """Load and resample onto the display grid what the viewer shows for ``tp``.

    Parameters
    ----------
    store
        The case store (:class:`~dosimetry_core.store.repository.CaseRepository`).
    case
        The open case.
    tp
        The time point displayed.
    ct_cache
        Optional dict ``time_point_id -> CT`` reused across calls for the VOI masses.

    Returns
    -------
    ViewData
        Layers on the display grid, the VOI list, warnings.
    """
    layers: dict[str, LayerData] = {}
    warnings: list[str] = []
    ct = spect = None
    if tp.anatomical is not None and tp.anatomical.volume is not None:
        report(progress, 0.05, "loading CT")
        ct = store.load_volume(tp.anatomical.volume)
    check_cancel(cancel)
    if tp.functional.volume is not None:
        report(progress, 0.25, f"loading {tp.modality}")
        spect = store.load_volume(tp.functional.volume)
    check_cancel(cancel)
    if ct is None and spect is None:
        raise ValueError(f"time point {tp.label or tp.time_point_id} has no image")
    fname = "PET" if "PET" in (tp.modality or "").upper() else "SPECT"
    if ct is not None:
        layers["ct"] = LayerData("ct", "CT", unit_label(ct.units), ct, ct.description)
    if spect is not None:
        report(progress, 0.4, "fusing onto the CT grid")
        overlay = fused_overlay(ct, spect) if ct is not None else spect
        layers["spect"] = LayerData(
            "spect", fname, unit_label(spect.units), overlay, spect.description, spect
        )
    display = layers["ct"].volume if ct is not None else layers["spect"].volume

    to_reference = display_to_source_transform(case, tp, None)
    registered = tp.registration is not None or _reference_id(case, tp) != ""
    for n, (key, kind) in enumerate((("tia", DerivedKind.TIA_MAP), ("dose", DerivedKind.DOSE))):
        maps = case.derived_maps(kind)
        if not maps:
            continue
        check_cancel(cancel)
        report(progress, 0.55 + 0.1 * n, f"loading the {LAYER_NAMES[key]} map")
        dmap = maps[0]
        vol = store.load_volume(dmap.volume)
        if not registered and len(case.time_points) > 1:
            warnings.append(
                f"{LAYER_NAMES[key]} map shown in scanner coordinates: this time point is "
                "not registered to the reference"
            )
        mapped = _on_display(vol, display, to_reference, order=1)
        layers[key] = LayerData(key, LAYER_NAMES[key], unit_label(vol.units), mapped, dmap.label)
    if tp.registration is not None and tp.registration.deformation is not None:
        warnings.append("the deformable part of the registration is not applied in the display")

    rows: list[VoiRow] = []
    by_id = {t.time_point_id: t for t in case.time_points}
    cache = ct_cache if ct_cache is not None else {}
    for n, voi in enumerate(case.vois):
        check_cancel(cancel)
        report(progress, 0.75 + 0.25 * n / max(len(case.vois), 1), f"VOI {voi.name}")
        mask = store.load_volume(voi.mask)
        m = mask.array.astype(bool)
        volume_ml = voi_volume_ml(m, mask.geometry)
        voi_tp = by_id.get(voi.time_point_id)
        mass_g: float | None = None
        voi_ct = None
        if voi_tp is not None and voi_tp.anatomical is not None:
            ref = voi_tp.anatomical.volume
            if ref is not None:
                voi_ct = cache.get(voi_tp.time_point_id)
                if voi_ct is None:
                    voi_ct = ct if voi_tp is tp and ct is not None else store.load_volume(ref)
                    cache[voi_tp.time_point_id] = voi_ct
        if voi_ct is not None:
            ct_on_mask = voi_ct
            if not voi_ct.geometry.same_grid(mask.geometry):
                ct_on_mask = resample(voi_ct, mask.geometry, order=1, fill_value=-1000.0)
            mass_g = voi_mass_g(m, ct_on_mask)
        transform = display_to_source_transform(case, tp, voi_tp)
        shown = _on_display(mask.with_array(m.astype(np.uint8)), display, transform, order=0)
        dm = np.asarray(shown.array) > 0
        rows.append(
            VoiRow(
                voi.voi_id,
                voi.name,
                str(voi.kind),
                str(voi.status),
                (int(voi.color_rgb[0]), int(voi.color_rgb[1]), int(voi.color_rgb[2])),
                volume_ml,
                mass_g,
                dm if dm.any() else None,
            )
        )
    report(progress, 1.0, "ready")
    return ViewData(tp.time_point_id, layers, rows, warnings)


def readout(
    layers: Sequence[LayerData], index_zyx: tuple[int, int, int], visible: Sequence[str]
) -> str:
    """'CT 43 HU · SPECT 12,300 Bq/mL · Dose 3.21 Gy' at a display-grid voxel (visible layers)."""
    k, j, i = index_zyx
    parts = [
        f"{layer.name} {format_layer_value(layer.value_at_index(k, j, i), layer.units)}"
        for layer in layers
        if layer.key in visible
    ]
    return " · ".join(parts)
