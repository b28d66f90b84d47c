"""Session cookies: the session id and its expiry, sealed, with the attributes a browser must enforce.

The value is `certbound.sealing.Sealer` output (AES-256-GCM under the KEK) over ``<session id>.<expiry>``,
with an aad naming the cookie's purpose (``as-login``, ``gateway:<route>``): a cookie set for one
purpose or route opens for no other, and a value sealed for session data opens as no cookie. The
expiry inside lets an expired cookie be refused without a database read, whatever the client did
with ``Max-Age``. A cookie is sealed when a session starts or is rotated, not on every request, so
the KEK's random-nonce budget is spent per login, not per request.

The name always carries the ``__Host-`` prefix, which makes the browser insist on ``Secure``,
``Path=/`` and no ``Domain``: no sibling host or plain-HTTP page can set or shadow it. ``HttpOnly``
keeps it from scripts, ``SameSite=Lax`` from cross-site subrequests and form posts.

Plain values in and out: the web layer passes the cookie's value (``request.cookies.get(name)``)
and sends the header strings these functions build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from certbound.sealing import Sealer, SealingError
from certbound.sessions.session import (
    Clock,
    Session,
    check_purpose,
    is_session_id,
    utcnow,
    whole_seconds,
)

__all__ = ["COOKIE_REASONS", "MAX_COOKIE_VALUE", "CookieError", "SessionCookie", "SessionCookieValue"]

HOST_PREFIX = "__Host-"
#: Longer values are refused before any decoding (ours are about 120 characters).
MAX_COOKIE_VALUE = 512

CookieReason = Literal[
    "cookie.missing", "cookie.oversized", "cookie.malformed", "cookie.invalid", "cookie.expired"
]

#: Why a cookie was refused, in plain words (for logs and docs).
COOKIE_REASONS: Final[dict[str, str]] = {
    "cookie.missing": "no session cookie was sent",
    "cookie.oversized": f"the cookie value is longer than {MAX_COOKIE_VALUE} characters",
    "cookie.malformed": "the cookie value is not text, or what it seals is not a session cookie",
    "cookie.invalid": (
        "the cookie does not open: not a sealed value, tampered with, sealed for another purpose or "
        "route, or under another key-encryption key (the detail says which)"
    ),
    "cookie.expired": "the session the cookie names has passed its absolute expiry",
}

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PAYLOAD = re.compile(rb"([A-Za-z0-9_-]{43})\.([0-9]{1,12})")
_DOMAIN = b"certbound.session.cookie\x00"


class CookieError(Exception):
    """A session cookie cannot be used; `reason` is one of :data:`COOKIE_REASONS`. The caller treats
    the request as having no session (and may send `SessionCookie.clear`)."""

    def __init__(self, reason: CookieReason, detail: str | None = None) -> None:
        super().__init__(detail or COOKIE_REASONS[reason])
        self.reason: CookieReason = reason


@dataclass(frozen=True, slots=True)
class SessionCookieValue:
    """What an opened cookie says: which session, and until when at most."""

    session_id: str = field(repr=False)
    expires_at: datetime


class SessionCookie:
    """The session cookie of one purpose: seals and opens its value, builds its ``Set-Cookie`` headers."""

    __slots__ = ("_aad", "_attributes", "_clock", "_sealer", "name", "purpose")

    def __init__(
        self,
        sealer: Sealer,
        *,
        name: str,
        purpose: str,
        same_site: Literal["Lax", "Strict"] = "Lax",
        clock: Clock = utcnow,
    ) -> None:
        """`name` is the part after ``__Host-`` (letters, digits, ``_.-``); `purpose` is the sessions'."""
        if not isinstance(name, str) or _NAME.fullmatch(name) is None or name.lower().startswith("__"):
            raise ValueError(
                f"cookie name {name!r}: 1-64 letters, digits, '_', '.' or '-', without a '__' prefix "
                "(the '__Host-' prefix is added)"
            )
        if same_site not in ("Lax", "Strict"):
            raise ValueError(f"SameSite={same_site!r}: a session cookie is 'Lax' or 'Strict'")
        self.name: str = HOST_PREFIX + name
        self.purpose: str = check_purpose(purpose)
        self._sealer = sealer
        self._aad = _DOMAIN + purpose.encode("ascii")
        self._clock = clock
        # __Host- requires Secure and Path=/ and forbids Domain; the browser drops the cookie otherwise.
        self._attributes = f"Path=/; Secure; HttpOnly; SameSite={same_site}"

    def __repr__(self) -> str:
        return f"SessionCookie(name={self.name!r}, purpose={self.purpose!r})"

    def seal(self, session_id: str, expires_at: datetime) -> str:
        """The cookie value naming `session_id` until `expires_at`."""
        if not is_session_id(session_id):
            raise ValueError("not a session id (43 base64url characters)")
        stamp = int(whole_seconds(expires_at).timestamp())
        return self._sealer.seal(f"{session_id}.{stamp}".encode("ascii"), aad=self._aad)

    def set_cookie(self, session: Session) -> str:
        """The ``Set-Cookie`` header value that hands `session` to the browser until its absolute expiry."""
        if session.purpose != self.purpose:
            raise ValueError(f"a session for {session.purpose!r} does not go in the {self.purpose!r} cookie")
        max_age = int((session.expires_at - whole_seconds(self._clock())).total_seconds())
        if max_age <= 0:
            raise ValueError("the session has already expired: send clear() instead")
        value = self.seal(session.id, session.expires_at)
        return f"{self.name}={value}; Max-Age={max_age}; {self._attributes}"

    def clear(self) -> str:
        """The ``Set-Cookie`` header value that removes the cookie (logout, or a refused cookie); it
        carries the same attributes, without which a browser ignores it for a ``__Host-`` name."""
        return f"{self.name}=; Max-Age=0; {self._attributes}"

    def open(self, value: str | None) -> SessionCookieValue:
        """The session id and expiry a cookie value carries; raises only :class:`CookieError`."""
        if value is None or value == "":
            raise CookieError("cookie.missing")
        if not isinstance(value, str):
            raise CookieError("cookie.malformed")
        if len(value) > MAX_COOKIE_VALUE:
            raise CookieError("cookie.oversized")
        try:
            payload = self._sealer.open(value, aad=self._aad)
        except SealingError as error:  # the detail says which: not sealed, other KEK, tampered, other aad
            raise CookieError("cookie.invalid", str(error)) from None
        except (ValueError, UnicodeError):  # e.g. non-ASCII text where the format has ASCII
            raise CookieError("cookie.malformed") from None
        match = _PAYLOAD.fullmatch(payload)
        if match is None:  # authentic yet not ours: only a bug (or another use of this aad) makes this
            raise CookieError("cookie.malformed", "the sealed payload is not '<session id>.<expiry>'")
        session_id = match.group(1).decode("ascii")
        try:
            expires_at = datetime.fromtimestamp(int(match.group(2)), UTC)
        except (ValueError, OverflowError, OSError):
            raise CookieError("cookie.malformed", "the sealed expiry is out of range") from None
        if expires_at <= whole_seconds(self._clock()):
            raise CookieError("cookie.expired")
        return SessionCookieValue(session_id=session_id, expires_at=expires_at)
