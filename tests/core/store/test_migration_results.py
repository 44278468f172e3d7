"""Migration 0003: a store written at revision 0002 with old-style results opens with typed ones.

The old document is written with the shapes the previous version produced
(``extra["kinetics"]``: one ``mrt-kinetics/1`` entry per VOI; ``extra["protocol_run"]``:
the ``mrt-protocol-run/1`` object), the store's schema revision is set back to
0002, and the store is opened again by the current program: the typed records must
hold the same numbers, ``extra`` no longer holds them, the case version is
unchanged, and the report builds from them without fitting anything.  Runs on
SQLite and, with ``MRTDOSE_TEST_PG_URL``, on PostgreSQL (see conftest).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from dosimetry_core.model.results import DoseSummary, KineticsRecord, ProtocolRun
from dosimetry_core.store import CaseStore
from dosimetry_core.store import schema as store_schema
from tests.core.store.conftest import make_case

OLD_KINETICS = {
    "format": "mrt-kinetics/1",
    "voi_id": "voi-k",
    "voi_name": "Kidney_L",
    "review_flag": "contour not approved (draft)",
    "computed_at": "2026-03-09T10:11:12",
    "nuclide": "Lu-177",
    "model_requested": "auto",
    "administered_activity_mbq": 7364.7,
    "recovery": "shape-specific RC, Gaussian PSF FWHM 11 mm",
    "tac": {
        "voi_id": "voi-k", "voi_name": "Kidney_L", "reference_time_point_id": "tp-1",
        "time_point_ids": ["tp-1", "tp-2", "tp-3"], "labels": ["TP1", "TP2", "TP3"],
        "time_h": [4.0, 24.0, 96.0], "activity_mbq": [120.5, 88.25, 31.0],
        "measured_activity_mbq": [100.0, 73.0, 25.6], "mean_bq_per_ml": [7.1e5, 5.2e5, 1.8e5],
        "volume_ml": 162.5, "recovery_coefficient": 0.83,
        "registration_status": ["reference", "accepted", "accepted"], "warnings": [],
    },
    "model": "mono",
    "parameters": {
        "A0": {"value": 130.25, "unit": "MBq", "sd": 4.5},
        "lambda": {"value": 0.0148, "unit": "1/h", "sd": 0.0007},
    },
    "tia_mbq_h": 8800.5, "tia_sd_mbq_h": 410.25, "tiac_h": 1.19496, "tiac_sd_h": 0.0557,
    "fit": {
        "model": "mono", "aicc": 12.5, "injection_time_h": 0.0,
        "half_lives_h": {"effective": {"value": 46.83, "unit": "h"}},
        "candidates": [
            {"model": "mono", "aicc": 12.5, "tia_mbq_h": 8800.5, "converged": True,
             "well_conditioned": True},
            {"model": "biexp-uptake", "aicc": 19.75, "tia_mbq_h": 9012.0, "converged": True,
             "well_conditioned": False},
        ],
    },
    "error": None,
    "warnings": ["weights: Poisson"],
}  # fmt: skip

OLD_RUN = {
    "format": "mrt-protocol-run/1", "case_id": "", "protocol": "lu177-dotatate",
    "method": "multi-point", "dose_method": "vsv-density", "nuclide": "Lu-177",
    "administered_activity_mbq": 7400.0, "dose_map_id": None,
    "organs": {"kidneys": {
        "label": "Kidneys", "vois": ["Kidney_L"], "review_flags": [""], "mass_g": 160.0,
        "dose_gy": 3.5, "dose_sd_gy": 0.35, "bed_gy": 3.9, "eqd2_gy": 3.2,
        "dose_per_activity_gy_per_gbq": 3.5 / 7.4}},
    "vois": [{
        "voi_id": "voi-k", "voi_name": "Kidney_L", "role": "oar", "organ_id": "kidneys",
        "review_flag": "", "mass_g": 160.0, "tia_mbq_h": 8800.5, "dose_gy": 3.5,
        "dose_sd_gy": 0.35, "bed_gy": 3.9, "eqd2_gy": 3.2, "tissue": "kidney", "model": "mono",
        "method": "voxel vsv-density", "sphere_model_dose_gy": None,
        "uncertainty_budget": [{"name": "calibration", "rel_sd": 0.05,
                                "variance_fraction": 0.25}],
        "notes": ["uncertainty inputs: protocol defaults"]}],
    "limit_checks": [{
        "organ_id": "kidneys", "quantity": "dose_gy", "scope": "cumulative", "limit": 23.0,
        "value": 3.5, "this_cycle": 3.5, "previous_cycles": 0.0, "fraction_of_limit": 3.5 / 23,
        "passed": True, "source": "Emami 1991 (external beam)", "when": None}],
    "all_limits_passed": True,
    "next_cycle": {"activity_mbq": 41228.57, "binding": "kidneys dose_gy",
                   "limits": {"kidneys dose_gy": 41228.57},
                   "assumption": "same kinetics and doses per activity as this cycle"},
    "previous_cycle_cases": [], "warnings": ["no partial-volume correction"],
    "checklist": [{"item": "administration", "present": True, "required": True}],
    "computed_at": "2026-03-09T10:30:00", "user": "physicist",
}  # fmt: skip


def _old_store(store_path: Path, store_url: str | None) -> tuple[str, int]:
    """A store at schema revision 0002 holding one case document in the old shape."""
    with CaseStore(store_path, url=store_url) as store:
        case = store.save_case(make_case(store))
        doc = case.to_dict()
        doc.pop("results")  # the old Case.to_dict had no results
        run = copy.deepcopy(OLD_RUN)
        run["case_id"] = case.case_id
        doc["extra"]["kinetics"] = {"voi-k": copy.deepcopy(OLD_KINETICS)}
        doc["extra"]["protocol_run"] = run
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE cases SET document = :d WHERE case_id = :c"),
                {"d": json.dumps(doc), "c": case.case_id},
            )
            # undo the later revisions (0004: key columns) so that the store is 0002-shaped
            from alembic import command

            command.downgrade(store_schema.alembic_config(conn), "0003")
            conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        return case.case_id, case.version


def test_old_results_become_typed_records_with_the_same_numbers(
    store_path: Path, store_url: str | None
) -> None:
    case_id, version = _old_store(store_path, store_url)
    with CaseStore(store_path, url=store_url) as store:
        with store.engine.connect() as conn:
            assert store_schema.current_revision(conn) == store_schema.head_revision()
        case = store.load_case(case_id)
        assert case.version == version  # the migration moves numbers, it does not edit them
        assert "kinetics" not in case.extra and "protocol_run" not in case.extra
        assert case.extra["origin"] == "test"  # other extra content is kept
        assert [type(r) for r in case.results] == [KineticsRecord, ProtocolRun]

        kin = case.kinetics
        assert kin is not None and not kin.superseded and kin.source == "kinetics"
        k = kin.voi("voi-k")
        assert k is not None
        old = OLD_KINETICS
        assert k.tia_mbq_h == old["tia_mbq_h"] and k.tia_sd_mbq_h == old["tia_sd_mbq_h"]
        assert k.tiac_h == old["tiac_h"] and k.model == "mono"
        assert k.administered_activity_mbq == old["administered_activity_mbq"]
        assert list(k.tac.time_h) == old["tac"]["time_h"]
        assert list(k.tac.activity_mbq) == old["tac"]["activity_mbq"]
        assert k.tac.recovery_coefficient == 0.83
        assert k.parameter("A0").value == 130.25 and k.parameter("lambda").unit == "1/h"
        assert [(c.model, c.aicc) for c in k.candidates] == [
            ("mono", 12.5),
            ("biexp-uptake", 19.75),
        ]
        assert dict(k.half_lives_h) == {"effective": 46.83}
        assert str(kin.created_at) == "2026-03-09 10:11:12"

        run = case.protocol_run
        assert run is not None and run.protocol_id == "lu177-dotatate"
        assert run.organs["kidneys"].dose_gy == 3.5
        assert run.organs["kidneys"].dose_per_activity_gy_per_gbq == 3.5 / 7.4
        assert run.vois[0].uncertainty_budget[0].rel_sd == 0.05
        assert run.limit_checks[0].fraction_of_limit == 3.5 / 23 and run.all_limits_passed
        assert run.next_cycle.activity_mbq == 41228.57
        assert run.next_cycle.binding == "kidneys dose_gy"
        assert run.administered_activity_mbq == 7400.0
        # the old run divided by the syringe activity; the record says so
        assert "residual not subtracted" in run.administered_activity_definition
        assert run.created_by == "physicist" and str(run.created_at) == "2026-03-09 10:30:00"

        # the store's own consistency check accepts the migrated document
        saved = store.save_case(case)
        assert store.load_case(case_id).results == saved.results


def test_migration_is_idempotent_and_leaves_new_documents_alone() -> None:
    import importlib

    mod = importlib.import_module("dosimetry_core.store.migrations.versions.0003_typed_results")
    doc = {"case_id": "c1", "extra": {"kinetics": {"voi-k": OLD_KINETICS}, "x": 1}}
    assert mod.to_typed(doc) is True
    first = copy.deepcopy(doc)
    assert mod.to_typed(doc) is False and doc == first  # nothing more to move
    assert mod.to_typed({"case_id": "c2", "extra": {}, "results": []}) is False
    # deterministic ids: the same case migrates to the same record id
    again = {"case_id": "c1", "extra": {"kinetics": {"voi-k": OLD_KINETICS}}}
    mod.to_typed(again)
    assert again["results"][0]["result_id"] == first["results"][0]["result_id"]


def test_a_new_dose_summary_supersedes_the_same_method_only(store_path: Path) -> None:
    """Versioning like DerivedMap: per kind (and, for dose, per method)."""
    with CaseStore(store_path) as store:
        case = make_case(store)
        led1 = case.add_result(DoseSummary("map-1", "led", ()))
        vsv = case.add_result(DoseSummary("map-2", "vsv", ()))
        led2 = case.add_result(DoseSummary("map-3", "led", ()))
        case = store.load_case(store.save_case(case).case_id)
        assert case.find_result(led1.result_id).superseded
        assert not case.find_result(vsv.result_id).superseded
        assert case.dose_summary() == led2 and case.dose_summary("map-1").superseded
        assert [r.result_id for r in case.result_records("dose")] == [
            led2.result_id,
            vsv.result_id,
        ]
        with pytest.raises(KeyError):
            case.find_result("dose-nope")
