"""The redirect back to the client: which redirect URIs count as registered, and the parameters added
to the redirect URI's query.

RFC 6749 section 4.1.2: the redirect URI may carry a query of its own, which is kept; RFC 9207: the
response always carries ``iss``, on success and on error, so a client talking to several servers can
tell which one answered (mix-up attacks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

__all__ = ["error_redirect", "redirect_uri_registered", "redirect_with"]

#: A loopback http redirect URI (RFC 8252 section 7.3): IP literal, optional port, the rest; no
#: user information, no fragment. ``localhost`` is not one (section 8.3: it may resolve elsewhere).
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\])(?::([1-9][0-9]{0,4}))?([/?][^#]*)?")


def redirect_uri_registered(registered: Iterable[str], uri: str) -> bool:
    """Whether `uri` is one of the `registered` redirect URIs: character for character, except that
    for a loopback http one the port may differ (RFC 8252 section 7.3: a native app listens on a port
    the system gives it). Host, path and query must still match exactly."""
    registered = tuple(registered)
    if uri in registered:
        return True
    asked = _LOOPBACK.fullmatch(uri)
    if asked is None or (asked.group(2) is not None and int(asked.group(2)) > 65535):
        return False
    for candidate in registered:
        known = _LOOPBACK.fullmatch(candidate)
        if known is not None and (known.group(1), known.group(3)) == (asked.group(1), asked.group(3)):
            return True
    return False


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """`redirect_uri` with `params` (None values left out) appended to its query."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{query}"


def error_redirect(
    redirect_uri: str, *, error: str, description: str | None, state: str | None, issuer: str
) -> str:
    """The error response of RFC 6749 section 4.1.2.1, with ``iss`` (RFC 9207)."""
    params = {"error": error, "error_description": description or None, "state": state, "iss": issuer}
    return redirect_with(redirect_uri, params)
