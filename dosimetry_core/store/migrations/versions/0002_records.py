"""Clinical records and QA: users, audit_log, reports, signatures, qa_records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Frozen: do not import the current table definitions here.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the record tables."""
    op.create_table(
        "users",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False, server_default=""),
        sa.Column("role", sa.String(32), nullable=False, server_default=""),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_case_id", "audit_log", ["case_id"])
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("pdf_blob_key", sa.String(64), nullable=True),
        sa.Column("supersedes", sa.String(64), nullable=True),
        sa.Column("amendment_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("report_id", name="pk_reports"),
    )
    op.create_index("ix_reports_case_id", "reports", ["case_id"])
    op.create_table(
        "signatures",
        sa.Column("signature_id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("signed_as", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("signature_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("signature_id", name="pk_signatures"),
    )
    op.create_index("ix_signatures_report_id", "signatures", ["report_id"])
    op.create_table(
        "qa_records",
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_key", sa.Text(), nullable=False),
        sa.Column("nuclide", sa.String(32), nullable=False, server_default=""),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False, server_default="active"),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_qa_records"),
    )
    op.create_index("ix_qa_records_device_key", "qa_records", ["device_key"])


def downgrade() -> None:
    """Drop the record tables."""
    for ix, table in (
        ("ix_qa_records_device_key", "qa_records"),
        ("ix_signatures_report_id", "signatures"),
        ("ix_reports_case_id", "reports"),
        ("ix_audit_log_case_id", "audit_log"),
    ):
        op.drop_index(ix, table_name=table)
    for table in ("qa_records", "signatures", "reports", "audit_log", "users"):
        op.drop_table(table)
