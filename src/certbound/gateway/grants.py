"""Tokens the gateway obtains for callers that send credentials instead of a token (Kong's
``client_credentials`` and ``password`` auth methods).

* ``client_credentials``: the caller's own client_id and secret, in a Basic header (RFC 6749 section
  2.3.1: each part form-urlencoded, then Base64) or the form body (``client_id``, ``client_secret``),
  authenticate the grant at the IdP's token endpoint;
* ``password``: a username and password, Basic or form (``username``, ``password``), with the
  gateway's own client authentication (mTLS included).

Where each may come from is the route's ``client_credentials_param_type`` / ``password_param_type``
(``header``, ``body``); both methods on one route may not both read the header, so a Basic header is
never ambiguous. Tokens are cached by a salted SHA-256 of the credentials (the credentials are never
kept) until ``cache_tokens_leeway`` seconds before they expire; concurrent requests with the same
credentials share one token request. The caller's credentials never go upstream: the token does (a
form goes on without the fields that carried them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast
from urllib.parse import parse_qsl, unquote_plus, urlencode

import orjson
from starlette.types import Scope

from certbound.client import ClientError, OAuthServerError
from certbound.client.responses import TokenResponse, unverified_jwt_claims
from certbound.gateway.answers import bad_request, invalid_token
from certbound.gateway.body import BufferedBody
from certbound.gateway.idp import IdentityProvider, idp_error
from certbound.gateway.tokens import TokenInfo

__all__ = ["CallerGrants", "Obtained", "decode_basic", "without_fields"]

Kind = Literal["client_credentials", "password"]
#: Form bodies read for credentials at most this long (a login form, not an upload).
MAX_FORM: Final = 64 * 1024
#: Cached tokens at most (oldest dropped first).
MAX_CACHED: Final = 10_000
_FORM_TYPE: Final = b"application/x-www-form-urlencoded"
#: What the IdP answers when the caller's credentials, not the gateway, are wrong.
_CALLER_REFUSED: Final = frozenset({"invalid_client", "invalid_grant", "unauthorized_client", "invalid_scope",
                                    "unsupported_grant_type", "access_denied"})  # fmt: skip


def decode_basic(value: bytes) -> tuple[str, str] | None:
    """The (id, secret) of a ``Basic`` Authorization value (RFC 6749 section 2.3.1: Base64 of
    ``urlencoded(id):urlencoded(secret)``); None when it is not Basic. GatewayError 400 when it is
    Basic but malformed."""
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise bad_request("credentials.malformed", "the Basic credentials are not Base64 of UTF-8") from None
    name, colon, secret = decoded.partition(":")
    if not colon or not name:
        raise bad_request("credentials.malformed", "the Basic credentials are not 'id:secret'")
    return unquote_plus(name), unquote_plus(secret)


@dataclass(frozen=True, slots=True)
class Obtained:
    """A token obtained for a caller: who it is, the token, whether it came from the cache."""

    info: TokenInfo
    access_token: str
    cached: bool


@dataclass(slots=True)
class _Cached:
    access_token: str
    claims: dict[str, Any]
    use_until: float


class CallerGrants:
    """One route's client_credentials and password methods (see the module docstring)."""

    def __init__(
        self,
        idp: IdentityProvider,
        *,
        methods: Sequence[str],
        client_credentials_param_type: Sequence[str],
        password_param_type: Sequence[str],
        scope: str | None,
        cache_tokens: bool,
        cache_tokens_leeway: float,
        salt: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._idp = idp
        self._cc = "client_credentials" in methods
        self._password = "password" in methods
        self._cc_types = frozenset(client_credentials_param_type) if self._cc else frozenset()
        self._pw_types = frozenset(password_param_type) if self._password else frozenset()
        self._scope = scope
        self._cache = cache_tokens
        self._leeway = cache_tokens_leeway
        self._salt = (salt or secrets.token_hex(16)).encode("utf-8")
        self._clock = clock
        self._tokens: OrderedDict[bytes, _Cached] = OrderedDict()
        self._locks: dict[bytes, asyncio.Lock] = {}
        self.token_requests = 0  # calls made to the IdP's token endpoint

    def reads_body(self, scope: Scope) -> bool:
        """Whether credentials may be in this request's body (a form POST on a route reading bodies)."""
        if "body" not in self._cc_types | self._pw_types or scope["method"] != "POST":
            return False
        content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
        return content_type.split(b";")[0].strip().lower() == _FORM_TYPE

    async def obtain(
        self, scope: Scope, authorization: Sequence[bytes], body: BufferedBody
    ) -> Obtained | None:
        """A token for the credentials the request carries, or None when it carries none this route
        reads. GatewayError: malformed credentials (400), refused by the IdP (401), IdP failures."""
        found: tuple[Kind, str, str] | None = None
        if len(authorization) == 1 and "header" in self._cc_types | self._pw_types:
            pair = decode_basic(authorization[0])
            if pair is not None:
                kind: Kind = "client_credentials" if "header" in self._cc_types else "password"
                found = (kind, *pair)
        if found is None and self.reads_body(scope):
            found = self._from_form(await body.read(MAX_FORM), body)
        if found is None:
            return None
        info, token, cached = await self._token(*found)
        return Obtained(info, token, cached)

    def _from_form(self, raw: bytes, body: BufferedBody) -> tuple[Kind, str, str] | None:
        """The credentials of a form; the form goes upstream without their fields."""
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
        for kind, name, secret, types in (
            ("client_credentials", "client_id", "client_secret", self._cc_types),
            ("password", "username", "password", self._pw_types),
        ):
            if "body" in types and form.get(name) and secret in form:
                body.replace(without_fields(pairs, (name, secret)))
                return cast("Kind", kind), form[name], form[secret]
        return None

    async def _token(self, kind: Kind, name: str, secret: str) -> tuple[TokenInfo, str, bool]:
        # JSON keeps the parts apart (no separator a name or secret could contain), the salt the hash
        # from being looked up in a table of common secrets
        key = hashlib.sha256(self._salt + orjson.dumps([kind, name, secret])).digest()
        now = self._clock()
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if cached is not None and now < cached.use_until:
                return TokenInfo(cached.claims, kind, now), cached.access_token, True
            try:
                response = await self._request(kind, name, secret)
            finally:
                if key not in self._tokens:  # refused or uncached: no lock kept per wrong password
                    self._locks.pop(key, None)
            claims = _claims(response, kind, name)
            if self._cache and response.expires_at is not None:
                self._remember(
                    key, _Cached(response.access_token, claims, response.expires_at - self._leeway)
                )
                self._locks.setdefault(key, asyncio.Lock())
            return TokenInfo(claims, kind, now), response.access_token, False

    def _remember(self, key: bytes, entry: _Cached) -> None:
        self._tokens[key] = entry
        self._tokens.move_to_end(key)
        while len(self._tokens) > MAX_CACHED:
            old, _ = self._tokens.popitem(last=False)
            self._locks.pop(old, None)

    async def _request(self, kind: Kind, name: str, secret: str) -> TokenResponse:
        client = self._idp.client
        params = {"scope": self._scope} if self._scope else {}
        self.token_requests += 1
        try:
            if kind == "client_credentials":
                return await client.grant_for(name, secret, "client_credentials", params)
            return await client.grant("password", {**params, "username": name, "password": secret})
        except OAuthServerError as exc:
            caller = exc.error in _CALLER_REFUSED and not (
                kind == "password" and exc.error == "invalid_client"
            )
            if caller:
                raise invalid_token(
                    "credentials.refused", "the identity provider refused the credentials", str(exc)
                ) from None
            raise idp_error(exc) from None
        except ClientError as exc:
            raise idp_error(exc) from None


def without_fields(pairs: Sequence[tuple[str, str]], names: Sequence[str]) -> bytes:
    """A form, form-urlencoded again, without the fields `names` (every occurrence)."""
    return urlencode([(k, v) for k, v in pairs if k not in names]).encode("ascii")


def _claims(response: TokenResponse, kind: Kind, name: str) -> dict[str, Any]:
    """Who the token is for: a JWT's claims (it came straight from the IdP over TLS), or what the
    gateway knows (the client_id, or the username as the subject) with the granted scope."""
    claims = unverified_jwt_claims(response.access_token) or {}
    if not claims:
        claims = {"client_id": name} if kind == "client_credentials" else {"sub": name}
        if response.scope:
            claims["scope"] = response.scope
        if response.expires_at is not None:
            claims["exp"] = response.expires_at
    return claims
