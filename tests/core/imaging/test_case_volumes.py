"""A case's stored volumes on the reference grid (imaging.case_volumes): known answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.imaging.case_volumes import (
    find_time_point,
    load_displacement,
    spect_on_reference,
    store_displacement,
)
from dosimetry_core.imaging.resample import rigid_transform
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.model.case import Case, Patient, Registration, SeriesInfo, TimePoint
from dosimetry_core.store import CaseStore

GRID = Geometry((8, 10, 12), (4.0, 4.0, 4.0), (-20.0, -18.0, -14.0))


def test_displacement_field_round_trip(tmp_path):
    store = CaseStore(tmp_path / "s")
    rng = np.random.default_rng(7)
    field = rng.normal(0.0, 3.0, (*GRID.shape_zyx, 3)).astype(np.float32)
    ref = store_displacement(store, field, GRID, "test field")
    back, grid = load_displacement(store, ref)
    assert grid.same_grid(GRID)
    np.testing.assert_array_equal(back, field)
    with pytest.raises(InvalidInputError, match="does not match"):
        store_displacement(store, field[:-1], GRID)
    plain = store.put_volume(Volume(np.zeros(GRID.shape_zyx, np.float32), GRID))
    with pytest.raises(DosimetryError, match="not a stored displacement field"):
        load_displacement(store, plain)


def _spot(shift_x_mm: float) -> np.ndarray:
    """A single bright voxel (10 Bq/mL) at voxel (z, y, x) = (4, 5, 6), moved by ``shift_x_mm``."""
    arr = np.zeros(GRID.shape_zyx, np.float32)
    arr[4, 5, 6 + int(round(shift_x_mm / GRID.spacing_mm[0]))] = 10.0
    return arr


def test_spect_on_reference_undoes_a_known_translation(tmp_path):
    """TP2 is the TP1 spot moved +8 mm in x and registered so: on the reference it is back."""
    store = CaseStore(tmp_path / "s")
    t0 = datetime(2026, 1, 1, 10, 0)
    ct = store.put_volume(Volume(np.zeros(GRID.shape_zyx, np.float32), GRID, ImageUnits.HU))
    tps = []
    for i, shift in enumerate((0.0, 8.0), start=1):
        spect = store.put_volume(Volume(_spot(shift), GRID, ImageUnits.BQML))
        tps.append(
            TimePoint(
                acquired_at=t0 + timedelta(hours=24 * i),
                modality="NM",
                functional=SeriesInfo(f"nm-{i}", modality="NM", volume=spect),
                anatomical=SeriesInfo(f"ct-{i}", modality="CT", volume=ct),
                label=f"TP{i}",
            )
        )
    matrix = rigid_transform(translation_mm=(8.0, 0.0, 0.0))
    tps[1].registration = Registration(
        reference_time_point_id=tps[0].time_point_id,
        matrix_ref_to_tp=matrix.tolist(),
        translation_mm=(8.0, 0.0, 0.0),
    )
    case = Case(patient=Patient(patient_id="P1"), time_points=tps)
    assert find_time_point(case, "TP2") is tps[1]
    ref = spect_on_reference(store, case, "TP1")
    moved = spect_on_reference(store, case, tps[1])
    assert ref.geometry.same_grid(GRID)
    assert np.unravel_index(np.argmax(ref.array), GRID.shape_zyx) == (4, 5, 6)
    assert np.unravel_index(np.argmax(moved.array), GRID.shape_zyx) == (4, 5, 6)
    assert float(moved.array.sum()) == pytest.approx(10.0, rel=1e-5)
    with pytest.raises(InvalidInputError, match="no time point 'TP9'"):
        spect_on_reference(store, case, "TP9")
