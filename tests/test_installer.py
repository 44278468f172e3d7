"""The desktop bundle's recipe (issue 17), checked without building it.

The build itself (minutes, hundreds of MB) is ``installer/build-bundle.sh`` and its
smoke test ``installer/smoke-bundle.sh``; here: the spec names both programs and the
resources, :func:`dosimetry_core.resources.resource_path` finds every shipped file
from the source tree and from a PyInstaller layout, the numba cache default, and
``--version`` of both front doors.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import dosimetry_core
from dosimetry_core import resources
from dosimetry_core.resources import (
    configure_numba_cache,
    default_numba_cache_dir,
    resource_path,
    resource_roots,
)

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
SPEC = INSTALLER / "mrt-dosimetry.spec"
SHIPPED = sorted(p for p in (ROOT / "resources").rglob("*") if p.is_file())


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))


def _string_constants(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def _keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


# ------------------------------------------------------------------------- the spec
def test_spec_parses_and_names_both_entry_points_as_in_pyproject():
    tree = _spec_tree()
    strings = _string_constants(tree)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["gui-scripts"]["mrt-dosimetry"] == "app.main:main"
    assert project["scripts"]["mrtdose"] == "dosimetry_core.cli.main:main"
    assert {"app.main:main", "dosimetry_core.cli.main:main"} <= strings
    assert {"mrt-dosimetry", "mrtdose"} <= strings
    # two EXEs, one COLLECT (one shared _internal/), console for the CLI only
    exes = _calls(tree, "EXE")
    assert len(exes) == 2
    consoles = {
        ast.unparse(_keyword(e, "name")): ast.literal_eval(_keyword(e, "console")) for e in exes
    }
    assert consoles == {"GUI_NAME": False, "CLI_NAME": True}
    assert len(_calls(tree, "COLLECT")) == 1
    assert all(ast.literal_eval(_keyword(e, "exclude_binaries")) is True for e in exes)


def test_spec_entry_scripts_call_the_two_mains():
    for script, module in (
        ("entry_mrt_dosimetry.py", "app.main"),
        ("entry_mrtdose.py", "dosimetry_core.cli.main"),
    ):
        path = INSTALLER / "bundle" / script
        assert script in SPEC.read_text(encoding="utf-8")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = {
            (n.module, a.name)
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom)
            for a in n.names
        }
        assert (module, "main") in imports
        assert "freeze_support" in path.read_text(encoding="utf-8")


def test_spec_is_portable_and_ships_the_resources_and_icons():
    text = SPEC.read_text(encoding="utf-8")
    # no Linux-only paths or libraries: every path is made with pathlib from SPECPATH
    for linux_only in ("/usr/", "/lib/", "/opt/", ".so", "x86_64", "/tmp"):
        assert linux_only not in text, linux_only
    for shipped in ('"resources"', '"style.qss"', '"migrations"', "rthook_numba_cache.py"):
        assert shipped in text, shipped
    for package in ("icrp107_database", "radioactivedecay", "pyhanko", "highdicom", "pynetdicom"):
        assert f'"{package}"' in text, package
    for icon in ("mrt-dosimetry.ico", "mrt-dosimetry.icns", "mrt-dosimetry.png"):
        assert icon in text
        assert (INSTALLER / "icons" / icon).stat().st_size > 1000, icon
    png = (INSTALLER / "icons" / "mrt-dosimetry.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (INSTALLER / "icons" / "mrt-dosimetry.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    assert (INSTALLER / "icons" / "mrt-dosimetry.icns").read_bytes()[:4] == b"icns"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_build_and_smoke_scripts_are_valid_bash_and_smoke_needs_a_dist_dir(tmp_path):
    for script in ("build-bundle.sh", "smoke-bundle.sh"):
        out = subprocess.run(
            ["bash", "-n", str(INSTALLER / script)], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
    usage = subprocess.run(
        ["bash", str(INSTALLER / "smoke-bundle.sh")], capture_output=True, text=True
    )
    assert usage.returncode == 2 and "usage" in usage.stderr
    missing = subprocess.run(
        ["bash", str(INSTALLER / "smoke-bundle.sh"), str(tmp_path)], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert "no executable mrtdose" in missing.stderr


def test_build_outputs_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "dist/" in ignored and "build/" in ignored


# ---------------------------------------------------------------- resource_path
def test_resource_path_finds_every_shipped_file_from_the_source_tree():
    assert len(SHIPPED) >= 15
    for path in SHIPPED:
        rel = path.relative_to(ROOT / "resources")
        found = resource_path(*rel.parts)
        assert found == path, rel
        assert found.is_file()


def test_core_modules_use_resource_path_and_their_files_exist():
    from dosimetry_core.dose import electron_transport
    from dosimetry_core.io import anonymize
    from dosimetry_core.kinetics import population
    from dosimetry_core.physics import density
    from dosimetry_core.protocols import marrow, registry, sirt
    from dosimetry_core.qa import recovery
    from dosimetry_core.radiobiology import tissues
    from dosimetry_core.segmentation import organs

    files = [
        electron_transport._IVALUE_FILE,
        anonymize.PROFILE_PATH,
        population.DEFAULT_TABLE,
        density.DEFAULT_CALIBRATION_PATH,
        marrow.MARROW_PARAMETERS_PATH,
        sirt.SIRT_PARAMETERS_PATH,
        recovery._PHANTOM_JSON,
        tissues.TISSUE_TABLE_PATH,
        organs.STANDARD_ORGANS_PATH,
    ]
    for f in files:
        assert f.is_file(), f
        assert f.is_relative_to(ROOT / "resources")
    assert registry.PROTOCOL_DIR == ROOT / "resources" / "protocols"
    assert (registry.PROTOCOL_DIR / "lu177-dotatate.json").is_file()
    # one way to find resources: nobody climbs out of the package by hand any more
    climbing = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "dosimetry_core").rglob("*.py")
        if '"resources"' in p.read_text(encoding="utf-8")
        and "parents[" in p.read_text(encoding="utf-8")
    ]
    assert climbing == []


@pytest.fixture
def meipass(tmp_path, monkeypatch):
    """A simulated one-folder bundle: sys._MEIPASS/resources holds a copy of resources/."""
    bundle = tmp_path / "_internal"
    shutil.copytree(ROOT / "resources", bundle / "resources")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    return bundle


def test_resource_path_finds_every_file_inside_a_pyinstaller_bundle(meipass):
    assert resource_roots()[0] == meipass / "resources"
    for path in SHIPPED:
        rel = path.relative_to(ROOT / "resources")
        found = resource_path(*rel.parts)
        assert found == meipass / "resources" / rel, rel
        assert found.read_bytes() == path.read_bytes()


def test_resource_path_in_a_bundle_without_resources_falls_back_to_the_source_tree(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("protocols") == ROOT / "resources" / "protocols"


def test_resource_path_outside_a_bundle_ignores_a_stray_meipass(meipass, monkeypatch):
    monkeypatch.setattr(sys, "frozen", False)
    assert resource_path("qa") == ROOT / "resources" / "qa"


def test_resource_path_installed_wheel_layout(tmp_path, monkeypatch):
    """No resources next to the package: <sys.prefix>/share/mrt-dosimetry/resources."""
    shared = tmp_path / "share" / "mrt-dosimetry" / "resources"
    shutil.copytree(ROOT / "resources" / "organs", shared / "organs")
    monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path / "site-packages" / "dosimetry_core")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert (
        resource_path("organs", "standard_organs.json")
        == shared / "organs" / "standard_organs.json"
    )


def test_resource_path_missing_everywhere_names_the_source_tree_file(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path / "pkg" / "dosimetry_core")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert resource_path("qa", "x.json") == tmp_path / "pkg" / "resources" / "qa" / "x.json"


@pytest.mark.parametrize("bad", ["..", "../secrets.json", "/etc/passwd", "qa/../../x"])
def test_resource_path_refuses_to_climb_out(bad):
    with pytest.raises(ValueError, match="relative"):
        resource_path("protocols", bad)


# ---------------------------------------------------------------- numba cache
def test_numba_cache_defaults_to_a_user_cache_folder_when_unset(tmp_path, monkeypatch):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "LOCALAPPDATA": str(tmp_path / "local")}
    folder = configure_numba_cache(env)
    assert env["NUMBA_CACHE_DIR"] == str(folder)
    assert folder.is_dir()
    assert folder.parts[-2:] == ("mrt-dosimetry", "numba")
    if sys.platform.startswith("linux"):
        assert folder == tmp_path / "cache" / "mrt-dosimetry" / "numba"


def test_numba_cache_keeps_the_users_setting(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert configure_numba_cache(env) == tmp_path / "mine"
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG rules are Linux's")
def test_numba_cache_ignores_a_relative_xdg_cache_home():
    assert default_numba_cache_dir({"XDG_CACHE_HOME": "rel"}) == (
        Path.home() / ".cache" / "mrt-dosimetry" / "numba"
    )


def test_the_bundle_runtime_hook_configures_the_cache_before_numba_is_imported():
    hook = INSTALLER / "bundle" / "rthook_numba_cache.py"
    tree = ast.parse(hook.read_text(encoding="utf-8"))
    code = [
        ast.unparse(n)
        for n in tree.body
        if not isinstance(n, ast.Import)
        and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    assert code[0] == "from dosimetry_core.resources import configure_numba_cache"
    assert code[1].startswith("configure_numba_cache()")
    # the hook itself imports no numba (numba reads its environment when imported)
    assert not any("import numba" in line or "from numba" in line for line in code)
    assert "NUMBA_CACHE_LOCATOR_CLASSES" in ast.unparse(tree)


# ---------------------------------------------------------------- --version
def test_both_front_doors_print_the_same_version(capsys):
    from dosimetry_core.cli.main import main as cli_main

    with pytest.raises(SystemExit) as cli_exit:
        cli_main(["--version"])
    assert cli_exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"mrtdose {dosimetry_core.__version__}"

    pytest.importorskip("PySide6")
    from app.main import build_parser

    with pytest.raises(SystemExit) as gui_exit:
        build_parser().parse_args(["--version"])
    assert gui_exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"mrt-dosimetry {dosimetry_core.__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == dosimetry_core.__version__


# ------------------------------------------------------- numba inside the bundle
_KERNEL_SOURCE = """
from numba import njit


