"""The consent page: which client asks for what; approving grants every requested scope.

Contract for automated clients: one form whose submit button ``name="decision" value="approve"``
approves (``value="deny"`` declines: the client gets ``access_denied``). Consent is remembered per
user, client and scope value. A request that still needs a login (``prompt=login``, ``max_age``) is
sent to the login page from here too: the consent form cannot stand in for the password.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.login_flow import read_pairs
from certbound.server.endpoints.page_endpoint import PageEndpoint
from certbound.server.paths import CONSENT

__all__ = ["SCOPE_WORDS", "ConsentEndpoint"]

#: What a person is told each scope means.
SCOPE_WORDS = {
    "openid": ("Know who you are", "Your account identifier at this server"),
    "profile": ("See your profile", "Your name and the profile details kept here"),
    "email": ("See your e-mail address", "And whether it has been verified"),
    "offline_access": ("Stay connected", "Keep its access while you are away, without asking you again"),
}


def describe(scope: str) -> dict[str, str]:
    title, detail = SCOPE_WORDS.get(scope, (scope, "Access to the API this permission names"))
    return {"title": title, "detail": detail}


class ConsentEndpoint(PageEndpoint):
    async def get(self, request: Request) -> Response:
        session = await self.flow.session(request)
        ticket = self.flow.ticket(session, request.query_params.get("ticket"))
        user = await self.flow.user(session)
        client = await self.flow.client_of(ticket) if ticket is not None else None
        if session is None or ticket is None or client is None or user is None:
            return self.flow.expired()
        if self.flow.needs_login(session, ticket):
            return await self.flow.proceed(session, ticket, client)
        return self.flow.pages.render(
            "consent-form.html",
            title="Allow access?",
            client_name=client.client_name or client.client_id,
            scopes=[describe(s) for s in ticket.request.scope],
            username=user.username,
            action=CONSENT.path,
            csrf_token=session.data.get("csrf", ""),
            ticket=ticket.id,
        )

    async def post(self, request: Request) -> Response:
        form = dict(reversed(await read_pairs(request)))
        session = await self.flow.session(request)
        ticket = self.flow.ticket(session, form.get("ticket"))
        user = await self.flow.user(session)
        client = await self.flow.client_of(ticket) if ticket is not None else None
        if session is None or ticket is None or client is None or user is None:
            return self.flow.expired()
        if not self.flow.csrf_ok(session, form.get("csrf_token")):
            return self.flow.forged()
        if self.flow.needs_login(session, ticket):  # prompt=login or max_age: the login page first
            return await self.flow.proceed(session, ticket, client)
        if form.get("decision") != "approve":
            return self.flow.error_redirect(ticket.request, "access_denied", "the user declined",
                                            "authorize.access_denied")  # fmt: skip
        await self.flow.grants.add_consent(user.sub, client.client_id, ticket.request.scope)
        return await self.flow.answer(session, dataclasses.replace(ticket, consented=True), user)
