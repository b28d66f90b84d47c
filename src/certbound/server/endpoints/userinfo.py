"""The UserInfo endpoint (OpenID Connect Core section 5.3), GET and POST, with a Bearer access token.

Any active access token of this server that was granted ``openid`` is accepted, whatever else its
``aud`` names. A certificate-bound token (``cnf.x5t#S256``) is accepted only over a connection that
presents that certificate (RFC 8705 section 3): without it, or with another, it is 401
``invalid_token``. The claims follow the granted scopes: ``sub`` always, the profile claims for
``profile``, ``email`` and ``email_verified`` for ``email``. A user disabled or deleted since is
``invalid_token`` too. Errors are RFC 6750: 401 with ``WWW-Authenticate: Bearer``, 403
``insufficient_scope``.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.jose.binding import check_binding
from certbound.jose.errors import JwtError
from certbound.server.endpoints.responses import json_response, oauth_error_response
from certbound.server.tokens.verifier import AccessTokenVerifier
from certbound.store.records import User
from certbound.tls.client_certificate import client_certificate_from_scope

__all__ = ["PROFILE_CLAIMS", "UserinfoEndpoint", "userinfo_claims"]

#: OpenID Connect Core section 5.4: the claims the profile scope releases.
PROFILE_CLAIMS = (
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
)  # fmt: skip


class UserReader(Protocol):
    async def get(self, sub: str) -> User | None: ...


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
    def __init__(self, verifier: AccessTokenVerifier, users: UserReader) -> None:
        self._verifier = verifier
        self._users = users

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
        return json_response(userinfo_claims(user, granted))
