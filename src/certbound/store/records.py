"""Plain records the store reads and writes; the protocol core works on these, never on rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ClientSource = Literal["api", "file"]
CredentialKind = Literal["secret_sha256", "secret_sealed", "jwk", "certificate"]
KeyState = Literal["next", "active", "retired"]


@dataclass(frozen=True)
class Credential:
    """One credential of a client; several may be valid at once so that rotation can overlap.

    `value`: for ``secret_sha256`` the hex SHA-256 digest; for ``secret_sealed`` the sealed (encrypted)
    secret; for ``jwk`` a public JWK as JSON text; for ``certificate`` a PEM certificate.
    `thumbprint`: the certificate's ``x5t#S256`` or the JWK's ``kid`` where there is one (for look-ups).
    """

    id: str
    client_id: str
    kind: CredentialKind
    value: str
    thumbprint: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Client:
    """A registered client: its RFC 7591 / RFC 8705 metadata as given, plus bookkeeping."""

    client_id: str
    metadata: dict[str, Any]
    source: ClientSource = "api"
    registration_access_token_sha256: str | None = None
    client_id_issued_at: datetime | None = None
    client_secret_expires_at: datetime | None = None
    updated_at: datetime | None = None
    credentials: tuple[Credential, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SigningKey:
    """A signing key and its life-cycle state: published while ``next``, signs while ``active``,
    published only (until every token it signed expired) while ``retired``.

    `private_jwk_sealed` is the private JWK, sealed under the key-encryption key.
    """

    kid: str
    alg: str
    state: KeyState
    public_jwk: dict[str, Any]
    private_jwk_sealed: str
    created_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    publish_until: datetime | None = None
