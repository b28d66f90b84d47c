"""The redirect back to the client: parameters added to the registered redirect URI's query.

RFC 6749 section 4.1.2: the redirect URI may carry a query of its own, which is kept; RFC 9207: the
response always carries ``iss``, on success and on error, so a client talking to several servers can
tell which one answered (mix-up attacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

__all__ = ["error_redirect", "redirect_with"]


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
