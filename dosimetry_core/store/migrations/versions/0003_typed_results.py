"""Typed results: ``extra["kinetics"]`` and ``extra["protocol_run"]`` become ``results`` records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Rewrites every stored case document (the ``cases.document`` JSON): the kinetics
dictionary (one entry per VOI, ``mrt-kinetics/1``) becomes one ``kinetics``
record and the protocol-run dictionary (``mrt-protocol-run/1``) one
``protocol_run`` record of the document's ``results`` list, in the form
``dosimetry_core.model.results`` reads (the records read the old entry shapes;
the migration adds the record fields: kind, result_id, created_at, created_by,
superseded).  Earlier versions kept no dose summary in the case (``mrtdose dose``
only printed it), so there is none to move.

The case ``version`` is not changed: the numbers and their meaning are the same,
only their place in the document moves, and no program older than this revision
can open the store afterwards (it refuses an unknown revision), so no one can
hold a copy of the case that a version check would have to protect.

Runs made by earlier versions divided organ Gy/GBq and the next-cycle activity
by the syringe activity as entered (residual not subtracted); the migrated run
record says so in ``administered_activity_definition`` (the kinetics entries
already used the net activity).  Identifiers are derived from the case id, so
the migration is deterministic.

Frozen: do not import the current model or table definitions here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_RUN_ACTIVITY = (
    "syringe activity as entered, residual not subtracted (run made by a version before "
    "typed results; run the protocol again for the net administered activity)"
)

_cases = sa.table(
    "cases",
    sa.column("case_id", sa.String),
    sa.column("document", sa.Text),
)


def _id(prefix: str, case_id: str, what: str) -> str:
    return prefix + hashlib.sha256(f"{case_id}/{what}".encode()).hexdigest()[:12]


def to_typed(doc: dict[str, Any]) -> bool:
    """Move the old ``extra`` results of one case document into ``results`` (in place).

    Returns True when the document changed.
    """
    extra = doc.get("extra")
    if not isinstance(extra, dict) or not ("kinetics" in extra or "protocol_run" in extra):
        return False
    case_id = str(doc.get("case_id", ""))
    fallback_time = doc.get("modified_at") or doc.get("created_at")
    results = list(doc.get("results") or [])
    kin = extra.pop("kinetics", None)
    if isinstance(kin, dict) and kin:
        entries = [e for e in kin.values() if isinstance(e, dict)]
        created = max((str(e.get("computed_at") or "") for e in entries), default="")
        results.append(
            {
                "kind": "kinetics",
                "format": "mrt-kinetics/1",
                "result_id": _id("kin-", case_id, "kinetics"),
                "created_at": created or fallback_time,
                "created_by": "",
                "source": "kinetics",
                "superseded": False,
                "vois": entries,
            }
        )
    run = extra.pop("protocol_run", None)
    if isinstance(run, dict) and run:
        record = dict(run)
        record.update(
            {
                "kind": "protocol_run",
                "result_id": _id("run-", case_id, "protocol_run"),
                "created_at": run.get("computed_at") or fallback_time,
                "superseded": False,
                "kinetics_id": None,
                "dose_summary_id": None,
            }
        )
        record.setdefault("administered_activity_definition", LEGACY_RUN_ACTIVITY)
        results.append(record)
    doc["extra"] = extra
    doc["results"] = results
    return True


def upgrade() -> None:
    """Rewrite the case documents that hold old-style results."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(_cases.c.case_id, _cases.c.document)).all()
    for case_id, text in rows:
        try:
            doc = json.loads(text)
        except ValueError:
            continue  # an unreadable document is reported by the store's check, not here
        if to_typed(doc):
            conn.execute(
                _cases.update()
                .where(_cases.c.case_id == case_id)
                .values(document=json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            )


def downgrade() -> None:
    """Put the newest kinetics and protocol-run records back into ``extra``."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(_cases.c.case_id, _cases.c.document)).all()
    for case_id, text in rows:
        doc = json.loads(text)
        results = doc.pop("results", None) or []
        if not results:
            continue
        extra = doc.setdefault("extra", {})
        current = [r for r in results if not r.get("superseded")]
        kin = [r for r in current if r.get("kind") == "kinetics"]
        if kin:
            extra["kinetics"] = {v["voi_id"]: v for v in kin[-1].get("vois") or []}
        runs = [r for r in current if r.get("kind") == "protocol_run"]
        if runs:
            extra["protocol_run"] = runs[-1]
        conn.execute(
            _cases.update()
            .where(_cases.c.case_id == case_id)
            .values(document=json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        )
