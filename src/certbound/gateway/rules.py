"""``scopes_required`` and ``audience_required``, compiled once: Kong's form, checked per request.

Kong reads a list of strings: the values of one item, separated by spaces, are required together
(AND); the items are alternatives (OR). ``["read write", "admin"]`` lets through a token with both
``read`` and ``write``, or with ``admin``. An empty list requires nothing.

A token's values come from a claim (``scope`` by default: a space-separated string as RFC 9068 and
RFC 7662 give it, or a JSON array as some providers do; ``aud``: a string or an array).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Requirement", "claim_values"]


def claim_values(value: Any) -> frozenset[str]:
    """The values a claim holds: a space-separated string, or an array of strings (others ignored)."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


@dataclass(frozen=True, slots=True)
class Requirement:
    """Alternatives, each a set of values that must all be present."""

    alternatives: tuple[frozenset[str], ...] = ()

    @classmethod
    def parse(cls, items: Sequence[str]) -> Requirement:
        return cls(tuple(frozenset(item.split()) for item in items))

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def met_by(self, values: frozenset[str]) -> bool:
        """Whether `values` satisfy one alternative (always, when nothing is required)."""
        return not self.alternatives or any(needed <= values for needed in self.alternatives)

    def describe(self) -> str:
        """For the answer's description: ``'read write' or 'admin'``."""
        return " or ".join(repr(" ".join(sorted(a))) for a in self.alternatives)
