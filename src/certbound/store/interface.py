"""The storage interface; SQLite and PostgreSQL both implement it (see `certbound.store.sql`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from certbound.store.records import Client, KeyState, SigningKey


class ClientExists(Exception):
    """A client with that client_id is already stored."""


class SigningKeyExists(Exception):
    """A signing key with that kid is already stored."""


@dataclass(frozen=True)
class OpaqueToken:
    """An opaque (reference) access token as stored: the SHA-256 of the token (hex), never the token."""

    token_sha256: str
    client_id: str
    claims: dict[str, Any]
    expires_at: datetime
    revoked: bool = False


class TokenState(Protocol):
    """Read-only questions about issued tokens, answered from the shared store at call time.

    Introspection asks them for every otherwise valid token: a revocation must hold on every worker
    and node from the moment it returned, which no cache can promise without hearing from the store.
    """

    async def is_revoked(self, jti: str) -> bool:
        """Whether the JWT access token with this `jti` is on the deny-list."""
        ...

    async def opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        """The stored opaque token with this digest (hex), revoked or not; None when unknown."""
        ...

    async def close(self) -> None:
        """Release what the reader opened (idempotent); the store stays open."""
        ...


class Store(Protocol):
    """What the server needs from persistence. Every method is one transaction: nothing half-written."""

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""

    async def close(self) -> None: ...

    async def generation(self) -> int:
        """A counter that grows whenever clients, credentials or signing keys change; caches compare it."""

    # clients (a client is stored together with its credentials, atomically)
    async def create_client(self, client: Client) -> None:
        """Insert client + credentials; raises ClientExists on a duplicate client_id."""

    async def get_client(self, client_id: str) -> Client | None: ...

    async def list_clients(self) -> list[Client]: ...

    async def replace_client(self, client: Client) -> bool:
        """Replace metadata and the whole credential set; False when no such client."""

    async def delete_client(self, client_id: str) -> bool: ...

    async def sync_file_clients(self, clients: list[Client]) -> None:
        """Make the set of clients with source='file' exactly `clients` (upsert + delete the rest)."""

    # signing keys
    async def add_signing_key(self, key: SigningKey) -> None:
        """Insert a signing key; raises SigningKeyExists on a duplicate kid."""

    async def list_signing_keys(self) -> list[SigningKey]: ...

    async def set_signing_key_state(
        self, kid: str, state: KeyState, at: datetime, publish_until: datetime | None = None
    ) -> bool:
        """Move a key to `state`: stamps `activated_at` (active) or `retired_at` (retired) with `at`,
        and sets `publish_until` when given. False when no such kid."""

    # shared short-lived state: one atomic statement each, visible to every worker and node
    async def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record a client assertion's `jti` until `expires_at`; False when it was already recorded
        (a replay). One atomic insert, so of several workers racing on the same jti exactly one wins."""

    async def revoke_token(self, token_key: str, expires_at: datetime) -> None:
        """Deny-list a token (its SHA-256 or its jti) until it would have expired anyway (idempotent)."""

    async def is_revoked(self, token_key: str) -> bool:
        """Whether `token_key` is on the deny-list."""

    async def purge_expired(self, now: datetime) -> int:
        """Delete replay-cache, deny-list and opaque-token rows whose `expires_at` <= `now`; returns
        how many rows went."""

    # opaque access tokens (certbound.server.tokens): looked up by the SHA-256 of the token, hex
    async def add_opaque_token(self, token: OpaqueToken) -> None:
        """Insert an opaque token (one statement); its client must exist."""

    async def get_opaque_token(self, token_sha256: str) -> OpaqueToken | None:
        """The stored token, revoked or not, expired or not (callers decide); None when unknown."""

    async def revoke_opaque_token(self, token_sha256: str) -> bool:
        """Mark an opaque token revoked (idempotent, one statement); False when there is no such token."""

    def token_state(self) -> TokenState:
        """A reader of the deny-list and opaque tokens for the request path, as cheap as this store
        can make it; same answers as `is_revoked` and `get_opaque_token`. Opens nothing until first
        used; the caller closes it (one per worker)."""
