"""A stylised anthropomorphic phantom: analytic organs in LPS millimetres.

In the spirit of the MIRD stylised phantoms (Snyder, Ford, Warner & Watson,
MIRD Pamphlet No. 5 Revised, Society of Nuclear Medicine, 1978; Cristy &
Eckerman, ORNL/TM-8381, 1987): every organ is an ellipsoid, an elliptic
cylinder or a truncated ellipsoid, so volumes, cross-sections and outlines are
known exactly.  Like the MIRD coordinates, ``x`` points to the patient's left,
``y`` to the back and ``z`` to the head -- which is DICOM LPS -- with ``z = 0``
at the base of the trunk.

The anatomy is deliberately compact (trunk 40 cm, short neck and head, no arms
or legs) so that the body from the bladder to the parotid glands fits in one
SPECT field of view of ~58 cm.  Organ volumes are chosen so that organ masses,
with the densities below, are near the ICRP Publication 89 adult male
(Ann. ICRP 32(3-4), 2002): liver 1800 g, kidneys 310 g, spleen 150 g, red
marrow 1170 g, parotid glands 25 g each; the compact lungs are lighter
(~0.8 kg instead of 1.2 kg with blood).

Densities (g/cm^3) are typical values after ICRU Report 44 (1989) / ICRU
Report 46 (1992) tissue data and ICRP 89: soft tissue 1.04, liver 1.06, kidney
1.05, spleen 1.06, inflated lung 0.30, red marrow 1.03, cortical bone 1.92.
CT numbers (HU) are typical non-contrast values (air -1000, lung -750, fat
-100, soft tissue 40, liver 55, kidney 35, bone 700, marrow 200), not measured
data.

Voxelisation samples every voxel with ``n x n x n`` sub-points (vectorised
NumPy, restricted to each shape's bounding box) to give partial-volume
fractions; a rigid patient motion is applied by mapping the sample points back
into the reference pose before evaluating the analytic shapes, so no image is
ever resampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.io.types import RoiContours
from dosimetry_core.model import Geometry
from dosimetry_core.progress import CancelCheck, check_cancel

FloatArray = NDArray[np.float64]

#: Largest distance (mm) between a contour edge and the true outline (sets the vertex count).
CONTOUR_TOLERANCE_MM = 0.1


# ====================================================================== shapes
@dataclass(frozen=True)
class HalfSpace:
    """The half-space ``normal . p <= offset_mm`` (``normal`` is normalised on creation)."""

    normal: tuple[float, float, float]
    offset_mm: float

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=float)
        norm = float(np.linalg.norm(n))
        if norm == 0:
            raise ValueError("a half-space needs a non-zero normal")
        object.__setattr__(self, "normal", tuple(float(v) for v in n / norm))
        object.__setattr__(self, "offset_mm", float(self.offset_mm) / norm)

    def contains(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> NDArray[np.bool_]:
        nx, ny, nz = self.normal
        return np.asarray(
            nx * np.asarray(x) + ny * np.asarray(y) + nz * np.asarray(z) <= self.offset_mm
        )

    @property
    def is_axial(self) -> bool:
        """True when the boundary plane is a z = constant plane."""
        return abs(self.normal[0]) < 1e-12 and abs(self.normal[1]) < 1e-12

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": list(self.normal),
            "offset_mm": self.offset_mm,
            "meaning": "points p with normal . p <= offset_mm",
        }


class Shape(Protocol):
    """What the phantom needs from a shape (all lengths in LPS mm, reference pose)."""

    def contains(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> NDArray[np.bool_]: ...

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]: ...

    def volume_ml(self) -> float: ...

    def section(self, z_mm: float) -> list[FloatArray]: ...

    def section_area_mm2(self, z_mm: float) -> float: ...

    def parts(self) -> Sequence[Shape]: ...

    def to_dict(self) -> dict[str, Any]: ...


def _n_vertices(radius_mm: float) -> int:
    """Polygon vertices so that the chord sagitta stays below CONTOUR_TOLERANCE_MM."""
    n = math.pi * math.sqrt(max(radius_mm, 1e-3) / (2.0 * CONTOUR_TOLERANCE_MM))
    return int(max(24, 4 * math.ceil(n / 4)))


def _ellipse_polygon(cx: float, cy: float, a: float, b: float) -> FloatArray:
    n = _n_vertices(max(a, b))
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack([cx + a * np.cos(theta), cy + b * np.sin(theta)])


def _clip_polygon(poly: FloatArray, nx: float, ny: float, offset: float) -> FloatArray:
    """Sutherland-Hodgman clip of a closed polygon by ``nx x + ny y <= offset``."""
    if len(poly) == 0:
        return poly
    s = poly @ np.array([nx, ny]) - offset
    out: list[FloatArray] = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        sp, sq = s[i], s[(i + 1) % n]
        if sp <= 0:
            out.append(p)
        if (sp < 0 < sq) or (sq < 0 < sp):
            out.append(p + (q - p) * (sp / (sp - sq)))
    return np.asarray(out, dtype=float).reshape(-1, 2)


def _disk_fraction_2d(d: float) -> float:
    """Area of the unit disk with ``u . m <= d`` (|m| = 1), divided by pi."""
    if d >= 1.0:
        return 1.0
    if d <= -1.0:
        return 0.0
    return (math.pi - math.acos(d) + d * math.sqrt(1.0 - d * d)) / math.pi


def _ball_fraction_3d(d: float) -> float:
    """Volume of the unit ball with ``u . m <= d`` divided by 4 pi / 3 (spherical cap)."""
    d = min(max(d, -1.0), 1.0)
    return (1.0 + d) ** 2 * (2.0 - d) / 4.0


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid, optionally truncated by half-spaces.

    Parameters
    ----------
    center_mm
        Centre (x, y, z) in LPS mm.
    semi_axes_mm
        Semi-axes along x, y, z (mm).
    cuts
        Half-spaces the organ is restricted to (e.g. ``z >= z0`` for a lung,
        a tilted plane for the liver, as in the MIRD phantoms).
    """

    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    cuts: tuple[HalfSpace, ...] = ()

    def contains(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> NDArray[np.bool_]:
        cx, cy, cz = self.center_mm
        a, b, c = self.semi_axes_mm
        x, y, z = np.asarray(x), np.asarray(y), np.asarray(z)
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0
        for cut in self.cuts:
            inside = inside & cut.contains(x, y, z)
        return np.asarray(inside)

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]:
        lo = np.asarray(self.center_mm) - np.asarray(self.semi_axes_mm)
        hi = np.asarray(self.center_mm) + np.asarray(self.semi_axes_mm)
        for cut in self.cuts:  # tighten along axis-aligned cuts
            n = np.asarray(cut.normal)
            axis = int(np.argmax(np.abs(n)))
            if abs(abs(n[axis]) - 1.0) < 1e-12:
                limit = cut.offset_mm / n[axis]
                if n[axis] > 0:
                    hi[axis] = min(hi[axis], limit)
                else:
                    lo[axis] = max(lo[axis], limit)
        return lo, hi

    def _unit_ball_cut(self, cut: HalfSpace) -> tuple[FloatArray, float]:
        """The cut in unit-ball coordinates: (unit normal m, distance d), ``u . m <= d``."""
        m = np.asarray(cut.normal) * np.asarray(self.semi_axes_mm)
        r = cut.offset_mm - float(np.dot(cut.normal, self.center_mm))
        norm = float(np.linalg.norm(m))
        return m / norm, r / norm

    def volume_ml(self) -> float:
        """Exact volume (mL).

        Full ellipsoid ``4/3 pi a b c``; one cut: ellipsoidal cap (the cut maps to
        a plane at distance ``d`` from the centre of the unit ball, fraction
        ``(1 + d)^2 (2 - d) / 4``); two cuts with orthogonal normals in the
        unit-ball frame, one through the centre: half of the single-cut cap.
        Other combinations are integrated numerically over z.
        """
        a, b, c = self.semi_axes_mm
        full = 4.0 / 3.0 * math.pi * a * b * c
        cuts = [self._unit_ball_cut(cut) for cut in self.cuts]
        if not cuts:
            frac = 1.0
        elif len(cuts) == 1:
            frac = _ball_fraction_3d(cuts[0][1])
        elif (
            len(cuts) == 2
            and abs(float(np.dot(cuts[0][0], cuts[1][0]))) < 1e-12
            and (abs(cuts[0][1]) < 1e-12 or abs(cuts[1][1]) < 1e-12)
        ):
            other = cuts[1] if abs(cuts[0][1]) < 1e-12 else cuts[0]
            frac = 0.5 * _ball_fraction_3d(other[1])
        else:
            from scipy.integrate import quad

            lo, hi = self.bounds_mm()
            value, _ = quad(self.section_area_mm2, lo[2], hi[2], limit=200, epsabs=1e-6)
            return value * 1e-3
        return full * frac * 1e-3

    def _section_ellipse(self, z_mm: float) -> tuple[float, float, float, float] | None:
        cx, cy, cz = self.center_mm
        a, b, c = self.semi_axes_mm
        t = (z_mm - cz) / c
        if abs(t) >= 1.0:
            return None
        r = math.sqrt(1.0 - t * t)
        for cut in self.cuts:
            if cut.is_axial and cut.normal[2] * z_mm > cut.offset_mm:
                return None
        return cx, cy, a * r, b * r

    def section(self, z_mm: float) -> list[FloatArray]:
        """Outline on the plane ``z = z_mm``: polygons of (x, y) in mm (vertices on the surface)."""
        e = self._section_ellipse(z_mm)
        if e is None or min(e[2], e[3]) < 0.05:
            return []
        poly = _ellipse_polygon(*e)
        for cut in self.cuts:
            if not cut.is_axial:
                nx, ny, nz = cut.normal
                poly = _clip_polygon(poly, nx, ny, cut.offset_mm - nz * z_mm)
        return [poly] if len(poly) >= 3 else []

    def section_area_mm2(self, z_mm: float) -> float:
        """Exact area of the cross-section at ``z_mm`` (ellipse, or ellipse cut by one line)."""
        e = self._section_ellipse(z_mm)
        if e is None:
            return 0.0
        cx, cy, a, b = e
        lines = [c for c in self.cuts if not c.is_axial]
        if not lines:
            return math.pi * a * b
        if len(lines) > 1:
            # several cuts: area of the ellipse clipped by each line, on a dense polygon
            # (4096 vertices: relative error of the inscribed polygon ~ 4e-7)
            theta = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
            poly = np.column_stack([cx + a * np.cos(theta), cy + b * np.sin(theta)])
            for cut in lines:
                nx, ny, nz = cut.normal
                poly = _clip_polygon(poly, nx, ny, cut.offset_mm - nz * z_mm)
            if len(poly) < 3:
                return 0.0
            x, y = poly[:, 0], poly[:, 1]
            return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        nx, ny, nz = lines[0].normal
        m = np.array([nx * a, ny * b])
        d = (lines[0].offset_mm - nz * z_mm - nx * cx - ny * cy) / float(np.linalg.norm(m))
        return math.pi * a * b * _disk_fraction_2d(d)

    def parts(self) -> Sequence[Shape]:
        return (self,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "ellipsoid",
            "center_mm": list(self.center_mm),
            "semi_axes_mm": list(self.semi_axes_mm),
            "cuts": [c.to_dict() for c in self.cuts],
            "volume_ml": self.volume_ml(),
        }


