"""Request plumbing shared by the endpoints that authenticate clients (token, introspection, revocation).

- Only ``POST`` with an ``application/x-www-form-urlencoded`` body (RFC 6749 sections 3.2 and 2.3.1):
  another method is 405, another content type 400 ``invalid_request``; the body is capped.
- A parameter given twice is ``invalid_request`` naming it (RFC 6749 section 3.2, node-oidc-provider
  ``reject_dupes``), except those an endpoint declares repeatable (``resource``, RFC 8707).
- An empty value counts as absent (RFC 6749 section 3.1); a NUL character is refused.
- The `AuthRequest` for `certbound.server.clientauth` is built from the form, the Authorization header (two
  of them are refused) and the certificate the TLS layer or a trusted proxy put in the ASGI scope.
- `OAuthEndpoint` wraps a handler so that every answer, errors included, is JSON with
  ``Cache-Control: no-store`` and ``Pragma: no-cache``, and nothing a client sends can cause a 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import unquote_plus

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.config import Settings
from certbound.errors import OAuthError
from certbound.server.clientauth.audiences import assertion_audiences
from certbound.server.clientauth.types import Authenticated, AuthRequest, Endpoint
from certbound.server.clients.model import ClientModel
from certbound.server.endpoints.responses import json_response, oauth_error_response
from certbound.tls.client_certificate import client_certificate_from_scope

__all__ = [
    "FORM_MEDIA_TYPE",
    "MAX_FORM_BYTES",
    "MAX_FORM_FIELDS",
    "Authenticator",
    "Form",
    "OAuthEndpoint",
    "auth_request",
    "parse_form",
    "read_form",
]

log = logging.getLogger("certbound.endpoints")

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: Room for a client assertion with an x5c chain and a JWT to introspect; far below anything abusive.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64

Handler = Callable[[Request], Awaitable[Response]]


class Authenticator(Protocol):
    """`certbound.server.clientauth.registry.ClientAuthenticator`: raises OAuthError ``invalid_client``."""

    async def authenticate(self, request: AuthRequest) -> Authenticated: ...


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed form body. `params`: every parameter given once, as a plain dict. `lists`: the
    parameters declared repeatable, with every value in order (and absent from `params`)."""

    params: dict[str, str]
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _invalid_request(description: str, reason: str) -> OAuthError:
    return OAuthError("invalid_request", description, reason=f"request.{reason}")


def _too_large() -> OAuthError:
    # made only when raised: an exception object per request would cost more than the check
    return _invalid_request(f"the request body is larger than {MAX_FORM_BYTES} bytes", "body_too_large")


#: Parameters whose values are public and repeat from request to request (a scope, a resource URL):
#: their decoded form is remembered. Never a secret, an assertion or a token.
_REPEATING: Final = frozenset({"grant_type", "scope", "resource", "client_id", "client_assertion_type",
                               "token_type_hint", "audience"})  # fmt: skip
_REMEMBERED_LENGTH: Final = 512


@functools.lru_cache(maxsize=1024)
def _unquote_repeating(value: str) -> str:
    return unquote_plus(value, errors="strict")


