"""PostgreSQL: every change of the store generation is announced on the channel certbound_generation

A trigger on store_generation calls pg_notify with the new value. The notification is sent when the
changing transaction commits (never for one rolled back), so every node's listener
(certbound.store.notify) learns of a client, credential or key change at once instead of at its next
poll. SQLite has no LISTEN/NOTIFY: nothing to do there (its workers share one host and keep polling).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

CHANNEL = "certbound_generation"  # certbound.store.notify.CHANNEL; a migration never imports app code


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION certbound_generation_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.value::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER certbound_generation_notify AFTER UPDATE ON store_generation "
        "FOR EACH ROW EXECUTE FUNCTION certbound_generation_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS certbound_generation_notify ON store_generation")
    op.execute("DROP FUNCTION IF EXISTS certbound_generation_notify()")
