"""`SqlGrantStore`: what the authorization code flow keeps, in the store's database.

Authorization codes, grants (one per code exchange: the family of its refresh tokens), refresh
tokens, the access tokens of each grant, consent and pushed authorization requests. The rules the
issue's security depends on are single atomic statements or single transactions:

- a code is redeemed by one ``UPDATE ... WHERE used_at IS NULL``: of two redemptions racing, one wins,
  and the other finds it used (a replay, which revokes what the first issued);
- a refresh token is rotated by one ``UPDATE ... WHERE rotated_at IS NULL`` in the transaction that
  issues its successor, so a token is exchanged at most once (a second use is reuse);
- issuing under a grant first locks the grant's row (PostgreSQL; SQLite's write lock does it), and
  revoking a grant marks it and deny-lists its access tokens in one transaction, so no token issued
  under a grant escapes its revocation;
- a request_uri is taken by one ``UPDATE ... WHERE used_at IS NULL``.

Only digests of codes, refresh tokens and request_uris are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certbound.store.engine import writer
from certbound.store.interface import OpaqueToken
from certbound.store.records import (
    AuthorizationCode,
    Grant,
    GrantAccessToken,
    PushedRequest,
    RefreshToken,
)
from certbound.store.schema import (
    authorization_codes,
    consents,
    grant_access_tokens,
    grants,
    opaque_tokens,
    pushed_requests,
    refresh_tokens,
    revoked_tokens,
    sessions,
    users,
)

__all__ = ["Issue", "IssueOutcome", "Redemption", "SqlGrantStore"]

Clock = Callable[[], datetime]
IssueOutcome = Literal["issued", "revoked", "reused", "user_gone"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Redemption:
    """What redeeming a code found: ``redeemed`` (the code, now used), or why not."""

    status: Literal["redeemed", "unknown", "used", "expired"]
    code: AuthorizationCode | None = None


@dataclass(frozen=True)
class Issue:
    """What one token response writes under a grant, in one transaction.

    `grant`: a new grant (a code exchange); None for a refresh under `grant_id`. `rotate`: the digest
    of the refresh token being exchanged. `refresh_token`: the new one, if any. `access_token`: the
    access token issued (its jti, and an opaque token's stored record).
    """

    grant_id: str
    access_token: GrantAccessToken
    grant: Grant | None = None
    rotate: str | None = None
    refresh_token: RefreshToken | None = None
    opaque: OpaqueToken | None = None


class SqlGrantStore:
    """Codes, grants, refresh tokens, consent and PAR requests on an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- authorization codes ---------------------------------------------------------------------

    async def add_code(self, code: AuthorizationCode) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                authorization_codes.insert().values(
                    code_sha256=code.code_sha256,
                    client_id=code.client_id,
                    grant_id=code.grant_id,
                    data=code.data,
                    expires_at=code.expires_at,
                )
            )

    async def redeem_code(self, code_sha256: str) -> Redemption:
        """Mark the code used, once: one UPDATE decides which of several racing redemptions wins."""
        now = self._clock()
        table = authorization_codes
        statement = (
            update(table)
            .where(table.c.code_sha256 == code_sha256, table.c.used_at.is_(None), table.c.expires_at > now)
            .values(used_at=now)
            .returning(*table.c)
        )
        async with self._writer.begin() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                found = (await conn.execute(select(table).where(table.c.code_sha256 == code_sha256))).first()
        if row is not None:
            return Redemption("redeemed", AuthorizationCode(**row._asdict()))
        if found is None:
            return Redemption("unknown")
        code = AuthorizationCode(**found._asdict())
        return Redemption("used" if code.used_at is not None else "expired", code)

    # -- grants and their tokens -----------------------------------------------------------------

    async def issue(self, issue: Issue) -> IssueOutcome:
        """Write a token response's records in one transaction (see the module docstring).

        ``revoked``: the grant is revoked or expired (or a replay revoked it first); ``reused``: the
        refresh token being exchanged was exchanged already; ``user_gone``: the user was disabled or
        deleted meanwhile. Nothing is written unless ``issued``.
        """
        now = self._clock()
        async with self._writer.connect() as conn:
            outcome = await self._issue(conn, issue, now)
            if outcome == "issued":
                await conn.commit()
            else:
                await conn.rollback()
        return outcome

    async def _issue(self, conn: AsyncConnection, issue: Issue, now: datetime) -> IssueOutcome:
        if issue.grant is not None:
            if not await _user_enabled(conn, issue.grant.subject):
                return "user_gone"
            inserted = await conn.execute(
                self._insert(grants)
                .values(_grant_values(issue.grant))
                .on_conflict_do_nothing(index_elements=[grants.c.grant_id])
            )
            if inserted.rowcount != 1:  # a replay of the code marked it revoked first
                return "revoked"
        else:
            live = (
                await conn.execute(
                    select(grants.c.subject)
                    .where(
                        grants.c.grant_id == issue.grant_id,
                        grants.c.revoked_at.is_(None),
                        grants.c.expires_at > now,
                    )
                    .with_for_update()
                )
            ).first()
            if live is None:
                return "revoked"
            if not await _user_enabled(conn, live.subject):
                return "user_gone"
        if issue.rotate is not None:
            rotated = await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_sha256 == issue.rotate,
                    refresh_tokens.c.grant_id == issue.grant_id,
                    refresh_tokens.c.rotated_at.is_(None),
                )
                .values(rotated_at=now)
            )
            if rotated.rowcount != 1:
                return "reused"
        if issue.refresh_token is not None:
            token = issue.refresh_token
            await conn.execute(
                refresh_tokens.insert().values(
                    token_sha256=token.token_sha256,
                    grant_id=token.grant_id,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                )
            )
        if issue.opaque is not None:
            opaque = issue.opaque
            await conn.execute(
                opaque_tokens.insert().values(
                    token_sha256=opaque.token_sha256,
                    client_id=opaque.client_id,
                    claims=opaque.claims,
                    expires_at=opaque.expires_at,
                    revoked=False,
                )
            )
        access = issue.access_token
        await conn.execute(
            grant_access_tokens.insert().values(
                jti=access.jti,
                grant_id=access.grant_id,
                opaque_sha256=access.opaque_sha256,
                expires_at=access.expires_at,
            )
        )
        return "issued"

    async def refresh_token(self, token_sha256: str) -> tuple[RefreshToken, Grant] | None:
        """The refresh token with this digest and its grant (revoked, expired or not: callers decide)."""
        query = (
            select(refresh_tokens, *(c.label(f"grant_{c.name}") for c in grants.c))
            .select_from(refresh_tokens.join(grants))
            .where(refresh_tokens.c.token_sha256 == token_sha256)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        m = row._mapping
        token = RefreshToken(**{c.name: m[c.name] for c in refresh_tokens.c})
        return token, Grant(**{c.name: m[f"grant_{c.name}"] for c in grants.c})

    async def revoke_grant(self, grant_id: str, *, marker: Grant | None = None) -> bool:
        """Revoke the grant and every access token issued under it, in one transaction; its refresh
        tokens die with it. With `marker` (a code replay), a grant not written yet is written revoked,
        so the first redemption, if still under way, cannot issue. True when something was revoked."""
        now = self._clock()
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(grants)
                .where(grants.c.grant_id == grant_id, grants.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            revoked = result.rowcount > 0
            if not revoked and marker is not None:
                try:
                    async with conn.begin_nested():
                        inserted = await conn.execute(
                            self._insert(grants)
                            .values(_grant_values(marker) | {"revoked_at": now})
                            .on_conflict_do_nothing(index_elements=[grants.c.grant_id])
                        )
                    revoked = inserted.rowcount > 0
                except IntegrityError:  # the user or the client is gone: nothing can be issued anyway
                    pass
            await _deny_list(conn, grants.c.grant_id == grant_id, self._insert)
        return revoked

    async def revoke_subject(self, subject: str, *, session_purpose: str | None = None) -> tuple[int, int]:
        """Revoke every grant of `subject` (a user disabled or deleted) and, with `session_purpose`,
        end their sessions of that purpose, in one transaction; returns (grants revoked, sessions
        ended). Ending the sessions matters: a user enabled again must log in again."""
        now = self._clock()
        ended = 0
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(grants)
                .where(grants.c.subject == subject, grants.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await _deny_list(conn, grants.c.subject == subject, self._insert)
            if session_purpose is not None:
                gone = await conn.execute(
                    delete(sessions).where(
                        sessions.c.subject == subject, sessions.c.purpose == session_purpose
                    )
                )
                ended = gone.rowcount
        return result.rowcount, ended

    # -- consent ---------------------------------------------------------------------------------

    async def consented(self, subject: str, client_id: str) -> frozenset[str]:
        """The scope values `subject` has approved for `client_id`."""
        query = select(consents.c.scope).where(
            consents.c.subject == subject, consents.c.client_id == client_id
        )
        async with self._engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def add_consent(self, subject: str, client_id: str, scope: Iterable[str]) -> None:
        now = self._clock()
        rows = [{"subject": subject, "client_id": client_id, "scope": s, "granted_at": now} for s in scope]
        if not rows:
            return
        statement = self._insert(consents).on_conflict_do_nothing(
            index_elements=[consents.c.subject, consents.c.client_id, consents.c.scope]
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement, rows)

    # -- pushed authorization requests (RFC 9126) -------------------------------------------------

    async def add_pushed(self, request: PushedRequest) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                pushed_requests.insert().values(
                    request_uri_sha256=request.request_uri_sha256,
                    client_id=request.client_id,
                    params=request.params,
                    expires_at=request.expires_at,
                )
            )

    async def take_pushed(self, request_uri_sha256: str, client_id: str) -> dict[str, str] | None:
        """The parameters of a live, unused request of `client_id`, marked used (one statement)."""
        now = self._clock()
        table = pushed_requests
        statement = (
            update(table)
            .where(
                table.c.request_uri_sha256 == request_uri_sha256,
                table.c.client_id == client_id,
                table.c.used_at.is_(None),
                table.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(table.c.params)
        )
        async with self._writer.begin() as conn:
            params = (await conn.execute(statement)).scalar_one_or_none()
        return None if params is None else dict(params)

    # -- housekeeping ----------------------------------------------------------------------------

    async def purge_expired(self, now: datetime) -> int:
        """Delete codes, PAR requests, grants (with their tokens) and access-token records past their
        expiry; returns how many rows went."""
        removed = 0
        async with self._writer.begin() as conn:
            for table in (authorization_codes, pushed_requests, grant_access_tokens, grants):
                result = await conn.execute(delete(table).where(table.c.expires_at <= now))
                removed += result.rowcount
        return removed


async def _user_enabled(conn: AsyncConnection, subject: str) -> bool:
    """Whether `subject` may still get tokens, read in the issuing transaction with the user's row
    locked (PostgreSQL ``FOR SHARE``; SQLite's write lock does it): ``certbound users disable`` or
    ``delete`` waits for an issue under way, and an issue after it finds the user gone, so no token
    escapes the command's revocation (the check before minting is not enough on its own)."""
    row = (
        await conn.execute(select(users.c.enabled).where(users.c.sub == subject).with_for_update(read=True))
    ).first()
    return row is not None and bool(row.enabled)


async def _deny_list(conn: AsyncConnection, which: Any, insert: Any) -> None:
    """Deny-list the access tokens of the grants `which` selects: the JWTs by jti, opaque ones marked."""
    issued = select(grant_access_tokens.c.jti, grant_access_tokens.c.expires_at).where(
        grant_access_tokens.c.grant_id.in_(select(grants.c.grant_id).where(which))
    )
    await conn.execute(
        insert(revoked_tokens)
        .from_select(["token_key", "expires_at"], issued)
        .on_conflict_do_nothing(index_elements=[revoked_tokens.c.token_key])
    )
    opaque = select(grant_access_tokens.c.opaque_sha256).where(
        and_(
            grant_access_tokens.c.opaque_sha256.is_not(None),
            grant_access_tokens.c.grant_id.in_(select(grants.c.grant_id).where(which)),
        )
    )
    await conn.execute(
        update(opaque_tokens).where(opaque_tokens.c.token_sha256.in_(opaque)).values(revoked=True)
    )


def _grant_values(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "client_id": grant.client_id,
        "subject": grant.subject,
        "data": grant.data,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
        "revoked_at": grant.revoked_at,
    }
