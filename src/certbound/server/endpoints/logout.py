"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at the end_session_endpoint.

The relying party sends the browser here with ``id_token_hint`` and/or ``client_id``, and maybe a
``post_logout_redirect_uri`` (which must be one the client registered in
``post_logout_redirect_uris``; a client must be known from ``client_id`` or the hint to use one) and a
``state``. An ``id_token_hint`` must be an ID token this server signed (an expired one is fine: it
only names the client and the user). The person is asked to confirm (one form, CSRF-protected, so a
third-party page cannot log anyone out); then the session ends, the cookie is cleared, and the
browser goes to the ``post_logout_redirect_uri`` with ``state``, or sees that they are logged out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from certbound.errors import OAuthError
from certbound.jose.algorithms import SIGNING_ALGS
from certbound.jose.errors import JwtError
from certbound.jose.keyring import KeyRingSource, RingProvider
from certbound.jose.verify import JwtVerifier
from certbound.server.authorization.redirects import redirect_with
from certbound.server.clients.model import ClientModel
from certbound.server.endpoints.login_flow import LoginFlow, read_pairs
from certbound.server.endpoints.page_endpoint import PageEndpoint
from certbound.server.paths import END_SESSION

__all__ = ["LogoutEndpoint"]

_CARRIED = ("post_logout_redirect_uri", "state", "client_id")


class _IssuedHere:
    """The claims of an ID token hint: ours (``iss``), naming a client (``aud``); expiry is no matter."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def check(
        self, claims: Mapping[str, Any], now: float, leeway: float, header: Mapping[str, Any] | None = None
    ) -> None:
        if claims.get("iss") != self._issuer:
            raise JwtError("jwt.bad_issuer", "iss is not this server")
        aud = claims.get("aud")
        if not (isinstance(aud, str) or (isinstance(aud, list) and aud and isinstance(aud[0], str))):
            raise JwtError("jwt.bad_claim", "aud is not a client")


def _refuse(description: str, reason: str) -> OAuthError:
    return OAuthError("invalid_request", description, reason=reason)


class LogoutEndpoint(PageEndpoint):
    def __init__(self, flow: LoginFlow, keys: RingProvider) -> None:
        super().__init__(flow)
        self._hints = JwtVerifier(
            KeyRingSource(keys), algorithms=SIGNING_ALGS, profile=_IssuedHere(flow.issuer)
        )

    async def _target(self, params: Mapping[str, str]) -> tuple[ClientModel | None, str | None]:
        """The client the request names, and the checked post_logout_redirect_uri (with state)."""
        client_id = params.get("client_id")
        hint = params.get("id_token_hint")
        if hint is not None:
            try:
                verified = await self._hints.verify(hint)
            except JwtError:
                raise _refuse(
                    "id_token_hint is not an ID token of this server", "logout.id_token_hint"
                ) from None
            aud = verified.claims["aud"]
            hinted = aud if isinstance(aud, str) else aud[0]
            if client_id is not None and client_id != hinted:
                raise _refuse("id_token_hint was issued to another client", "logout.id_token_hint")
            client_id = hinted
        client = await self.flow.clients(client_id) if client_id is not None else None
        uri = params.get("post_logout_redirect_uri")
        if uri is None:
            return client, None
        if client is None or uri not in client.post_logout_redirect_uris:
            raise _refuse(
                "post_logout_redirect_uri is not registered for the client that client_id or id_token_hint "
                "names",
                "logout.post_logout_redirect_uri",
            )
        return client, redirect_with(uri, {"state": params.get("state")})

    def _done(self, target: str | None, clear: bool) -> Response:
        response: Response
        if target is not None:
            response = RedirectResponse(target, status_code=303)
            response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        else:
            response = self.flow.pages.message("You are logged out", "You can close this window.")
        if clear:
            response.headers.append("Set-Cookie", self.flow.cookie.clear())
        return response

    async def get(self, request: Request) -> Response:
        return await self._ask(request, dict(reversed(await read_pairs(request))))

    async def post(self, request: Request) -> Response:
        params = dict(reversed(await read_pairs(request)))
        if params.get("logout") != "yes":
            return await self._ask(request, params)  # a relying party may send the request as a POST
        session = await self.flow.session(request)
        _, target = await self._target(params)
        if session is None:
            return self._done(target, clear=True)
        if not self.flow.csrf_ok(session, params.get("csrf_token")):
            return self.flow.forged()
        await self.flow.sessions.delete(session.id)
        return self._done(target, clear=True)

    async def _ask(self, request: Request, params: Mapping[str, str]) -> Response:
        client, target = await self._target(params)
        session = await self.flow.session(request)
        if session is None or session.subject is None:
            return self._done(target, clear=session is not None)
        user = await self.flow.user(session)
        carry = [(name, params[name]) for name in _CARRIED if name in params]
        if client is not None and "client_id" not in params:
            carry.append(("client_id", client.client_id))
        return self.flow.pages.render(
            "logout-form.html",
            title="Log out?",
            client_name=(client.client_name or client.client_id) if client is not None else None,
            username=user.username if user is not None else None,
            action=END_SESSION.path,
            csrf_token=session.data.get("csrf", ""),
            carry=carry,
        )
