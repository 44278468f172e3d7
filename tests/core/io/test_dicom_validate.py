"""Written files pass dciodvfy (dicom3tools) without errors (warnings allowed)."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry_core.io.dicom_write import (
    write_ct_series,
    write_nm_tomo,
    write_pet_series,
    write_rtstruct,
)
from dosimetry_core.io.types import RoiContours
from dosimetry_core.model import ImageUnits, Volume
from tests.core.io.conftest import (
    HAVE_DCIODVFY,
    SHAPE_ZYX,
    activity_array,
    dciodvfy_errors,
    make_ctx,
    make_geometry,
)

pytestmark = pytest.mark.skipif(not HAVE_DCIODVFY, reason="dciodvfy (dicom3tools) is not on PATH")

#: Styles that reproduce non-conformant vendor exports on purpose (no Slice Vector,
#: position only at top level, timing at top level) are not validated.
CONFORMANT_NM_STYLES = ["siemens-bqml", "ge-counts", "ge-bqml", "philips-counts"]


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("ct")
    vol = Volume(np.zeros(SHAPE_ZYX, np.int16), make_geometry("oblique30"), ImageUnits.HU)
    return write_ct_series(vol, out, make_ctx())


def test_ct(ct_files):
    assert dciodvfy_errors(ct_files[0]) == []


@pytest.mark.parametrize("style", CONFORMANT_NM_STYLES)
def test_nm(tmp_path, style):
    units = ImageUnits.BQML if style.endswith("bqml") else ImageUnits.COUNTS
    (path,) = write_nm_tomo(
        Volume(activity_array(), make_geometry(), units), tmp_path, make_ctx(), style=style
    )
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize("style", ["bqml", "suv", "enhanced"])
def test_pet(tmp_path, style):
    ctx = make_ctx(
        nuclide="F-18", radiopharmaceutical="Fluorodeoxyglucose", injected_activity_mbq=300.0
    )
    paths = write_pet_series(
        Volume(activity_array(), make_geometry(), ImageUnits.BQML), tmp_path, ctx, style=style
    )
    assert dciodvfy_errors(paths[0]) == []


def test_rtstruct(tmp_path, ct_files):
    poly = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 10.0, 0.0]])
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        make_ctx(),
        ct_files,
        [RoiContours("Liver", (0, 255, 0), "ORGAN", [poly])],
    )
    assert dciodvfy_errors(path) == []