def sphere(center_mm: tuple[float, float, float], volume_ml: float) -> Ellipsoid:
    """A sphere of the given volume (mL): radius ``(3 V / 4 pi)^(1/3)``."""
    r = (3.0 * volume_ml * 1e3 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return Ellipsoid(center_mm, (r, r, r))


@dataclass(frozen=True)
class EllipticCylinder:
    """Elliptic cylinder along z: ``((x-cx)/a)^2 + ((y-cy)/b)^2 <= 1`` and ``z0 <= z < z1``."""

    center_xy_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    z_range_mm: tuple[float, float]

    def contains(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> NDArray[np.bool_]:
        cx, cy = self.center_xy_mm
        a, b = self.semi_axes_mm
        z0, z1 = self.z_range_mm
        x, y, z = np.asarray(x), np.asarray(y), np.asarray(z)
        return np.asarray((((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0) & (z >= z0) & (z < z1))

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]:
        cx, cy = self.center_xy_mm
        a, b = self.semi_axes_mm
        z0, z1 = self.z_range_mm
        return np.array([cx - a, cy - b, z0]), np.array([cx + a, cy + b, z1])

    def volume_ml(self) -> float:
        """``pi a b h`` in mL."""
        a, b = self.semi_axes_mm
        return math.pi * a * b * (self.z_range_mm[1] - self.z_range_mm[0]) * 1e-3

    def section(self, z_mm: float) -> list[FloatArray]:
        if not (self.z_range_mm[0] <= z_mm < self.z_range_mm[1]):
            return []
        return [_ellipse_polygon(*self.center_xy_mm, *self.semi_axes_mm)]

    def section_area_mm2(self, z_mm: float) -> float:
        if not (self.z_range_mm[0] <= z_mm < self.z_range_mm[1]):
            return 0.0
        return math.pi * self.semi_axes_mm[0] * self.semi_axes_mm[1]

    def parts(self) -> Sequence[Shape]:
        return (self,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "elliptic_cylinder",
            "center_xy_mm": list(self.center_xy_mm),
            "semi_axes_mm": list(self.semi_axes_mm),
            "z_range_mm": list(self.z_range_mm),
            "volume_ml": self.volume_ml(),
        }


@dataclass(frozen=True)
class DisjointUnion:
    """Union of shapes that do not overlap (e.g. trunk, neck and head stacked along z)."""

    members: tuple[Shape, ...]

    def contains(self, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> NDArray[np.bool_]:
        out = self.members[0].contains(x, y, z)
        for m in self.members[1:]:
            out = out | m.contains(x, y, z)
        return np.asarray(out)

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]:
        b = [m.bounds_mm() for m in self.members]
        return np.min([x[0] for x in b], axis=0), np.max([x[1] for x in b], axis=0)

    def volume_ml(self) -> float:
        return float(sum(m.volume_ml() for m in self.members))

    def section(self, z_mm: float) -> list[FloatArray]:
        return [p for m in self.members for p in m.section(z_mm)]

    def section_area_mm2(self, z_mm: float) -> float:
        return float(sum(m.section_area_mm2(z_mm) for m in self.members))

    def parts(self) -> Sequence[Shape]:
        return tuple(p for m in self.members for p in m.parts())

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "disjoint_union",
            "members": [m.to_dict() for m in self.members],
            "volume_ml": self.volume_ml(),
        }


# ====================================================================== organs
@dataclass(frozen=True)
class PhantomOrgan:
    """One compartment of the phantom: a region with uniform tissue and activity.

    The region is ``shape`` minus the shapes of the organs whose ``parent`` is
    this one (e.g. the liver parenchyma is the liver shape minus its tumours;
    the remainder of body is the body minus every organ).

    Parameters
    ----------
    name
        Compartment key (``kidney_left``, ``tumour_1``, ``remainder``...).
    label
        Value in the CT label map.
    shape
        Outer surface of the organ (what the RTSTRUCT outline follows).
    parent
        Compartment the organ is carved out of (None for the body).
    density_g_cm3, hu
        Tissue density and CT number.
    roi_name, roi_kind, color_rgb
        RTSTRUCT ROI name, RT ROI Interpreted Type and display colour.
    """

    name: str
    label: int
    shape: Shape
    parent: str | None
    density_g_cm3: float
    hu: float
    roi_name: str
    roi_kind: str = "ORGAN"
    color_rgb: tuple[int, int, int] = (255, 0, 0)
    description: str = ""


@dataclass(frozen=True)
class StylisedPhantom:
    """Organs in painting order (parents before children), plus a CT-only fat layer."""

    organs: tuple[PhantomOrgan, ...]
    fat_outer: Shape | None = None
    fat_inner: Shape | None = None
    fat_label: int = 2
    fat_hu: float = -100.0
    air_hu: float = -1000.0
    name: str = ""
    _index: dict[str, PhantomOrgan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {o.name: o for o in self.organs}
        if len(index) != len(self.organs):
            raise ValueError("organ names must be unique")
        seen: set[str] = set()
        for o in self.organs:
            if o.parent is not None and o.parent not in seen:
                raise ValueError(f"organ {o.name}: parent {o.parent} must come first")
            seen.add(o.name)
        labels = [o.label for o in self.organs] + [self.fat_label]
        if len(set(labels)) != len(labels) or min(labels) < 1 or max(labels) > 255:
            raise ValueError("labels must be unique values 1..255")
        object.__setattr__(self, "_index", index)

    # ---------------------------------------------------------------- queries
    def organ(self, name: str) -> PhantomOrgan:
        return self._index[name]

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.organs]

    @property
    def body(self) -> PhantomOrgan:
        return self.organs[0]

    def children(self, name: str) -> list[PhantomOrgan]:
        return [o for o in self.organs if o.parent == name]

    def compartment_volume_ml(self, name: str) -> float:
        """Exact volume of the compartment: own shape minus children shapes (mL)."""
        return self.organ(name).shape.volume_ml() - sum(
            c.shape.volume_ml() for c in self.children(name)
        )

    def compartment_mass_g(self, name: str) -> float:
        return self.compartment_volume_ml(name) * self.organ(name).density_g_cm3

    def bounds_mm(self) -> tuple[FloatArray, FloatArray]:
        return self.body.shape.bounds_mm()

    def center_mm(self) -> FloatArray:
        """Centre of the body's bounding box (LPS mm)."""
        lo, hi = self.bounds_mm()
        return (lo + hi) / 2.0

    def label_names(self) -> dict[int, str]:
        out = {0: "air", self.fat_label: "fat"}
        out.update({o.label: o.name for o in self.organs})
        return out

    def hu_table(self) -> NDArray[np.float32]:
        """CT number per label value (index = label), 256 entries."""
        table = np.full(256, self.air_hu, dtype=np.float32)
        table[self.fat_label] = self.fat_hu
        for o in self.organs:
            table[o.label] = o.hu
        return table

    # ------------------------------------------------------------- contours
    def roi_contours(self, z_positions_mm: Sequence[float]) -> list[RoiContours]:
        """True outlines (reference pose) on the planes ``z = z_positions_mm``.

        Polygons are computed from the analytic shapes (ellipse cross-sections,
        clipped by the cut planes), vertices on the surface, at most
        :data:`CONTOUR_TOLERANCE_MM` inside it between vertices.
        """
        rois = []
        for o in self.organs:
            polys = []
            for z in z_positions_mm:
                for p in o.shape.section(float(z)):
                    polys.append(np.column_stack([p, np.full(len(p), float(z))]))
            rois.append(
                RoiContours(name=o.roi_name, color_rgb=o.color_rgb, kind=o.roi_kind, polygons=polys)
            )
        return rois

    def to_dict(self) -> dict[str, Any]:
        """Analytic definition with exact volumes and masses (JSON-serialisable)."""
        organs = {}
        for o in self.organs:
            organs[o.name] = {
                "label": o.label,
                "roi_name": o.roi_name,
                "roi_kind": o.roi_kind,
                "parent": o.parent,
                "carved_out": [c.name for c in self.children(o.name)],
                "density_g_cm3": o.density_g_cm3,
                "hu": o.hu,
                "shape": o.shape.to_dict(),
                "shape_volume_ml": o.shape.volume_ml(),
                "volume_ml": self.compartment_volume_ml(o.name),
                "mass_g": self.compartment_mass_g(o.name),
                "description": o.description,
            }
        return {
            "name": self.name,
            "coordinates": "LPS mm, reference pose (time point 1); z = 0 at the base of the trunk",
            "organs": organs,
            "fat_layer": {
                "label": self.fat_label,
                "hu": self.fat_hu,
                "outer": self.fat_outer.to_dict() if self.fat_outer is not None else None,
                "inner": self.fat_inner.to_dict() if self.fat_inner is not None else None,
                "note": "CT only; part of the remainder compartment for activity",
            },
            "air_hu": self.air_hu,
        }


def _z_at_least(z0: float) -> HalfSpace:
    return HalfSpace((0.0, 0.0, -1.0), -z0)


def adult_male_phantom() -> StylisedPhantom:
    """The compact adult male of the demo patient (see the module docstring).

    Layout (LPS mm, z up from the base of the trunk): bladder z 12-72, kidneys
    80-180, liver and spleen ~175-281, lungs 285-390, trunk top 400, neck
    400-435, head 435-540 with the parotids at z 440-484.  Three tumours: 12 mL
    and 2 mL in the liver, 50 mL in the upper abdomen near the pancreas.
    """
    trunk = EllipticCylinder((0.0, 0.0), (180.0, 120.0), (0.0, 400.0))
    neck = EllipticCylinder((0.0, 35.0), (62.0, 62.0), (400.0, 435.0))
    head = EllipticCylinder((0.0, 18.0), (75.0, 92.0), (435.0, 490.0))
    skull = Ellipsoid((0.0, 18.0, 490.0), (75.0, 92.0, 50.0), (_z_at_least(490.0),))
    body = DisjointUnion((trunk, neck, head, skull))
    lung_cut = 285.0
    red = (255, 0, 0)
    organs = (
        PhantomOrgan(
            "remainder",
            1,
            body,
            None,
            1.04,
            40.0,
            "Body",
            "EXTERNAL",
            (255, 224, 189),
            "remainder of body: blood, soft tissue, fat, muscle (trunk, neck, head)",
        ),
        PhantomOrgan(
            "lung_left",
            3,
            Ellipsoid(
                (82.0, 0.0, lung_cut),
                (86.0, 94.0, 105.0),
                (_z_at_least(lung_cut), HalfSpace((-1.0, 0.0, 0.0), -40.0)),
            ),
            "remainder",
            0.30,
            -750.0,
            "Lung_L",
            "ORGAN",
            (0, 160, 255),
            "half-ellipsoid, medial cut",
        ),
        PhantomOrgan(
            "lung_right",
            4,
            Ellipsoid(
                (-82.0, 0.0, lung_cut),
                (86.0, 94.0, 105.0),
                (_z_at_least(lung_cut), HalfSpace((1.0, 0.0, 0.0), -40.0)),
            ),
            "remainder",
            0.30,
            -750.0,
            "Lung_R",
            "ORGAN",
            (0, 120, 220),
            "half-ellipsoid, medial cut",
        ),
        PhantomOrgan(
            "liver",
            5,
            Ellipsoid(
                (-62.0, -18.0, 228.0), (100.0, 86.0, 53.0), (HalfSpace((1.0, 1.0, 0.0), 0.0),)
            ),
            "remainder",
            1.06,
            55.0,
            "Liver",
            "ORGAN",
            (160, 80, 40),
            "ellipsoid cut by the plane x + y = 0 (medial-posterior part removed)",
        ),
        PhantomOrgan(
            "kidney_left",
            6,
            Ellipsoid((82.0, 52.0, 130.0), (33.0, 21.0, 50.0)),
            "remainder",
            1.05,
            35.0,
            "Kidney_L",
            "ORGAN",
            (255, 200, 0),
        ),
        PhantomOrgan(
            "kidney_right",
            7,
            Ellipsoid((-82.0, 52.0, 130.0), (33.0, 21.0, 50.0)),
            "remainder",
            1.05,
            35.0,
            "Kidney_R",
            "ORGAN",
            (230, 170, 0),
        ),
        PhantomOrgan(
            "spleen",
            8,
            Ellipsoid((102.0, 38.0, 230.0), (30.0, 22.0, 51.0)),
            "remainder",
            1.06,
            45.0,
            "Spleen",
            "ORGAN",
            (150, 0, 150),
        ),
        PhantomOrgan(
            "spine_bone",
            9,
            EllipticCylinder((0.0, 58.0), (37.0, 32.0), (5.0, 435.0)),
            "remainder",
            1.92,
            700.0,
            "Spine",
            "ORGAN",
            (240, 240, 240),
            "vertebral column; the compartment is the bone shell around the marrow",
        ),
        PhantomOrgan(
            "red_marrow",
            10,
            EllipticCylinder((0.0, 58.0), (31.0, 26.0), (10.0, 430.0)),
            "spine_bone",
            1.03,
            200.0,
            "RedMarrow",
            "ORGAN",
            (200, 60, 60),
            "all red marrow of the stylised patient, inside the vertebral column",
        ),
        PhantomOrgan(
            "bladder_content",
            11,
            Ellipsoid((0.0, -45.0, 42.0), (45.0, 35.0, 30.0)),
            "remainder",
            1.04,
            5.0,
            "Bladder",
            "ORGAN",
            (255, 255, 0),
            "urinary bladder content",
        ),
        PhantomOrgan(
            "parotid_left",
            12,
            Ellipsoid((55.0, 25.0, 462.0), (13.0, 20.0, 22.0)),
            "remainder",
            1.04,
            25.0,
            "Parotid_L",
            "ORGAN",
            (0, 200, 120),
        ),
        PhantomOrgan(
            "parotid_right",
            13,
            Ellipsoid((-55.0, 25.0, 462.0), (13.0, 20.0, 22.0)),
            "remainder",
            1.04,
            25.0,
            "Parotid_R",
            "ORGAN",
            (0, 170, 100),
        ),
        PhantomOrgan(
            "tumour_1",
            14,
            sphere((-95.0, -30.0, 235.0), 12.0),
            "liver",
            1.04,
            40.0,
            "Tumour_1",
            "GTV",
            red,
            "liver metastasis, 12 mL sphere",
        ),
        PhantomOrgan(
            "tumour_2",
            15,
            sphere((-40.0, -45.0, 215.0), 2.0),
            "liver",
            1.04,
            40.0,
            "Tumour_2",
            "GTV",
            (255, 90, 90),
            "liver metastasis, 2 mL sphere",
        ),
        PhantomOrgan(
            "tumour_3",
            16,
            sphere((25.0, -20.0, 140.0), 50.0),
            "remainder",
            1.04,
            40.0,
            "Tumour_3",
            "GTV",
            (255, 0, 120),
            "primary near the pancreas, 50 mL sphere",
        ),
    )
    return StylisedPhantom(
        organs=organs,
        fat_outer=trunk,
        fat_inner=EllipticCylinder((0.0, 0.0), (165.0, 105.0), (0.0, 400.0)),
        name="compact stylised adult male (MIRD-like)",
    )


# ================================================================ voxelisation
@dataclass
class Occupancy:
    """Fraction of each voxel inside a region, stored on a bounding box of the grid.

    ``fraction[...]`` covers ``grid[box]``; voxels outside the box are 0.
    """

    box: tuple[slice, slice, slice]
    fraction: NDArray[np.float32]
    grid_shape: tuple[int, int, int]

    def dense(self) -> NDArray[np.float32]:
        out = np.zeros(self.grid_shape, dtype=np.float32)
        out[self.box] = self.fraction
        return out

    def voxel_sum(self) -> float:
        return float(np.sum(self.fraction, dtype=np.float64))

    def centroid_index(self) -> FloatArray:
        """Occupancy-weighted centroid as fractional (k, j, i) indices."""
        w = self.fraction.astype(np.float64)
        total = w.sum()
        out = []
        for axis, sl in enumerate(self.box):
            other = tuple(a for a in range(3) if a != axis)
            profile = w.sum(axis=other)
            idx = np.arange(sl.start, sl.stop, dtype=float)
            out.append(float((profile * idx).sum() / total))
        return np.asarray(out)


def _motion_inverse(motion: ArrayLike | None) -> FloatArray:
    m = np.eye(4) if motion is None else np.asarray(motion, dtype=float)
    if m.shape != (4, 4):
        raise ValueError("motion must be a 4x4 homogeneous matrix")
    return np.linalg.inv(m)


def _box(
    lo: FloatArray, hi: FloatArray, geometry: Geometry, motion: FloatArray
) -> tuple[slice, ...] | None:
    """Grid index box (with one voxel of padding) holding the moved bounding box."""
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    moved = corners @ motion[:3, :3].T + motion[:3, 3]
    idx = geometry.world_to_index(moved)
    start = np.floor(idx.min(axis=0)).astype(int) - 1
    stop = np.ceil(idx.max(axis=0)).astype(int) + 2
    shape = np.asarray(geometry.shape_zyx)
    start = np.clip(start, 0, shape)
    stop = np.clip(stop, 0, shape)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def _sample_counts(
    shape: Shape, geometry: Geometry, motion: FloatArray, inverse: FloatArray, n_sub: int
) -> tuple[tuple[slice, ...], NDArray[np.float32]] | None:
    """Number of the ``n_sub^3`` sub-points of each voxel inside one primitive shape."""
    lo, hi = shape.bounds_mm()
    box = _box(lo, hi, geometry, motion)
    if box is None:
        return None
    # reference-pose position of voxel (k, j, i): q = B (i, j, k) + q0
    affine = geometry.affine
    b = inverse[:3, :3] @ affine[:3, :3]
    q0 = inverse[:3, :3] @ affine[:3, 3] + inverse[:3, 3]
    k = np.arange(box[0].start, box[0].stop, dtype=float)[:, None, None]
    j = np.arange(box[1].start, box[1].stop, dtype=float)[None, :, None]
    i = np.arange(box[2].start, box[2].stop, dtype=float)[None, None, :]
    base = [b[r, 0] * i + b[r, 1] * j + b[r, 2] * k + q0[r] for r in range(3)]
    out_shape = tuple(s.stop - s.start for s in box)
    counts = np.zeros(out_shape, dtype=np.float32)
    offsets = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    # Stratified sub-samples: the sub-grid is shifted inside its cells by a low-discrepancy
    # sequence (in x and y from slice to slice, in z from row to row), so that the sampling
    # error of shapes with constant cross-sections (cylinders, flat faces) averages out.
    if n_sub > 1:
        ds_i = _r2_shift(k, 0) / n_sub
        ds_j = _r2_shift(k, 1) / n_sub
        ds_k = _r2_shift(j, 0) / n_sub
    else:
        ds_i = ds_j = ds_k = np.zeros((1, 1, 1))
    for ok in offsets:
        for oj in offsets:
            for oi in offsets:
                ui, uj, uk = oi + ds_i, oj + ds_j, ok + ds_k
                inside = shape.contains(
                    base[0] + b[0, 0] * ui + b[0, 1] * uj + b[0, 2] * uk,
                    base[1] + b[1, 0] * ui + b[1, 1] * uj + b[1, 2] * uk,
                    base[2] + b[2, 0] * ui + b[2, 1] * uj + b[2, 2] * uk,
                )
                counts += np.broadcast_to(inside, out_shape)
    return box, counts


def _r2_shift(index: NDArray[np.float64], component: int) -> NDArray[np.float64]:
    """Shift in [-0.5, 0.5) from the R2 low-discrepancy sequence (Roberts 2018) of ``index``."""
    g = 1.32471795724474602596  # plastic number
    alpha = (1.0 / g, 1.0 / g**2)[component]
    return np.asarray((0.5 + alpha * index) % 1.0 - 0.5)


def shape_occupancy(
    shape: Shape, geometry: Geometry, motion: ArrayLike | None = None, n_sub: int = 3
) -> Occupancy:
    """Partial-volume fraction of ``shape`` on ``geometry`` (``n_sub^3`` sub-samples per voxel).

    Parameters
    ----------
    shape
        Analytic shape in the reference pose (LPS mm).
    geometry
        Voxel grid.
    motion
        4x4 rigid transform mapping reference-pose LPS points to their position
        in this acquisition (the patient moved); identity when None.
    n_sub
        Sub-samples per voxel edge (3 -> 27 points per voxel).
    """
    m = np.eye(4) if motion is None else np.asarray(motion, dtype=float)
    inv = _motion_inverse(m)
    pieces = [
        p
        for p in (_sample_counts(s, geometry, m, inv, n_sub) for s in shape.parts())
        if p is not None
    ]
    grid = geometry.shape_zyx
    if not pieces:
        return Occupancy(
            (slice(0, 0), slice(0, 0), slice(0, 0)), np.zeros((0, 0, 0), np.float32), grid
        )
    start = [min(p[0][a].start for p in pieces) for a in range(3)]
    stop = [max(p[0][a].stop for p in pieces) for a in range(3)]
    hull = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    frac = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), dtype=np.float32)
    for box, counts in pieces:
        sub = tuple(slice(box[a].start - start[a], box[a].stop - start[a]) for a in range(3))
        frac[sub] += counts
    frac /= float(n_sub**3)
    return Occupancy(hull, frac, grid)  # type: ignore[arg-type]


