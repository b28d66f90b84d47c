"""The UserInfo endpoint (OpenID Connect Core section 5.3), GET and POST, with a Bearer access token.

Any active access token of this server that was granted ``openid`` is accepted, whatever else its
``aud`` names. A certificate-bound token (``cnf.x5t#S256``) is accepted only over a connection that
presents that certificate (RFC 8705 section 3): without it, or with another, it is 401
``invalid_token``. The claims follow the granted scopes: ``sub`` always, the profile claims for
``profile``, ``email`` and ``email_verified`` for ``email``. A user disabled or deleted since is
``invalid_token`` too. Errors are RFC 6750: 401 with ``WWW-Authenticate: Bearer``, 403
``insufficient_scope``.

The claims are JSON, or, for a client registered with ``userinfo_signed_response_alg`` (OpenID
Connect Registration section 2), a JWT (``application/jwt``) signed with that algorithm's key, with
``iss`` and ``aud`` (the client) added (OpenID Connect Core section 5.3.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.jose.binding import check_binding
from certbound.jose.errors import JwtError
from certbound.server.clients.model import ClientModel
from certbound.server.endpoints.responses import NO_STORE, json_response, oauth_error_response
from certbound.server.tokens.access_token import CurrentKeys
from certbound.server.tokens.minter import ID_TOKEN_TYP
from certbound.server.tokens.verifier import AccessTokenVerifier
from certbound.store.records import User
from certbound.tls.client_certificate import client_certificate_from_scope

__all__ = ["PROFILE_CLAIMS", "USERINFO_JWT_TYP", "UserinfoEndpoint", "userinfo_claims"]

#: The ``typ`` of a signed UserInfo response (a JWT, as the ID token's).
USERINFO_JWT_TYP = ID_TOKEN_TYP

#: OpenID Connect Core section 5.4: the claims the profile scope releases.
PROFILE_CLAIMS = (
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
)  # fmt: skip


class UserReader(Protocol):
    async def get(self, sub: str) -> User | None: ...


ClientModels = Callable[[str], Awaitable[ClientModel | None]]


def _bearer_error(status: int, error: str | None, description: str, reason: str) -> OAuthError:
    challenge = "Bearer" if error is None else f'Bearer error="{error}", error_description="{description}"'
    return OAuthError(
        error or "invalid_request", description, status=status, reason=reason,
        headers={"WWW-Authenticate": challenge},
    )  # fmt: skip


def userinfo_claims(user: User, scope: frozenset[str]) -> dict[str, Any]:
    """What the user shares with these scopes."""
    claims: dict[str, Any] = {"sub": user.sub}
    if "profile" in scope:
        claims |= {name: user.claims[name] for name in PROFILE_CLAIMS if name in user.claims}
        claims.setdefault("preferred_username", user.username)
    if "email" in scope and "email" in user.claims:
        claims["email"] = user.claims["email"]
        claims["email_verified"] = bool(user.claims.get("email_verified", False))
    return claims


class UserinfoEndpoint:
    def __init__(
        self,
        verifier: AccessTokenVerifier,
        users: UserReader,
        *,
        clients: ClientModels,
        keys: CurrentKeys,
        issuer: str,
    ) -> None:
        self._verifier = verifier
        self._users = users
        self._clients = clients
        self._keys = keys
        self._issuer = issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.respond(request)
        except OAuthError as error:
            response = oauth_error_response(error)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        authorizations = request.headers.getlist("authorization")
        scheme, _, token = (authorizations[0] if len(authorizations) == 1 else "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _bearer_error(401, None, "send the access token as Authorization: Bearer",
                                "userinfo.missing_token")  # fmt: skip
        active = await self._verifier.active(token.strip())
        if active is None:
            raise _bearer_error(
                401, "invalid_token", "the access token is not active", "userinfo.invalid_token"
            )
        certificate = client_certificate_from_scope(request.scope)
        try:
            check_binding(active.claims, certificate.x5t_s256 if certificate is not None else None)
        except JwtError:
            raise _bearer_error(
                401, "invalid_token", "the access token is bound to a certificate that was not presented",
                "userinfo.certificate",
            ) from None  # fmt: skip
        granted = frozenset(str(active.claims.get("scope", "")).split())
        if "openid" not in granted:
            raise _bearer_error(403, "insufficient_scope", "the access token was not granted openid",
                                "userinfo.insufficient_scope")  # fmt: skip
        user = await self._users.get(active.claims["sub"])
        if user is None or not user.enabled:
            raise _bearer_error(
                401, "invalid_token", "the access token's user is gone", "userinfo.invalid_token"
            )
        claims = userinfo_claims(user, granted)
        alg = await self._signing_alg(active.client_id)
        if alg is None:
            return json_response(claims)
        signed = (await self._keys.ring()).active(alg).sign(
            claims | {"iss": self._issuer, "aud": active.client_id}, typ=USERINFO_JWT_TYP
        )
        return Response(signed, media_type="application/jwt", headers=NO_STORE)

    async def _signing_alg(self, client_id: str) -> str | None:
        """The client's registered ``userinfo_signed_response_alg``; None for plain JSON."""
        client = await self._clients(client_id)
        return client.userinfo_signed_response_alg if client is not None else None
