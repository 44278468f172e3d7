"""Personal keys: certificates and wrapped keys of accounts, signed rows, audit checkpoints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Adds to ``users`` the certificate, the wrapped private key (and CA key copy for
admins), the revocation time and the two row signatures; to ``signatures`` the
signer's certificate and the signature of the content JSON; and the table
``audit_checkpoints``.  Existing rows keep NULLs: a store whose accounts were
made before this revision has no department CA and keeps working as before
(hash-only records), see :mod:`dosimetry_core.store.keys`.

Frozen: do not import the current table definitions here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the key columns and the checkpoint table."""
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("cert_pem", sa.Text(), nullable=True))
        b.add_column(sa.Column("key_pem", sa.Text(), nullable=True))
        b.add_column(sa.Column("ca_key_pem", sa.Text(), nullable=True))
        b.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("row_signature", sa.Text(), nullable=True))
        b.add_column(sa.Column("password_signature", sa.Text(), nullable=True))
    with op.batch_alter_table("signatures") as b:
        b.add_column(sa.Column("cert_pem", sa.Text(), nullable=True))
        b.add_column(sa.Column("content_signature", sa.Text(), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoints"),
    )


def downgrade() -> None:
    """Drop them again (keys and signatures are lost)."""
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("signatures") as b:
        b.drop_column("content_signature")
        b.drop_column("cert_pem")
    with op.batch_alter_table("users") as b:
        for c in (
            "password_signature",
            "row_signature",
            "revoked_at",
            "ca_key_pem",
            "key_pem",
            "cert_pem",
        ):
            b.drop_column(c)
