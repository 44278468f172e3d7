"""compute_kinetics on the demo patient: stored results, refusals, organ TIAs vs truth.

Done-means line of issue 4 ("organ TIAs for kidneys, liver and spleen within
5 % of the ground truth, using the true organ outlines"), full-size demo,
noise-free.  Without partial-volume correction the true outlines recover only
~80 % of the kidney and spleen TIA and ~94 % of the liver's (SPECT FWHM 11 mm
spills counts out of organs of ~145 mL).  With the shape-specific recovery
coefficient (:class:`~dosimetry_core.kinetics.tac.PsfRecovery`, FWHM = the
camera's 11 mm, RC = 0.81 for kidneys/spleen, 0.92 for the liver) measured at
the time of writing: Kidney_L 0.987, Kidney_R 0.991, Liver 1.018, Spleen 1.001
of the truth.  The Liver ROI includes tumours 1 and 2, so its truth is the sum
of the ``liver``, ``tumour_1`` and ``tumour_2`` compartments.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.kinetics.tac import PsfRecovery
from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom
from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.pipeline.kinetics import compute_kinetics
from dosimetry_core.pipeline.registration import register_case
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store

ORGANS = ("Kidney_L", "Kidney_R", "Liver", "Spleen")


def _prepare(store: CaseStore, root, *, register: bool = True) -> str:
    case_id = import_directory(store, root).cases[0].case_id
    if register:
        register_case(store, case_id)
    case = store.load_case(case_id)
    rt = next(root.glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    return case_id


def _truth_tia(truth, roi_name: str) -> float:
    roi = truth["rois"][roi_name]
    return sum(
        truth["compartments"][c]["tia_mbq_h"] for c in [roi["compartment"], *roi["includes"]]
    )


@pytest.fixture(scope="module")
def small_case(small_demo_dirs, small_demo_registered_store, tmp_path_factory):
    """``_prepare`` on the small demo, the import and registration copied from the session's."""
    template, case_id = small_demo_registered_store
    store = CaseStore(copy_store(template, tmp_path_factory.mktemp("kin-pipe") / "store"))
    case = store.load_case(case_id)
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    return store, case_id


def test_compute_kinetics_stores_results(small_case, small_demo_truth):
    store, case_id = small_case
    seen: list[float] = []
    res = compute_kinetics(
        store,
        case_id,
        vois=list(ORGANS),
        recovery=PsfRecovery(11.0),
        progress=lambda f, m: seen.append(f),
    )
    assert [r.voi_name for r in res] == list(ORGANS)
    assert seen[-1] == 1.0
    case = store.load_case(case_id)
    assert case.kinetics is not None and case.kinetics.created_at is not None
    stored = {k.voi_id: k.to_dict() for k in case.kinetics.vois}
    json.dumps(case.to_dict(), allow_nan=False)  # strictly JSON
    a_adm = small_demo_truth["injected_activity_mbq"]
    for r in res:
        d = stored[r.voi_id]
        assert d["voi_name"] == r.voi_name
        assert d["nuclide"] == "Lu-177"
        assert d["administered_activity_mbq"] == pytest.approx(a_adm)
        assert len(d["tac"]["activity_mbq"]) == 4
        assert d["tac"]["recovery_coefficient"] == pytest.approx(r.tac.recovery_coefficient)
        assert d["recovery"].startswith("shape-specific RC")
        assert d["error"] is None, d["error"]
        assert d["model"] == r.model and d["model"] in {
            "mono",
            "biexp-uptake",
            "biexp",
            "triexp",
            "trapezoid",
        }
        assert d["tiac_h"] == pytest.approx(d["tia_mbq_h"] / a_adm)
        assert d["tia_sd_mbq_h"] is not None and d["tia_sd_mbq_h"] >= 0
        assert d["fit"]["candidates"]
        assert d["review_flag"].startswith("contour not approved")
        assert r.tia_mbq_h is not None
        ratio = r.tia_mbq_h / _truth_tia(small_demo_truth, r.voi_name)
        print(r.voi_name, r.model, round(ratio, 3))
        # coarse grid (9.6 mm SPECT voxels): within 10 % after the RC correction
        assert abs(ratio - 1.0) < 0.10


