"""Fixtures of the viewer tests: a real store with the synthetic case plus TIA and dose maps.

The dose map is analytic, ``D(r) = 20 Gy * exp(-r / 30 mm)`` about
:data:`DOSE_CENTRE` (a CT voxel centre), so the 5 Gy isodose lies at
``r = 30 mm * ln 4``; the TIA map is uniform (0.84 MBq·h/mL); the VOI is a
40 mm sphere about the same centre, drawn on TP1.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from dosimetry_core.model import VOI, DerivedKind, DerivedMap, ImageUnits, VoiKind, Volume
from dosimetry_core.store import CaseStore
from tests.app.conftest import CT_GEOMETRY, populate

# CT voxel (k, j, i) = (20, 28, 38): x = -189 + 6*38, y = -189 + 6*28, z = -156 + 8*20
# (not half-way between SPECT voxel centres, so the nearest SPECT voxel is unambiguous)
DOSE_CENTRE = np.array([39.0, -21.0, 4.0])
DOSE_PEAK_GY = 20.0
DOSE_LENGTH_MM = 30.0
TIA_MBQH_PER_ML = 0.84
SPHERE_RADIUS_MM = 40.0


def world_of_grid(geom=CT_GEOMETRY) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in geom.shape_zyx), indexing="ij")
    return geom.index_to_world(np.stack([k, j, i], axis=-1))


def radial_dose(geom=CT_GEOMETRY) -> Volume:
    r = np.linalg.norm(world_of_grid(geom) - DOSE_CENTRE, axis=-1)
    dose = DOSE_PEAK_GY * np.exp(-r / DOSE_LENGTH_MM)
    return Volume(dose.astype(np.float32), geom, ImageUnits.GY, "analytic dose")


def uniform_tia(geom=CT_GEOMETRY) -> Volume:
    arr = np.full(geom.shape_zyx, TIA_MBQH_PER_ML, np.float32)
    return Volume(arr, geom, ImageUnits.MBQH_PER_ML, "uniform TIA")


def sphere_mask(geom=CT_GEOMETRY, radius_mm: float = SPHERE_RADIUS_MM) -> Volume:
    r = np.linalg.norm(world_of_grid(geom) - DOSE_CENTRE, axis=-1)
    return Volume((r <= radius_mm).astype(np.uint8), geom, ImageUnits.MASK, "sphere")


def add_maps(store, case):
    """The case with the analytic dose, the uniform TIA and the sphere VOI, saved."""
    tp1 = case.sorted_time_points()[0]
    when = datetime(2024, 6, 1, 12, 0)
    case.derived.append(
        DerivedMap(DerivedKind.DOSE, store.put_volume(radial_dose()), "dose", created_at=when)
    )
    case.derived.append(
        DerivedMap(DerivedKind.TIA_MAP, store.put_volume(uniform_tia()), "tia", created_at=when)
    )
    case.vois.append(
        VOI(
            "Lesion",
            VoiKind.LESION,
            store.put_volume(sphere_mask()),
            (0, 255, 0),
            tp1.time_point_id,
        )
    )
    return store.save_case(case)


@pytest.fixture()
def case_with_maps(tmp_path):
    store = CaseStore(tmp_path / "store")
    case = add_maps(store, populate(store))
    yield store, case
    store.close()
