"""Answers the gateway gives itself in the login flows (redirects, logout), and the cookie plumbing.

A refusal is still a :class:`~certbound.gateway.answers.GatewayError`; a :class:`Reply` is an answer
that is not one: the redirect to the IdP's login, the callback's redirect back to the saved request,
a logout. Each carries the ``Set-Cookie`` values the step made and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

__all__ = ["Reply", "cookie_values", "redirect", "strip_cookies"]

_NO_STORE: Final = (b"cache-control", b"no-store")


@dataclass
class Reply:
    """An answer the gateway writes itself (not a refusal): status, headers, body; `reason` and
    `detail` for the request's event."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    reason: str = "ok"
    detail: str = ""
    set_cookies: list[str] = field(default_factory=list)

    def all_headers(self) -> list[tuple[bytes, bytes]]:
        cookies = [(b"set-cookie", c.encode("latin-1")) for c in self.set_cookies]
        return [*self.headers, _NO_STORE, (b"content-length", str(len(self.body)).encode()), *cookies]


def redirect(location: str, *, status: int = 302, reason: str = "ok", detail: str = "") -> Reply:
    """A redirect to `location` (the IdP's login, the saved request, the IdP's logout)."""
    return Reply(status, [(b"location", location.encode("latin-1"))], b"", reason, detail)


def json_reply(status: int, body: object, *, detail: str = "") -> Reply:
    return Reply(status, [(b"content-type", b"application/json")], orjson.dumps(body), detail=detail)


def cookie_values(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's cookies by name (RFC 6265 section 5.4: ``name=value`` pairs split by ``;``); of a
    name sent twice the first counts."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, eq, val = pair.strip().partition("=")
            if eq and key and key not in found:
                found[key] = val.strip()
    return found


def strip_cookies(headers: list[tuple[bytes, bytes]], names: Sequence[str]) -> list[tuple[bytes, bytes]]:
    """The headers with the gateway's own cookies taken out of ``Cookie``: the upstream never sees them."""
    out: list[tuple[bytes, bytes]] = []
    prefixes = tuple(f"{n}=" for n in names)
    for name, value in headers:
        if name == b"cookie":
            kept = [p for p in value.decode("latin-1").split(";") if not p.strip().startswith(prefixes)]
            if not any(p.strip() for p in kept):
                continue
            value = ";".join(kept).strip().encode("latin-1")
        out.append((name, value))
    return out
