"""View-model of the registration step (no Qt): rows, permitted actions, compare images.

What the registration view shows is computed here from the case and the
core's results, so it is tested without a screen:

* :class:`RegistrationModel` -- one :class:`RegistrationRow` per time point
  (reference, translation in mm, rotation in degrees, method, the quality
  figures before and after with their units, status, reviewer, comment), the
  text of each table cell, and which actions the user may take
  (:class:`RowActions`) given ``session.may("register")`` and each status.
* :func:`load_comparison` -- the reference CT, the time point's CT on the
  reference grid through its registration and the time point's VOI outlines
  on that grid (core: :func:`~dosimetry_core.pipeline.registration.ct_on_reference`,
  :func:`~dosimetry_core.pipeline.registration.voi_on_reference`).
* :class:`CompareModel` -- display compositing of that pair on one plane and
  slice: checkerboard (square size in mm), blink and fused overlay, with the
  outlines drawn on top, as an RGB ``uint8`` image and its size in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.model.case import Case, RegistrationStatus, TimePoint
from dosimetry_core.model.volume import Volume

__all__ = [
    "COLUMNS",
    "MODES",
    "PLANES",
    "QUALITY_FIGURES",
    "CompareModel",
    "Comparison",
    "Outline",
    "QualityFigure",
    "RegistrationModel",
    "RegistrationRow",
    "RowActions",
    "checkerboard",
    "fused_rgb",
    "load_comparison",
    "outline_of",
    "plane_pixel_mm",
    "plane_slice",
    "window",
]

QUALITY_FIGURES: tuple[tuple[str, str, str, int], ...] = (
    ("body_dice", "Body Dice", "", 3),
    ("bone_dice", "Bone Dice", "", 3),
    ("mean_abs_hu_diff_body", "Mean |ΔHU|", "HU", 0),
    ("nmi", "NMI", "", 3),
)
"""(key in ``Registration.quality``, name, unit, decimals) of the figures shown.

The core computes them (:func:`dosimetry_core.imaging.registration.registration_quality`):
Dice of body (HU > -500) and bone (HU > 300) masks, mean absolute HU
difference inside the body, normalised mutual information (2 = identical,
1 = independent); ``<key>_before`` is the same figure without the registration.
"""

COLUMNS: tuple[str, ...] = (
    "Time point",
    "Translation (mm)",
    "Rotation (deg)",
    "Method",
    *(f"{name} ({unit})" if unit else name for _, name, unit, _ in QUALITY_FIGURES),
    "Status",
    "Reviewer",
    "Comment",
)
"""Header of the registration table; quality cells read ``before → after``."""

STATUS_COLUMN = COLUMNS.index("Status")
TRANSLATION_COLUMN = COLUMNS.index("Translation (mm)")
ROTATION_COLUMN = COLUMNS.index("Rotation (deg)")

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
MODES: tuple[str, ...] = ("checkerboard", "blink", "fused")

CT_LEVEL_HU = 40.0
CT_WIDTH_HU = 400.0
"""Default display window (soft tissue), HU."""


# ------------------------------------------------------------------ rows
@dataclass(frozen=True)
class QualityFigure:
    """One agreement figure of a registration, before and after it (``None``: not computed)."""

    key: str
    name: str
    unit: str
    before: float | None
    after: float | None
    decimals: int = 3

    def text(self) -> str:
        """``'0.918 → 0.962'`` (the unit is in the column header); ``'-'`` when absent."""

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.{self.decimals}f}"

        if self.before is None and self.after is None:
            return "-"
        return f"{fmt(self.before)} → {fmt(self.after)}"


@dataclass(frozen=True)
class RowActions:
    """What the user may do with one time point's registration."""

    accept: bool = False
    reject: bool = False
    redo: bool = False
    inspect: bool = False


