"""What client authentication gets from an HTTP request (token, introspection, revocation).

The `AuthRequest` for `certbound.server.clientauth` is built from the parsed form, the Authorization
header (two of them are refused) and the certificate the TLS layer or a trusted proxy put in the
ASGI scope. The audiences an assertion may name are the endpoint's, computed once when the endpoint
is built (`certbound.server.clientauth.audiences.assertion_audiences`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from certbound.server.clientauth.types import Authenticated, AuthRequest, Endpoint
from certbound.server.clients.model import ClientModel
from certbound.server.endpoints.errors import invalid_request
from certbound.server.endpoints.form import Form, read_form
from certbound.tls.client_certificate import client_certificate_from_scope

__all__ = ["Authenticator", "TokenRequest", "auth_request", "authenticated_token_request"]


class Authenticator(Protocol):
    """`certbound.server.clientauth.registry.ClientAuthenticator`: raises OAuthError ``invalid_client``."""

    async def authenticate(self, request: AuthRequest) -> Authenticated: ...


def auth_request(request: Request, form: Form, endpoint: Endpoint, audiences: frozenset[str]) -> AuthRequest:
    """What client authentication needs; `audiences` are the ``aud`` values this endpoint accepts."""
    authorizations = request.headers.getlist("authorization")
    if len(authorizations) > 1:
        raise invalid_request("only one Authorization header may be sent", "request.duplicate_authorization")
    return AuthRequest(
        endpoint=endpoint,
        form=form.params,
        authorization=authorizations[0] if authorizations else None,
        certificate=client_certificate_from_scope(request.scope),
        audiences=audiences,
    )


@dataclass(frozen=True)
class TokenRequest:
    """An authenticated request about one token (introspection, revocation)."""

    form: Form
    client: ClientModel
    token: str


async def authenticated_token_request(
    request: Request, authenticator: Authenticator, endpoint: Endpoint, audiences: frozenset[str]
) -> TokenRequest:
    """Parse the form, authenticate the caller (401 first), then require `token` (RFC 7662, RFC 7009)."""
    form = await read_form(request)
    authenticated = await authenticator.authenticate(auth_request(request, form, endpoint, audiences))
    token = form.params.get("token")
    if token is None:
        raise invalid_request("token is required", "request.missing_token")
    return TokenRequest(form, authenticated.client, token)
