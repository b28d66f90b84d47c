"""`SqlStore`: the `Store` on SQLAlchemy Core, one implementation for SQLite and PostgreSQL.

Every public method is one transaction. Writes to clients, credentials and signing keys first bump
the generation counter: on PostgreSQL that row lock serializes those writers (no deadlocks between
them, and `sync_file_clients` can diff safely); on SQLite BEGIN IMMEDIATE already does. When such a
write turns out to change nothing, the transaction is rolled back, bump included, so caches are only
invalidated by real changes. Replay-cache and deny-list writes are single atomic statements.

Fast paths (`fast_paths=True`, the default; the `fast_paths` setting): what runs on the request path
skips the async engine, whose pool checkout, transaction and thread hop cost more than the statement
itself. On SQLite the replay-cache and deny-list inserts and the generation poll go through
`certbound.store.sqlite_hot`; `token_state()` hands out a direct reader (`certbound.store.token_state`:
`sqlite3` with the commit marker on SQLite, prepared asyncpg statements on PostgreSQL). Off, every call
goes through the engine: the general path, same answers (tests/store/test_fast_paths.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certbound.store import migrate as migrations
from certbound.store.engine import create_engine, writer
from certbound.store.grants import SqlGrantStore
from certbound.store.interface import ClientExists, OpaqueToken, SigningKeyExists, Store, TokenState
from certbound.store.notify import GenerationListener
from certbound.store.records import Client, Credential, KeyState, SigningKey
from certbound.store.schema import (
    assertion_jti,
    client_credentials,
    clients,
    opaque_tokens,
    revoked_tokens,
    signing_keys,
    store_generation,
)
from certbound.store.sqlite_hot import SqliteHotWriter
from certbound.store.token_state import PostgresTokenState, SqliteTokenState, StoreTokenState
from certbound.store.users import SqlUserStore

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_store(database_url: str, *, clock: Clock = utcnow, fast_paths: bool = True) -> SqlStore:
    """A store for `database_url` (see `certbound.store.engine.async_url`); call `migrate()` before use.

    No I/O happens here: connections are opened on first use. `fast_paths=False` sends every call
    through the async engine (the `fast_paths` setting: the general path, for diagnosis).
    """
    return SqlStore(create_engine(database_url), clock=clock, fast_paths=fast_paths)


class SqlStore:
    """The `Store` protocol over an async SQLAlchemy engine (sqlite+aiosqlite or postgresql+asyncpg).

    `users` (`SqlUserStore`) and `grants` (`SqlGrantStore`) keep what the login flows need, on the
    same engine.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow, fast_paths: bool = True) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock
        self._fast_paths = fast_paths
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # On the request path, a plain sqlite3 connection on the event loop instead of the engine.
        sqlite_fast = fast_paths and engine.dialect.name == "sqlite"
        self._hot = SqliteHotWriter.for_engine(engine) if sqlite_fast else None
        self.users = SqlUserStore(engine, clock=clock)
        self.grants = SqlGrantStore(engine, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def fast_paths(self) -> bool:
        """Whether the request-path calls skip the async engine (see the module docstring)."""
        return self._fast_paths

    def token_state(self) -> TokenState:
        """The direct reader of this backend (SQLite: `sqlite3` and the commit marker; PostgreSQL:
        prepared asyncpg statements), or, with the fast paths off, this store's own queries."""
        if self._fast_paths:
            url = self._engine.url
            if self.dialect == "sqlite" and url.database:
                return SqliteTokenState(url.database)
            if self.dialect == "postgresql":
                return PostgresTokenState(
                    url.set(drivername="postgresql").render_as_string(hide_password=False)
                )
        return StoreTokenState(self)

    def generation_listener(self) -> GenerationListener | None:
        """On PostgreSQL, a listener of the generation notifications (migration 0005) for a
        `GenerationWatcher`; None on SQLite (no LISTEN/NOTIFY: its watchers poll)."""
        if self.dialect != "postgresql":
            return None
        return GenerationListener(self._engine.url.set(drivername="postgresql").render_as_string(False))

    async def migrate(self) -> None:
        await migrations.upgrade(self._engine)

    async def close(self) -> None:
        try:
            if self._hot is not None:
                await self._hot.close()
        finally:
            await self._engine.dispose()

    async def generation(self) -> int:
        if self._hot is not None:
            value = await self._hot.generation()
            if value is not None:
                return value
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(store_generation.c.value).where(store_generation.c.id == 1))
        if value is None:
            raise RuntimeError("store_generation row missing: was migrate() run?")
        return int(value)

    # -- clients -------------------------------------------------------------------------------

    async def create_client(self, client: Client) -> None:
        _check_client(client)
        now = self._clock()

        async def work(conn: AsyncConnection) -> bool:
            await self._insert_client(conn, client, now)
            return True

        await self._tracked(work)

    async def get_client(self, client_id: str) -> Client | None:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_clients_query().where(clients.c.client_id == client_id))).all()
        found = _clients_from_rows(rows)
        return found[0] if found else None

    async def list_clients(self) -> list[Client]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_clients_query())).all()
        return _clients_from_rows(rows)

    async def replace_client(self, client: Client) -> bool:
        _check_client(client)
        now = self._clock()

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(clients)
                .where(clients.c.client_id == client.client_id)
                .values(_client_values(client, now))
            )
            if result.rowcount == 0:
                return False
            await self._replace_credentials(conn, client, now)
            return True

        return await self._tracked(work)

    async def delete_client(self, client_id: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(delete(clients).where(clients.c.client_id == client_id))
            return result.rowcount > 0  # credentials (and opaque tokens) go by ON DELETE CASCADE

        return await self._tracked(work)

    async def sync_file_clients(self, clients_: list[Client]) -> None:
        """Make the clients with source='file' exactly `clients_` (each stored with source='file').

        Unchanged clients are left alone (bookkeeping timestamps aside, nothing is rewritten), so a
        reload of an unchanged file does not bump the generation. A file client whose client_id is
        already registered through the API raises ClientExists and nothing is written.
        """
        wanted = {c.client_id: dataclasses.replace(c, source="file") for c in clients_}
        if len(wanted) != len(clients_):
            raise ValueError("sync_file_clients: the same client_id appears more than once")
        for client in wanted.values():
            _check_client(client)
        now = self._clock()

        async def work(conn: AsyncConnection) -> bool:
            query = _clients_query().where(
                (clients.c.source == "file") | clients.c.client_id.in_(list(wanted))
            )
            existing = {c.client_id: c for c in _clients_from_rows((await conn.execute(query)).all())}
            for client_id, current in existing.items():
                if current.source != "file" and client_id in wanted:
                    raise ClientExists(f"{client_id}: already registered through the API, not from the file")
            changed = False
            gone = [cid for cid in existing if cid not in wanted]
            if gone:
                await conn.execute(delete(clients).where(clients.c.client_id.in_(gone)))
                changed = True
            for client_id, client in wanted.items():
                stored = existing.get(client_id)
                if stored is None:
                    await self._insert_client(conn, client, now)
                    changed = True
                elif not _same_client(stored, client):
                    await conn.execute(
                        update(clients)
                        .where(clients.c.client_id == client_id)
                        .values(_client_values(client, now))
                    )
                    await self._replace_credentials(conn, client, now)
                    changed = True
            return changed

        await self._tracked(work)

    # -- signing keys --------------------------------------------------------------------------

    async def add_signing_key(self, key: SigningKey) -> None:
        _check_aware(key.created_at, key.activated_at, key.retired_at, key.publish_until)

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                self._insert(signing_keys)
                .values(
                    kid=key.kid,
                    alg=key.alg,
                    state=key.state,
                    public_jwk=key.public_jwk,
                    private_jwk_sealed=key.private_jwk_sealed,
                    created_at=key.created_at,
                    activated_at=key.activated_at,
                    retired_at=key.retired_at,
                    publish_until=key.publish_until,
                )
                .on_conflict_do_nothing(index_elements=[signing_keys.c.kid])
            )
            if result.rowcount != 1:
                raise SigningKeyExists(key.kid)
            return True

        await self._tracked(work)

    async def list_signing_keys(self) -> list[SigningKey]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
                )
            ).all()
        return [SigningKey(**row._asdict()) for row in rows]

    async def set_signing_key_state(
        self, kid: str, state: KeyState, at: datetime, publish_until: datetime | None = None
    ) -> bool:
        _check_aware(at, publish_until)
        values: dict[str, Any] = {"state": state}
        if state == "active":
            values["activated_at"] = at
        elif state == "retired":
            values["retired_at"] = at
        if publish_until is not None:
            values["publish_until"] = publish_until

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(update(signing_keys).where(signing_keys.c.kid == kid).values(values))
            return result.rowcount > 0

        return await self._tracked(work)

    # -- replay cache, deny-list ---------------------------------------------------------------

    async def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """One INSERT ... ON CONFLICT DO NOTHING: the database decides which racing worker wins.

        A jti stays remembered until `purge_expired` removes it, even past `expires_at`.
        """
        _check_aware(expires_at)
        if self._hot is not None:
            return await self._hot.remember_jti(client_id, jti, expires_at)
        statement = (
            self._insert(assertion_jti)
            .values(client_id=client_id, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[assertion_jti.c.client_id, assertion_jti.c.jti])
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def revoke_token(self, token_key: str, expires_at: datetime) -> None:
        _check_aware(expires_at)
        if self._hot is not None:
            await self._hot.revoke_token(token_key, expires_at)
            return
        statement = (
            self._insert(revoked_tokens)
            .values(token_key=token_key, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[revoked_tokens.c.token_key])
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def is_revoked(self, token_key: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.scalar(select(exists().where(revoked_tokens.c.token_key == token_key)))
        return bool(found)

    async def purge_expired(self, now: datetime) -> int:
        _check_aware(now)
        removed = 0
        async with self._writer.begin() as conn:
            for table in (assertion_jti, revoked_tokens, opaque_tokens):
                result = await conn.execute(delete(table).where(table.c.expires_at <= now))
                removed += result.rowcount
        return removed

    # -- opaque access tokens --------------------------------------------------------------------

    async def add_opaque_token(self, token: OpaqueToken) -> None:
        _check_aware(token.expires_at)
        statement = opaque_tokens.insert().values(
            token_sha256=token.token_sha256,
            client_id=token.client_id,
            claims=token.claims,
            expires_at=token.expires_at,
            revoked=token.revoked,
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def get_opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(opaque_tokens).where(opaque_tokens.c.token_sha256 == token_sha256))
            ).first()
        return None if row is None else OpaqueToken(**row._asdict())

    async def revoke_opaque_token(self, token_sha256: str) -> bool:
        statement = (
            update(opaque_tokens).where(opaque_tokens.c.token_sha256 == token_sha256).values(revoked=True)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount > 0

    # -- helpers -------------------------------------------------------------------------------

    async def _tracked(self, work: Callable[[AsyncConnection], Awaitable[bool]]) -> bool:
        """Run `work` in a write transaction that bumps the generation; keep it only if it changed
        something. Any exception rolls everything back (leaving the connection context does)."""
        async with self._writer.connect() as conn:
            await conn.execute(
                update(store_generation)
                .where(store_generation.c.id == 1)
                .values(value=store_generation.c.value + 1)
            )
            changed = await work(conn)
            if changed:
                await conn.commit()
            else:
                await conn.rollback()
            return changed

    async def _insert_client(self, conn: AsyncConnection, client: Client, now: datetime) -> None:
        result = await conn.execute(
            self._insert(clients)
            .values(client_id=client.client_id, **_client_values(client, now))
            .on_conflict_do_nothing(index_elements=[clients.c.client_id])
        )
        if result.rowcount != 1:
            raise ClientExists(client.client_id)
        await _insert_credentials(conn, client.credentials, now, {})

    async def _replace_credentials(self, conn: AsyncConnection, client: Client, now: datetime) -> None:
        """Swap the whole credential set; a credential that keeps its id keeps its created_at."""
        old = await conn.execute(
            delete(client_credentials)
            .where(client_credentials.c.client_id == client.client_id)
            .returning(client_credentials.c.id, client_credentials.c.created_at)
        )
        kept = {row.id: row.created_at for row in old}
        await _insert_credentials(conn, client.credentials, now, kept)


def _check_aware(*values: datetime | None) -> None:
    """Refuse naive datetimes up front with a plain ValueError (the column type would too, wrapped)."""
    for value in values:
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store accepts only timezone-aware values")


def _check_client(client: Client) -> None:
    _check_aware(client.client_id_issued_at, client.client_secret_expires_at, client.updated_at)
    for credential in client.credentials:
        if credential.client_id != client.client_id:
            raise ValueError(
                f"credential {credential.id!r} belongs to {credential.client_id!r}, not {client.client_id!r}"
            )
        _check_aware(credential.not_before, credential.not_after, credential.created_at)


def _client_values(client: Client, now: datetime) -> dict[str, Any]:
    """Every column but the key; without an `updated_at` the store stamps the time of this write."""
    return {
        "metadata": client.metadata,
        "source": client.source,
        "registration_access_token_sha256": client.registration_access_token_sha256,
        "client_id_issued_at": client.client_id_issued_at,
        "client_secret_expires_at": client.client_secret_expires_at,
        "updated_at": client.updated_at or now,
    }


async def _insert_credentials(
    conn: AsyncConnection, credentials: Iterable[Credential], now: datetime, kept: dict[str, datetime]
) -> None:
    rows = [
        {
            "id": c.id,
            "client_id": c.client_id,
            "kind": c.kind,
            "value": c.value,
            "thumbprint": c.thumbprint,
            "not_before": c.not_before,
            "not_after": c.not_after,
            "created_at": c.created_at or kept.get(c.id) or now,
        }
        for c in credentials
    ]
    if rows:
        await conn.execute(client_credentials.insert(), rows)


_CLIENT_COLUMNS = tuple(column.name for column in clients.columns)
_CREDENTIAL_COLUMNS = ("id", "kind", "value", "thumbprint", "not_before", "not_after", "created_at")


def _clients_query() -> Select[Any]:
    """Clients with their credentials in ONE statement, so a read never sees half of a replace."""
    return (
        select(clients, *(client_credentials.c[name].label(f"cred_{name}") for name in _CREDENTIAL_COLUMNS))
        .select_from(clients.outerjoin(client_credentials))
        .order_by(clients.c.client_id, client_credentials.c.created_at, client_credentials.c.id)
    )


def _clients_from_rows(rows: Sequence[Row[Any]]) -> list[Client]:
    found: dict[str, tuple[dict[str, Any], list[Credential]]] = {}
    for row in rows:
        m = row._mapping
        client_id = m["client_id"]
        if client_id not in found:
            found[client_id] = ({name: m[name] for name in _CLIENT_COLUMNS}, [])
        if m["cred_id"] is not None:
            found[client_id][1].append(
                Credential(client_id=client_id, **{name: m[f"cred_{name}"] for name in _CREDENTIAL_COLUMNS})
            )
    return [Client(**fields, credentials=tuple(creds)) for fields, creds in found.values()]


def _same_client(stored: Client, wanted: Client) -> bool:
    """Equal in everything a file can say (bookkeeping timestamps are the store's own)."""

    def content(c: Client) -> tuple[Any, ...]:
        creds = sorted(
            (x.id, x.kind, x.value, x.thumbprint, x.not_before, x.not_after) for x in c.credentials
        )
        return (
            c.metadata,
            c.source,
            c.registration_access_token_sha256,
            c.client_id_issued_at,
            c.client_secret_expires_at,
            creds,
        )

    return content(stored) == content(wanted)


if TYPE_CHECKING:
    _implements_the_protocol: type[Store] = SqlStore  # mypy checks every signature against interface.py