def _subtract(parent: Occupancy, child: Occupancy) -> None:
    if child.fraction.size == 0:
        return
    lo = [max(parent.box[a].start, child.box[a].start) for a in range(3)]
    hi = [min(parent.box[a].stop, child.box[a].stop) for a in range(3)]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return
    p = tuple(slice(lo[a] - parent.box[a].start, hi[a] - parent.box[a].start) for a in range(3))
    c = tuple(slice(lo[a] - child.box[a].start, hi[a] - child.box[a].start) for a in range(3))
    parent.fraction[p] -= child.fraction[c]


def compartment_occupancy(
    phantom: StylisedPhantom,
    geometry: Geometry,
    motion: ArrayLike | None = None,
    n_sub: int = 3,
    cancel: CancelCheck | None = None,
) -> dict[str, Occupancy]:
    """Partial-volume fraction of every compartment (shape minus its children).

    Because children lie inside their parent shape, the subtraction is exact
    sub-sample by sub-sample, and the fractions of all compartments add up to
    the body fraction in every voxel.
    """
    shapes: dict[str, Occupancy] = {}
    for o in phantom.organs:
        check_cancel(cancel)
        shapes[o.name] = shape_occupancy(o.shape, geometry, motion, n_sub)
    out: dict[str, Occupancy] = {}
    for o in phantom.organs:
        occ = shapes[o.name]
        comp = Occupancy(occ.box, occ.fraction.copy(), occ.grid_shape)
        for child in phantom.children(o.name):
            _subtract(comp, shapes[child.name])
        np.clip(comp.fraction, 0.0, 1.0, out=comp.fraction)
        out[o.name] = comp
    return out


def label_map(
    phantom: StylisedPhantom, geometry: Geometry, motion: ArrayLike | None = None
) -> NDArray[np.uint8]:
    """Tissue label at each voxel centre (0 = air), painting parents before children.

    The fat layer (CT only) is painted between the body and the organs.
    """
    m = np.eye(4) if motion is None else np.asarray(motion, dtype=float)
    inv = _motion_inverse(m)
    labels = np.zeros(geometry.shape_zyx, dtype=np.uint8)

    def paint(shape: Shape, value: int) -> None:
        for part in shape.parts():
            res = _sample_counts(part, geometry, m, inv, 1)
            if res is not None:
                box, counts = res
                view = labels[box]
                view[counts > 0] = value

    body = phantom.body
    paint(body.shape, body.label)
    if phantom.fat_outer is not None and phantom.fat_inner is not None:
        paint(phantom.fat_outer, phantom.fat_label)
        paint(phantom.fat_inner, body.label)
    for o in phantom.organs[1:]:
        paint(o.shape, o.label)
    return labels
