"""Verify a report file from disk: what ``mrtdose verify-report`` and the workstation show.

:func:`verify_report_path` is the whole check of ``mrtdose verify-report FILE
[--trust CA.pem] [--store STORE]`` (it lived in the CLI; the report step of the
workstation calls the same function, so both say the same about the same file):

1. bounded reads first: a report larger than :data:`REPORT_FILE_MAX_BYTES`, a CA
   certificate larger than :data:`CA_FILE_MAX_BYTES`, a device, a FIFO or a folder is
   refused before anything parses it (:func:`dosimetry_core.io.limits.read_bytes_limited`);
2. :func:`dosimetry_core.reporting.records.check_report_file`: every PAdES signature
   against the trust anchor (``trust``, else the CA pinned in the store), the whole file
   covered, the content hashes, and with a store that the file is its stored record;
3. with a store that holds the report: the stored record's own problems
   (:func:`dosimetry_core.reporting.records.verify`) added once each.

The result is the JSON of ``verify-report --json``: ``file``, ``report_id``, ``intact``,
``problems``, ``signatures`` (field, signer, role, signed_as, signed_at,
certificate_sha256, intact, valid, trusted, covers_whole_file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dosimetry_core.io.limits import MIB, read_bytes_limited
from dosimetry_core.store.repository import CaseRepository

__all__ = ["CA_FILE_MAX_BYTES", "REPORT_FILE_MAX_BYTES", "verify_report_path"]

REPORT_FILE_MAX_BYTES = 200 * MIB
"""Largest report PDF or JSON that is read (a report is a few MB)."""
CA_FILE_MAX_BYTES = 1 * MIB
"""Largest CA certificate file that is read (a PEM certificate is about 1 kB)."""


def verify_report_path(
    file: str | Path,
    *,
    trust: str | Path | None = None,
    store: CaseRepository | None = None,
) -> dict[str, Any]:
    """Check the report file ``file`` (module docstring).

    Parameters
    ----------
    file
        A report PDF or JSON export; returned as given under ``"file"``.
    trust
        PEM file of the CA to trust; None: the CA pinned in ``store``.
    store
        The store that should hold the file's report, or None.

    Returns
    -------
    dict
        ``file``, ``report_id`` (or None), ``intact`` (True when no problem),
        ``problems`` (plain sentences) and ``signatures`` (one dict per PAdES signature).

    Raises
    ------
    InvalidInputError
        The file or the CA file cannot be read or is too large (``field`` is
        ``"file"`` or ``"trust"``), or the CA file is not a PEM certificate.
    """
    from dosimetry_core.reporting.records import check_report_file, verify

    read_bytes_limited(file, REPORT_FILE_MAX_BYTES, "file")
    if trust:
        read_bytes_limited(trust, CA_FILE_MAX_BYTES, "trust")
    result = check_report_file(file, trust=trust or None, store=store)
    problems = list(result["problems"])
    report_id = result["report_id"]
    if report_id and store is not None:
        db = verify(store, report_id)
        if not any("no report" in p for p in db):
            problems += [p for p in db if p not in problems]
    return {
        "file": file,
        "report_id": report_id,
        "intact": not problems,
        "problems": problems,
        "signatures": result["signatures"],
    }
