"""Hybrid planar x SPECT scaling, by construction."""

from __future__ import annotations

import math

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.hybrid import hybrid_tac, planar_at

T = [4.0, 24.0, 96.0, 168.0]
LAM = math.log(2) / 50.0


def _true(t: float) -> float:
    return 80.0 * math.exp(-LAM * t)  # MBq


def test_spect_coincides_with_a_planar_time():
    k = 1234.5  # counts per MBq of the planar geometry (unknown to the method)
    counts = [k * _true(t) for t in T]
    h = hybrid_tac(T, counts, spect_time_h=24.2, spect_activity_mbq=_true(24.0))
    assert not h.interpolated
    assert h.planar_at_spect == pytest.approx(counts[1])
    assert h.scale_mbq_per_count == pytest.approx(1.0 / k)
    assert h.activity_mbq == pytest.approx([_true(t) for t in T], rel=1e-12)
    assert h.to_dict()["method"].startswith("hybrid")


def test_spect_between_planar_times_log_linear():
    k = 50.0
    counts = [k * _true(t) for t in T]
    # mono-exponential between points: log-linear interpolation is exact
    h = hybrid_tac(T, counts, spect_time_h=60.0, spect_activity_mbq=_true(60.0))
    assert h.interpolated
    assert h.planar_at_spect == pytest.approx(k * _true(60.0), rel=1e-12)
    assert h.activity_mbq == pytest.approx([_true(t) for t in T], rel=1e-12)


def test_unsorted_input_sorted():
    counts = [float(c) for c in (10, 40, 20, 30)]
    h = hybrid_tac([168.0, 4.0, 96.0, 24.0], counts, spect_time_h=4.0, spect_activity_mbq=8.0)
    assert h.time_h == T
    assert h.activity_mbq == pytest.approx([8.0, 6.0, 4.0, 2.0])


def test_planar_at_linear_when_zero():
    assert planar_at([0.0, 10.0], [0.0, 10.0], 5.0) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("times", "counts", "ts", "a", "match"),
    [
        ([4.0], [1.0], 4.0, 1.0, "at least 2"),
        ([4.0, 24.0], [1.0, -1.0], 4.0, 1.0, ">= 0"),
        ([4.0, 24.0], [1.0, 2.0], 200.0, 1.0, "no extrapolation"),
        ([4.0, 24.0], [1.0, 2.0], 4.0, 0.0, "positive"),
        ([4.0, 4.0], [1.0, 2.0], 4.0, 1.0, "same time"),
        ([-1.0, 4.0], [1.0, 2.0], 4.0, 1.0, "before the administration"),
        ([4.0, 24.0], [0.0, 2.0], 4.0, 1.0, "zero"),
    ],
)
def test_bad_input(times, counts, ts, a, match):
    with pytest.raises(InvalidInputError, match=match):
        hybrid_tac(times, counts, spect_time_h=ts, spect_activity_mbq=a)