@dataclass(frozen=True)
class RegistrationRow:
    """One time point as the registration table shows it."""

    time_point_id: str
    label: str
    is_reference: bool
    has_ct: bool
    status: str
    """``reference``, ``not registered``, ``no CT`` or the registration status."""
    translation_mm: tuple[float, float, float] | None = None
    rotation_deg: tuple[float, float, float] | None = None
    method: str = ""
    quality: tuple[QualityFigure, ...] = ()
    reviewer: str = ""
    comment: str = ""

    @property
    def registered(self) -> bool:
        return self.translation_mm is not None

    def cells(self) -> list[str]:
        """The text of each column of :data:`COLUMNS`."""
        label = f"{self.label} (reference)" if self.is_reference else self.label

        def triple(v: tuple[float, float, float] | None, decimals: int) -> str:
            if v is None:
                return "-"
            return ", ".join(f"{x:+.{decimals}f}" for x in v)

        return [
            label,
            triple(self.translation_mm, 1),
            triple(self.rotation_deg, 2),
            self.method or "-",
            *(q.text() for q in self.quality or _quality({})),
            self.status,
            self.reviewer or "-",
            self.comment,
        ]


def _quality(values: dict[str, Any]) -> tuple[QualityFigure, ...]:
    def num(key: str) -> float | None:
        v = values.get(key)
        return None if v is None else float(v)

    return tuple(
        QualityFigure(key, name, unit, num(f"{key}_before"), num(key), decimals)
        for key, name, unit, decimals in QUALITY_FIGURES
    )


def _triple(v: Sequence[float]) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def _has_ct(tp: TimePoint) -> bool:
    return tp.anatomical is not None and tp.anatomical.volume is not None


class RegistrationModel:
    """Rows and permitted actions of the registration step for one case (module docstring).

    Parameters
    ----------
    case
        The open case (None: nothing to show, nothing permitted).
    may_register
        ``session.may("register")``: without it everything is read-only.
    """

    def __init__(self, case: Case | None, may_register: bool) -> None:
        self.case = case
        self.may_register = bool(may_register)
        self.rows: list[RegistrationRow] = []
        self.reference_id: str | None = None
        if case is None:
            return
        tps = case.sorted_time_points()
        refs = [t.registration.reference_time_point_id for t in tps if t.registration]
        if refs:
            self.reference_id = refs[0]
        elif tps:
            self.reference_id = tps[0].time_point_id
        for tp in tps:
            label = tp.label or tp.time_point_id
            reg = tp.registration
            if tp.time_point_id == self.reference_id:
                row = RegistrationRow(tp.time_point_id, label, True, _has_ct(tp), "reference")
            elif reg is None:
                status = "not registered" if _has_ct(tp) else "no CT"
                row = RegistrationRow(tp.time_point_id, label, False, _has_ct(tp), status)
            else:
                row = RegistrationRow(
                    tp.time_point_id,
                    label,
                    False,
                    _has_ct(tp),
                    str(reg.status),
                    _triple(reg.translation_mm),
                    _triple(reg.rotation_deg),
                    reg.method,
                    _quality(reg.quality),
                    reg.reviewed_by,
                    reg.comment,
                )
            self.rows.append(row)

    # ------------------------------------------------------------ queries
    @property
    def reference_label(self) -> str:
        for r in self.rows:
            if r.is_reference:
                return r.label
        return ""

    @property
    def labels(self) -> list[str]:
        """Time point labels in time order (choices of the reference)."""
        return [r.label for r in self.rows]

    def reference_choices(self) -> list[str]:
        """Time points that can be the reference (those with a CT)."""
        return [r.label for r in self.rows if r.has_ct]

    def row(self, time_point_id: str) -> RegistrationRow:
        for r in self.rows:
            if r.time_point_id == time_point_id:
                return r
        raise KeyError(time_point_id)

    def index_of(self, time_point_id: str | None) -> int:
        for i, r in enumerate(self.rows):
            if r.time_point_id == time_point_id:
                return i
        return -1

    @property
    def can_run(self) -> bool:
        """Run all: the user may register and at least two time points have a CT."""
        return self.may_register and sum(r.has_ct for r in self.rows) >= 2

    def actions(self, time_point_id: str | None) -> RowActions:
        """What may be done with the selected time point (module docstring)."""
        if time_point_id is None or self.case is None:
            return RowActions()
        try:
            r = self.row(time_point_id)
        except KeyError:
            return RowActions()
        inspect = r.has_ct and (r.is_reference or r.registered)
        if r.is_reference or not self.may_register:
            return RowActions(inspect=inspect)
        return RowActions(
            accept=r.registered and r.status != RegistrationStatus.ACCEPTED,
            reject=r.registered and r.status != RegistrationStatus.REJECTED,
            redo=r.has_ct and (not r.registered or r.status == RegistrationStatus.REJECTED),
            inspect=inspect,
        )

    def summary(self) -> str:
        """One line under the table: how many are accepted, proposed, rejected."""
        if self.case is None:
            return "No case open."
        if len(self.rows) < 2:
            return "The case has fewer than two time points: nothing to register."
        counts: dict[str, int] = {}
        for r in self.rows:
            if not r.is_reference:
                counts[r.status] = counts.get(r.status, 0) + 1
        parts = [f"{n} {s}" for s, n in counts.items()]
        return f"Reference {self.reference_label}; " + ", ".join(parts) + "."


