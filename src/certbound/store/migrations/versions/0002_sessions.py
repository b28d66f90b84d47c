"""sessions: server-side sessions for the login pages and the gateway (certbound.sessions)

Written out in plain column types, like 0001, so that it keeps meaning what it meant when
`schema.py` moves on. A new table only: nothing existing is touched, so SQLite needs no batch mode.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_sha256", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_sealed", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "idle_timeout_seconds IS NULL OR idle_timeout_seconds > 0",
            name=op.f("ck_sessions_idle_timeout"),
        ),
        sa.PrimaryKeyConstraint("id_sha256", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_subject"), "sessions", ["subject"])
    op.create_index(op.f("ix_sessions_valid_until"), "sessions", ["valid_until"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_valid_until"), table_name="sessions")
    op.drop_index(op.f("ix_sessions_subject"), table_name="sessions")
    op.drop_table("sessions")
