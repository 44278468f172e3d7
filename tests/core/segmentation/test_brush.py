"""The 3D brush against a brute-force ball on anisotropic and oblique grids."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import Geometry
from dosimetry_core.segmentation.brush import paint_sphere


def _brute(g: Geometry, centre: np.ndarray, r: float) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in g.shape_zyx], indexing="ij"), -1)
    pts = g.index_to_world(idx.astype(float))
    return np.sum((pts - centre) ** 2, axis=-1) <= r**2


@pytest.mark.parametrize(
    "direction",
    [
        ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        ((0.0, 1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
        (
            (np.cos(0.3), -np.sin(0.3), 0.0),
            (np.sin(0.3), np.cos(0.3), 0.0),
            (0.0, 0.0, 1.0),
        ),
    ],
)
def test_ball_equals_brute_force(direction):
    g = Geometry((14, 20, 24), (1.5, 2.0, 3.5), (-10.0, 5.0, 30.0), direction)
    centre = g.index_to_world(np.array([6.3, 9.7, 12.2]))
    m = paint_sphere(np.zeros(g.shape_zyx, bool), g, centre, 7.5)
    assert m.sum() > 10 and np.array_equal(m, _brute(g, centre, 7.5))
    erased = paint_sphere(np.ones(g.shape_zyx, bool), g, centre, 7.5, erase=True)
    assert np.array_equal(erased, ~_brute(g, centre, 7.5))


def test_ball_at_the_edge_and_outside():
    g = Geometry((5, 5, 5), (2.0, 2.0, 2.0))
    corner = g.index_to_world(np.zeros(3))
    m = paint_sphere(np.zeros(g.shape_zyx, bool), g, corner, 3.0)
    assert np.array_equal(m, _brute(g, corner, 3.0))
    far = paint_sphere(np.zeros(g.shape_zyx, bool), g, corner - 100.0, 3.0)
    assert not far.any()
    with pytest.raises(InvalidInputError):
        paint_sphere(m, g, corner, 0.0)
