"""Access control on every ``mrtdose`` command (issue 13): each attack performed and refused.

A store with accounts: ``root`` (admin), ``tom`` (technologist), ``ann``
(physicist), ``dora`` (physician), holding the small demo patient.  Each test
tries what the attack on the landed CLI did (read or export without a log-in, a
technologist's QA calibration, a role that may not save starting a long
computation, ``--user`` naming somebody else, a wrong password) and checks the
refusal (exit 1, one line naming the problem) and the state after: nothing
written, nothing printed of the patient, no case read (``CaseStore.load_case``
and the compute functions are replaced by functions that fail the test if
called).
"""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from dosimetry_core.cli import access
from dosimetry_core.cli.main import build_parser, main
from dosimetry_core.errors import PermissionDeniedError
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.qa.records import list_records
from dosimetry_core.store import CaseStore, audit
from dosimetry_core.store.users import bootstrap_admin, create_user, list_users

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "root": "otter-maple-fig-42",
    "tom": "heron-quartz-lamp-7",
    "ann": "violet-canyon-drum-3",
    "dora": "saffron-bridge-kite-9",
}
ROLES = {"tom": "technologist", "ann": "physicist", "dora": "physician"}


@pytest.fixture(autouse=True)
def _logged_out(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD", "MRTDOSE_STORE", "MRTDOSE_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def department(small_demo_dirs: dict[str, Path], tmp_path_factory: Any) -> dict[str, Any]:
    """The demo patient in a store with four accounts."""
    store_dir = tmp_path_factory.mktemp("access-store")
    with CaseStore(store_dir) as store:
        case_id = import_directory(store, small_demo_dirs["siemens-bqml"]).cases[0].case_id
        name = store.load_case(case_id).patient.name
        root = bootstrap_admin(store, "root", PASSWORDS["root"], hasher=FAST)
        for user, role in ROLES.items():
            create_user(store, root, user, PASSWORDS[user], role, hasher=FAST)
    assert name  # the attack looks for the patient's name in what is printed
    return {"dir": store_dir, "case_id": case_id, "name": str(name)}


def _log_in(monkeypatch: pytest.MonkeyPatch, user: str, password: str | None = None) -> None:
    monkeypatch.setenv("MRTDOSE_USER", user)
    monkeypatch.setenv("MRTDOSE_PASSWORD", password or PASSWORDS[user])


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _n_audit(store_dir: Path) -> int:
    with CaseStore(store_dir) as store:
        return len(audit.entries(store))


@pytest.fixture()
def nothing_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if a case is read or a computation starts (the refusal must come first)."""
    called: list[str] = []

    def forbidden(what: str) -> Any:
        def call(*_a: Any, **_k: Any) -> Any:
            called.append(what)
            raise AssertionError(f"{what} was called before the access check refused")

        return call

    targets = {
        CaseStore: ("load_case", "list_cases"),
    }
    for cls, names in targets.items():
        for name in names:
            monkeypatch.setattr(cls, name, forbidden(f"CaseStore.{name}"))
    import dosimetry_core.pipeline.dose as dose
    import dosimetry_core.pipeline.export as export
    import dosimetry_core.pipeline.kinetics as kinetics
    import dosimetry_core.pipeline.protocol_run as protocol_run
    import dosimetry_core.pipeline.registration as registration
    import dosimetry_core.pipeline.tia_map as tia_map
    import dosimetry_core.qa.calibration as calibration

    for module, name in (
        (protocol_run, "run_protocol"),
        (dose, "compute_dose"),
        (tia_map, "compute_tia_map"),
        (kinetics, "compute_kinetics"),
        (registration, "register_case"),
        (export, "export_case"),
        (calibration, "calibrate_camera"),
        (calibration, "read_nm_scan"),
    ):
        monkeypatch.setattr(module, name, forbidden(f"{module.__name__}.{name}"))
    yield called
    assert called == []


# ----------------------------------------------------------------- the table
def test_every_command_has_an_access_rule_and_every_rule_a_command() -> None:
    """Walk the argparse tree: a new command cannot forget its rule."""
    paths = access.command_paths(build_parser())
    assert len(paths) > 50
    missing = sorted(set(paths) - set(access.RULES))
    assert missing == [], f"commands without an access rule in cli/access.py: {missing}"
    stale = sorted(set(access.RULES) - set(paths))
    assert stale == [], f"access rules without a command: {stale}"


def test_calculators_marked_without_store_never_open_one() -> None:
    paths = access.command_paths(build_parser())
    for path, rule in access.RULES.items():
        if path not in paths or rule.opens_store is not False:
            continue
        func = paths[path].get_default("func")
        source = inspect.getsource(func)
        assert "open_store" not in source and "CaseStore" not in source, path
    # the conditional ones open a store only when asked to
    ns = argparse.Namespace
    assert not access.RULES["verify-report"].store_for(ns(store=None, file="r.pdf"))
    assert access.RULES["verify-report"].store_for(ns(store="/s", file="r.pdf"))
    assert not access.RULES["protocols"].store_for(ns(id="lu177-dotatate", case=None))
    assert access.RULES["protocols"].store_for(ns(id="lu177-dotatate", case="C1"))


def test_command_path_of_parsed_arguments() -> None:
    parser = build_parser()
    for argv, path in (
        (["cases"], "cases"),
        (["qa", "calibrate", "d", "--activity-mbq", "1", "--activity-time", "t"], "qa calibrate"),
        (["contour", "C1", "approve", "Kidney"], "contour approve"),
        (["user", "list"], "user list"),
        (["registration", "C1", "accept", "TP1"], "registration"),
    ):
        assert access.command_path(parser, parser.parse_args(argv)) == path


def test_a_command_without_a_rule_is_refused_on_a_store_with_accounts(
    department: dict[str, Any], tmp_path: Path
) -> None:
    args = argparse.Namespace(store=str(department["dir"]))
    with pytest.raises(PermissionDeniedError, match="frobnicate has no access rule"):
        access.open_store_for(args, None, "frobnicate")
    # a calculator said to open no store that opened one anyway is refused too
    args = argparse.Namespace(store=str(department["dir"]))
    setattr(args, access._PATH_ATTR, "fit")
    with pytest.raises(PermissionDeniedError, match="mrtdose fit has no access rule"):
        access.open_unchecked(args)
    single = access.open_store_for(argparse.Namespace(store=str(tmp_path / "s")), None, "x")
    assert single.actor is None and not single.has_users()
    single.close()


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize(
    "argv",
    [
        ("cases",),
        ("show", "{case}"),
        ("audit",),
        ("audit", "{case}"),
        ("user", "list"),
        ("voi", "{case}"),
        ("worklist",),
        ("administration", "{case}", "list"),
        ("measurement", "{case}", "list"),
        ("qa", "list"),
        ("kinetics", "{case}"),
    ],
    ids=lambda a: " ".join(a),
)
def test_reading_without_a_log_in_is_refused(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    nothing_read: list[str],
    argv: tuple[str, ...],
) -> None:
    before = _n_audit(department["dir"])
    args = [a.format(case=department["case_id"]) for a in argv]
    for json_flag in ((), ("--json",)):
        code, out, err = _run(capsys, *args, *json_flag, "--store", str(department["dir"]))
        assert (code, out) == (1, "")
        assert err.startswith(
            "mrtdose: this store has user accounts: log in with MRTDOSE_USER and MRTDOSE_PASSWORD"
        )
        assert err.count("\n") == 1 and department["name"] not in err
    assert _n_audit(department["dir"]) == before


@pytest.mark.parametrize(
    ("user", "argv", "refusal"),
    [
        ("root", ("cases",), "root (admin) may not read cases and reports"),
        ("root", ("show", "{case}"), "root (admin) may not read cases and reports"),
        ("tom", ("audit",), "tom (technologist) may not read the audit trail"),
        ("tom", ("user", "list"), "tom (technologist) may not create, disable and unlock users"),
        ("ann", ("user", "list"), "ann (physicist) may not create, disable and unlock users"),
        (
            "dora",
            ("timepoint", "remove", "{case}", "TP2", "--reason", "wrong patient"),
            "dora (physician) may not import studies",
        ),
        ("root", ("audit", "--verify"), None),  # verifying is open to every role
    ],
)
def test_a_role_that_may_not_is_refused_before_anything_is_read(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nothing_read: list[str],
    user: str,
    argv: tuple[str, ...],
    refusal: str | None,
) -> None:
    _log_in(monkeypatch, user)
    args = [a.format(case=department["case_id"]) for a in argv]
    code, out, err = _run(capsys, *args, "--store", str(department["dir"]))
    if refusal is None:
        assert code == 0, err
        return
    assert (code, out) == (1, "")
    assert err.startswith(f"mrtdose: {refusal}: this needs the role") and err.count("\n") == 1


def test_reading_by_the_roles_that_may(
    department: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ("--store", str(department["dir"]))
    for user in ("tom", "ann", "dora"):
        _log_in(monkeypatch, user)
        code, out, err = _run(capsys, "cases", "--json", *s)
        assert code == 0, err
        assert [c["case_id"] for c in json.loads(out)["cases"]] == [department["case_id"]]
    for user in ("ann", "dora", "root"):
        _log_in(monkeypatch, user)
        code, out, err = _run(capsys, "audit", "--verify", "--json", *s)
        assert code == 0 and json.loads(out)["intact"] is True, err
    _log_in(monkeypatch, "root")
    code, out, err = _run(capsys, "user", "list", "--json", *s)
    assert code == 0, err
    assert sorted(u["username"] for u in json.loads(out)["users"]) == sorted(PASSWORDS)


# ------------------------------------------------------------------- export
def test_export_without_a_log_in_writes_nothing_and_prints_no_patient(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    nothing_read: list[str],
) -> None:
    out_dir = tmp_path / "exported"
    s = ("--store", str(department["dir"]))
    for who in (None, "tom"):  # nobody, then a technologist (no export role)
        if who:
            _log_in(monkeypatch, who)
        code, out, err = _run(
            capsys, "export", department["case_id"], str(out_dir), "--images", "--no-rtdose", *s
        )
        assert (code, out) == (1, "")
        assert department["name"] not in err and err.count("\n") == 1
        expected = (
            "this store has user accounts: log in"
            if who is None
            else "tom (technologist) may not export DICOM and anonymised cases"
        )
        assert expected in err
        assert not out_dir.exists()
    monkeypatch.setenv("MRTDOSE_USER", "dora")  # physician, the right role: the case is read
    monkeypatch.setenv("MRTDOSE_PASSWORD", PASSWORDS["dora"])
    code, _, err = _run(capsys, "export", department["case_id"], str(out_dir), "--images", *s)
    assert code == 3 and "export_case was called" in err  # it got past the check
    assert nothing_read == ["dosimetry_core.pipeline.export.export_case"]
    nothing_read.clear()


# ------------------------------------------------------------------------ QA
@pytest.fixture(scope="module")
def cylinder(tmp_path_factory: Any) -> Any:
    from dosimetry_core.phantoms.qa_phantoms import write_cylinder_phantom

    return write_cylinder_phantom(tmp_path_factory.mktemp("access-cyl"))


def _accounts_store(store_dir: Path) -> None:
    with CaseStore(store_dir) as store:
        root = bootstrap_admin(store, "root", PASSWORDS["root"], hasher=FAST)
        for user, role in ROLES.items():
            create_user(store, root, user, PASSWORDS[user], role, hasher=FAST)


def _plant(capsys: pytest.CaptureFixture[str], cyl: Any, store_dir: Path) -> tuple[int, str, str]:
    """The attack: a calibration claiming 10x the source's activity (imports 10x too low)."""
    return _run(
        capsys, "qa", "calibrate", str(cyl.out_dir), "--activity-mbq", "1000",
        "--activity-time", cyl.truth["activity_time"], "--nuclide", "Lu-177",
        "--store", str(store_dir), "--json",
    )  # fmt: skip


def _imported_calibration(
    capsys: pytest.CaptureFixture[str], demo: Path, store_dir: Path
) -> list[tuple[str, float | None]]:
    code, out, err = _run(capsys, "import", str(demo), "--store", str(store_dir), "--json")
    assert code == 0, err
    case_id = json.loads(out)["cases"][0]["case_id"]
    code, out, err = _run(capsys, "show", case_id, "--store", str(store_dir), "--json")
    assert code == 0, err
    return [(t["calibration_status"], t["cps_per_mbq"]) for t in json.loads(out)["time_points"]]


def test_qa_calibrate_by_a_technologist_or_nobody_stores_nothing_and_later_imports_unscaled(
    small_demo_dirs: dict[str, Path],
    cylinder: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    _accounts_store(store_dir)
    before = _n_audit(store_dir)
    for who in (None, "tom", "dora"):
        if who:
            _log_in(monkeypatch, who)
        code, out, err = _plant(capsys, cylinder, store_dir)
        assert (code, out) == (1, "") and err.count("\n") == 1
        assert (
            "this store has user accounts: log in" in err
            if who is None
            else f"{who} ({ROLES[who]}) may not record commissioning and QA measurements" in err
        )
    with CaseStore(store_dir) as store:
        assert list_records(store) == []
    assert _n_audit(store_dir) == before
    _log_in(monkeypatch, "tom")  # the technologist imports: nothing rescales the study
    unscaled = _imported_calibration(capsys, small_demo_dirs["ge-counts"], store_dir)
    assert all(cps is None for _, cps in unscaled), unscaled

    # control: the same planted calibration by a physicist is stored, under her name, and
    # would scale the import; this is why only the physicist's role may calibrate
    other = tmp_path / "other"
    _accounts_store(other)
    _log_in(monkeypatch, "ann")
    code, out, err = _plant(capsys, cylinder, other)
    assert code == 0, err
    record_id = json.loads(out)["record_id"]
    with CaseStore(other) as store:
        [rec] = list_records(store)
        assert (rec.record_id, rec.created_by) == (record_id, "ann")
        last = audit.entries(store)[-1]
        assert (last.username, last.role) == ("ann", "physicist")
        assert last.action == "qa-camera-calibration"
    _log_in(monkeypatch, "tom")
    scaled = _imported_calibration(capsys, small_demo_dirs["ge-counts"], other)
    assert all(cps == pytest.approx(0.9, rel=0.05) for _, cps in scaled), scaled


def test_qa_user_naming_somebody_else_is_refused(
    department: dict[str, Any],
    cylinder: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nothing_read: list[str],
) -> None:
    _log_in(monkeypatch, "ann")
    code, out, err = _run(
        capsys, "qa", "calibrate", str(cylinder.out_dir), "--activity-mbq", "100",
        "--activity-time", cylinder.truth["activity_time"], "--user", "chief.physicist",
        "--store", str(department["dir"]),
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith("mrtdose: --user names somebody else than the logged-in user")
    assert "'chief.physicist'" in err and "'ann'" in err


# ------------------------------------------------------- long computations
@pytest.mark.parametrize(
    "argv",
    [
        ("run", "{case}", "--protocol", "lu177-dotatate"),
        ("dose", "{case}", "--method", "led"),
        ("tia-map", "{case}"),
        ("kinetics", "{case}"),
        ("register", "{case}"),
    ],
    ids=lambda a: a[0],
)
@pytest.mark.parametrize("user", ["tom", "dora"])
def test_a_role_that_may_not_save_is_refused_before_the_computation(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nothing_read: list[str],
    argv: tuple[str, ...],
    user: str,
) -> None:
    _log_in(monkeypatch, user)
    before = _n_audit(department["dir"])
    args = [a.format(case=department["case_id"]) for a in argv]
    code, out, err = _run(capsys, *args, "--store", str(department["dir"]))
    assert (code, out) == (1, "")
    assert err.startswith(f"mrtdose: {user} ({ROLES[user]}) may not ") and err.count("\n") == 1
    assert _n_audit(department["dir"]) == before


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "{case}", "--protocol", "lu177-dotatate", "--user", "bob"),
        ("dose", "{case}", "--method", "led", "--user", "bob"),
        ("tia-map", "{case}", "--user", "bob"),
        ("contour", "{case}", "approve", "Kidney_L", "--user", "chief.physician"),
        ("registration", "{case}", "accept", "TP2", "--user", "bob"),
        ("report", "{case}", "--as", "bob"),
        ("user", "passwd", "ann", "--as", "root"),
    ],
    ids=lambda a: " ".join(a[:1] + a[-2:]),
)
def test_user_or_as_naming_somebody_else_is_refused_before_anything(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nothing_read: list[str],
    argv: tuple[str, ...],
) -> None:
    user = "dora" if "approve" in argv else "ann"
    _log_in(monkeypatch, user)
    args = [a.format(case=department["case_id"]) for a in argv]
    code, out, err = _run(capsys, *args, "--store", str(department["dir"]))
    assert (code, out) == (1, "")
    assert "names somebody else than the logged-in user" in err and f"'{user}'" in err


