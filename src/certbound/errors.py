"""The one error type the protocol core raises; endpoints render it as RFC 6749 section 5.2 JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class OAuthError(Exception):
    """An OAuth error: `error` and `description` go on the wire, `reason` only to the log.

    `reason` is a machine-readable code (``cert.untrusted``, ``metadata.jwks_conflict``, ...) so an
    operator can tell why while the client only learns the standard error code.
    """

    error: str
    description: str = ""
    status: int = 400
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.error}: {self.description}" if self.description else self.error)

    def body(self) -> dict[str, str]:
        """The RFC 6749 section 5.2 JSON body."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out
