"""A small demo-like cohort for the ``mrtdose batch`` tests, built once per test session.

Four study folders (:func:`dosimetry_core.pipeline.demo_cohort.write_demo_cohort`):
patient 1 cycles 1 and 2, patients 2 and 3 cycle 1 (different kinetics, activities and
CT grids), imported into a template store (no run yet).  ``baseline`` runs every case
(but the one the tests corrupt) alone with ``run_protocol`` in this process, cycles in
order, on a copy of the template: the known answer the batch must reproduce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_store

PROTOCOL = "lu177-dotatate"
COHORT = [(0, 1), (0, 2), (1, 1), (2, 1)]
"""(patient, cycle), 0-based patient."""
CORRUPTED = "p003_c1"
"""The study folder whose case the tests give a corrupt SPECT series."""


def _base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "batch-cohort"


def cohort_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"dirs": folder root, "store": closed template store, "ids": {folder name: case id}}``."""
    from dosimetry_core.pipeline.batch import import_cohort
    from dosimetry_core.pipeline.demo_cohort import write_demo_cohort
    from dosimetry_core.store import CaseStore

    base = _base(tmp_path_factory)
    info = base / "template.json"
    if info.exists():
        return dict(json.loads(info.read_text()))
    dirs = base / "dicom"
    folders = write_demo_cohort(dirs, COHORT)
    store = base / "template-store"
    ids: dict[str, str] = {}
    with CaseStore(store) as s:
        for folder in folders:
            found, _ = import_cohort(s, folder)
            assert len(found) == 1, (folder, found)
            ids[folder.name] = found[0]
    data = {"dirs": str(dirs), "store": str(store), "ids": ids}
    info.write_text(json.dumps(data))
    return data


def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case run alone (``run_protocol`` in this process, cycles in order).

    ``{case_id: {organ_id: {dose_gy, dose_per_activity_gy_per_gbq, bed_gy, dose_sd_gy}}}``.
    """
    from dosimetry_core.pipeline.protocol_run import run_protocol
    from dosimetry_core.store import CaseStore

    base = _base(tmp_path_factory)
    out = base / "baseline.json"
    if out.exists():
        return dict(json.loads(out.read_text()))
    tpl = cohort_template(tmp_path_factory)
    store = copy_store(Path(tpl["store"]), base / "baseline-store")
    result: dict[str, dict[str, Any]] = {}
    with CaseStore(store) as s:
        for name in sorted(tpl["ids"]):  # p001_c1 before p001_c2: cycles in order
            if name == CORRUPTED:
                continue  # the tests corrupt this one: no answer to compare with
            cid = tpl["ids"][name]
            run = run_protocol(s, cid, PROTOCOL)
            result[cid] = {
                k: {
                    "dose_gy": o.dose_gy,
                    "dose_per_activity_gy_per_gbq": o.dose_per_activity_gy_per_gbq,
                    "bed_gy": o.bed_gy,
                    "dose_sd_gy": o.dose_sd_gy,
                }
                for k, o in run.organs.items()
            }
    out.write_text(json.dumps(result))
    return result
