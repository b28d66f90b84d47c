"""The gateway as a browser's relying party (``authorization_code`` + ``session``): Kong's login flow,
with every call to the IdP through the outbound client (mTLS, ``client_id``).

* **Login**: a browser without a session (a ``GET``) is sent to the IdP's authorization endpoint with
  a fresh ``state`` and ``nonce`` (256 bits each) and PKCE S256, by PAR when the IdP requires it or the
  route asks. What the callback must match (state, nonce, verifier, the request to go back to) is a
  short-lived pending session in the store, named by a sealed login cookie: the login belongs to the
  browser that began it, and a callback elsewhere finds no cookie.
* **Callback**: the state is compared in constant time, the pending login deleted (exactly one
  callback may use it: a replay finds nothing, and never reaches the IdP), the code exchanged at the
  token endpoint, the ID token verified (signature, iss, aud, nonce, exp). Only then is a session
  created: its tokens sealed in the store, its id in the route's session cookie.
* **Session**: the access token goes upstream; one that expires within ``cache_tokens_leeway`` is
  refreshed first (one refresh per session at a time in this worker); a refused refresh ends the
  session.
* **Logout**: the session is deleted, its tokens revoked one request each (``logout_revoke*``), every
  cookie cleared, and the browser sent to the IdP's ``end_session_endpoint``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from certbound.client import ClientError, OAuthServerError
from certbound.gateway.answers import GatewayError, idp_failure
from certbound.gateway.config import RouteSettings
from certbound.gateway.idp import IdentityProvider, idp_error
from certbound.gateway.replies import Reply, json_reply, redirect
from certbound.gateway.tokens import TokenInfo
from certbound.jose.claims import finite_number
from certbound.jose.errors import JwtError
from certbound.sealing import Sealer, SealingError
from certbound.sessions import CookieError, Session, SessionCookie, SessionLimits, SessionStore
from certbound.sessions.session import dump_data

__all__ = ["BrowserLogin", "LoginRefused", "SessionTokens"]

log = logging.getLogger("certbound.gateway")

LOGIN_LIFETIME: Final = timedelta(minutes=10)
#: A session's activity is recorded (its idle deadline moved) at most this often, in seconds.
TOUCH_EVERY: Final = 60.0
#: The longest path and query a pending login keeps to go back to.
MAX_RETURN_TO: Final = 2048
#: Seconds between looks at a session another worker is refreshing.
LEASE_POLL: Final = 0.05
#: Session data keys.
_ACCESS, _REFRESH, _ID, _EXP, _CLAIMS, _SCOPE = (
    "access_token",
    "refresh_token",
    "id_token",
    "exp",
    "claims",
    "scope",
)
#: ID token claims kept in the session (for identity headers): the rest is not needed.
_KEPT_CLAIMS: Final = ("sub", "iss", "aud", "auth_time", "acr", "amr", "sid", "name", "email",
                       "preferred_username", "email_verified")  # fmt: skip


def expires_at(now: float, tokens: Mapping[str, Any]) -> float | None:
    """When a token response's access token expires: now + ``expires_in`` when that is a number a
    float holds (not NaN or Infinity, which Python's json reads), else unknown."""
    expires_in = tokens.get("expires_in")
    return now + expires_in if finite_number(expires_in) else None


def kept_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ID token's claims a session keeps (`_KEPT_CLAIMS`), each only if the session store can hold
    it (its own rule, `dump_data`): a NaN or Infinity, which Python's json reads, made the login a 500."""
    kept: dict[str, Any] = {}
    for name in _KEPT_CLAIMS:
        if name in claims:
            try:
                dump_data({name: claims[name]})
            except (ValueError, RecursionError):
                continue
            kept[name] = claims[name]
    return kept


def _text(value: Any) -> str | None:
    """A token response member the session keeps only as a string (as a refresh does): anything
    else, a NaN or an Infinity included, which the session store would refuse (a 500), is absent."""
    return value if isinstance(value, str) else None


def _auth_time(claims: Mapping[str, Any]) -> datetime | None:
    """The ID token's ``auth_time`` as a datetime; None when absent or beyond what one holds (the
    year 10000, or no float at all): it is only recorded with the session."""
    value = claims.get("auth_time")
    if not finite_number(value):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


class _Bucket:
    """A token bucket on the monotonic clock: `rate` a second, at most `burst` saved up."""

    __slots__ = ("_at", "_burst", "_level", "_rate")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, max(1.0, burst)
        self._level, self._at = self._burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._level = min(self._burst, self._level + (now - self._at) * self._rate)
        self._at = now
        if self._level < 1.0:
            return False
        self._level -= 1.0
        return True


class LoginRefused(GatewayError):
    """A login flow step the gateway refuses (state, code, ID token). The login cookie stays: a forged
    callback must not end the browser's real login, and a used one names nothing any more."""


def _refused(reason: str, status: int, description: str, detail: str = "") -> LoginRefused:
    error = {400: "invalid_request", 403: "access_denied"}.get(status, "bad_gateway")
    return LoginRefused(error, description, status, reason=reason, detail=detail)


def _pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _cookie_base(route: str) -> str:
    """The cookie names' stem: the route's name, or its digest when the name is long."""
    if len(route) <= 48:
        return f"cbgw-{route}"
    return "cbgw-" + hashlib.sha256(route.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """What a live session lets through: the access token and who the ID token says is there."""

    access_token: str
    info: TokenInfo


class BrowserLogin:
    """One route's login, session, refresh and logout (see the module docstring)."""

    def __init__(
        self,
        route: RouteSettings,
        idp: IdentityProvider,
        sessions: SessionStore,
        sealer: Sealer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert route.redirect_uri is not None
        self.route = route.name
        self._idp = idp
        self._sessions = sessions
        self._clock = clock
        base = _cookie_base(route.name)
        self.purpose = f"gateway:{route.name}"
        self.login_purpose = f"gateway-login:{route.name}"
        now = lambda: datetime.fromtimestamp(clock(), UTC)  # noqa: E731
        self.session_cookie = SessionCookie(sealer, name=base, purpose=self.purpose, clock=now)
        self.login_cookie = SessionCookie(sealer, name=f"{base}-login", purpose=self.login_purpose, clock=now)
        self.cookie_names = (self.session_cookie.name, self.login_cookie.name)
        self.redirect_uri = route.redirect_uri
        parts = urlsplit(route.redirect_uri)
        self.callback_path = parts.path
        self._origin = f"{parts.scheme}://{parts.netloc}"  # the saved request goes back here, never elsewhere
        self._scope = " ".join(route.scopes)
        self._extra = dict(route.authorization_query_args)
        self._par = route.use_pushed_authorization_requests
        self._login_action = route.login_action
        self._login_redirect_uri = route.login_redirect_uri
        self._limits = SessionLimits(
            absolute=timedelta(seconds=route.session_absolute_timeout),
            idle=timedelta(seconds=route.session_idle_timeout) if route.session_idle_timeout else None,
        )
        self._refresh_early = route.cache_tokens_leeway
        self._leeway = route.leeway
        self._revoke_access = route.logout_revoke and route.logout_revoke_access_token
        self._revoke_refresh = route.logout_revoke and route.logout_revoke_refresh_token
        self._logout_redirect_uri = route.logout_redirect_uri
        self._refreshing: dict[str, asyncio.Future[Session | None]] = {}
        self._starts = _Bucket(route.login_starts_per_second, 10 * route.login_starts_per_second)
        # longer than a refresh can take (the IdP's timeout), so that a lease never ends mid-refresh
        self._lease_seconds = int(idp.client.config.timeout) + 5

    # -- login ------------------------------------------------------------------------------------

    async def start(self, return_to: str) -> Reply:
        """Send the browser to the IdP's login; `return_to` is the path and query to come back to.
        Each start writes a pending login to the store: at most ``login_starts_per_second`` (a burst
        of ten seconds' worth) in this worker, so a flood of requests without cookies cannot fill it."""
        if not self._starts.take():
            raise idp_failure("session.login_busy", 503, "too many logins are being started; try again soon",
                              "login_starts_per_second reached")  # fmt: skip
        if len(return_to) > MAX_RETURN_TO:  # kept in the store: the path alone, or the origin's root
            path = return_to.partition("?")[0]
            return_to = path if len(path) <= MAX_RETURN_TO else "/"
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),
        )
        metadata = await self._idp.metadata()
        endpoint = metadata.get("authorization_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith("https://"):
            raise idp_failure("idp.metadata", 502, "the identity provider's metadata cannot be used",
                              "no https authorization_endpoint")  # fmt: skip
        client_id = self._idp.client.config.client_id
        params = {
            **self._extra,
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self._scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": _pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if self._par or metadata.get("require_pushed_authorization_requests") is True:
            try:
                pushed = await self._idp.client.push_authorization_request(params)
            except ClientError as exc:
                raise idp_error(exc) from None
            query = {"client_id": client_id, "request_uri": str(pushed["request_uri"])}
        else:
            query = params
        pending = await self._sessions.create(
            purpose=self.login_purpose,
            limits=SessionLimits(absolute=LOGIN_LIFETIME),
            data={"state": state, "nonce": nonce, "verifier": verifier, "return_to": return_to},
        )
        separator = "&" if urlsplit(endpoint).query else "?"
        reply = redirect(f"{endpoint}{separator}{urlencode(query)}", reason="session.login_required",
                         detail="sent to the identity provider's login")  # fmt: skip
        reply.set_cookies.append(self.login_cookie.set_cookie(pending))
        return reply

    async def callback(self, query: str, cookies: Mapping[str, str]) -> Reply:
        """The IdP sent the browser back: check the state, exchange the code, verify the ID token,
        start the session. Raises LoginRefused or GatewayError (IdP failures); nothing is kept then."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            ticket = self.login_cookie.open(cookies.get(self.login_cookie.name))
        except CookieError as exc:
            raise _refused(
                "callback.no_login", 400, "no login was started in this browser", exc.reason
            ) from None
        pending = await self._open_pending(ticket.session_id)
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), str(pending.data.get("state", "")).encode()):
            raise _refused("callback.state_mismatch", 400, "the callback's state is not this browser's login")
        if not await self._sessions.delete(pending.id):  # a concurrent callback took it first
            raise _refused("callback.state_unknown", 400, "the login was already completed or has expired")
        if "error" in params:
            why = f"{params['error'][:64]}: {params.get('error_description', '')[:128]}"
            raise _refused("callback.idp_error", 403, "the identity provider did not log the user in", why)
        code = params.get("code")
        if not code:
            raise _refused("callback.no_code", 400, "the callback carries no authorization code")
        tokens = await self._exchange(code, str(pending.data["verifier"]))
        claims = await self._verified_id_token(tokens, str(pending.data["nonce"]))
        session = await self._sessions.create(
            purpose=self.purpose,
            limits=self._limits,
            subject=str(claims["sub"]),
            auth_time=_auth_time(claims),
            data=self._session_data(tokens, claims),
        )  # fmt: skip
        if self._login_action == "redirect" and self._login_redirect_uri is not None:
            reply = redirect(self._login_redirect_uri, status=303, detail="logged in")
        else:
            # the saved path on the gateway's own origin: a path like //elsewhere cannot leave it
            reply = redirect(
                self._origin + str(pending.data.get("return_to") or "/"), status=303, detail="logged in"
            )
        reply.set_cookies += [self.session_cookie.set_cookie(session), self.login_cookie.clear()]
        return reply

    async def _open_pending(self, session_id: str) -> Session:
        try:
            pending = await self._sessions.get(session_id, purpose=self.login_purpose)
        except SealingError as exc:
            raise _refused("callback.state_unknown", 400, "the login cannot be read", str(exc)) from None
        if pending is None:
            raise _refused("callback.state_unknown", 400, "the login was already completed or has expired")
        return pending

    async def _exchange(self, code: str, verifier: str) -> Mapping[str, Any]:
        form = {"code": code, "redirect_uri": self.redirect_uri, "code_verifier": verifier}
        try:
            return (await self._idp.client.grant("authorization_code", form)).data
        except OAuthServerError as exc:
            if exc.error in ("invalid_grant", "access_denied", "invalid_request"):
                raise _refused("callback.code_refused", 403, "the identity provider refused the login's code",
                               str(exc)) from None  # fmt: skip
            raise idp_error(exc) from None
        except ClientError as exc:
            raise idp_error(exc) from None

    async def _verified_id_token(self, tokens: Mapping[str, Any], nonce: str) -> dict[str, Any]:
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise _refused("callback.no_id_token", 502, "the identity provider sent no ID token")
        try:
            return await self._idp.verify_id_token(
                id_token, nonce=nonce, leeway=self._leeway, now=self._clock()
            )
        except JwtError as exc:
            raise _refused(
                exc.reason, 502, "the identity provider's ID token is not valid", exc.detail
            ) from None

    def _session_data(self, tokens: Mapping[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
        return {
            _ACCESS: tokens["access_token"],
            _REFRESH: _text(tokens.get("refresh_token")),
            _ID: tokens.get("id_token"),
            _EXP: expires_at(self._clock(), tokens),
            _SCOPE: _text(tokens.get("scope")),
            _CLAIMS: kept_claims(claims),
        }

    # -- sessions ---------------------------------------------------------------------------------

    async def session(self, cookies: Mapping[str, str]) -> Session | None:
        """The live session the browser's cookie names, or None (no cookie, a bad one, ended)."""
        value = cookies.get(self.session_cookie.name)
        if not value:
            return None
        try:
            ticket = self.session_cookie.open(value)
            return await self._sessions.get(ticket.session_id, purpose=self.purpose)
        except CookieError:
            return None
        except SealingError as exc:
            log.warning("gateway route %s: a session cannot be opened: %s", self.route, exc)
            return None

    async def tokens(self, session: Session) -> SessionTokens | None:
        """The session's access token, refreshed first when it expires soon; None when the IdP
        refused the refresh (the session is ended). GatewayError when the IdP fails."""
        now = self._clock()
        if self._expiring(session):
            refreshed = await self._refresh_once(session)
            if refreshed is None:
                return None
            session = refreshed
        elif (now - session.last_seen_at.timestamp()) >= TOUCH_EVERY:
            await self._sessions.touch(session)  # not a write per request: the idle limit is coarse
        data = session.data
        claims = {**data.get(_CLAIMS, {}), "client_id": self._idp.client.config.client_id}
        if data.get(_SCOPE):
            claims["scope"] = data[_SCOPE]
        if finite_number(data.get(_EXP)):
            claims["exp"] = data[_EXP]
        return SessionTokens(str(data[_ACCESS]), TokenInfo(claims, "session", now))

    async def _refresh_once(self, session: Session) -> Session | None:
        """One refresh per session at a time in this worker (the others wait for it) and, by a lease
        in the session store, in every worker and host sharing it: a rotated refresh token is used
        once, so an IdP that revokes the grant on reuse never sees a reuse."""
        pending = self._refreshing.get(session.id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        self._refreshing[session.id] = future
        try:
            result = await self._refresh_leased(session)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._refreshing.pop(session.id, None)
        future.set_result(result)
        return result

    async def _refresh_leased(self, session: Session) -> Session | None:
        """Refresh under the session's lease; while another worker holds it, wait for what it
        writes (the session with new tokens, or none) instead of refreshing the same token."""
        name = f"refresh:{session.id_sha256}"
        used = session.data.get(_REFRESH)
        deadline = time.monotonic() + self._lease_seconds
        while True:
            if await self._sessions.lease(name, self._lease_seconds):
                try:
                    current = await self._sessions.get(session.id, purpose=self.purpose)
                    if current is None:
                        return None
                    if current.data.get(_REFRESH) != used or not self._expiring(current):
                        return current  # another worker refreshed it meanwhile
                    return await self._refresh(current)
                finally:
                    await self._sessions.release(name)
            current = await self._sessions.get(session.id, purpose=self.purpose)
            if current is None:
                return None
            if current.data.get(_REFRESH) != used or not self._expiring(current):
                return current
            if time.monotonic() >= deadline:
                raise idp_failure("session.refresh_busy", 503, "the session's tokens are being refreshed",
                                  "another worker held the session's refresh lease too long")  # fmt: skip
            await asyncio.sleep(LEASE_POLL)

    def _expiring(self, session: Session) -> bool:
        exp = session.data.get(_EXP)
        return finite_number(exp) and self._clock() >= exp - self._refresh_early

    async def _refresh(self, session: Session) -> Session | None:
        refresh_token = session.data.get(_REFRESH)
        if not isinstance(refresh_token, str):
            await self._sessions.delete(session.id)
            return None
        try:
            tokens = (await self._idp.client.refresh_token(refresh_token)).data
        except OAuthServerError as exc:
            if exc.error in ("invalid_grant", "unauthorized_client", "invalid_scope"):
                log.info("gateway route %s: refresh refused (%s): session ended", self.route, exc.error)
                await self._sessions.delete(session.id)
                return None
            raise idp_error(exc) from None
        except ClientError as exc:
            raise idp_error(exc) from None
        data = dict(session.data)
        data[_ACCESS] = tokens["access_token"]
        data[_EXP] = expires_at(self._clock(), tokens)
        if isinstance(tokens.get("refresh_token"), str):
            data[_REFRESH] = tokens["refresh_token"]
        if isinstance(tokens.get("scope"), str):
            data[_SCOPE] = tokens["scope"]
        if isinstance(tokens.get("id_token"), str):
            data[_ID] = tokens["id_token"]
        updated = await self._sessions.update(replace(session, data=data))
        return updated

    # -- logout -----------------------------------------------------------------------------------

    async def logout(self, session: Session | None) -> Reply:
        """End the session, revoke its tokens (each with its own request), clear every cookie, and
        send the browser to the IdP's end_session_endpoint when it has one."""
        id_token = None
        revoked: list[str] = []
        failed: list[str] = []
        end_session = None
        if session is not None:
            await self._sessions.delete(session.id)
            id_token = session.data.get(_ID)
            for hint, wanted in ((_REFRESH, self._revoke_refresh), (_ACCESS, self._revoke_access)):
                token = session.data.get(hint)
                if wanted and isinstance(token, str):
                    (revoked if await self._revoke(token, hint) else failed).append(hint)
            try:
                end_session = (await self._idp.metadata()).get("end_session_endpoint")
            except GatewayError as exc:  # the IdP is away: the logout here still completes
                failed.append(f"end_session ({exc.reason})")
        detail = f"logged out; revoked: {', '.join(revoked) or 'nothing'}"
        if failed:
            detail += f"; failed: {', '.join(failed)}"
        if isinstance(end_session, str) and end_session.startswith("https://"):
            query = {"client_id": self._idp.client.config.client_id}
            if isinstance(id_token, str):
                query["id_token_hint"] = id_token
            if self._logout_redirect_uri is not None:
                query["post_logout_redirect_uri"] = self._logout_redirect_uri
            separator = "&" if urlsplit(end_session).query else "?"
            reply = redirect(f"{end_session}{separator}{urlencode(query)}", detail=detail)
        elif self._logout_redirect_uri is not None:
            reply = redirect(self._logout_redirect_uri, detail=detail)
        else:
            reply = json_reply(200, {"logged_out": True}, detail=detail)
        reply.set_cookies += [self.session_cookie.clear(), self.login_cookie.clear()]
        return reply

    async def _revoke(self, token: str, hint: str) -> bool:
        """RFC 7009 at the IdP over mTLS; a failure is logged and said in the event (the session is
        gone either way)."""
        try:
            await self._idp.client.revoke(token, token_type_hint=hint)
        except ClientError as exc:
            log.warning("gateway route %s: revoking the %s failed: %s", self.route, hint, exc)
            return False
        return True
