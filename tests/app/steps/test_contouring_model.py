"""Contouring view-model without Qt: the same masks as the core and the CLI, exact undo."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.steps.contouring.model import (
    PackedMask,
    Stroke,
    ThresholdPreview,
    UndoStack,
    load_rows,
    run_operation,
    standard_names,
    stroke_edit,
)
from dosimetry_core.imaging.case_volumes import load_mask
from dosimetry_core.model import Geometry, ImageUnits, Volume
from dosimetry_core.pipeline import voi_edit
from dosimetry_core.pipeline.contouring import ct_of, spect_on_grid, voi_table
from dosimetry_core.segmentation import operations as ops


def _voi(case, name, tp_id=None):
    return next(
        v for v in case.vois if v.name == name and (tp_id is None or v.time_point_id == tp_id)
    )


def test_gui_threshold_saves_the_mask_of_mrtdose_contour_threshold(
    analysis_store, analysis_store_dir, tmp_path, monkeypatch
):
    from dosimetry_core.cli.main import main
    from dosimetry_core.store import CaseStore

    store, case_id = analysis_store, analysis_store.case_id
    tp1 = store.load_case(case_id).sorted_time_points()[0]
    edits = run_operation(
        store,
        case_id,
        voi_edit.contour_and_save,
        "threshold",
        "Tour_threshold",
        time_point=tp1.time_point_id,
        image="spect",
        percent_of_max=40.0,
        within="Kidney_L",
        largest_component=False,
        description="threshold 40 %",
    )
    assert len(edits) == 1 and edits[0].before is None and edits[0].name == "Tour_threshold"
    gui_mask, _ = load_mask(store, _voi(store.load_case(case_id), "Tour_threshold"))

    cli_dir = tmp_path / "cli-store"
    shutil.copytree(analysis_store_dir, cli_dir)
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    argv = ["contour", case_id, "threshold", "--name", "Tour_threshold", "--percent", "40"]
    argv += ["--within", "Kidney_L", "--image", "spect", "--store", str(cli_dir)]
    assert main(argv) == 0
    with CaseStore(cli_dir) as cli_store:
        cli_mask, _ = load_mask(cli_store, _voi(cli_store.load_case(case_id), "Tour_threshold"))
    assert gui_mask.any() and np.array_equal(gui_mask, cli_mask)
    assert PackedMask.unpack(edits[0].after).sum() == gui_mask.sum()

    rows = {r.name: r for r in load_rows(store, store.load_case(case_id))}
    table = {r["name"]: r for r in voi_table(store, store.load_case(case_id))}
    assert rows["Tour_threshold"].volume_ml == table["Tour_threshold"]["volume_ml"] > 0
    assert rows["Kidney_L"].mass_g == table["Kidney_L"]["mass_g"]
    assert rows["Kidney_L"].cells()[4] == f"{table['Kidney_L']['volume_ml']:,.2f}"


def test_preview_of_visible_slices_equals_the_core_threshold_there(analysis_store):
    store = analysis_store
    case = store.load_case(store.case_id)
    tp = case.sorted_time_points()[0]
    ct = ct_of(store, tp)
    spect = spect_on_grid(store, tp, ct.geometry)
    region, _ = load_mask(store, _voi(case, "Kidney_L", tp.time_point_id))
    preview = ThresholdPreview(spect, region)
    full = ops.threshold_relative(spect, 40.0, within=region)
    k, j, i = (int(v) for v in np.argwhere(full)[0])
    mask = preview.preview(40.0, True, {0: k, 1: j, 2: i})
    assert np.array_equal(mask[k], full[k]) and np.array_equal(mask[:, j], full[:, j])
    assert np.array_equal(mask[:, :, i], full[:, :, i])
    # a second move clears the slices previewed before
    mask = preview.preview(40.0, True, {0: 0})
    assert not mask[k].any() or k == 0
    assert np.array_equal(preview.full(40.0, True), full)
    assert preview.level(50.0, True) == pytest.approx(preview.maximum() / 2)


def test_brush_dab_equals_paint_disc_and_outline_equals_fill_polygon():
    g = Geometry((5, 40, 30), (1.5, 2.0, 3.0), origin_mm=(-20.0, 10.0, 5.0))
    mask = np.zeros(g.shape_zyx, dtype=bool)
    centre = g.index_to_world(np.array([2.0, 20.0, 15.0]))
    stroke = Stroke(mask, g, "brush", "axial", 2, radius_mm=7.0)
    assert stroke.add(centre)
    expected = ops.paint_disc(np.zeros(g.shape_zyx, bool), g, "axial", 2, centre, 7.0)
    assert np.array_equal(mask, expected)
    eraser = Stroke(mask, g, "eraser", "coronal", 20, radius_mm=4.0)
    eraser.add(centre)
    expected = ops.paint_disc(expected, g, "coronal", 20, centre, 4.0, erase=True)
    assert np.array_equal(mask, expected)

    square = [
        g.index_to_world(np.array([3.0, a, b])) for a, b in ((5, 5), (5, 12), (12, 12), (12, 5))
    ]
    outline = Stroke(mask, g, "outline", "axial", 3)
    for p in square:
        assert not outline.add(p)
    outline.finish()
    expected = ops.fill_polygon(expected, g, "axial", 3, np.array(square))
    assert np.array_equal(mask, expected)
    assert outline.description() == "freehand outline on axial slice 4"


def test_undo_restores_the_exact_previous_mask_and_redo_the_edit(analysis_store):
    store, case_id = analysis_store, analysis_store.case_id
    case = store.load_case(case_id)
    voi = _voi(case, "Liver")
    before, g = load_mask(store, voi)
    after = before.copy()
    k = int(np.argwhere(before)[0][0])
    after[k] = False  # erase one slice
    stack = UndoStack()
    voi_edit.restore_voi_mask(store, case, "Liver", after, g, voi.time_point_id, "eraser")
    stack.push(stroke_edit("Liver", voi.time_point_id, g, before, after, "eraser"))
    # a new VOI drawn by a stroke, then undone: it is deleted
    new = np.zeros(g.shape_zyx, dtype=bool)
    new[k, 10:20, 10:20] = True
    case = store.load_case(case_id)
    voi_edit.restore_voi_mask(store, case, "Spot", new, g, voi.time_point_id, "brush")
    stack.push(stroke_edit("Spot", voi.time_point_id, g, None, new, "brush"))
    assert stack.undo_text() == "Undo brush"

    stack.undo(store, store.load_case(case_id))
    assert "Spot" not in {v.name for v in store.load_case(case_id).vois}
    stack.undo(store, store.load_case(case_id))
    stored, _ = load_mask(store, _voi(store.load_case(case_id), "Liver"))
    assert np.array_equal(stored, before)
    assert not stack.can_undo() and stack.redo_text() == "Redo eraser"
    stack.redo(store, store.load_case(case_id))
    stored, _ = load_mask(store, _voi(store.load_case(case_id), "Liver"))
    assert np.array_equal(stored, after)


def test_undo_memory_is_bounded_and_packing_is_exact():
    rng = np.random.default_rng(1)
    m = rng.random((20, 30, 40)) > 0.5  # incompressible: ~3 kB packed
    p = PackedMask.pack(m)
    assert np.array_equal(p.unpack(), m)
    g = Geometry(m.shape, (1.0, 1.0, 1.0))
    stack = UndoStack(cap_mb=0.02)  # ~20 kB
    for n in range(20):
        stack.push(stroke_edit("A", "tp", g, m, ~m, f"edit {n}"))
    assert stack.nbytes <= stack.cap_bytes
    assert stack.can_undo() and stack.undo_text() == "Undo edit 19"


def test_standard_names_offered():
    names = standard_names()
    assert "Kidney_L" in names and "Liver" in names


def test_threshold_preview_absolute_on_ct_units():
    g = Geometry((2, 3, 3), (1.0, 1.0, 1.0))
    a = np.arange(18, dtype=np.float32).reshape(g.shape_zyx)
    p = ThresholdPreview(Volume(a, g, ImageUnits.HU))
    m = p.preview(10.0, False, {0: 1})
    assert np.array_equal(m[1], a[1] >= 10) and not m[0].any()
    assert p.units == "HU"


def test_sphere_brush_equals_paint_sphere_on_the_whole_volume():
    from dosimetry_core.segmentation.brush import paint_sphere

    g = Geometry((12, 30, 30), (1.5, 1.5, 2.5), origin_mm=(-20.0, 10.0, 5.0))
    mask = np.zeros(g.shape_zyx, dtype=bool)
    centre = g.index_to_world(np.array([5.0, 14.0, 16.0]))
    stroke = Stroke(mask, g, "brush", "axial", 5, radius_mm=6.0, sphere=True)
    assert stroke.add(centre) and stroke.changed
    expected = paint_sphere(np.zeros(g.shape_zyx, bool), g, centre, 6.0)
    assert np.array_equal(mask, expected) and mask[3].any() and mask[7].any()
    assert stroke.description() == "brush 12 mm sphere on axial slice 6"
