"""Isolines of a 2D slice by marching squares, vectorised with NumPy (no Qt).

The viewer draws isodose lines per displayed slice, so scrolling costs one pass
over a 2D array per level.  Each grid cell (four neighbouring pixel centres)
whose corners straddle the level contributes one segment (two for a saddle),
with end points linearly interpolated along the cell edges (Lorensen & Cline,
"Marching cubes", SIGGRAPH 1987, reduced to two dimensions).  Saddle cells are
resolved by the mean of the four corners.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["isoline_segments"]


def _cross(a: NDArray[np.float64], b: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """Fraction along the edge a -> b where the level is crossed (a != b guaranteed)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (level - a) / (b - a)
    return np.clip(np.nan_to_num(t, nan=0.5), 0.0, 1.0)


def isoline_segments(image: NDArray[np.floating], level: float) -> NDArray[np.float64]:
    """Segments of the ``level`` isoline of ``image`` in pixel-centre coordinates.

    Parameters
    ----------
    image
        2D array ``[row, col]``; NaN and infinities count as below every level.
    level
        The isoline value (same unit as the image, e.g. Gy).

    Returns
    -------
    ndarray, shape (n, 2, 2)
        ``segments[s] = [[col0, row0], [col1, row1]]``: pixel (r, c) has its
        centre at ``(c, r)``.  Empty (0, 2, 2) when the level is not crossed.
    """
    v = np.asarray(image, dtype=np.float64)
    if v.ndim == 2 and not np.all(np.isfinite(v)):
        finite_v = v[np.isfinite(v)]
        low = (float(finite_v.min()) if finite_v.size else float(level)) - abs(float(level)) - 1.0
        v = np.where(np.isfinite(v), v, low)
    if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 2:
        return np.zeros((0, 2, 2))
    # only cells near pixels at or above the level can be crossed: work in their bounding box
    high = v >= level
    rows_hi = np.flatnonzero(high.any(axis=1))
    if rows_hi.size == 0 or high.all():
        return np.zeros((0, 2, 2))
    cols_hi = np.flatnonzero(high.any(axis=0))
    r0, r1 = max(int(rows_hi[0]) - 1, 0), min(int(rows_hi[-1]) + 2, v.shape[0])
    c0, c1 = max(int(cols_hi[0]) - 1, 0), min(int(cols_hi[-1]) + 2, v.shape[1])
    if (r0, r1, c0, c1) != (0, v.shape[0], 0, v.shape[1]):
        return isoline_segments(v[r0:r1, c0:c1], level) + np.array([c0, r0], dtype=float)
    a = v[:-1, :-1]  # top-left     (r,   c)
    b = v[:-1, 1:]  # top-right     (r,   c+1)
    c = v[1:, 1:]  # bottom-right   (r+1, c+1)
    d = v[1:, :-1]  # bottom-left   (r+1, c)
    ia, ib, ic, id_ = a >= level, b >= level, c >= level, d >= level
    code = ia.astype(np.uint8) | (ib << 1) | (ic << 2) | (id_ << 3)
    rows, cols = np.nonzero((code != 0) & (code != 15))
    if rows.size == 0:
        return np.zeros((0, 2, 2))
    code = code[rows, cols]
    av, bv, cv, dv = a[rows, cols], b[rows, cols], c[rows, cols], d[rows, cols]
    r, cc = rows.astype(float), cols.astype(float)
    # crossing points on the four edges (x = column, y = row)
    top = np.stack([cc + _cross(av, bv, level), r], axis=-1)
    right = np.stack([cc + 1.0, r + _cross(bv, cv, level)], axis=-1)
    bottom = np.stack([cc + _cross(dv, cv, level), r + 1.0], axis=-1)
    left = np.stack([cc, r + _cross(av, dv, level)], axis=-1)
    edges = {"t": top, "r": right, "b": bottom, "l": left}
    # edge pairs per case (cases 5 and 10 are saddles, handled below)
    table: dict[int, tuple[str, str]] = {
        1: ("l", "t"),
        2: ("t", "r"),
        3: ("l", "r"),
        4: ("r", "b"),
        6: ("t", "b"),
        7: ("l", "b"),
        8: ("b", "l"),
        9: ("t", "b"),
        11: ("r", "b"),
        12: ("r", "l"),
        13: ("t", "r"),
        14: ("l", "t"),
    }
    out: list[NDArray[np.float64]] = []
    for case, (e0, e1) in table.items():
        sel = code == case
        if sel.any():
            out.append(np.stack([edges[e0][sel], edges[e1][sel]], axis=1))
    saddle = (code == 5) | (code == 10)
    if saddle.any():
        centre_high = (av + bv + cv + dv)[saddle] / 4.0 >= level
        s_code = code[saddle]
        # 5: a and c high; 10: b and d high.  Joined centre: the high corners connect.
        joined = (s_code == 5) == centre_high
        t, rr, bb, ll = (edges[k][saddle] for k in ("t", "r", "b", "l"))
        j = joined[:, None]

        def seg(p: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.stack([p, q], 1).reshape(-1, 4)

        pair1 = np.where(j, seg(t, rr), seg(ll, t))
        pair2 = np.where(j, seg(bb, ll), seg(rr, bb))
        out.append(pair1.reshape(-1, 2, 2))
        out.append(pair2.reshape(-1, 2, 2))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 2, 2))
