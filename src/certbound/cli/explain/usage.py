"""The one error `certbound explain` reports as a usage error: one line on stderr, exit status 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad options or unusable input: one line, exit status 2."""
