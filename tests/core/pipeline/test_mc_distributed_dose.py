"""``mrtdose dose CASE --method mc --scheduler local:2``: the split Monte Carlo in the dose step.

Runs only once ``compute_dose`` has its ``mc_scheduler`` option (the lead wires it in
pipeline/dose.py and cli/dose_command.py); the same histories and seed give the same
VOI doses as one process, and bad options are refused before anything is computed.
"""

from __future__ import annotations

import inspect
import json

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import DerivedKind
from dosimetry_core.pipeline.dose import compute_dose
from dosimetry_core.pipeline.tia_map import compute_tia_map
from dosimetry_core.store import CaseStore
from tests.conftest import copy_store

pytestmark = pytest.mark.skipif(
    "mc_scheduler" not in inspect.signature(compute_dose).parameters,
    reason="compute_dose has no mc_scheduler option yet",
)

ARGS = ["--method", "mc", "--histories", "20000", "--seed", "4", "--json"]
ARGS += ["--voi", "Kidney_L", "--voi", "Liver", "--voi", "Lung_L"]


@pytest.fixture(scope="module")
def prepared(small_demo_registered_store, shared_kernel_cache, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    mp.delenv("MRTDOSE_USER", raising=False)
    template, case_id = small_demo_registered_store
    store_dir = copy_store(template, tmp_path_factory.mktemp("mc-split-store") / "store")
    with CaseStore(store_dir) as store:
        compute_tia_map(store, case_id)
    yield store_dir, case_id
    mp.undo()


def _run(capsys, store_dir, case_id, *extra: str) -> dict:
    assert main(["--store", str(store_dir), "dose", case_id, *ARGS, *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _dose_maps(store_dir, case_id: str) -> int:
    with CaseStore(store_dir) as store:
        return len(store.load_case(case_id).derived_maps(DerivedKind.DOSE))


@pytest.mark.slow
def test_two_workers_give_the_one_process_doses(prepared, capsys):
    store_dir, case_id = prepared
    one = _run(capsys, store_dir, case_id)
    two = _run(capsys, store_dir, case_id, "--scheduler", "local:2")
    assert "mc_scheduler" not in one["provenance"]  # the JSON without --scheduler is unchanged
    prov = two["provenance"]
    assert (prov["mc_scheduler"], prov["mc_parts"], prov["mc_workers"]) == ("local:2", 2, 2)
    assert prov["mc_histories"] == one["provenance"]["mc_histories"] == 20_000
    by_name = {v["voi_name"]: v for v in one["vois"]}
    assert [v["voi_name"] for v in two["vois"]] == ["Kidney_L", "Liver", "Lung_L"]
    for v in two["vois"]:
        ref = by_name[v["voi_name"]]
        assert v["mean_gy"] > 0
        assert v["mean_gy"] == pytest.approx(ref["mean_gy"], rel=1e-6)
        assert v["max_gy"] == pytest.approx(ref["max_gy"], rel=1e-6)
        # the per-voxel uncertainty merged from the parts: the one-process figure
        assert v["mc_mean_voxel_relative_uncertainty"] == pytest.approx(
            ref["mc_mean_voxel_relative_uncertainty"], rel=1e-5
        )
    comp1 = one["provenance"]["mc_voi_components"]
    for name, c in prov["mc_voi_components"].items():
        assert c["photon_sd_gy"] == pytest.approx(comp1[name]["photon_sd_gy"], rel=1e-6)


@pytest.mark.slow
def test_two_workers_stop_on_the_target_uncertainty(prepared, capsys):
    store_dir, case_id = prepared
    d = _run(
        capsys, store_dir, case_id, "--scheduler", "local:2",
        "--target-uncertainty", "0.05", "--target-voi", "Kidney_L",
    )  # fmt: skip
    prov = d["provenance"]
    assert prov["mc_stopped_because"] == "target uncertainty"
    assert prov["mc_target_uncertainty_reached"] <= 0.05
    assert prov["mc_voi_components"]["Kidney_L"]["photon_rel_uncertainty"] <= 0.05
    assert prov["mc_parts"] >= 2 and prov["mc_histories"] % 2_000 == 0  # whole batches


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scheduler", "local:0"], "--scheduler"),
        (["--scheduler", "tcp://nowhere"], "--scheduler"),
        (["--scheduler", "local:2", "--method", "vsv"], "use it with --method mc"),
    ],
)  # fmt: skip
def test_bad_scheduler_options_are_refused_and_nothing_saved(prepared, capsys, extra, message):
    store_dir, case_id = prepared
    before = _dose_maps(store_dir, case_id)
    code = main(["--store", str(store_dir), "dose", case_id, *ARGS, *extra])
    out, err = capsys.readouterr()
    assert code != 0
    assert message in out + err
    assert _dose_maps(store_dir, case_id) == before


def test_scheduler_needs_the_mc_method(prepared):
    store_dir, case_id = prepared
    with CaseStore(store_dir) as store, pytest.raises(InvalidInputError) as e:
        compute_dose(store, case_id, method="vsv", mc_scheduler="local:2")
    assert e.value.field == "scheduler"
