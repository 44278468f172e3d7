"""The case store: cases and patients in a database, voxel arrays in a blob folder.

SQLite (one file, WAL mode) by default, PostgreSQL through ``url=``; the schema
is managed by Alembic migrations shipped in ``store/migrations``.  See
:mod:`dosimetry_core.store.case_store` for transactions, concurrency and pragmas
and :mod:`dosimetry_core.store.blobs` for the blob format.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dosimetry_core.store.blobs import BlobInfo, BlobStore, array_key
    from dosimetry_core.store.case_store import CaseStore, CaseSummary, default_store_path

# Exports are resolved on first use (PEP 562): importing a light module of this
# package (``permissions``, ``repository``) must not load SQLAlchemy and Alembic,
# so that ``mrtdose --help`` and commands without a store start quickly.
_EXPORTS = {
    "BlobInfo": "blobs",
    "BlobStore": "blobs",
    "array_key": "blobs",
    "CaseStore": "case_store",
    "CaseSummary": "case_store",
    "default_store_path": "case_store",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = ["BlobInfo", "BlobStore", "CaseStore", "CaseSummary", "array_key", "default_store_path"]
