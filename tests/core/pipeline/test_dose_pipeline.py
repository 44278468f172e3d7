"""compute_dose on the small demo: four methods, stored maps, statistics, refusals, CLI.

Measured at the time of writing (small demo, noise-free, Lu-177, mean dose in Gy):

=========  =====  =====  ===========  =====
VOI        led    vsv    vsv-density  mc
=========  =====  =====  ===========  =====
Kidney_L   3.767  3.830  3.907        3.912
Liver      2.564  2.705  2.733        2.726
Lung_L     0.517  0.187  0.692        0.563
=========  =====  =====  ===========  =====

``led`` keeps only the non-penetrating energy (no photons); ``vsv`` uses the
soft-tissue kernel everywhere (lung far too low); ``vsv-density`` and ``mc``
follow the CT densities.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.dose.units import BQ_S_PER_MBQ_H, J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import DerivedKind, ImageUnits
from dosimetry_core.physics.nuclides import chain_energy_per_decay
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.dose import compute_dose, voi_masks_on_grid
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.tia_map import compute_tia_map
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store

VOIS = ["Kidney_L", "Liver", "Lung_L", "Tumour_2"]


@pytest.fixture(scope="module")
def prepared(small_demo_dirs, shared_kernel_cache, small_demo_registered_store, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    root = small_demo_dirs["siemens-bqml"]
    template, case_id = small_demo_registered_store
    store_dir = copy_store(template, tmp_path_factory.mktemp("dose-store") / "store")
    store = CaseStore(store_dir)
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    compute_tia_map(store, case_id)
    results = {
        m: compute_dose(store, case_id, method=m, vois=VOIS, thresholds_gy=[2.0], user="phys")
        for m in ("led", "vsv", "vsv-density")
    }
    yield store, store_dir, case_id, results
    mp.undo()


def _by_name(res):
    return {v.voi_name: v for v in res.vois}


def test_led_equals_n_e_over_m_computed_from_the_tia_map(prepared):
    """LED kidney mean = mean over kidney voxels of TIA * 3.6e9 * E_np / rho (independent)."""
    store, _, case_id, results = prepared
    res = results["led"]
    case = store.load_case(case_id)
    [tia_d] = case.derived_maps(DerivedKind.TIA_MAP)
    tia = store.load_volume(tia_d.volume)
    dose = store.load_volume(case.find_derived(res.dose_map.derived_id).volume)
    assert dose.units == ImageUnits.GY and dose.geometry.same_grid(tia.geometry)
    voi = next(v for v in case.vois if v.name == "Kidney_L")
    mask = voi_masks_on_grid(store, case, [voi], tia.geometry)[voi.voi_id]
    e_np = chain_energy_per_decay("Lu-177").non_penetrating_mev
    assert res.provenance["energy_deposited_mev"] == pytest.approx(e_np)
    from dosimetry_core.physics.density import HuDensityCalibration
    from dosimetry_core.pipeline.tia_map import ct_on_grid

    hu = ct_on_grid(store, case, tia.geometry).array
    density = np.asarray(HuDensityCalibration.load().density_g_cm3(hu), dtype=float)
    # per voxel: N = TIA[MBq h/mL] V 3.6e9, m = rho V  ->  D = TIA 3.6e9 E / rho  (rho in kg/mL)
    expected = (tia.array[mask].astype(float) * BQ_S_PER_MBQ_H * e_np * J_PER_MEV) / (
        density[mask] * 1e-3
    )
    stats = _by_name(res)["Kidney_L"].statistics
    assert stats.mean_gy == pytest.approx(float(expected.mean()), rel=1e-3)
    assert stats.volume_ml == pytest.approx(mask.sum() * tia.geometry.voxel_volume_ml)


def test_methods_agree_where_they_should(prepared):
    """Soft-tissue organs: all methods within 6 %; lung: density matters (vsv is low)."""
    store, _, case_id, results = prepared
    mc = compute_dose(
        store,
        case_id,
        method="mc",
        vois=VOIS,
        mc_target_uncertainty=0.02,
        mc_target_voi="Kidney_L",
        seed=3,
    )
    means = {m: {v.voi_name: v.statistics.mean_gy for v in r.vois} for m, r in results.items()}
    means["mc"] = {v.voi_name: v.statistics.mean_gy for v in mc.vois}
    for organ in ("Kidney_L", "Liver"):
        ref = means["mc"][organ]
        for m in ("led", "vsv", "vsv-density"):
            assert means[m][organ] == pytest.approx(ref, rel=0.06), (m, organ)
        # photons add dose: led (electrons only) is the lowest
        assert means["led"][organ] < means["vsv-density"][organ]
    assert means["vsv"]["Lung_L"] < 0.5 * means["vsv-density"]["Lung_L"]
    assert means["mc"]["Lung_L"] == pytest.approx(means["vsv-density"]["Lung_L"], rel=0.3)
    # MC stopped on the requested uncertainty in the kidney, and kept an uncertainty map
    assert mc.provenance["mc_stopped_because"] == "target uncertainty"
    assert mc.provenance["mc_target_uncertainty_reached"] <= 0.02
    assert mc.uncertainty_map is not None
    kid = _by_name(mc)["Kidney_L"]
    assert kid.mc_mean_voxel_uncertainty is not None and kid.mc_mean_voxel_uncertainty <= 0.02
    # the photon component is reported apart from the deterministic electron part, and the
    # stop was on it (the default target component)
    comp = mc.provenance["mc_voi_components"]["Kidney_L"]
    assert mc.provenance["mc_target_component"] == "photon"
    assert comp["photon_rel_uncertainty"] <= 0.02
    assert comp["photon_mean_gy"] + comp["electron_mean_gy"] == pytest.approx(
        comp["mean_gy"], rel=1e-5
    )
    assert comp["mean_gy"] == pytest.approx(kid.statistics.mean_gy, rel=1e-3)
    assert 0 < comp["photon_mean_gy"] < 0.2 * comp["mean_gy"]  # Lu-177: photons add a few %


def test_mrtdose_dose_mc_prints_the_photon_component(prepared, capsys, monkeypatch):
    from dosimetry_core.cli.main import main

    store, store_dir, case_id, _ = prepared
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    argv = ["--store", str(store_dir), "dose", case_id, "--method", "mc", "--voi", "Kidney_L"]
    argv += ["--target-uncertainty", "0.05", "--target-voi", "Kidney_L", "--seed", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("Kidney_L"))
    assert "MC photon" in line and "(VOI mean)" in line


def test_maps_are_stored_superseded_and_carry_review_flags(prepared):
    store, _, case_id, results = prepared
    case = store.load_case(case_id)
    current = case.derived_maps(DerivedKind.DOSE)
    methods = {d.provenance["method"] for d in current}
    assert {"led", "vsv", "vsv-density"} <= methods
    led_map = next(d for d in current if d.provenance["method"] == "led")
    assert led_map.created_by == "phys" and led_map.parent_id is not None
    again = compute_dose(store, case_id, method="led", vois=["Kidney_L"])
    case = store.load_case(case_id)
    assert case.find_derived(led_map.derived_id).superseded
    assert [
        d.derived_id for d in case.derived_maps(DerivedKind.DOSE) if d.provenance["method"] == "led"
    ] == [again.dose_map.derived_id]
    for v in results["vsv"].vois:
        assert v.review_flag  # every VOI number comes with its review state
    kid = _by_name(results["vsv"])["Kidney_L"].statistics
    assert kid.d98_gy <= kid.median_gy <= kid.d2_gy <= kid.max_gy
    assert 0.0 < kid.v_fraction["V2Gy"] <= 1.0
    assert kid.v_ml["V2Gy"] == pytest.approx(kid.v_fraction["V2Gy"] * kid.volume_ml)


def test_a_lesion_smaller_than_a_dose_voxel_gets_statistics_and_a_note(prepared):
    _, _, _, results = prepared
    row = _by_name(results["vsv"])["Tumour_2"]  # 2 mL sphere
    t2 = row.statistics
    assert row.error is None and t2 is not None
    assert "smaller than the dose grid resolution" in t2.note
    assert t2.mean_gy > 0


def test_refusals_leave_the_case_unchanged(prepared, small_demo_dirs, tmp_path):
    store, _, case_id, _ = prepared
    before = len(store.load_case(case_id).derived)
    with pytest.raises(InvalidInputError, match="unknown dose method"):
        compute_dose(store, case_id, method="pencil-beam")
    with pytest.raises(InvalidInputError, match="target VOI"):
        compute_dose(store, case_id, method="mc", mc_target_uncertainty=0.02)
    with pytest.raises(InvalidInputError, match="no VOI|unknown VOI|not found|No VOI"):
        compute_dose(store, case_id, method="led", vois=["Pancreas"])
    assert len(store.load_case(case_id).derived) == before
    other = CaseStore(tmp_path / "other")
    cid = import_directory(other, small_demo_dirs["siemens-bqml"]).cases[0].case_id
    with pytest.raises(InvalidInputError, match="no TIA map"):
        compute_dose(other, cid, method="led")


def test_dose_command_prints_voi_statistics(prepared, capsys):
    _, store_dir, case_id, _ = prepared
    code = main(
        [
            "dose", case_id, "--method", "vsv", "--voi", "Kidney_L", "--threshold-gy", "1",
            "--dvh-bins", "50", "--store", str(store_dir), "--json",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["method"] == "vsv" and d["unit"] == "Gy" and d["dose_map_id"].startswith("map-")
    [row] = d["vois"]
    assert row["voi_name"] == "Kidney_L" and row["review_flag"]
    assert row["mean_gy"] > 0 and row["volume_ml"] > 0
    dvh = row["dvh"]
    assert len(dvh["bin_edges_gy"]) == 51 and dvh["cumulative_fraction"][0] == pytest.approx(1.0)
    assert sum(dvh["differential_ml"]) == pytest.approx(row["volume_ml"])
    assert dvh["bin_edges_gy"][-1] >= row["max_gy"]
    code = main(
        ["dose", case_id, "--method", "vsv", "--voi", "Kidney_L", "--store", str(store_dir)]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "Kidney_L" in out and "MEAN Gy" in out
    code = main(
        [
            "dose",
            case_id,
            "--method",
            "mc",
            "--target-uncertainty",
            "0.02",
            "--store",
            str(store_dir),
        ]
    )
    assert code == 1 and "target VOI" in capsys.readouterr().err


def test_mc_with_electrons_by_kernel_agrees_with_local_electrons(prepared):
    """Lu-177 electrons (range < 2 mm) in ~5 mm voxels: kernel vs local within 3 % (kidney)."""
    store, _, case_id, results = prepared
    local = _by_name(results["vsv-density"])["Kidney_L"].statistics.mean_gy
    res = compute_dose(
        store,
        case_id,
        method="mc",
        vois=["Kidney_L"],
        mc_electrons="kernel",
        mc_histories=200_000,
        seed=1,
    )
    assert res.provenance["mc_electrons"] == "kernel"
    assert res.provenance["kernel"]["emitted_mev"].keys() == {"electron"}
    assert _by_name(res)["Kidney_L"].statistics.mean_gy == pytest.approx(local, rel=0.03)


def test_voi_fractions_on_the_demo_are_those_of_the_old_dense_resample(prepared, monkeypatch):
    """Every VOI of the demo: the same fractions (bit for bit) as the dense 3x-oversampled
    affine resample the dose step used before (kept as the oracle in tests/core/dose),
    so the VOI masks and statistics are unchanged; a second call reuses the cached arrays."""
    from dosimetry_core.kinetics.tac import mask_on_reference, tac_reference_time_point
    from dosimetry_core.pipeline.dose import voi_fractions_on_grid
    from tests.core.dose.test_fractions import reference_fraction

    store, _, case_id, _ = prepared
    case = store.load_case(case_id)
    [tia_d] = case.derived_maps(DerivedKind.TIA_MAP)
    grid = tia_d.volume.geometry
    ref = tac_reference_time_point(case)
    fractions = voi_fractions_on_grid(store, case, case.vois, grid)
    assert set(fractions) == {v.voi_id for v in case.vois}
    for voi in case.vois:
        mask, geom = mask_on_reference(store, case, voi, ref)
        assert not geom.same_grid(grid)  # the demo's VOIs are on the CT, the dose on the SPECT
        assert np.array_equal(fractions[voi.voi_id], reference_fraction(mask, geom, grid)), voi.name
    import dosimetry_core.dose._fractions as fractions_module

    calls = []
    monkeypatch.setattr(fractions_module, "mask_fraction_on_grid", lambda *a: calls.append(a))
    again = voi_fractions_on_grid(store, case, case.vois, grid)
    assert calls == []  # all from the cache
    assert all(np.array_equal(again[k], fractions[k]) for k in fractions)


def test_compute_dose_reports_its_phase_times(prepared):
    store, _, case_id, _ = prepared
    timings: dict[str, float] = {}
    compute_dose(store, case_id, method="vsv", vois=["Kidney_L"], timings=timings)
    assert set(timings) == {
        "load", "nuclide_data", "kernel", "dose", "fractions", "statistics", "save"
    }  # fmt: skip
    assert all(t >= 0 for t in timings.values())


# ------------------------------------------------- the VOI fractions and CT kept with the case
def _cache_maps(case, kind):
    return [d for d in case.derived if d.kind == kind]


def _copy_of(prepared, tmp_path):
    import shutil

    _, store_dir, case_id, _ = prepared
    shutil.copytree(store_dir, tmp_path / "store")
    return CaseStore(tmp_path / "store"), case_id


def test_the_dose_step_keeps_the_voi_fractions_and_the_ct_on_its_grid(prepared):
    """One fraction map per VOI dosed and one CT map, each equal bit for bit to what it caches."""
    from dosimetry_core.dose._fractions import mask_fraction_on_grid
    from dosimetry_core.imaging.resample import resample
    from dosimetry_core.kinetics.tac import mask_on_reference, tac_reference_time_point
    from dosimetry_core.pipeline.grid_cache import GridCache, clear_in_process_cache

    store, _, case_id, _ = prepared
    case = store.load_case(case_id)
    [tia_d] = case.derived_maps(DerivedKind.TIA_MAP)
    grid = tia_d.volume.geometry
    fractions = _cache_maps(case, DerivedKind.VOI_FRACTION)
    dosed = [v for v in case.vois if v.name in VOIS]
    assert sorted(d.provenance["source_key"] for d in fractions) == sorted(
        v.mask.key for v in dosed
    )
    [ct_map] = _cache_maps(case, DerivedKind.CT_ON_GRID)  # kept by the TIA map, reused since
    ref = tac_reference_time_point(case)
    assert ct_map.provenance["source_key"] == ref.anatomical.volume.key
    assert ct_map.volume.geometry.same_grid(grid)
    ct = store.load_volume(ref.anatomical.volume)
    expected_ct = resample(ct, grid, order=1, fill_value=-1000.0, dtype=np.float32).array
    assert np.array_equal(store.load_volume(ct_map.volume).array, expected_ct)
    clear_in_process_cache()
    kept = GridCache(store, case).fractions(dosed, grid)
    for voi in dosed:
        mask, geom = mask_on_reference(store, case, voi, ref)
        exact = mask_fraction_on_grid(mask, geom, grid)
        assert np.array_equal(kept[voi.voi_id], exact), voi.name
        [d] = [d for d in fractions if d.provenance["source_key"] == voi.mask.key]
        box = store.load_volume(d.volume).array
        assert box.size < exact.size and np.isclose(box.sum(), exact.sum(), rtol=1e-6)


def test_a_second_dose_reads_the_kept_maps_and_gives_the_same_numbers(prepared, monkeypatch):
    """In a new process (empty in-process cache) no fraction or CT resample is computed."""
    import dosimetry_core.dose._fractions as fractions_module
    import dosimetry_core.imaging.resample as resample_module
    from dosimetry_core.pipeline.grid_cache import clear_in_process_cache

    store, _, case_id, results = prepared
    before = store.load_case(case_id)
    n_cache = len(_cache_maps(before, DerivedKind.VOI_FRACTION))

    def forbidden(*a, **k):
        raise AssertionError("computed again instead of read from the case")

    clear_in_process_cache()
    monkeypatch.setattr(fractions_module, "mask_fraction_on_grid", forbidden)
    monkeypatch.setattr(resample_module, "resample", forbidden)
    again = compute_dose(store, case_id, method="vsv", vois=VOIS, thresholds_gy=[2.0], user="phys")
    assert [v.to_dict() for v in again.vois] == [v.to_dict() for v in results["vsv"].vois]
    after = store.load_case(case_id)
    assert len(_cache_maps(after, DerivedKind.VOI_FRACTION)) == n_cache  # no duplicates
    assert len(_cache_maps(after, DerivedKind.CT_ON_GRID)) == 1


def test_an_edited_voi_gets_new_fractions_and_its_old_map_is_dropped(prepared, tmp_path):
    from dosimetry_core.model import Volume
    from dosimetry_core.pipeline.grid_cache import clear_in_process_cache

    store, case_id = _copy_of(prepared, tmp_path)
    case = store.load_case(case_id)
    kidney = next(v for v in case.vois if v.name == "Kidney_L")
    old_key = kidney.mask.key
    others = {
        d.derived_id
        for d in _cache_maps(case, DerivedKind.VOI_FRACTION)
        if d.provenance["source_key"] != old_key
    }
    mask = store.load_volume(kidney.mask)
    arr = np.asarray(mask.array).copy()
    zs = np.flatnonzero(arr.any(axis=(1, 2)))
    arr[zs[: len(zs) // 2]] = False  # the upper half of the kidney removed
    kidney.mask = store.put_volume(Volume(arr, mask.geometry, mask.units, "kidney, edited"))
    store.save_case(case)
    clear_in_process_cache()
    first = _by_name(prepared[3]["vsv"])["Kidney_L"].statistics.volume_ml
    res = compute_dose(store, case_id, method="vsv", vois=VOIS)
    assert _by_name(res)["Kidney_L"].statistics.volume_ml < 0.7 * first
    saved = store.load_case(case_id)
    maps = _cache_maps(saved, DerivedKind.VOI_FRACTION)
    keys = [d.provenance["source_key"] for d in maps]
    assert old_key not in keys and kidney.mask.key in keys and len(keys) == len(VOIS)
    assert others <= {d.derived_id for d in maps}  # the other VOIs' maps were kept as they were
    assert store.collect_garbage(older_than_s=0) >= 1  # the old kidney fractions are gone
    assert store.check_integrity() == []
    clear_in_process_cache()
    again = compute_dose(store, case_id, method="vsv", vois=VOIS)
    assert [v.to_dict() for v in again.vois] == [v.to_dict() for v in res.vois]


def test_a_kept_map_that_does_not_fit_its_grid_is_not_used(prepared, tmp_path):
    """A fraction map whose corner was changed in the case document is recomputed and replaced."""
    from dosimetry_core.pipeline.grid_cache import clear_in_process_cache

    store, case_id = _copy_of(prepared, tmp_path)
    case = store.load_case(case_id)
    bad = _cache_maps(case, DerivedKind.VOI_FRACTION)[0]
    bad.provenance["corner_zyx"] = [c + 1 for c in bad.provenance["corner_zyx"]]
    store.save_case(case)
    clear_in_process_cache()
    res = compute_dose(store, case_id, method="vsv", vois=VOIS, thresholds_gy=[2.0], user="phys")
    assert [v.to_dict() for v in res.vois] == [v.to_dict() for v in prepared[3]["vsv"].vois]
    maps = _cache_maps(store.load_case(case_id), DerivedKind.VOI_FRACTION)
    assert bad.derived_id not in {d.derived_id for d in maps}
    assert bad.provenance["source_key"] in {d.provenance["source_key"] for d in maps}
    assert len(maps) == len(VOIS)


def test_fractions_known_in_the_process_are_kept_with_a_case_that_lacks_them(prepared, tmp_path):
    """A case without kept fraction maps, whose masks this process already knows (another
    case with the same masks, a refused save): the dose step keeps the maps with the case."""
    from dosimetry_core.pipeline.grid_cache import GridCache

    store, case_id = _copy_of(prepared, tmp_path)
    case = store.load_case(case_id)
    [tia_d] = case.derived_maps(DerivedKind.TIA_MAP)
    dosed = [v for v in case.vois if v.name in VOIS]
    GridCache(store, case).fractions(dosed, tia_d.volume.geometry)  # now known in this process
    case.derived = [d for d in case.derived if d.kind != DerivedKind.VOI_FRACTION]
    store.save_case(case)
    compute_dose(store, case_id, method="vsv", vois=VOIS)
    maps = _cache_maps(store.load_case(case_id), DerivedKind.VOI_FRACTION)
    assert sorted(d.provenance["source_key"] for d in maps) == sorted(v.mask.key for v in dosed)
    assert store.check_integrity() == []
