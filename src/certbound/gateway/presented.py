"""Tokens a caller presents that the gateway checks or uses at the IdP itself (Kong's ``userinfo`` and
``refresh_token`` auth methods), every call over mTLS with the gateway's certificate:

* ``userinfo``: the bearer token is good when the IdP's userinfo endpoint answers for it (the claims
  it returns are the identity); answers are cached by the token's SHA-256 for ``cache_ttl_max``. A
  token bound to the *caller's* certificate cannot pass this way (the gateway presents its own): use
  ``bearer`` or ``introspection`` for those.
* ``refresh_token``: the caller sends a refresh token issued to the gateway's client (header
  ``X-Refresh-Token``, or the form field ``refresh_token``); the gateway refreshes it with its own
  client authentication and forwards the request with the new access token, cached by a salted hash
  of the refresh token until ``cache_tokens_leeway`` before it expires. When the IdP rotates the
  refresh token, the new one goes back to the caller in ``downstream_refresh_token_header``: the
  old one is spent (and with certbound's IdP, using it again revokes the grant).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.types import Scope

from certbound.client import ClientError, OAuthServerError
from certbound.client.responses import unverified_jwt_claims
from certbound.gateway.answers import invalid_token
from certbound.gateway.body import BufferedBody
from certbound.gateway.grants import MAX_FORM, without_fields
from certbound.gateway.idp import IdentityProvider, idp_error
from certbound.gateway.tokens import TokenInfo, token_digest
from certbound.gateway.validation import bearer_token

__all__ = ["REFRESH_TOKEN_HEADER", "RefreshTokens", "Refreshed", "Userinfo"]

REFRESH_TOKEN_HEADER: Final = b"x-refresh-token"
_FORM_TYPE: Final = b"application/x-www-form-urlencoded"
_MAX_CACHED: Final = 10_000


class Userinfo:
    """Validate bearer tokens by the IdP's userinfo endpoint (see the module docstring)."""

    def __init__(
        self, idp: IdentityProvider, *, cache_ttl_max: float, clock: Callable[[], float] = time.time
    ):
        self._idp = idp
        self._ttl = cache_ttl_max
        self._clock = clock
        self._cache: dict[bytes, tuple[float, dict[str, Any]]] = {}
        self.calls = 0

    async def check(self, authorization: Sequence[bytes]) -> tuple[TokenInfo, str, bool]:
        """(who, the token, from the cache); GatewayError 401 when the IdP does not answer for it."""
        token = bearer_token(authorization)
        digest, now = token_digest(token), self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now < cached[0]:
            return TokenInfo(cached[1], "userinfo", now), token, True
        self.calls += 1
        try:
            claims = dict(await self._idp.client.userinfo(token))
        except OAuthServerError as exc:
            if exc.status in (400, 401, 403):
                raise invalid_token("userinfo.refused", "the identity provider's userinfo refused the token",
                                    str(exc)) from None  # fmt: skip
            raise idp_error(exc) from None
        except ClientError as exc:
            raise idp_error(exc) from None
        if not isinstance(claims.get("sub"), str):
            raise invalid_token("userinfo.refused", "the identity provider's userinfo names no subject")
        if self._ttl > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, claims)
        return TokenInfo(claims, "userinfo", now), token, False


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a caller's refresh token got: who, the access token, the rotated refresh token (None when
    the IdP kept the old one), whether it came from the cache."""

    info: TokenInfo
    access_token: str
    refresh_token: str | None
    cached: bool


@dataclass(frozen=True, slots=True)
class _Refreshed:
    use_until: float
    access_token: str
    refresh_token: str | None
    claims: dict[str, Any]


class RefreshTokens:
    """Access tokens for refresh tokens callers send (see the module docstring)."""

    def __init__(
        self,
        idp: IdentityProvider,
        *,
        cache_tokens_leeway: float,
        salt: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._idp = idp
        self._leeway = cache_tokens_leeway
        self._salt = (salt or secrets.token_hex(16)).encode("utf-8")
        self._clock = clock
        self._cache: dict[bytes, _Refreshed] = {}
        self._locks: dict[bytes, asyncio.Lock] = {}
        self.refreshes = 0

    async def obtain(self, scope: Scope, body: BufferedBody) -> Refreshed | None:
        """The new access token (and refresh token, when the IdP rotated it) for the refresh token
        the request carries, or None when it carries none; GatewayError 401 when the IdP refuses it."""
        refresh = await _presented(scope, body)
        if refresh is None:
            return None
        key = hashlib.sha256(self._salt + refresh.encode("utf-8")).digest()
        async with self._locks.setdefault(key, asyncio.Lock()):
            now = self._clock()
            cached = self._cache.get(key)
            if cached is not None and now < cached.use_until:
                return Refreshed(TokenInfo(cached.claims, "refresh_token", now), cached.access_token,
                                 cached.refresh_token, True)  # fmt: skip
            self.refreshes += 1
            try:
                response = await self._idp.client.refresh_token(refresh)
            except OAuthServerError as exc:
                if exc.error in ("invalid_grant", "unauthorized_client", "invalid_scope"):
                    why = "the identity provider refused the refresh token"
                    raise invalid_token("credentials.refused", why, str(exc)) from None
                raise idp_error(exc) from None
            except ClientError as exc:
                raise idp_error(exc) from None
            finally:
                if key not in self._cache:  # nothing to wait for next time: no lock kept per token
                    self._locks.pop(key, None)
            claims = unverified_jwt_claims(response.access_token) or {
                "client_id": self._idp.client.config.client_id
            }
            if response.scope and "scope" not in claims:
                claims["scope"] = response.scope
            rotated = response.refresh_token if response.refresh_token != refresh else None
            if response.expires_at is not None:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                    self._locks.clear()
                # the rotated refresh token is kept with it: a caller whose request raced this one
                # gets it too, so the one the IdP now honours is never lost
                self._cache[key] = _Refreshed(
                    response.expires_at - self._leeway, response.access_token, rotated, claims
                )
                self._locks.setdefault(key, asyncio.Lock())
            return Refreshed(TokenInfo(claims, "refresh_token", now), response.access_token, rotated, False)


async def _presented(scope: Scope, body: BufferedBody) -> str | None:
    for name, value in scope["headers"]:
        if name == REFRESH_TOKEN_HEADER:
            return value.decode("latin-1").strip() or None
    content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
    if scope["method"] == "POST" and content_type.split(b";")[0].strip().lower() == _FORM_TYPE:
        pairs = parse_qsl((await body.read(MAX_FORM)).decode("utf-8", "replace"), keep_blank_values=True)
        found = dict(pairs).get("refresh_token") or None
        if found is not None:  # the refresh token does not go upstream: the access token does
            body.replace(without_fields(pairs, ("refresh_token",)))
        return found
    return None
