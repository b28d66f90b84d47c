"""cert_status: client certificates seen by tls_client_auth, what is known of their revocation, and
the expiry warnings already given (cert_expiry_warnings)

Written out in plain column types, like 0001 and 0002. New tables only: nothing existing is touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cert_status",
        sa.Column("x5t_s256", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("revocation_source", sa.Text(), nullable=True),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("x5t_s256", name=op.f("pk_cert_status")),
    )
    op.create_index(op.f("ix_cert_status_last_seen"), "cert_status", ["last_seen"])
    op.create_index(op.f("ix_cert_status_learned_at"), "cert_status", ["learned_at"])
    op.create_table(
        "cert_expiry_warnings",
        sa.Column("x5t_s256", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("x5t_s256", "days", name=op.f("pk_cert_expiry_warnings")),
    )
    op.create_index(op.f("ix_cert_expiry_warnings_warned_at"), "cert_expiry_warnings", ["warned_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cert_expiry_warnings_warned_at"), table_name="cert_expiry_warnings")
    op.drop_table("cert_expiry_warnings")
    op.drop_index(op.f("ix_cert_status_learned_at"), table_name="cert_status")
    op.drop_index(op.f("ix_cert_status_last_seen"), table_name="cert_status")
    op.drop_table("cert_status")
