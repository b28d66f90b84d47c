"""Which of a route's ``auth_methods`` a request is decided by, for routes where the gateway is the
relying party (part 2: ``authorization_code``, ``session``), and what then goes upstream.

Order, as Kong's: the login callback at ``redirect_uri``'s path; a logout (a path ending in
``logout_uri_suffix`` with one of ``logout_methods``); a bearer token when the route validates one
(part 1, unchanged); the session cookie; and last, for a ``GET`` or ``HEAD`` of a browser without
any of these, the login. A request that can carry none of them is 401, as in part 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from starlette.types import Scope

from certbound.gateway.answers import missing_token
from certbound.gateway.body import BufferedBody
from certbound.gateway.events import Record
from certbound.gateway.grants import CallerGrants
from certbound.gateway.login import BrowserLogin
from certbound.gateway.presented import REFRESH_TOKEN_HEADER, RefreshTokens, Userinfo
from certbound.gateway.replies import Reply, cookie_values
from certbound.gateway.tokens import TokenInfo

__all__ = ["Admission", "RelyingParty"]

Header = tuple[bytes, bytes]
_SAFE: Final = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let through by a token the gateway holds: who, and the header carrying the token up."""

    info: TokenInfo
    token_header: Header
    #: headers added to the upstream's answer (a rotated refresh token handed back to the caller)
    answer_headers: tuple[Header, ...] = ()


class RelyingParty:
    """One route's part-2 methods (see the module docstring)."""

    __slots__ = (
        "_downstream_refresh",
        "_header",
        "_logout_methods",
        "_logout_suffix",
        "bearer",
        "grants",
        "login",
        "refresh",
        "userinfo",
    )

    def __init__(
        self,
        login: BrowserLogin | None,
        *,
        grants: CallerGrants | None = None,
        userinfo: Userinfo | None = None,
        refresh: RefreshTokens | None = None,
        bearer: bool,
        upstream_access_token_header: str,
        logout_uri_suffix: str | None,
        logout_methods: Sequence[str],
        downstream_refresh_token_header: str | None = None,
    ) -> None:
        self.login = login
        self.grants = grants
        self.userinfo = userinfo
        self.refresh = refresh
        self.bearer = bearer  # the route also validates tokens callers send (bearer, introspection)
        name, _, prefix = upstream_access_token_header.partition(":")
        self._header = (name.strip().lower().encode("ascii"), (prefix.strip() + " ").lstrip().encode("ascii"))
        self._logout_suffix = logout_uri_suffix
        self._logout_methods = frozenset(logout_methods)
        back = downstream_refresh_token_header
        self._downstream_refresh = back.lower().encode("ascii") if back else None

    @property
    def private_headers(self) -> frozenset[bytes]:
        """Request headers carrying credentials for the gateway (never sent upstream)."""
        return frozenset({REFRESH_TOKEN_HEADER}) if self.refresh is not None else frozenset()

    @property
    def cookie_names(self) -> tuple[str, ...]:
        """The gateway's own cookies on this route: never sent upstream, whatever admitted the request."""
        return self.login.cookie_names if self.login is not None else ()

    def token_header(self, token: str) -> Header:
        name, prefix = self._header
        return name, prefix + token.encode("ascii")

    async def decide(
        self, scope: Scope, authorization: Sequence[bytes], body: BufferedBody, record: Record
    ) -> Reply | Admission | None:
        """A reply the gateway gives itself, an admission by a token it holds or obtained, or None:
        the bearer token decides (part 1). Raises GatewayError for refusals and IdP failures."""
        login = self.login
        method: str = scope["method"]
        path: str = scope["path"]
        if self.grants is not None:
            obtained = await self.grants.obtain(scope, authorization, body)
            if obtained is not None:
                record.info, record.cached = obtained.info, obtained.cached
                return Admission(obtained.info, self.token_header(obtained.access_token))
        if self.refresh is not None:
            refreshed = await self.refresh.obtain(scope, body)
            if refreshed is not None:
                record.info, record.cached = refreshed.info, refreshed.cached
                back: tuple[Header, ...] = ()
                if refreshed.refresh_token is not None and self._downstream_refresh is not None:
                    back = ((self._downstream_refresh, refreshed.refresh_token.encode("ascii")),)
                return Admission(refreshed.info, self.token_header(refreshed.access_token), back)
        if login is None:
            return await self._presented(authorization, record)
        cookies = cookie_values(scope["headers"])
        if path == login.callback_path and method == "GET" and scope.get("query_string"):
            return await login.callback(scope["query_string"].decode("latin-1"), cookies)
        if self._logout_suffix and path.endswith(self._logout_suffix) and method in self._logout_methods:
            return await login.logout(await login.session(cookies))
        if authorization:
            return await self._presented(authorization, record)
        session = await login.session(cookies)
        if session is not None:
            tokens = await login.tokens(session)
            if tokens is not None:
                record.info = tokens.info
                return Admission(tokens.info, self.token_header(tokens.access_token))
        if method in _SAFE and not authorization:
            raw: bytes = scope.get("raw_path") or path.encode("utf-8")
            query: bytes = scope.get("query_string", b"")
            return_to = (raw + (b"?" + query if query else b"")).decode("latin-1")
            reply = await login.start(return_to)
            if session is not None:  # the session ended: its cookie goes too
                reply.set_cookies.append(login.session_cookie.clear())
                reply.detail = "the identity provider refused the session's refresh: session ended"
            return reply
        return await self._presented(authorization, record)

    async def _presented(self, authorization: Sequence[bytes], record: Record) -> Admission | None:
        """The caller's bearer token decides: part 1's methods (None), or the IdP's userinfo."""
        if self.bearer:
            return None
        if self.userinfo is not None:
            info, token, record.cached = await self.userinfo.check(authorization)
            record.info = info
            return Admission(info, (b"authorization", b"Bearer " + token.encode("ascii")))
        raise missing_token()
