"""The case store: cases and patients in a database, voxel arrays in a blob folder.

SQLite (one file, WAL mode) by default, PostgreSQL through ``url=``; the schema
is managed by Alembic migrations shipped in ``store/migrations``.  See
:mod:`dosimetry_core.store.case_store` for transactions, concurrency and pragmas
and :mod:`dosimetry_core.store.blobs` for the blob format.
"""

from dosimetry_core.store.blobs import BlobInfo, BlobStore, array_key
from dosimetry_core.store.case_store import CaseStore, CaseSummary, default_store_path

__all__ = ["BlobInfo", "BlobStore", "CaseStore", "CaseSummary", "array_key", "default_store_path"]
