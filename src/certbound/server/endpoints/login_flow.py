"""The browser side of the authorization code flow: the login session, and what happens next.

A person's browser holds one sealed ``__Host-certbound`` cookie naming a server-side session
(`certbound.sessions`, purpose ``as-login``). The session carries a CSRF token (the hidden field of
every form, compared in constant time), after login the user (`subject`, `auth_time`) and a ``sid``,
and the authorization requests under way, each under a random ticket: the login and consent pages
name the ticket, never the request's parameters. A login rotates the session id (against session
fixation) and the CSRF token with it.

`LoginFlow.proceed` decides the next step for a request: the login page (nobody logged in, the user
no longer enabled, ``prompt=login``, or ``max_age`` passed), the consent page (the client needs
consent and the user has not approved every scope, or ``prompt=consent``), else a code, sent to the
client by a redirect; ``prompt=none`` turns the first two into ``login_required`` /
``consent_required`` redirects. Pages move by 303 redirects and plain form posts only.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from certbound.errors import OAuthError
from certbound.server.authorization.codes import CodeIssuer, Login
from certbound.server.authorization.redirects import error_redirect, redirect_with
from certbound.server.authorization.request import AuthorizationError, AuthorizationRequest, ClientModels
from certbound.server.clients.model import ClientModel
from certbound.server.login_cookie import PURPOSE
from certbound.server.pages import Pages
from certbound.server.paths import CONSENT, LOGIN
from certbound.sessions import CookieError, Session, SessionCookie, SessionLimits, SqlSessionStore
from certbound.store.grants import SqlGrantStore
from certbound.store.records import User
from certbound.store.users import SqlUserStore

__all__ = ["LoginFlow", "Ticket", "read_pairs"]
#: How long an authorization request may wait for its login and consent.
PENDING_LIFETIME = timedelta(minutes=30)
#: Requests kept per session at once (several tabs); the oldest goes first.
MAX_TICKETS = 8
MAX_BODY = 16 * 1024

log = structlog.get_logger("certbound.login")


async def read_pairs(request: Request) -> list[tuple[str, str]]:
    """A page's form body (``application/x-www-form-urlencoded``, at most 16 KiB) as pairs; the
    query's for a GET."""
    if request.method in ("GET", "HEAD"):
        try:
            return parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=64)
        except ValueError:  # more than 64 fields
            raise OAuthError(
                "invalid_request", "the request has too many parameters", reason="authorize.malformed"
            ) from None
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the form must be application/x-www-form-urlencoded",
                         reason="authorize.malformed")  # fmt: skip
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise OAuthError("invalid_request", "the form is too large", reason="authorize.malformed")
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=64, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(
            "invalid_request", "the form is not UTF-8 form data", reason="authorize.malformed"
        ) from None


@dataclass(frozen=True)
class Ticket:
    """An authorization request waiting in the session, and how far it got."""

    id: str
    request: AuthorizationRequest
    logged_in: bool = False
    consented: bool = False