# ------------------------------------------------------------------ log-in
def test_a_wrong_password_is_refused_and_audited(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nothing_read: list[str],
) -> None:
    before = _n_audit(department["dir"])
    _log_in(monkeypatch, "tom", "not-toms-password-1")
    code, out, err = _run(capsys, "cases", "--store", str(department["dir"]))
    assert (code, out) == (1, "")
    assert err == "mrtdose: wrong user name or password for 'tom'\n"
    _log_in(monkeypatch, "nobody.here", "whatever-password-1")
    code, out, err = _run(capsys, "show", department["case_id"], "--store", str(department["dir"]))
    assert (code, out) == (1, "") and "wrong user name or password" in err
    with CaseStore(department["dir"]) as store:
        new = audit.entries(store)[before:]
        assert [(e.action, e.details.get("username"), e.details.get("reason")) for e in new] == [
            ("login-failed", "tom", "wrong-password"),
            ("login-failed", "nobody.here", "unknown-user"),
        ]
        assert audit.verify(store) == []
        tom = next(u for u in list_users(store) if u.username == "tom")
        assert tom.failed_attempts == 1  # below the lock threshold: tom can still log in


# ------------------------------------------------------------- store mode
def test_the_store_mode_is_said_on_stderr_and_json_stays_clean(
    department: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    single = tmp_path / "single"
    code, out, err = _run(capsys, "cases", "--store", str(single))
    assert code == 0 and out == "no cases in the store\n"
    assert err == f"store {single}: single-user (no accounts)\n"
    _log_in(monkeypatch, "tom")
    code, out, err = _run(capsys, "cases", "--store", str(department["dir"]))
    assert code == 0 and department["case_id"] in out
    assert err == f"store {department['dir']}: 4 accounts, logged in as tom (technologist)\n"
    code, out, err = _run(capsys, "cases", "--json", "--store", str(department["dir"]))
    assert code == 0 and set(json.loads(out)) == {"cases"}
    assert err.startswith(f"store {department['dir']}: 4 accounts")


def test_single_user_store_works_without_a_log_in(
    small_demo_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s = ("--store", str(tmp_path / "single"))
    code, out, err = _run(capsys, "import", str(small_demo_dirs["siemens-bqml"]), "--json", *s)
    assert code == 0, err
    case_id = json.loads(out)["cases"][0]["case_id"]
    for argv in (("cases",), ("show", case_id), ("audit",), ("user", "list"), ("voi", case_id)):
        code, out, err = _run(capsys, *argv, "--json", *s)
        assert code == 0, (argv, err)
        json.loads(out)
