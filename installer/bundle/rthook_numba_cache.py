"""PyInstaller runtime hook: a user-writable numba cache before numba is imported.

The bundle folder may be read-only (Program Files, a signed macOS .app, a shared
network folder), and numba's default cache is next to the source files.  Unless the
user set ``NUMBA_CACHE_DIR``, it becomes ``<user cache>/mrt-dosimetry/numba``
(:func:`dosimetry_core.resources.configure_numba_cache`), and kernels are cached there
by the bundle's locator (``mrt_bundle_numba``: why, in its docstring).
"""

import os

from dosimetry_core.resources import configure_numba_cache

configure_numba_cache()
os.environ.setdefault(
    "NUMBA_CACHE_LOCATOR_CLASSES", "mrt_bundle_numba.BundleSourceLocator,UserWideCacheLocator"
)