# ------------------------------------------------------------- compare data
@dataclass(frozen=True)
class Outline:
    """A VOI mask of the shown time point on the reference CT grid ``[z, y, x]``."""

    name: str
    color_rgb: tuple[int, int, int]
    mask: NDArray[np.bool_]


@dataclass(frozen=True)
class Comparison:
    """The pair a reviewer compares, both on the reference CT grid (HU)."""

    time_point_id: str
    reference: Volume
    moved: Volume
    outlines: tuple[Outline, ...] = ()


def load_comparison(store: Any, case: Case, time_point_id: str) -> Comparison:
    """Reference CT, the time point's CT through its registration and its VOI outlines.

    Runs in a worker (resampling a full CT takes a fraction of a second).
    """
    from dosimetry_core.pipeline.registration import ct_on_reference, voi_on_reference

    tp = case.time_point(time_point_id)
    moved = ct_on_reference(store, case, tp)
    ref_id = (
        tp.registration.reference_time_point_id if tp.registration is not None else time_point_id
    )
    reference = ct_on_reference(store, case, case.time_point(ref_id))
    outlines = tuple(
        Outline(voi.name, voi.color_rgb, voi_on_reference(store, case, voi).array > 0)
        for voi in case.vois
        if voi.time_point_id == time_point_id
    )
    return Comparison(time_point_id, reference, moved, outlines)


# -------------------------------------------------------------- compositing
def plane_slice(array: NDArray[Any], plane: str, index: int) -> NDArray[Any]:
    """A 2D slice of a ``[z, y, x]`` array, rows top to bottom as a radiologist reads it.

    Axial: ``[y, x]`` (anterior at the top); coronal ``[z, x]`` and sagittal
    ``[z, y]`` with the highest slice index (superior, for the usual
    direction cosines) at the top.
    """
    if plane == "axial":
        return np.asarray(array[index])
    if plane == "coronal":
        return np.asarray(array[::-1, index, :])
    if plane == "sagittal":
        return np.asarray(array[::-1, :, index])
    raise ValueError(f"unknown plane {plane!r}")


def n_slices(shape_zyx: Sequence[int], plane: str) -> int:
    """Number of slices of a ``[z, y, x]`` grid across ``plane``."""
    return int(shape_zyx[{"axial": 0, "coronal": 1, "sagittal": 2}[plane]])


def plane_pixel_mm(spacing_xyz_mm: Sequence[float], plane: str) -> tuple[float, float]:
    """(row, column) pixel size in mm of :func:`plane_slice`'s image."""
    sx, sy, sz = (float(v) for v in spacing_xyz_mm)
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]


def window(image: NDArray[Any], level: float, width: float) -> NDArray[np.float32]:
    """Display window: ``level ± width/2`` mapped onto 0..1 (clipped)."""
    w = max(float(width), 1e-6)
    out = (np.asarray(image, dtype=np.float32) - (level - w / 2.0)) / w
    return np.clip(out, 0.0, 1.0)


def checkerboard(
    a: NDArray[Any], b: NDArray[Any], pixel_mm: tuple[float, float], square_mm: float
) -> NDArray[Any]:
    """Alternate squares of ``a`` and ``b`` (same shape), ``square_mm`` on a side.

    The square at the top-left corner shows ``a``; squares are in mm so they
    keep their size on anisotropic pixels.
    """
    if a.shape != b.shape:
        raise ValueError(f"checkerboard of different shapes {a.shape} and {b.shape}")
    if square_mm <= 0:
        raise ValueError("square size must be positive")
    rows = (np.arange(a.shape[0]) + 0.5) * pixel_mm[0] // square_mm
    cols = (np.arange(a.shape[1]) + 0.5) * pixel_mm[1] // square_mm
    show_a = ((rows[:, None] + cols[None, :]) % 2) == 0
    if a.ndim == 3:
        show_a = show_a[..., None]
    return np.where(show_a, a, b)


