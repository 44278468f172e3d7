"""Where the shipped reference files (``resources/``) are, wherever the code runs.

The tables the core reads (protocols, organ masses, tissue parameters, the HU to
density table, the DICOM de-identification profile, ...) live in the top-level
``resources/`` folder of the repository.  :func:`resource_path` finds that folder
in the three ways the workstation is run:

1. a PyInstaller bundle: ``sys._MEIPASS/resources`` (the spec
   ``installer/mrt-dosimetry.spec`` copies the folder there);
2. the source tree or an editable install (``pip install -e``): the folder next
   to the ``dosimetry_core`` package;
3. an installed wheel whose data files went to
   ``<sys.prefix>/share/mrt-dosimetry/resources``.

The first candidate folder that exists wins; when none exists the path is the
source-tree one (as before this module existed), so the error raised on reading
names the file that is missing.

:func:`default_numba_cache_dir` and :func:`configure_numba_cache` give the bundle
a user-writable numba cache (the bundle folder may be read-only, e.g. under
``C:\\Program Files`` or a signed macOS ``.app``).

This module imports nothing of ours and nothing outside the standard library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path, PurePath

__all__ = [
    "APP_DIRNAME",
    "configure_numba_cache",
    "default_numba_cache_dir",
    "resource_path",
    "resource_roots",
]

APP_DIRNAME = "mrt-dosimetry"
"""Folder name of the application in per-user and shared data/cache folders."""

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_roots() -> list[Path]:
    """Candidate ``resources`` folders, in the order :func:`resource_path` tries them.

    Returns
    -------
    list of pathlib.Path
        ``sys._MEIPASS/resources`` when running frozen (PyInstaller), then the
        folder next to the ``dosimetry_core`` package (source tree, editable
        install), then ``<sys.prefix>/share/mrt-dosimetry/resources`` (wheel
        data files).  Folders are not checked for existence here.
    """
    roots: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and meipass:
        roots.append(Path(meipass) / "resources")
    roots.append(_PACKAGE_DIR.parent / "resources")
    roots.append(Path(sys.prefix) / "share" / APP_DIRNAME / "resources")
    return roots


def resource_path(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``resource_path("protocols", "generic.json")``.

    Parameters
    ----------
    *parts
        Path components below ``resources/`` (relative, without ``..``).

    Returns
    -------
    pathlib.Path
        The path under the first existing folder of :func:`resource_roots`; when
        none exists, the path under the source-tree folder (the caller's read
        then fails naming it).  The file itself is not required to exist.

    Raises
    ------
    ValueError
        A part is absolute or climbs out of ``resources/`` (``..``).
    """
    for part in parts:
        pure = PurePath(part)
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            raise ValueError(f"resource path part {part!r} must be relative, without '..'")
    roots = resource_roots()
    root = next((r for r in roots if r.is_dir()), _PACKAGE_DIR.parent / "resources")
    return root.joinpath(*parts)


def default_numba_cache_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    """Per-user cache folder for numba's compiled kernels: ``<cache>/mrt-dosimetry/numba``.

    ``<cache>`` is ``%LOCALAPPDATA%`` on Windows, ``~/Library/Caches`` on macOS,
    else ``$XDG_CACHE_HOME`` when it is an absolute path, else ``~/.cache``.

    Parameters
    ----------
    environ
        Environment to read (default ``os.environ``).

    Returns
    -------
    pathlib.Path
        The folder (not created).
    """
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        local = env.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = env.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / APP_DIRNAME / "numba"


def configure_numba_cache(environ: MutableMapping[str, str] | None = None) -> Path:
    """Set ``NUMBA_CACHE_DIR`` to :func:`default_numba_cache_dir` unless it is set.

    Must run before numba is imported (the bundle's runtime hook
    ``installer/rthook_numba_cache.py`` calls it first thing).  A folder that
    cannot be created is left to numba, which then compiles without caching.

    Parameters
    ----------
    environ
        Environment to read and update (default ``os.environ``).

    Returns
    -------
    pathlib.Path
        The numba cache folder in effect.
    """
    env = os.environ if environ is None else environ
    current = env.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    folder = default_numba_cache_dir(env)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    env["NUMBA_CACHE_DIR"] = str(folder)
    return folder
