"""users and grants: the people who log in, and what the authorization code flow issued to them

Users and their failed logins; grants (one per code exchange, the family of its refresh tokens),
authorization codes, refresh tokens, the access tokens of each grant, consent and pushed authorization
requests (RFC 9126). Written out in plain column types like 0001 to 0003, so that it keeps meaning
what it meant when `schema.py` moves on. New tables only: SQLite needs no batch mode.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, referred: str, referred_column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.{referred_column}"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("sub", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("claims", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("sub", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_failure_at"), "login_failures", ["last_failure_at"])

    op.create_table(
        "grants",
        sa.Column("grant_id", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("revoked_at", _WHEN, nullable=True),
        _fk("grants", "client_id", "clients", "client_id"),
        _fk("grants", "subject", "users", "sub"),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_grants")),
    )
    for column in ("client_id", "subject", "expires_at"):
        op.create_index(op.f(f"ix_grants_{column}"), "grants", [column])

    op.create_table(
        "authorization_codes",
        sa.Column("code_sha256", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        _fk("authorization_codes", "client_id", "clients", "client_id"),
        sa.PrimaryKeyConstraint("code_sha256", name=op.f("pk_authorization_codes")),
    )
    for column in ("client_id", "expires_at"):
        op.create_index(op.f(f"ix_authorization_codes_{column}"), "authorization_codes", [column])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("rotated_at", _WHEN, nullable=True),
        _fk("refresh_tokens", "grant_id", "grants", "grant_id"),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_refresh_tokens")),
    )
    op.create_index(op.f("ix_refresh_tokens_grant_id"), "refresh_tokens", ["grant_id"])

    op.create_table(
        "grant_access_tokens",
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.Text(), nullable=False),
        sa.Column("opaque_sha256", sa.Text(), nullable=True),
        sa.Column("expires_at", _WHEN, nullable=False),
        _fk("grant_access_tokens", "grant_id", "grants", "grant_id"),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_grant_access_tokens")),
    )
    for column in ("grant_id", "expires_at"):
        op.create_index(op.f(f"ix_grant_access_tokens_{column}"), "grant_access_tokens", [column])

    op.create_table(
        "consents",
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("granted_at", _WHEN, nullable=False),
        _fk("consents", "subject", "users", "sub"),
        _fk("consents", "client_id", "clients", "client_id"),
        sa.PrimaryKeyConstraint("subject", "client_id", "scope", name=op.f("pk_consents")),
    )

    op.create_table(
        "pushed_requests",
        sa.Column("request_uri_sha256", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        _fk("pushed_requests", "client_id", "clients", "client_id"),
        sa.PrimaryKeyConstraint("request_uri_sha256", name=op.f("pk_pushed_requests")),
    )
    for column in ("client_id", "expires_at"):
        op.create_index(op.f(f"ix_pushed_requests_{column}"), "pushed_requests", [column])


def downgrade() -> None:
    for table in (
        "pushed_requests",
        "consents",
        "grant_access_tokens",
        "refresh_tokens",
        "authorization_codes",
        "grants",
        "login_failures",
        "users",
    ):
        op.drop_table(table)
