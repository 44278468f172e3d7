"""Mask <-> planar polygon helpers (pure NumPy, no scikit-image).

* :func:`rasterize_polygons_2d` -- even-odd (XOR) fill of polygons given in
  continuous pixel coordinates, tested on pixel centres.  Nested polygons become
  holes; a self-intersecting polygon is filled by the even-odd rule.
* :func:`marching_squares` -- closed iso-contours of a 2D array at a level
  (0.5 for masks), as polygons in pixel coordinates (row, column).
* :func:`self_intersects` -- whether a closed polygon crosses itself.

Pixel coordinates: ``(row, col)`` with pixel centres at integer values; for a
slice ``k`` of a :class:`~dosimetry_core.model.Geometry` that is the continuous
index ``(j, i)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def rasterize_polygons_2d(
    polygons_rc: list[NDArray[np.float64]], shape_rc: tuple[int, int]
) -> NDArray[np.bool_]:
    """Even-odd fill of closed polygons on the pixel centres of a ``shape_rc`` grid.

    Parameters
    ----------
    polygons_rc
        Polygons as (N, 2) arrays of continuous (row, col) coordinates; the last
        point connects to the first.
    shape_rc
        (rows, cols) of the output.

    Notes
    -----
    A pixel centre is inside when a ray towards decreasing column crosses the
    polygon edges an odd number of times (half-open rule on rows, so vertices
    are counted once).  All polygons of the slice are pooled, so a polygon
    inside another is a hole (XOR).
    """
    rows, cols = int(shape_rc[0]), int(shape_rc[1])
    toggles = np.zeros((rows, cols + 1), dtype=np.int32)
    for poly in polygons_rc:
        p = np.asarray(poly, dtype=float).reshape(-1, 2)
        if len(p) < 3:
            continue
        r0, c0 = p[:, 0], p[:, 1]
        r1, c1 = np.roll(r0, -1), np.roll(c0, -1)
        keep = r0 != r1  # horizontal edges never cross a row line under the half-open rule
        r0, c0, r1, c1 = r0[keep], c0[keep], r1[keep], c1[keep]
        lo = np.minimum(r0, r1)
        hi = np.maximum(r0, r1)
        first = np.clip(np.ceil(lo), 0, rows).astype(np.int64)  # rows with lo <= r < hi
        last = np.clip(np.ceil(hi), 0, rows).astype(np.int64)
        counts = last - first
        valid = counts > 0
        if not np.any(valid):
            continue
        counts = counts[valid]
        first = first[valid]
        r0, c0, r1, c1 = r0[valid], c0[valid], r1[valid], c1[valid]
        edge = np.repeat(np.arange(len(counts)), counts)
        offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        row = first[edge] + offs
        t = (row - r0[edge]) / (r1[edge] - r0[edge])
        x = c0[edge] + t * (c1[edge] - c0[edge])
        # pixels with column > x are to the right of the crossing: toggle from there on
        start = np.clip(np.floor(x).astype(np.int64) + 1, 0, cols)
        np.add.at(toggles, (row, start), 1)
    inside = np.cumsum(toggles, axis=1)[:, :cols] % 2
    return inside.astype(bool)


# corner bits: top-left 1, top-right 2, bottom-right 4, bottom-left 8
# edges in clockwise order (rows grow downwards): 0 top, 1 right, 2 bottom, 3 left


def marching_squares(
    image: NDArray[np.float64] | NDArray[np.bool_], level: float = 0.5
) -> list[NDArray[np.float64]]:
    """Closed iso-contours of a 2D image, as (N, 2) arrays of (row, col).

    The image is padded with values below ``level`` so every contour closes.
    Each polygon separates pixel centres above ``level`` from those below;
    outer boundaries and hole boundaries run in opposite senses.  At saddle
    cells the two above-level corners are kept apart (4-connected foreground),
    so re-filling the polygons with :func:`rasterize_polygons_2d` on the same
    pixel centres gives back exactly ``image > level``.  Collinear vertices are
    removed.
    """
    a = np.asarray(image, dtype=float)
    if a.ndim != 2:
        raise ValueError("marching_squares needs a 2D image")
    pad = np.full((a.shape[0] + 2, a.shape[1] + 2), level - 1.0)
    pad[1:-1, 1:-1] = a
    inside = pad > level
    h, w = pad.shape
    if not inside.any():
        return []
    tl, tr = inside[:-1, :-1], inside[:-1, 1:]
    br, bl = inside[1:, 1:], inside[1:, :-1]
    # walking the corners clockwise tl->tr->br->bl->tl, edge e goes from corner e to e+1
    corners = [tl, tr, br, bl]
    entering = [~corners[e] & corners[(e + 1) % 4] for e in range(4)]
    leaving = [corners[e] & ~corners[(e + 1) % 4] for e in range(4)]
    n_h = h * (w - 1)  # horizontal grid edges (r, c)-(r, c+1)

    rr, cc = np.meshgrid(np.arange(h - 1), np.arange(w - 1), indexing="ij")
    # point ids of the four cell edges
    edge_id = [
        rr * (w - 1) + cc,  # top: horizontal edge (r, c)
        n_h + rr * w + cc + 1,  # right: vertical edge (r, c+1)
        (rr + 1) * (w - 1) + cc,  # bottom: horizontal edge (r+1, c)
        n_h + rr * w + cc,  # left: vertical edge (r, c)
    ]
    starts, ends = [], []
    for e in range(4):
        ent = entering[e]
        # partner: the next leaving edge clockwise after e
        partner = np.full(ent.shape, -1, dtype=np.int64)
        for step in (3, 2, 1):  # later assignments win: nearest clockwise wins
            cand = (e + step) % 4
            partner = np.where(ent & leaving[cand], cand, partner)
        sel = ent & (partner >= 0)
        if not np.any(sel):
            continue
        ids_end = np.choose(partner[sel], [edge_id[q][sel] for q in range(4)])
        starts.append(edge_id[e][sel])
        ends.append(ids_end)
    if not starts:
        return []
    start = np.concatenate(starts)
    end = np.concatenate(ends)

    # positions of the crossing points (linear interpolation along the grid edge)
    n_ids = n_h + (h - 1) * w
    pos = np.zeros((n_ids, 2))
    hr, hc = np.meshgrid(np.arange(h), np.arange(w - 1), indexing="ij")
    v0, v1 = pad[:, :-1], pad[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(v1 != v0, (level - v0) / (v1 - v0), 0.5)
    pos[:n_h, 0] = hr.reshape(-1)
    pos[:n_h, 1] = (hc + np.clip(t, 0.0, 1.0)).reshape(-1)
    vr, vc = np.meshgrid(np.arange(h - 1), np.arange(w), indexing="ij")
    u0, u1 = pad[:-1, :], pad[1:, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(u1 != u0, (level - u0) / (u1 - u0), 0.5)
    pos[n_h:, 0] = (vr + np.clip(t, 0.0, 1.0)).reshape(-1)
    pos[n_h:, 1] = vc.reshape(-1)

    succ = np.full(n_ids, -1, dtype=np.int64)
    succ[start] = end
    visited = np.zeros(n_ids, dtype=bool)
    polygons: list[NDArray[np.float64]] = []
    for s in start.tolist():
        if visited[s]:
            continue
        loop = []
        cur = s
        while not visited[cur]:
            visited[cur] = True
            loop.append(cur)
            cur = int(succ[cur])
            if cur < 0:  # cannot happen on a padded image; be safe
                break
        if len(loop) >= 3:
            pts = pos[np.asarray(loop)] - 1.0  # undo the padding
            polygons.append(_drop_collinear(pts))
    return polygons


def _drop_collinear(pts: NDArray[np.float64], tol: float = 1e-9) -> NDArray[np.float64]:
    prev = np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0)
    d1 = pts - prev
    d2 = nxt - pts
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    keep = np.abs(cross) > tol
    out = pts[keep]
    return out if len(out) >= 3 else pts


def polygon_area(poly: NDArray[np.float64]) -> float:
    """Signed area of a closed 2D polygon (shoelace)."""
    p = np.asarray(poly, dtype=float)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def self_intersects(poly: NDArray[np.float64], max_points: int = 4000) -> bool:
    """True when two non-adjacent edges of the closed 2D polygon properly cross.

    Vectorised O(N^2) test (chunked); polygons with more than ``max_points``
    vertices are not checked (False).  Touching at a shared vertex or collinear
    overlaps are not counted.
    """
    p = np.asarray(poly, dtype=float).reshape(-1, 2)
    n = len(p)
    if n < 4 or n > max_points:
        return False
    a = p
    b = np.roll(p, -1, axis=0)

    def orient(
        p0: NDArray[np.float64], p1: NDArray[np.float64], q: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return (p1[..., 0] - p0[..., 0]) * (q[..., 1] - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (
            q[..., 0] - p0[..., 0]
        )

    idx = np.arange(n)
    chunk = max(1, 2_000_000 // n)
    for s in range(0, n, chunk):
        i = idx[s : s + chunk, None]
        j = idx[None, :]
        a1, b1 = a[i[:, 0]][:, None, :], b[i[:, 0]][:, None, :]
        a2, b2 = a[None, :, :], b[None, :, :]
        d1 = orient(a1, b1, a2)
        d2 = orient(a1, b1, b2)
        d3 = orient(a2, b2, a1)
        d4 = orient(a2, b2, b1)
        proper = (d1 * d2 < 0) & (d3 * d4 < 0)
        adjacent = (np.abs(i - j) <= 1) | (np.abs(i - j) == n - 1)
        if np.any(proper & ~adjacent & (j > i)):
            return True
    return False


def plane_of(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], float, float]:
    """Unit normal, offset (normal . point) and max out-of-plane distance of 3D points.

    Least-squares plane (SVD), so self-intersecting polygons (zero signed area)
    get a normal too; collinear or coincident points give an infinite deviation.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    centred = p - p.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if len(s) < 2 or s[1] <= 1e-9 * max(float(s[0]), 1e-12) or s[0] < 1e-12:
        return np.zeros(3), 0.0, float("inf")
    n = vt[-1] if len(s) == 3 else np.cross(vt[0], vt[1])
    n = n / np.linalg.norm(n)
    d = p @ n
    centre = float(d.mean())
    return n, centre, float(np.max(np.abs(d - centre)))
