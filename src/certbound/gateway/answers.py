"""The gateway's refusals and failures, and the one renderer that turns each into its answer.

Every way a request can end without reaching the upstream is a :class:`GatewayError` (an
:class:`~certbound.errors.OAuthError` with a catalogued reason and a log-only `detail`), made by the
constructors below so that status, error code and challenge always go together:

* RFC 6750 refusals carry ``WWW-Authenticate: Bearer realm="..."``: without an error code when the
  request had no token at all (section 3.1), with ``error`` and ``error_description`` otherwise
  (``invalid_request`` 400, ``invalid_token`` 401, ``insufficient_scope`` 403);
* failures of the identity provider or the upstream are 502, 503 or 504 without a challenge: the
  caller is not to blame, and the request was not passed on;
* every answer has the JSON body ``{"error", "error_description"}`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from certbound.errors import OAuthError

__all__ = [
    "Answer",
    "GatewayError",
    "bad_request",
    "forbidden",
    "idp_failure",
    "insufficient",
    "internal_error",
    "invalid_token",
    "missing_token",
    "not_found",
    "render",
    "upstream_failure",
]

#: The body's ``error`` of a request without a token: RFC 6750 gives no code for it (section 3.1).
NO_TOKEN_ERROR = "unauthorized"  # noqa: S105 - an error code
_FAILURE_ERRORS = {502: "bad_gateway", 503: "temporarily_unavailable", 504: "gateway_timeout"}
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")


@dataclass(eq=False)
class GatewayError(OAuthError):
    """A request the gateway ends itself: `challenge` adds RFC 6750's ``WWW-Authenticate``; `detail`
    goes to the log only."""

    challenge: bool = False
    detail: str = ""
    fields: Mapping[str, str] | None = None  # more log-only facts, as event fields of their own


def missing_token() -> GatewayError:
    """No access token: 401 with a challenge that names no error (RFC 6750 section 3.1)."""
    return GatewayError(
        NO_TOKEN_ERROR, "an access token is required", 401, reason="token.missing", challenge=True
    )


def bad_request(reason: str, description: str, *, challenge: bool = True) -> GatewayError:
    """400 ``invalid_request``: a malformed request (RFC 6750 section 3.1)."""
    return GatewayError("invalid_request", description, 400, reason=reason, challenge=challenge)


def invalid_token(
    reason: str, description: str, detail: str = "", fields: Mapping[str, str] | None = None
) -> GatewayError:
    """401 ``invalid_token``: expired, revoked, malformed, of another issuer, or wrongly bound (or its
    certificate revoked: `fields` then name the source and the revocation time for the event)."""
    return GatewayError(
        "invalid_token", description, 401, reason=reason, challenge=True, detail=detail, fields=fields
    )


def insufficient(reason: str, description: str) -> GatewayError:
    """403 ``insufficient_scope``: the token is good but does not allow this route."""
    return GatewayError("insufficient_scope", description, 403, reason=reason, challenge=True)


def idp_failure(reason: str, status: int, description: str, detail: str = "") -> GatewayError:
    """502/503: the identity provider failed; the request was not passed on."""
    return GatewayError(_FAILURE_ERRORS[status], description, status, reason=reason, detail=detail)


def upstream_failure(reason: str, status: int, description: str, detail: str = "") -> GatewayError:
    """502/504: the upstream failed or was too slow."""
    return GatewayError(_FAILURE_ERRORS[status], description, status, reason=reason, detail=detail)


def not_found(reason: str, description: str) -> GatewayError:
    return GatewayError("not_found", description, 404, reason=reason)


def forbidden(reason: str, description: str) -> GatewayError:
    """403 without a challenge: not about a token (a decision asked by an untrusted peer)."""
    return GatewayError("access_denied", description, 403, reason=reason)


def internal_error(detail: str) -> GatewayError:
    return GatewayError("server_error", "the gateway failed", 500, reason="internal.error", detail=detail)


@dataclass(frozen=True, slots=True)
class Answer:
    """An error answer ready for ASGI: status, headers, body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _quoted(text: str) -> str:
    """`text` as an RFC 6750 quoted-string value: printable ASCII without ``"`` and ``\\``."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


def challenge(error: GatewayError, realm: str) -> bytes:
    """The ``WWW-Authenticate`` value of a refusal."""
    value = f'Bearer realm="{_quoted(realm)}"'
    if error.error != NO_TOKEN_ERROR:
        value += f', error="{error.error}"'
        if error.description:
            value += f', error_description="{_quoted(error.description)}"'
    return value.encode("ascii")


def render(error: GatewayError, realm: str) -> Answer:
    """The answer to `error` on a route whose realm is `realm`: the gateway's one renderer."""
    body = orjson.dumps(error.body())
    headers = [_JSON, _NO_STORE, (b"content-length", str(len(body)).encode("ascii"))]
    if error.challenge:
        headers.append((b"www-authenticate", challenge(error, realm)))
    return Answer(error.status, headers, body)
