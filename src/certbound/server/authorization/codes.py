"""Authorization codes: 256 random bits, stored as their SHA-256, single use, 60 seconds.

A code is bound to the client, the redirect URI and the PKCE challenge of its request, and carries
what the code exchange needs to issue the tokens: who logged in and when (``sub``, ``auth_time``,
``sid``), the granted scope and audience, the ``nonce``. Each code names the grant its exchange will
create, so that a replay can revoke it (`certbound.store.grants`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from certbound.store.records import AuthorizationCode

if TYPE_CHECKING:  # the grants import code_digest, and the request module imports the grants
    from certbound.server.authorization.request import AuthorizationRequest

__all__ = ["CODE_LIFETIME", "CodeIssuer", "Login", "code_digest"]

CODE_LIFETIME = 60


class CodeStore(Protocol):
    async def add_code(self, code: AuthorizationCode) -> None: ...


@dataclass(frozen=True)
class Login:
    """Who is logged in: the user's subject, when they authenticated (epoch seconds), the session's sid."""

    sub: str
    auth_time: int
    sid: str


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


class CodeIssuer:
    def __init__(
        self, store: CodeStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    async def issue(self, request: AuthorizationRequest, login: Login) -> str:
        """A new code for `request`, answered for `login`."""
        code = secrets.token_urlsafe(32)
        data = {
            "redirect_uri": request.redirect_uri,
            "scope": list(request.scope),
            "audience": request.audience,
            "nonce": request.nonce,
            "code_challenge": request.code_challenge,
            "sub": login.sub,
            "auth_time": login.auth_time,
            "sid": login.sid,
        }
        await self._store.add_code(
            AuthorizationCode(
                code_sha256=code_digest(code),
                client_id=request.client_id,
                grant_id=secrets.token_urlsafe(16),
                data=data,
                expires_at=self._clock() + timedelta(seconds=CODE_LIFETIME),
            )
        )
        return code