def test_recompute_one_voi_keeps_others(small_case):
    store, case_id = small_case
    compute_kinetics(store, case_id, vois=list(ORGANS))
    first = store.load_case(case_id).kinetics
    assert first is not None
    before = {k.voi_id: k for k in first.vois}
    res = compute_kinetics(store, case_id, vois=["Spleen"], model="mono")
    case = store.load_case(case_id)
    assert case.kinetics is not None
    after = {k.voi_id: k for k in case.kinetics.vois}
    assert set(after) == set(before)
    assert after[res[0].voi_id].model == "mono"
    assert after[res[0].voi_id].model_requested == "mono"
    # the others are carried over unchanged; the older record is kept, superseded
    for vid, k in before.items():
        if vid != res[0].voi_id:
            assert after[vid] == k
    assert case.find_result(first.result_id).superseded
    assert [r.result_id for r in case.result_records("kinetics")] == [case.kinetics.result_id]


def test_cancel_saves_nothing(small_case):
    store, case_id = small_case
    version = store.load_case(case_id).version
    with pytest.raises(Cancelled):
        compute_kinetics(store, case_id, vois=["Liver"], cancel=lambda: True)
    assert store.load_case(case_id).version == version


def test_tiac_is_per_net_administered_activity(small_case):
    """Known answer: residual 300 MBq measured 2 h after the administration (Lu-177,
    T1/2 = 159.528 h, ICRP-107) -> A_net = A - 300 * 2^(2/159.528) = A - 302.618 MBq."""
    store, case_id = small_case
    case = store.load_case(case_id)
    adm = case.first_administration
    adm.residual_activity_mbq = 300.0
    adm.residual_time = adm.time + timedelta(hours=2)
    store.save_case(case)
    try:
        [r] = compute_kinetics(store, case_id, vois=["Liver"])
    finally:
        case = store.load_case(case_id)
        case.first_administration.residual_activity_mbq = 0.0
        case.first_administration.residual_time = None
        store.save_case(case)
    net = adm.activity_mbq - 300.0 * 2.0 ** (2.0 / 159.528)
    assert net == pytest.approx(adm.activity_mbq - 302.618, abs=1e-3)
    assert r.administered_activity_mbq == pytest.approx(net, rel=1e-6)
    assert r.tiac_h == pytest.approx(r.tia_mbq_h / net, rel=1e-12)
    assert r.tiac_sd_h == pytest.approx(r.tia_sd_mbq_h / net, rel=1e-12)
    assert "net" in r.administered_activity_definition


def test_unknown_voi_and_unregistered_refused(small_demo_dirs, small_demo_imported_store, tmp_path):
    # ``_prepare(..., register=False)``: the session's import copied, then the RTSTRUCT VOIs
    template, case_id = small_demo_imported_store
    store = CaseStore(copy_store(template, tmp_path / "s"))
    case = store.load_case(case_id)
    rt = next(small_demo_dirs["siemens-bqml"].glob("tp1*/RTSTRUCT/*.dcm"))
    import_rtstruct_into_case(store, case, rt, time_point=case.sorted_time_points()[0].label)
    store.save_case(case)
    with pytest.raises(InvalidInputError, match="register first"):
        compute_kinetics(store, case_id, vois=["Liver"])
    with pytest.raises(InvalidInputError, match="no VOI"):
        compute_kinetics(store, case_id, vois=["Pancreas"])


@pytest.mark.slow
def test_full_demo_organ_tias_within_5_percent(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-full")
    config = DemoConfig()
    config.noise = False
    write_demo_dicom(root, config)
    truth = json.loads((root / "ground_truth.json").read_text())
    store = CaseStore(tmp_path_factory.mktemp("store-full"))
    case_id = _prepare(store, root)
    fwhm = truth["spect"]["fwhm_mm"]
    plain = {r.voi_name: r for r in compute_kinetics(store, case_id, vois=list(ORGANS))}
    res = compute_kinetics(store, case_id, vois=list(ORGANS), recovery=PsfRecovery(fwhm))
    ratios = {}
    for r in res:
        t = _truth_tia(truth, r.voi_name)
        p_tia = plain[r.voi_name].tia_mbq_h
        assert p_tia is not None and r.tia_mbq_h is not None
        ratios[r.voi_name] = (p_tia / t, r.tia_mbq_h / t)
    print({k: tuple(np.round(v, 4)) for k, v in ratios.items()})
    for name, (uncorrected, corrected) in ratios.items():
        assert uncorrected < 0.97, name  # spill-out is real and visible without correction
        assert abs(corrected - 1.0) < 0.05, name