def fused_rgb(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float32]:
    """Reference ``a`` in green, time point ``b`` in magenta (0..1 each): grey where they agree."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return np.stack([b, a, b], axis=-1)


def outline_of(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Edge pixels of a 2D mask (inside, with a 4-neighbour outside)."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m
    p = np.pad(m, 1, constant_values=False)
    interior = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~interior


@dataclass
class CompareModel:
    """State of the compare view and the image it shows (module docstring)."""

    comparison: Comparison | None = None
    plane: str = "axial"
    index: int = 0
    mode: str = "checkerboard"
    square_mm: float = 20.0
    blink_moved: bool = False
    """Blink phase: False shows the reference, True the time point."""
    level_hu: float = CT_LEVEL_HU
    width_hu: float = CT_WIDTH_HU
    show_outlines: bool = True

    def set_comparison(self, comparison: Comparison | None) -> None:
        """Show another pair; the slice stays on the same grid, else goes to the middle."""
        old = self.comparison
        self.comparison = comparison
        if comparison is None:
            return
        if old is None or not old.reference.geometry.same_grid(comparison.reference.geometry):
            self.index = self.n_slices // 2

    def set_plane(self, plane: str) -> None:
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}")
        self.plane = plane
        self.index = self.n_slices // 2

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode

    def toggle_blink(self) -> bool:
        self.blink_moved = not self.blink_moved
        return self.blink_moved

    @property
    def n_slices(self) -> int:
        if self.comparison is None:
            return 0
        return n_slices(self.comparison.reference.geometry.shape_zyx, self.plane)

    @property
    def pixel_mm(self) -> tuple[float, float]:
        if self.comparison is None:
            return (1.0, 1.0)
        return plane_pixel_mm(self.comparison.reference.geometry.spacing_mm, self.plane)

    def size_mm(self) -> tuple[float, float]:
        """(width, height) of the shown image in mm."""
        img = self.image()
        r, c = self.pixel_mm
        return (img.shape[1] * c, img.shape[0] * r)

    def caption(self) -> str:
        """What the image shows, e.g. ``'checkerboard 20 mm · axial 12/40'``."""
        if self.comparison is None:
            return "Select a registered time point to compare it with the reference."
        what = {
            "checkerboard": f"checkerboard {self.square_mm:g} mm",
            "blink": "blink: " + ("time point" if self.blink_moved else "reference"),
            "fused": "fused: reference green, time point magenta",
        }[self.mode]
        return f"{what} · {self.plane} {self.index + 1}/{self.n_slices}"

    def image(self) -> NDArray[np.uint8]:
        """RGB ``uint8`` image ``[rows, cols, 3]`` of the current mode, plane and slice."""
        if self.comparison is None:
            return np.zeros((1, 1, 3), dtype=np.uint8)
        idx = int(np.clip(self.index, 0, self.n_slices - 1))
        a = window(
            plane_slice(self.comparison.reference.array, self.plane, idx),
            self.level_hu,
            self.width_hu,
        )
        b = window(
            plane_slice(self.comparison.moved.array, self.plane, idx), self.level_hu, self.width_hu
        )
        if self.mode == "checkerboard":
            grey = checkerboard(a, b, self.pixel_mm, self.square_mm)
            rgb = np.repeat(grey[..., None], 3, axis=-1)
        elif self.mode == "blink":
            grey = b if self.blink_moved else a
            rgb = np.repeat(grey[..., None], 3, axis=-1)
        else:
            rgb = fused_rgb(a, b)
        out = np.round(rgb * 255.0).astype(np.uint8)
        if self.show_outlines:
            for o in self.comparison.outlines:
                edge = outline_of(plane_slice(o.mask, self.plane, idx))
                out[edge] = np.asarray(o.color_rgb, dtype=np.uint8)
        return out
