"""The one error type the protocol core raises; endpoints render it as RFC 6749 section 5.2 JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from certbound.reasons import is_known


@dataclass(eq=False)
class OAuthError(Exception):
    """An OAuth error: `error` and `description` go on the wire, `reason` only to the log.

    `reason` is a machine-readable code (``cert.untrusted``, ``metadata.jwks``, ...) so an operator can
    tell why while the client only learns the standard error code. It must be catalogued in
    :mod:`certbound.reasons` (or empty): an unknown code is a programming error, refused here.
    """

    error: str
    description: str = ""
    status: int = 400
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reason and not is_known(self.reason):
            raise ValueError(f"unknown reason code {self.reason!r}: catalogue it in certbound.reasons")
        super().__init__(f"{self.error}: {self.description}" if self.description else self.error)

    def body(self) -> dict[str, str]:
        """The RFC 6749 section 5.2 JSON body."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out
