"""The server's answers, kept verbatim (`raw`) beside their parsed form, and its errors made typed.

The CLI's ``--json`` must print exactly what the server sent, so the text is kept as received. A JWT
access token's claims can be read (without verifying: the client is not its audience) to show whether
it is bound to the certificate; the resource server is the one that verifies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError

from certbound.client.errors import OAuthServerError, UnexpectedResponse
from certbound.jose.claims import finite_number
from certbound.jsontext import loads_text

__all__ = [
    "IntrospectionResponse",
    "RevocationResponse",
    "TokenResponse",
    "json_body",
    "raise_for_error",
    "unverified_jwt_claims",
]


def unverified_jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWS-compact token, unverified; None when the token is not a JWT (opaque)."""
    if token.count(".") != 2:
        return None
    try:
        claims = loads_text(jws.extract_compact(token.encode("ascii")).payload.decode("utf-8"))
    except (JoseError, ValueError, UnicodeError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def _cnf_x5t(data: Mapping[str, Any] | None) -> str | None:
    cnf = data.get("cnf") if data else None
    value = cnf.get("x5t#S256") if isinstance(cnf, Mapping) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 section 5.1); `obtained_at` is the wall-clock time of receipt."""

    data: Mapping[str, Any]
    raw: str
    obtained_at: float

    @property
    def access_token(self) -> str:
        return str(self.data["access_token"])

    @property
    def token_type(self) -> str:
        return str(self.data.get("token_type", ""))

    @property
    def expires_in(self) -> int | None:
        value = self.data.get("expires_in")
        return int(value) if finite_number(value) else None

    @property
    def expires_at(self) -> float | None:
        return None if self.expires_in is None else self.obtained_at + self.expires_in

    @property
    def scope(self) -> str | None:
        value = self.data.get("scope")
        return value if isinstance(value, str) else None

    @property
    def refresh_token(self) -> str | None:
        value = self.data.get("refresh_token")
        return value if isinstance(value, str) else None

    def claims(self) -> dict[str, Any] | None:
        """The access token's claims when it is a JWT (unverified), else None."""
        return unverified_jwt_claims(self.access_token)

    @property
    def cnf_x5t_s256(self) -> str | None:
        """The certificate thumbprint the token is bound to, when it is a JWT that says so."""
        return _cnf_x5t(self.claims())


@dataclass(frozen=True)
class IntrospectionResponse:
    """An RFC 7662 answer; ``active: false`` is a valid, successful answer."""

    data: Mapping[str, Any]
    raw: str

    @property
    def active(self) -> bool:
        return self.data.get("active") is True

    @property
    def cnf_x5t_s256(self) -> str | None:
        return _cnf_x5t(self.data)


@dataclass(frozen=True)
class RevocationResponse:
    """An RFC 7009 answer: 200 whether or not the token was valid, usually with an empty body."""

    status: int
    raw: str


def raise_for_error(response: httpx.Response, url: str) -> None:
    """OAuthServerError for an RFC 6749 section 5.2 body, UnexpectedResponse for any other non-2xx."""
    if 200 <= response.status_code < 300:
        return
    try:
        body = loads_text(response.content.decode("utf-8"))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a lone surrogate, nested too deep
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        uri = body.get("error_uri")
        raise OAuthServerError(
            body["error"],
            description if isinstance(description, str) else "",
            status=response.status_code,
            url=url,
            uri=uri if isinstance(uri, str) else None,
        )
    snippet = response.text[:120].strip().replace("\n", " ")
    what = f": {snippet}" if snippet else ""
    raise UnexpectedResponse(
        f"HTTP {response.status_code} without an OAuth error{what}", status=response.status_code, url=url
    )


def json_body(response: httpx.Response, url: str) -> tuple[dict[str, Any], str]:
    """The JSON object of a successful response and its text, or UnexpectedResponse."""
    raise_for_error(response, url)
    text = response.text
    try:
        body = loads_text(text)  # a lone surrogate ("\ud800") is no text: refused like bad JSON
    except (ValueError, RecursionError):
        raise UnexpectedResponse(
            f"HTTP {response.status_code} with a body that is not JSON", status=response.status_code, url=url
        ) from None
    if not isinstance(body, dict):
        raise UnexpectedResponse(
            "the response is JSON but not an object", status=response.status_code, url=url
        )
    return body, text
