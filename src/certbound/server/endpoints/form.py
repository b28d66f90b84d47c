"""The form body of the endpoints that authenticate clients (token, introspection, revocation).

- Only an ``application/x-www-form-urlencoded`` body (RFC 6749 sections 3.2 and 2.3.1): another
  content type is 400 ``invalid_request``; the body is capped.
- A parameter given twice is ``invalid_request`` naming it (RFC 6749 section 3.2, node-oidc-provider
  ``reject_dupes``), except those an endpoint declares repeatable (``resource``, RFC 8707).
- An empty value counts as absent (RFC 6749 section 3.1); a NUL character is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote_plus

from starlette.requests import ClientDisconnect, Request

from certbound.errors import OAuthError
from certbound.server.endpoints.errors import invalid_request

__all__ = ["FORM_MEDIA_TYPE", "MAX_FORM_BYTES", "MAX_FORM_FIELDS", "Form", "parse_form", "read_form"]

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: Room for a client assertion with an x5c chain and a JWT to introspect; far below anything abusive.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed form body. `params`: every parameter given once, as a plain dict. `lists`: the
    parameters declared repeatable, with every value in order (and absent from `params`)."""

    params: dict[str, str]
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _too_large() -> OAuthError:
    # made only when raised: an exception object per request would cost more than the check
    return invalid_request(
        f"the request body is larger than {MAX_FORM_BYTES} bytes", "request.body_too_large"
    )


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
    would give them, but decoding only what is encoded, and an encoded public value that was seen
    before from memory (`unquote_plus` is dear, and every token request repeats its scope and
    resource; docs/performance.md)."""
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
        raise invalid_request(
            f"the body is not a UTF-8 form of at most {MAX_FORM_FIELDS} parameters", "request.malformed_form"
        ) from None
    params: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    duplicates: list[str] = []
    for name, value in pairs:
        if not name or not value:
            continue
        if "\x00" in name or "\x00" in value:
            raise invalid_request("parameters must not contain NUL characters", "request.nul")
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
        raise invalid_request(
            f"parameter{plural} {names} must not be given more than once", "request.duplicate"
        )
    return Form(params, {name: tuple(values) for name, values in lists.items()})


async def read_form(request: Request, *, repeatable: Collection[str] = ()) -> Form:
    """The form body of `request` (content type checked, size capped); raises OAuthError."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise invalid_request(f"the request body must be {FORM_MEDIA_TYPE}", "request.content_type")
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
