"""numba cache locator of the frozen bundle: kernels cached in ``NUMBA_CACHE_DIR``.

Why it is needed (numba 0.68, ``numba.core.caching``): a kernel compiled with
``cache=True`` is cached by the first *locator* that accepts its source file,
``inspect.getfile(func)``.  In a PyInstaller bundle that name is *relative*
(``dosimetry_core/kinetics/_voxel_kernels.py``: PyInstaller strips the build
folder), so numba's own locators resolve it against the current directory:

- started from a folder that happens to hold a source tree, numba caches into
  ``NUMBA_CACHE_DIR`` keyed by that unrelated file;
- started anywhere else, it ignores ``NUMBA_CACHE_DIR`` and writes to its own
  ``~/.cache/numba``, keyed by a hash of the *executable*: ``mrtdose`` and
  ``mrt-dosimetry`` are two executables, so each would recompile every kernel
  the other cached (same index file, different stamp).

:class:`BundleSourceLocator` resolves the name against ``sys._MEIPASS`` (the
spec ships ``dosimetry_core``'s source next to its bytecode), caches into
``NUMBA_CACHE_DIR`` and keys the cache by the shipped source file, so both
programs share one cache and a new bundle version recompiles.  The runtime hook
``rthook_numba_cache.py`` selects it (``NUMBA_CACHE_LOCATOR_CLASSES``), with
numba's user-wide locator as fallback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from numba.core import config
from numba.core.caching import _CacheLocator, _hash_source_file

__all__ = ["LOCATOR_CLASSES", "BundleSourceLocator", "bundled_source"]

LOCATOR_CLASSES = "mrt_bundle_numba.BundleSourceLocator,UserWideCacheLocator"
"""Value of ``NUMBA_CACHE_LOCATOR_CLASSES`` set by the runtime hook."""


def _cache_dir() -> str:
    """``NUMBA_CACHE_DIR`` as numba read it (numba.core.config sets it at import)."""
    return str(getattr(config, "CACHE_DIR", "") or "")


def bundled_source(py_file: str) -> str | None:
    """The shipped source file of a frozen module, or None.

    A relative name is resolved against ``sys._MEIPASS`` (never the current
    directory); an absolute one is taken as it is.
    """
    if os.path.isabs(py_file):
        path = py_file
    else:
        base = getattr(sys, "_MEIPASS", None)
        if not base:
            return None
        path = os.path.join(base, py_file)
    return path if os.path.isfile(path) else None


class BundleSourceLocator(_CacheLocator):
    """Cache in ``NUMBA_CACHE_DIR``, keyed by the bundled source file's content."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(_cache_dir(), self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> Any:
        st = os.stat(self._py_file)
        return _hash_source_file(self._py_file, st.st_mtime, st.st_size)

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> BundleSourceLocator | None:
        if not _cache_dir():
            return None
        source = bundled_source(py_file)
        if source is None:
            return None
        self = cls(py_func, source)
        try:
            self.ensure_cache_path()
        except OSError:
            return None  # not writable: the next locator (numba's user-wide one)
        return self
