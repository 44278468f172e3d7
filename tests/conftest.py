"""Shared fixtures: a small synthetic demo patient written once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_demo_dirs(tmp_path_factory) -> dict[str, Path]:
    """The small demo preset written as DICOM in both vendor styles (noise-free)."""
    from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom

    out = {}
    for style in ("siemens-bqml", "ge-counts"):
        d = tmp_path_factory.mktemp(f"demo-{style}")
        config = DemoConfig.small()
        config.noise = False
        write_demo_dicom(d, config, style=style)
        out[style] = d
    return out


@pytest.fixture(scope="session")
def small_demo_image_dirs(small_demo_dirs, tmp_path_factory) -> dict[str, Path]:
    """The small demo folders without their RTSTRUCT: an import gives a case with no VOIs.

    (An import attaches a structure set found in the folder as draft VOIs; tests of
    the contour commands start from a case without them.)
    """
    import shutil

    out = {}
    for style, src in small_demo_dirs.items():
        dst = tmp_path_factory.mktemp(f"demo-images-{style}") / "demo"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("RTSTRUCT"))
        out[style] = dst
    return out


@pytest.fixture(scope="session")
def small_demo_truth(small_demo_dirs) -> dict:
    return json.loads((small_demo_dirs["siemens-bqml"] / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def shared_kernel_cache(tmp_path_factory) -> Path:
    """One kernel cache (``$MRTDOSE_KERNEL_CACHE``) for every test that only uses kernels.

    A voxel kernel or sphere table is computed once per session instead of once per
    test module: the Lu-177 kernel and sphere tables of the demo's protocol run take
    ~30 s cold and are read back in milliseconds.  The cache key holds every input
    (nuclide, voxel size, medium, histories, seed, code version), so a cached entry
    is the one the test would compute.  Tests that check the cache itself (entries
    written, corrupt entries recomputed, nothing written before a refusal) keep a
    private folder.
    """
    return tmp_path_factory.mktemp("shared-kernel-cache")


@pytest.fixture()
def use_shared_kernel_cache(shared_kernel_cache, monkeypatch) -> Path:
    """Point ``$MRTDOSE_KERNEL_CACHE`` at the session's shared cache for one test."""
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    return shared_kernel_cache


def copy_store(src: Path, dst: Path) -> Path:
    """A private copy of a closed store folder (database and blobs): far cheaper than a rebuild.

    A store folder is relocatable (its SQLite file and blob folder sit inside it), so the
    copy opens with the same cases, ids, VOIs, results and audit trail as the original.
    """
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def small_demo_cli_store(small_demo_dirs, tmp_path_factory) -> tuple[Path, str]:
    """``mrtdose --store S --json import DEMO`` (siemens-bqml) once: (closed store folder, case id).

    The folder is a template: a test that changes the store copies it first
    (:func:`copy_store`).
    """
    import contextlib
    import io

    from dosimetry_core.cli.main import main

    store = tmp_path_factory.mktemp("template-cli-import") / "store"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for name in ("MRTDOSE_USER", "MRTDOSE_PASSWORD"):
            mp.delenv(name, raising=False)
        code = main(
            ["--store", str(store), "--json", "import", str(small_demo_dirs["siemens-bqml"])]
        )
    assert code == 0
    return store, json.loads(out.getvalue())["cases"][0]["case_id"]


@pytest.fixture(scope="session")
def small_demo_imported_store(small_demo_dirs, tmp_path_factory) -> tuple[Path, str]:
    """``import_directory`` of the small demo (siemens-bqml) once: (closed store folder, case id).

    A template: copy the folder (:func:`copy_store`) before changing anything in it.
    """
    from dosimetry_core.pipeline.importing import import_directory
    from dosimetry_core.store import CaseStore

    path = tmp_path_factory.mktemp("template-imported") / "store"
    with CaseStore(path) as store:
        case_id = import_directory(store, small_demo_dirs["siemens-bqml"]).cases[0].case_id
    return path, case_id


@pytest.fixture(scope="session")
def small_demo_registered_store(small_demo_imported_store, tmp_path_factory) -> tuple[Path, str]:
    """The small demo imported and registered once: (closed store folder, case id).

    ``import_directory`` then ``register_case``, as the pipeline tests did in each module;
    copy the folder (:func:`copy_store`) before changing anything in it.
    """
    from dosimetry_core.pipeline.registration import register_case
    from dosimetry_core.store import CaseStore

    template, case_id = small_demo_imported_store
    path = copy_store(template, tmp_path_factory.mktemp("template-registered") / "store")
    with CaseStore(path) as store:
        register_case(store, case_id)
    return path, case_id


@pytest.fixture()
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"