@njit(cache=True)
def triple(x):
    return 3.0 * x
"""


def _frozen_kernel(name: str):
    """A cache=True kernel whose code names a *relative* file, as PyInstaller's do."""
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(_KERNEL_SOURCE, "pkg/_kernels.py", "exec"), namespace)
    return namespace["triple"]


def test_bundle_numba_locator_caches_frozen_kernels_in_numba_cache_dir(tmp_path, monkeypatch):
    """In a bundle numba's own locators resolve the relative file against the current
    folder; the bundle's locator finds the shipped source under sys._MEIPASS, caches
    into NUMBA_CACHE_DIR, and a second process (a fresh dispatcher) loads the cache."""
    numba_config = pytest.importorskip("numba.core.config")
    monkeypatch.syspath_prepend(str(INSTALLER / "bundle"))
    import mrt_bundle_numba

    bundle = tmp_path / "_internal"
    (bundle / "pkg").mkdir(parents=True)
    (bundle / "pkg" / "_kernels.py").write_text(_KERNEL_SOURCE, encoding="utf-8")
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the relative name must not be resolved here
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(cache))
    monkeypatch.setattr(numba_config, "CACHE_LOCATOR_CLASSES", mrt_bundle_numba.LOCATOR_CLASSES)

    assert mrt_bundle_numba.bundled_source("pkg/_kernels.py") == str(bundle / "pkg" / "_kernels.py")
    assert mrt_bundle_numba.bundled_source("pkg/missing.py") is None

    first = _frozen_kernel("pkg._kernels")
    assert first(2.0) == 6.0
    assert len(list(cache.rglob("*.nbi"))) == 1
    assert len(list(cache.rglob("*.nbc"))) == 1
    assert not (elsewhere / "pkg").exists()

    second = _frozen_kernel("pkg._kernels")  # like the other executable starting
    assert second(5.0) == 15.0
    assert sum(second.stats.cache_hits.values()) == 1
    assert sum(second.stats.cache_misses.values()) == 0


def test_bundle_numba_locator_declines_outside_a_bundle(tmp_path, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.syspath_prepend(str(INSTALLER / "bundle"))
    import mrt_bundle_numba

    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert mrt_bundle_numba.bundled_source("pkg/_kernels.py") is None
    hook = (INSTALLER / "bundle" / "rthook_numba_cache.py").read_text(encoding="utf-8")
    assert mrt_bundle_numba.LOCATOR_CLASSES in hook


def test_ci_builds_and_smoke_tests_the_bundle_after_the_test_suite():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tests_at = ci.index("installer/run-tests.sh")
    for step in (
        "installer/setup.sh gui,dev,bundle",
        "installer/build-bundle.sh dist",
        "installer/smoke-bundle.sh dist",
    ):
        assert tests_at < ci.index(step), step
