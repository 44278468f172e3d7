"""Initial case store schema: patients, cases, blobs, case_blobs, store_meta.

Revision ID: 0001
Revises:
Create Date: 2026-03-10

Frozen: do not import the current table definitions here; later changes go in
new revisions.  Room is left for later tables (users, audit, reports).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the initial tables."""
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(16), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name="pk_patients"),
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.Text(), nullable=False, server_default=""),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("n_time_points", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_cases"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.patient_id"],
            name="fk_cases_patient_id_patients", ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_cases_patient_id", "cases", ["patient_id"])
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("dtype", sa.String(32), nullable=False),
        sa.Column("shape", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_blobs"),
    )
    op.create_table(
        "case_blobs",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "blob_key", name="pk_case_blobs"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"],
            name="fk_case_blobs_case_id_cases", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blob_key"], ["blobs.key"],
            name="fk_case_blobs_blob_key_blobs", ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_case_blobs_blob_key", "case_blobs", ["blob_key"])
    store_meta = op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_store_meta"),
    )
    op.bulk_insert(
        store_meta,
        [
            {"key": "store_format", "value": "mrt-dosimetry case store"},
            {"key": "blob_format", "value": "mrtblob/1 sha256(canonical) zlib-1 shuffle"},
        ],
    )


def downgrade() -> None:
    """Drop everything (destroys the store's index of cases; blob files stay)."""
    op.drop_table("store_meta")
    op.drop_index("ix_case_blobs_blob_key", table_name="case_blobs")
    op.drop_table("case_blobs")
    op.drop_table("blobs")
    op.drop_index("ix_cases_patient_id", table_name="cases")
    op.drop_table("cases")
    op.drop_table("patients")