def _pairs(text: str) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, as `urllib.parse.parse_qsl` with blank values kept
    would give them, but decoding only what is encoded (three times faster on a token-sized body),
    and an encoded public value that was seen before from memory (`unquote_plus` is ~2 µs a value)."""
    parts = text.split("&")
    if len(parts) > MAX_FORM_FIELDS:
        raise ValueError("too many fields")
    pairs: list[tuple[str, str]] = []
    for part in parts:
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, errors="strict")
        if "%" in value or "+" in value:
            if name in _REPEATING and len(value) <= _REMEMBERED_LENGTH:
                value = _unquote_repeating(value)
            else:
                value = unquote_plus(value, errors="strict")
        pairs.append((name, value))
    return pairs


def parse_form(body: bytes, *, repeatable: Collection[str] = ()) -> Form:
    """Parse an urlencoded body (UTF-8), refusing duplicates and NULs; raises OAuthError."""
    try:
        pairs = _pairs(body.decode("utf-8"))
    except ValueError:  # bad UTF-8 (raw or percent-encoded), or too many fields
        raise _invalid_request(
            f"the body is not a UTF-8 form of at most {MAX_FORM_FIELDS} parameters", "malformed_form"
        ) from None
    params: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    duplicates: list[str] = []
    for name, value in pairs:
        if not name or not value:
            continue
        if "\x00" in name or "\x00" in value:
            raise _invalid_request("parameters must not contain NUL characters", "nul")
        if name in repeatable:
            lists.setdefault(name, []).append(value)
        elif name in params:
            if name not in duplicates:
                duplicates.append(name)
        else:
            params[name] = value
    if duplicates:
        names = ", ".join(duplicates)
        plural = "s" if len(duplicates) > 1 else ""
        raise _invalid_request(f"parameter{plural} {names} must not be given more than once", "duplicate")
    return Form(params, {name: tuple(values) for name, values in lists.items()})


async def read_form(request: Request, *, repeatable: Collection[str] = ()) -> Form:
    """The form body of `request` (content type checked, size capped); raises OAuthError."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise _invalid_request(f"the request body must be {FORM_MEDIA_TYPE}", "content_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _too_large()
    # straight from the ASGI receive channel: nothing else reads this body, and it skips the cost of
    # Starlette's stream generator on every request
    body = b""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise _too_large()
        if not message.get("more_body", False):
            break
    return parse_form(body, repeatable=repeatable)


def auth_request(request: Request, form: Form, endpoint: Endpoint, path: str) -> AuthRequest:
    """What client authentication needs; `path` is the endpoint's path (for assertion audiences)."""
    authorizations = request.headers.getlist("authorization")
    if len(authorizations) > 1:
        raise _invalid_request("only one Authorization header may be sent", "duplicate_authorization")
    settings: Settings = request.app.state.settings
    return AuthRequest(
        endpoint=endpoint,
        form=form.params,
        authorization=authorizations[0] if authorizations else None,
        certificate=client_certificate_from_scope(request.scope),
        audiences=assertion_audiences(settings.issuer_url, settings.mtls_url, path),
    )


@dataclass(frozen=True)
class TokenRequest:
    """An authenticated request about one token (introspection, revocation)."""

    form: Form
    client: ClientModel
    token: str


async def authenticated_token_request(request: Request, endpoint: Endpoint, path: str) -> TokenRequest:
    """Parse the form, authenticate the caller (401 first), then require `token` (RFC 7662, RFC 7009)."""
    form = await read_form(request)
    authenticator: Authenticator = request.app.state.authenticator
    authenticated = await authenticator.authenticate(auth_request(request, form, endpoint, path))
    token = form.params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "token is required", reason="request.missing_token")
    return TokenRequest(form, authenticated.client, token)


def method_not_allowed() -> Response:
    return json_response(
        {"error": "invalid_request", "error_description": "this endpoint accepts POST only"},
        405,
        {"Allow": "POST"},
    )


async def run(request: Request, handler: Handler) -> Response:
    """Run `handler` for a POST; render an OAuthError as RFC 6749 JSON and anything else as a 500."""
    if request.method != "POST":
        return method_not_allowed()
    try:
        return await handler(request)
    except OAuthError as err:
        log.info("%s refused: %s (%s)", request.url.path, err.error, err.reason or "-")
        return oauth_error_response(err)
    except ClientDisconnect:
        return json_response({"error": "invalid_request"}, 400)
    except Exception:
        log.error("unhandled error on %s", request.url.path, exc_info=True)
        return json_response({"error": "server_error"}, 500)


class OAuthEndpoint:
    """An ASGI endpoint that takes every method, so that a wrong one gets our 405 (with no-store)
    rather than the router's."""

    __slots__ = ("_handler",)

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await run(Request(scope, receive), self._handler)
        await response(scope, receive, send)
