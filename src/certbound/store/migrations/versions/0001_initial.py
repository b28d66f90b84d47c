"""initial schema: clients, credentials, signing keys, generation counter, replay cache, token tables

Written out in plain column types rather than built from `certbound.store.schema`, so that this
migration keeps meaning what it meant when `schema.py` moves on. Names are final (`op.f`): the
schema's naming convention produced them.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("registration_access_token_sha256", sa.Text(), nullable=True),
        sa.Column("client_id_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('api', 'file')", name=op.f("ck_clients_source")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    op.create_table(
        "client_credentials",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("thumbprint", sa.Text(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('secret_sha256', 'secret_sealed', 'jwk', 'certificate')",
            name=op.f("ck_client_credentials_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_client_credentials_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_credentials")),
    )
    op.create_index(op.f("ix_client_credentials_client_id"), "client_credentials", ["client_id"])
    op.create_index(op.f("ix_client_credentials_thumbprint"), "client_credentials", ["thumbprint"])

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("alg", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_jwk_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('next', 'active', 'retired')", name=op.f("ck_signing_keys_state")),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )

    generation = op.create_table(
        "store_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_store_generation_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_generation")),
    )
    op.bulk_insert(generation, [{"id": 1, "value": 0}])

    op.create_table(
        "assertion_jti",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_assertion_jti")),
    )
    op.create_index(op.f("ix_assertion_jti_expires_at"), "assertion_jti", ["expires_at"])

    op.create_table(
        "revoked_tokens",
        sa.Column("token_key", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_key", name=op.f("pk_revoked_tokens")),
    )
    op.create_index(op.f("ix_revoked_tokens_expires_at"), "revoked_tokens", ["expires_at"])

    op.create_table(
        "opaque_tokens",
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("claims", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_opaque_tokens_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_opaque_tokens")),
    )
    op.create_index(op.f("ix_opaque_tokens_client_id"), "opaque_tokens", ["client_id"])
    op.create_index(op.f("ix_opaque_tokens_expires_at"), "opaque_tokens", ["expires_at"])


def downgrade() -> None:
    for table in (
        "opaque_tokens",
        "revoked_tokens",
        "assertion_jti",
        "store_generation",
        "signing_keys",
        "client_credentials",
        "clients",
    ):
        op.drop_table(table)
