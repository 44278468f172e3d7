"""``mrtdose timepoint remove`` / :func:`remove_time_point` (issue 13).

A bad time point leaves its case with its VOIs, audited with the reason; every
result computed from the case's time points is marked superseded; a missing
reason, an unknown time point or a user without the import permission is
refused and nothing changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.pipeline.timepoints import remove_time_point
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.users import authenticate, bootstrap_admin, create_user
from tests.conftest import copy_store

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "root": "otter-maple-fig-42",
    "tess": "heron-quartz-lamp-7",
    "ann": "cedar-vole-sky-93",
}


@pytest.fixture(autouse=True)
def _logged_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRTDOSE_USER", raising=False)
    monkeypatch.delenv("MRTDOSE_PASSWORD", raising=False)


@pytest.fixture()
def imported(small_demo_cli_store, tmp_path: Path) -> tuple[Path, str]:
    """The demo patient (4 time points, RTSTRUCT VOIs on TP1) in a fresh store.

    A copy of the session's ``mrtdose import`` of the demo (the same command, run once).
    """
    template, case_id = small_demo_cli_store
    return copy_store(template, tmp_path / "store"), case_id


def _state(store: Path, case_id: str) -> tuple[int, list[str], int]:
    with CaseStore(store) as s:
        case = s.load_case(case_id)
        return (
            case.version,
            [tp.label for tp in case.sorted_time_points()],
            len(audit.entries(s, case_id)),
        )


def test_remove_time_point_via_cli_is_audited_and_relabels(imported, capsys) -> None:
    store, case_id = imported
    with CaseStore(store) as s:
        case = s.load_case(case_id)
        tp3 = case.time_point("TP3")
        version = case.version
    rc = main(
        [
            "--store", str(store), "--json", "timepoint", "remove", case_id, tp3.time_point_id,
            "--reason", "wrong patient's scan (PACS mix-up)",
        ]
    )  # fmt: skip
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["case_id"] == case_id and data["time_point_id"] == tp3.time_point_id
    assert data["removed"] is True and data["version"] == version + 1
    with CaseStore(store) as s:
        case = s.load_case(case_id)
        assert [tp.time_point_id for tp in case.time_points].count(tp3.time_point_id) == 0
        assert [tp.label for tp in case.sorted_time_points()] == ["TP1", "TP2", "TP3"]
        last = audit.entries(s, case_id)[-1]
    assert last.details["operation"] == "remove time point"
    assert last.details["reason"] == "wrong patient's scan (PACS mix-up)"
    assert last.details["time_point_id"] == tp3.time_point_id and last.details["label"] == "TP3"


def test_vois_go_and_results_are_superseded(imported) -> None:
    store, case_id = imported
    from dosimetry_core.model.results import KineticsRecord
    from tests.core.model.test_results import _kinetics, _run

    with CaseStore(store) as s:
        case = s.load_case(case_id)
        kin = case.add_result(KineticsRecord((_kinetics(),)))
        case.add_result(_run(kin.result_id))
        s.save_case(case)
        case = s.load_case(case_id)
        assert case.kinetics is not None and case.protocol_run is not None
        tp1 = case.time_point("TP1")
        n_vois_tp1 = sum(v.time_point_id == tp1.time_point_id for v in case.vois)
        assert n_vois_tp1 > 0
        done = remove_time_point(s, None, case_id, "TP1", "activity far above administered")
        case = s.load_case(case_id)
    assert len(done.vois_removed) == n_vois_tp1
    assert not any(v.time_point_id == tp1.time_point_id for v in case.vois)
    assert case.kinetics is None and case.protocol_run is None  # superseded: recompute
    assert len(done.results_superseded) == 2 and all(r.superseded for r in case.results)


@pytest.mark.parametrize(
    ("tp", "reason", "field"),
    [("TP2", "", "reason"), ("TP2", "   ", "reason"), ("TP9", "a good reason", "time_point_id")],
)
def test_refusals_change_nothing(imported, tp, reason, field) -> None:
    store, case_id = imported
    before = _state(store, case_id)
    with CaseStore(store) as s, pytest.raises(InvalidInputError) as err:
        remove_time_point(s, None, case_id, tp, reason)
    assert err.value.field == field
    assert _state(store, case_id) == before


def test_cli_refusal_exit_1_and_reason_required(imported, capsys) -> None:
    store, case_id = imported
    before = _state(store, case_id)
    assert (
        main(
            [
                "--store",
                str(store),
                "timepoint",
                "remove",
                case_id,
                "TP9",
                "--reason",
                "typo in scan",
            ]
        )
        == 1
    )
    assert "no time point 'TP9'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--store", str(store), "timepoint", "remove", case_id, "TP2"])
    assert exc.value.code == 2
    assert _state(store, case_id) == before


def test_accounts_need_a_log_in_and_the_import_permission(imported, monkeypatch, capsys) -> None:
    store, case_id = imported
    with CaseStore(store) as s:
        root = bootstrap_admin(s, "root", PASSWORDS["root"], hasher=FAST)
        create_user(s, root, "tess", PASSWORDS["tess"], "technologist", hasher=FAST)
        create_user(s, root, "ann", PASSWORDS["ann"], "physician", hasher=FAST)
    before = _state(store, case_id)
    argv = ["--store", str(store), "timepoint", "remove", case_id, "TP2", "--reason", "bad scan"]
    assert main(argv) == 1  # nobody logged in
    assert "log in" in capsys.readouterr().err
    with CaseStore(store) as s:
        ann = authenticate(s, "ann", PASSWORDS["ann"])  # a physician: may not import
        s.actor = ann
        with pytest.raises(PermissionDeniedError):
            remove_time_point(s, ann, case_id, "TP2", "bad scan")
        tess = authenticate(s, "tess", PASSWORDS["tess"])
        with pytest.raises(PermissionDeniedError):  # the actor must be the logged-in user
            remove_time_point(s, tess, case_id, "TP2", "bad scan")
    assert _state(store, case_id)[:2] == before[:2]
    monkeypatch.setenv("MRTDOSE_USER", "tess")
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS["tess"])
    tp_before = _state(store, case_id)[1]
    rc = main(argv)
    assert rc == 0, capsys.readouterr().err
    assert len(_state(store, case_id)[1]) == len(tp_before) - 1
    with CaseStore(store) as s:
        last = audit.entries(s, case_id)[-1]
    assert last.username == "tess" and last.details["reason"] == "bad scan"
