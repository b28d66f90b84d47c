"""The one error of a guarded fetch: refused, unreachable, too slow, too big, or not a 200."""

from __future__ import annotations

__all__ = ["FetchError"]


class FetchError(Exception):
    """A fetch could not be done or was refused; the message says why (for the log, never for a
    caller on the wire: it may name internal addresses)."""