class LoginFlow:
    """What the authorize, login and consent endpoints share (one per worker)."""

    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientModels,
        sessions: SqlSessionStore,
        cookie: SessionCookie,
        users: SqlUserStore,
        grants: SqlGrantStore,
        codes: CodeIssuer,
        pages: Pages,
        login_lifetime: int,
    ) -> None:
        self.issuer = issuer
        self.clients = clients
        self.sessions = sessions
        self.cookie = cookie
        self.users = users
        self.grants = grants
        self.codes = codes
        self.pages = pages
        self._login_limits = SessionLimits(timedelta(seconds=login_lifetime))

    # -- the session -----------------------------------------------------------------------------

    async def session(self, request: Request) -> Session | None:
        """The live login session of this browser, if any."""
        try:
            opened = self.cookie.open(request.cookies.get(self.cookie.name))
        except CookieError:
            return None
        return await self.sessions.get(opened.session_id, purpose=PURPOSE)

    async def user(self, session: Session | None) -> User | None:
        """The logged-in user of `session`, if they may still log in."""
        if session is None or session.subject is None:
            return None
        user = await self.users.get(session.subject)
        return user if user is not None and user.enabled else None

    def csrf_ok(self, session: Session | None, presented: str | None) -> bool:
        expected = session.data.get("csrf") if session is not None else None
        if not isinstance(expected, str) or not presented:
            return False
        return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8", "replace"))

    def with_cookie(self, response: Response, session: Session) -> Response:
        response.headers.append("Set-Cookie", self.cookie.set_cookie(session))
        return response

    async def log_in(self, session: Session, user: User) -> Session | None:
        """Rotate the session to `user`, with a fresh CSRF token and sid (against session fixation)."""
        data = {**session.data, "csrf": secrets.token_urlsafe(24), "sid": secrets.token_urlsafe(16)}
        now = datetime.now(UTC)
        return await self.sessions.rotate(
            dataclasses.replace(session, subject=user.sub, auth_time=now, data=data),
            limits=self._login_limits,
        )

    # -- tickets ---------------------------------------------------------------------------------

    @staticmethod
    def ticket(session: Session | None, ticket_id: str | None) -> Ticket | None:
        if session is None or not ticket_id:
            return None
        tickets = session.data.get("tickets")
        found = tickets.get(ticket_id) if isinstance(tickets, Mapping) else None
        if not isinstance(found, Mapping) or found.get("expires", 0) < time.time():
            return None
        return Ticket(
            ticket_id,
            AuthorizationRequest.from_data(found["request"]),
            bool(found.get("logged_in")),
            bool(found.get("consented")),
        )

    @staticmethod
    def _tickets_with(
        data: Mapping[str, Any], ticket: Ticket | None, drop: str | None = None
    ) -> dict[str, Any]:
        """`data` with `ticket` kept (and `drop` and expired tickets gone)."""
        tickets = {
            k: v
            for k, v in dict(data.get("tickets") or {}).items()
            if k != drop and isinstance(v, Mapping) and v.get("expires", 0) >= time.time()
        }
        if ticket is not None:
            tickets[ticket.id] = {
                "request": ticket.request.as_data(),
                "logged_in": ticket.logged_in,
                "consented": ticket.consented,
                "expires": time.time() + PENDING_LIFETIME.total_seconds(),
            }
            while len(tickets) > MAX_TICKETS:
                tickets.pop(min(tickets, key=lambda k: tickets[k]["expires"]))
        return {**data, "tickets": tickets}

    async def _keep(self, session: Session | None, ticket: Ticket) -> tuple[Session, bool]:
        """`session` (or a new anonymous one) holding `ticket`; True when it is new (set the cookie)."""
        if session is None:
            created = await self.sessions.create(
                purpose=PURPOSE,
                limits=SessionLimits(PENDING_LIFETIME),
                data=self._tickets_with({"csrf": secrets.token_urlsafe(24)}, ticket),
            )
            return created, True
        updated = await self.sessions.update(
            dataclasses.replace(session, data=self._tickets_with(session.data, ticket))
        )
        if updated is None:  # ended meanwhile (logout in another tab): start afresh
            return await self._keep(None, ticket)
        return updated, False

    # -- the next step ---------------------------------------------------------------------------

    async def start(
        self, session: Session | None, request: AuthorizationRequest, client: ClientModel
    ) -> Response:
        """The answer to a checked authorization request."""
        return await self.proceed(session, Ticket(secrets.token_urlsafe(16), request), client)

    async def proceed(self, session: Session | None, ticket: Ticket, client: ClientModel) -> Response:
        request = ticket.request
        user = await self.user(session)
        if user is None or self.needs_login(session, ticket):
            if "none" in request.prompt:
                return self.error_redirect(request, "login_required", "the user is not logged in",
                                           "authorize.login_required")  # fmt: skip
            return await self._to_page(session, ticket, LOGIN.path)
        assert session is not None
        if await self._needs_consent(user, ticket, client):
            if "none" in request.prompt:
                return self.error_redirect(request, "consent_required", "the user has not consented",
                                           "authorize.consent_required")  # fmt: skip
            return await self._to_page(session, ticket, CONSENT.path)
        return await self.answer(session, ticket, user)

    def needs_login(self, session: Session | None, ticket: Ticket) -> bool:
        """Whether `ticket` still waits for the password (nobody logged in for it, ``prompt=login``,
        or a login older than ``max_age``)."""
        if ticket.logged_in:
            return False
        if "login" in ticket.request.prompt:
            return True
        max_age = ticket.request.max_age
        auth_time = session.auth_time if session is not None else None
        return max_age is not None and (
            auth_time is None or datetime.now(UTC) - auth_time > timedelta(seconds=max_age)
        )

    async def _needs_consent(self, user: User, ticket: Ticket, client: ClientModel) -> bool:
        if ticket.consented or not client.consent_required:
            return False
        if "consent" in ticket.request.prompt:
            return True
        granted = await self.grants.consented(user.sub, client.client_id)
        return not set(ticket.request.scope) <= granted

    async def _to_page(self, session: Session | None, ticket: Ticket, path: str) -> Response:
        kept, new = await self._keep(session, ticket)
        response = RedirectResponse(f"{path}?{urlencode({'ticket': ticket.id})}", status_code=303)
        return self.with_cookie(response, kept) if new else response

    async def answer(self, session: Session, ticket: Ticket, user: User) -> Response:
        """Issue the code and send the browser back to the client; the ticket is done."""
        request = ticket.request
        assert session.auth_time is not None
        sid = session.data.get("sid")
        login = Login(user.sub, int(session.auth_time.timestamp()), sid if isinstance(sid, str) else "")
        code = await self.codes.issue(request, login)
        if ticket.id in dict(session.data.get("tickets") or {}):
            done = self._tickets_with(session.data, None, ticket.id)
            await self.sessions.update(dataclasses.replace(session, data=done))
        location = redirect_with(
            request.redirect_uri, {"code": code, "state": request.state, "iss": self.issuer}
        )
        return RedirectResponse(location, status_code=303)

    def error_redirect(
        self, request: AuthorizationRequest, error: str, description: str, reason: str
    ) -> Response:
        log.info("authorize", outcome="refused", reason=reason, client_id=request.client_id)
        location = error_redirect(
            request.redirect_uri,
            error=error,
            description=description,
            state=request.state,
            issuer=self.issuer,
        )
        return RedirectResponse(location, status_code=303)

    def refused(self, refusal: AuthorizationError) -> Response:
        """A refused authorization request: back to the client, or the error page (status 400)."""
        error = refusal.error
        log.info("authorize", outcome="refused", reason=error.reason, error=error.error)
        if refusal.redirect_uri is None:
            return self.pages.message(
                "This request cannot be answered",
                "The application sent an authorization request this server cannot answer, and it cannot "
                "be sent back safely. Go back to the application and try again, or tell its developers.",
                status=400,
                detail=f"{error.error}: {error.description}" if error.description else error.error,
            )
        location = error_redirect(
            refusal.redirect_uri,
            error=error.error,
            description=error.description,
            state=refusal.state,
            issuer=self.issuer,
        )
        return RedirectResponse(location, status_code=303)

    def expired(self) -> Response:
        """A page whose session or ticket is gone."""
        log.info("login_page", outcome="refused", reason="login.expired")
        return self.pages.message(
            "This page has expired",
            "Your login took too long, or was finished in another window. Go back to the application "
            "and start again.",
            status=400,
        )

    def forged(self) -> Response:
        """A form without this browser's CSRF token."""
        log.warning("login_page", outcome="refused", reason="login.csrf")
        return self.pages.message(
            "The form could not be accepted",
            "The form was not sent from this site's page in this browser, or the page is too old. Go back, "
            "reload the page and try again.",
            status=403,
        )

    async def client_of(self, ticket: Ticket) -> ClientModel | None:
        return await self.clients(ticket.request.client_id)
