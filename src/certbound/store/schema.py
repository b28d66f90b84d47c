"""The tables, as SQLAlchemy Core metadata: the one description both dialects and the migrations share.

Migrations are written out by hand in `migrations/versions/`; a test checks that migrating an empty
database yields exactly this metadata, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    false,
)

from certbound.store.types import JSONText, UTCDateTime

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

clients = Table(
    "clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("metadata", JSONText, nullable=False),
    Column("source", Text, nullable=False),
    Column("registration_access_token_sha256", Text),
    Column("client_id_issued_at", UTCDateTime),
    Column("client_secret_expires_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("source IN ('api', 'file')", name="source"),
)

client_credentials = Table(
    "client_credentials",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "client_id",
        Text,
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("thumbprint", Text, index=True),
    Column("not_before", UTCDateTime),
    Column("not_after", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('secret_sha256', 'secret_sealed', 'jwk', 'certificate')", name="kind"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("public_jwk", JSONText, nullable=False),
    Column("private_jwk_sealed", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    Column("retired_at", UTCDateTime),
    Column("publish_until", UTCDateTime),
    CheckConstraint("state IN ('next', 'active', 'retired')", name="state"),
)

# One row (id = 1). Every write to clients, client_credentials or signing_keys increments `value` in
# the same transaction, so a worker can tell with one cheap read whether its caches are stale.
store_generation = Table(
    "store_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Replay cache for client assertions (RFC 7523 section 3, `jti`): shared by every worker and node.
# (client_id, jti) is the primary key, i.e. unique; a key also keeps PostgreSQL logical replication happy.
assertion_jti = Table(
    "assertion_jti",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("jti", Text, primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Deny-list of revoked self-contained tokens (RFC 7009), keyed by the token's SHA-256 or its `jti`.
revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("token_key", Text, primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Opaque (reference) tokens, looked up by the SHA-256 of the token; the token itself is never stored.
opaque_tokens = Table(
    "opaque_tokens",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column(
        "client_id",
        Text,
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("claims", JSONText, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, server_default=false()),
)

# Server-side sessions (certbound.sessions), looked up by the SHA-256 of the session id: the id itself,
# what a cookie carries, is never stored. `data_sealed` is the application's JSON sealed under the KEK,
# bound to the row's id hash, purpose, subject and auth_time. `valid_until` is min(expires_at,
# last_seen_at + idle timeout): what reads and purges compare with the clock, indexed for the purge.
sessions = Table(
    "sessions",
    metadata,
    Column("id_sha256", Text, primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("subject", Text, index=True),
    Column("auth_time", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("idle_timeout_seconds", Integer),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False, index=True),
    Column("data_sealed", Text, nullable=False),
    CheckConstraint("idle_timeout_seconds IS NULL OR idle_timeout_seconds > 0", name="idle_timeout"),
)

# Client certificates that authenticated a client with tls_client_auth (by x5t#S256 of the leaf), with
# the validated chain (PEM, leaf first) so that any worker or node can keep checking its revocation, and,
# once certbound learned it, the revocation: tokens bound to the leaf are then inactive everywhere
# (`learned_at` is what workers poll). `last_seen` is kept to within an hour.
cert_status = Table(
    "cert_status",
    metadata,
    Column("x5t_s256", Text, primary_key=True),
    Column("client_id", Text),
    Column("subject", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("serial", Text, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("chain_pem", Text, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime),
    Column("revocation_reason", Text),
    Column("revocation_source", Text),
    Column("learned_at", UTCDateTime, index=True),
)

# The client-certificate expiry warnings given (a certificate, a threshold in days): one atomic insert
# decides which worker or node logs it, so each is logged once, not once per worker.
cert_expiry_warnings = Table(
    "cert_expiry_warnings",
    metadata,
    Column("x5t_s256", Text, primary_key=True),
    Column("days", Integer, primary_key=True, autoincrement=False),
    Column("warned_at", UTCDateTime, nullable=False, index=True),
)

#: The tables whose changes bump `store_generation`.
GENERATION_TABLES = frozenset({"clients", "client_credentials", "signing_keys"})

# --- people who log in, and what they granted (the authorization code flow) -----------------------

# A user: `sub` is the OpenID Connect subject, random and never reused (a user deleted and added again
# under the same username is someone else to every relying party); `username` is what they type.
# `password_hash` is an argon2id PHC string; `claims` the OpenID claims (name, email, ...) as JSON.
users = Table(
    "users",
    metadata,
    Column("sub", Text, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("claims", JSONText, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Failed logins, counted per username and per address (`key` is ``user:<name>`` or ``address:<ip>``);
# a row is one atomic upsert per failure and starts over once `last_failure_at` is older than the window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UTCDateTime, nullable=False, index=True),
)

# A grant: what one code exchange issued, the family of its refresh tokens. `data` holds what the
# tokens need again on a refresh (scope, auth_time, sid, audience, the refresh binding). Revoked as a
# whole (code replay, refresh-token reuse, RFC 7009 revocation of a refresh token).
grants = Table(
    "grants",
    metadata,
    Column("grant_id", Text, primary_key=True),
    Column(
        "client_id", Text, ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("subject", Text, ForeignKey("users.sub", ondelete="CASCADE"), nullable=False, index=True),
    Column("data", JSONText, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime),
)

# Authorization codes, found by the SHA-256 of the code (the code itself is never stored). `used_at`
# is set by the one atomic statement that redeems a code: a second redemption finds it set.
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_sha256", Text, primary_key=True),
    Column(
        "client_id", Text, ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("grant_id", Text, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime),
)

# Refresh tokens by SHA-256; `rotated_at` is set when the token is exchanged (rotation): using it
# again is reuse, which revokes the grant.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("grant_id", Text, ForeignKey("grants.grant_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime),
)

# The access tokens issued under a grant (its `jti`, and the digest of an opaque one): revoking the
# grant deny-lists them all in one statement.
grant_access_tokens = Table(
    "grant_access_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    Column("grant_id", Text, ForeignKey("grants.grant_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("opaque_sha256", Text),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Consent, remembered per user, client and scope value.
consents = Table(
    "consents",
    metadata,
    Column("subject", Text, ForeignKey("users.sub", ondelete="CASCADE"), primary_key=True),
    Column("client_id", Text, ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("granted_at", UTCDateTime, nullable=False),
)

# Pushed authorization requests (RFC 9126), by the SHA-256 of the request_uri; single use.
pushed_requests = Table(
    "pushed_requests",
    metadata,
    Column("request_uri_sha256", Text, primary_key=True),
    Column(
        "client_id", Text, ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("params", JSONText, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime),
)
