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


@dataclass(frozen=True)
class User:
    """A person who logs in. `sub` is the OpenID subject (random, never reused); `password_hash` an
    argon2id PHC string; `claims` the OpenID Connect claims (``name``, ``email``, ...)."""

    sub: str
    username: str
    password_hash: str = field(repr=False)
    claims: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Grant:
    """What one code exchange issued to `client_id` for `subject`: the family of its refresh tokens.

    `data` is what the tokens need again on a refresh (scope, auth_time, sid, audience, binding).
    """

    grant_id: str
    client_id: str
    subject: str
    data: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class AuthorizationCode:
    """An authorization code as stored: its SHA-256 (hex), never the code."""

    code_sha256: str
    client_id: str
    grant_id: str
    data: dict[str, Any]
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token as stored: its SHA-256 (hex), never the token. `rotated_at` is set once used."""

    token_sha256: str
    grant_id: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None


@dataclass(frozen=True)
class GrantAccessToken:
    """An access token issued under a grant: its `jti` (and the digest of an opaque one), so that
    revoking the grant can deny-list it."""

    jti: str
    grant_id: str
    expires_at: datetime
    opaque_sha256: str | None = None


@dataclass(frozen=True)
class PushedRequest:
    """A pushed authorization request (RFC 9126), by the SHA-256 of its request_uri."""

    request_uri_sha256: str
    client_id: str
    params: dict[str, str]
    expires_at: datetime
