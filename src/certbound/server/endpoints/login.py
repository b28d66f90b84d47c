"""The login page: GET shows the form, POST checks the username and password.

Contract for automated clients: one ``<form method="post">`` with inputs named ``username`` and
``password`` (and the hidden ``csrf_token`` and ``ticket``). A wrong username or password shows the
form again with the error tied to the fields (401); a lock-out says how long to wait (429 with
``Retry-After``). A form without this browser's CSRF token is refused (403) before anything is
checked. Failures count against the client's address: the TCP peer's, or behind a proxy of
``trusted_proxies`` the one that proxy put in ``X-Forwarded-For`` (`certbound.tls.forwarded.client_address`).
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.login_flow import LoginFlow, Ticket, read_pairs
from certbound.server.endpoints.page_endpoint import PageEndpoint
from certbound.server.paths import LOGIN
from certbound.server.users.login import LoginRefused, Logins
from certbound.sessions import Session
from certbound.tls.forwarded import Network, client_address

__all__ = ["LoginEndpoint"]


class LoginEndpoint(PageEndpoint):
    def __init__(self, flow: LoginFlow, logins: Logins, trusted_proxies: tuple[Network, ...] = ()) -> None:
        super().__init__(flow)
        self._logins = logins
        self._trusted_proxies = trusted_proxies

    def _form(
        self, session: Session, ticket: Ticket, client_name: str, *, username: str = "", error: str = "",
        status: int = 200, headers: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        return self.flow.pages.render(
            "login-form.html",
            status=status,
            headers=headers,
            title="Log in",
            client_name=client_name,
            action=LOGIN.path,
            csrf_token=session.data.get("csrf", ""),
            ticket=ticket.id,
            username=username,
            error=error,
        )

    async def get(self, request: Request) -> Response:
        session = await self.flow.session(request)
        ticket = self.flow.ticket(session, request.query_params.get("ticket"))
        client = await self.flow.client_of(ticket) if ticket is not None else None
        if session is None or ticket is None or client is None:
            return self.flow.expired()
        name = client.client_name or client.client_id
        return self._form(session, ticket, name, username=ticket.request.login_hint or "")

    async def post(self, request: Request) -> Response:
        form = dict(reversed(await read_pairs(request)))  # the first of a repeated field wins
        session = await self.flow.session(request)
        ticket = self.flow.ticket(session, form.get("ticket"))
        client = await self.flow.client_of(ticket) if ticket is not None else None
        if session is None or ticket is None or client is None:
            return self.flow.expired()
        if not self.flow.csrf_ok(session, form.get("csrf_token")):
            return self.flow.forged()
        username = form.get("username", "")
        name = client.client_name or client.client_id
        peer = request.client.host if request.client is not None else None
        address = client_address(peer, request.headers.getlist("x-forwarded-for"), self._trusted_proxies)
        try:
            user = await self._logins.login(username, form.get("password", ""), address)
        except LoginRefused as refused:
            if refused.reason == "login.locked":
                wait = refused.retry_after_seconds
                minutes = f"{(wait + 59) // 60} minute{'s' if wait > 60 else ''}"
                return self._form(session, ticket, name, username=username, status=429,
                                  error=f"Too many failed attempts. Try again in {minutes}.",
                                  headers={"Retry-After": str(wait)})  # fmt: skip
            return self._form(session, ticket, name, username=username, status=401,
                              error="Wrong username or password.")  # fmt: skip
        logged_in = await self.flow.log_in(session, user)
        if logged_in is None:
            return self.flow.expired()
        response = await self.flow.proceed(logged_in, dataclasses.replace(ticket, logged_in=True), client)
        return self.flow.with_cookie(response, logged_in)
