"""The gateway's settings: one TOML file (``certbound gateway --config FILE``), read into typed models.

Every key has a safe default or is required; an unknown key is an error, as in ``serve``. A bad or
contradictory setting is refused with a :class:`GatewayConfigError` whose one-line message names the
key (``routes[0].proof_of_possession_mtls: ...``). Kong's names are used where the meaning is Kong's
(docs/gateway.md has the table). Paths are read relative to the working directory, as ``serve`` does.

The models hold what the file says; :mod:`certbound.gateway.services` compiles them once at start
(route table, scope rules, header names), so that nothing on the request path reads a setting by name.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from certbound.config import (
    ForwardedCertHeader,
    RevocationMode,
    crl_locations,
    forwarding_problem,
    proxy_cidrs,
)

__all__ = [
    "DEFAULT_IDP",
    "HEALTH_PATH",
    "RESERVED_HEADERS",
    "THUMBPRINT_HEADER",
    "AuthRequestSettings",
    "CertificateSettings",
    "GatewayConfigError",
    "GatewaySettings",
    "IdpSettings",
    "ListenerSettings",
    "RouteSettings",
    "StoreSettings",
    "idp_key",
    "load_gateway_settings",
    "parse_gateway_settings",
]

#: The name `[idp]` goes by in routes' logs and in errors (a route without ``idp`` uses it).
DEFAULT_IDP: Final = "default"
#: Answered by the gateway itself, before any route.
HEALTH_PATH: Final = "/healthz"
#: Set by the gateway on a request whose token is bound to the certificate it came with (RFC 8705).
THUMBPRINT_HEADER: Final = "X-Client-Cert-Thumbprint"
#: Header names `upstream_headers` may not use: the gateway or HTTP itself sets them.
RESERVED_HEADERS: Final = frozenset(
    {
        "host", "authorization", "content-length", "content-type", "transfer-encoding", "connection",
        "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate", "expect",
        "cookie", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        THUMBPRINT_HEADER.lower(),
    }
)  # fmt: skip

AuthMethod = Literal[
    "bearer",
    "introspection",
    "authorization_code",
    "session",
    "client_credentials",
    "password",
    "userinfo",
    "refresh_token",
]
#: The methods by which the caller sends a token it has (part 1), and those of a browser's login.
TOKEN_METHODS: Final = frozenset({"bearer", "introspection", "userinfo"})
LOGIN_METHODS: Final = frozenset({"authorization_code", "session"})
ParamType = Literal["header", "body"]
LogoutMethod = Literal["GET", "POST", "DELETE"]
#: certbound.auth_methods.METHODS, spelled out for the type (tests/gateway checks they agree).
ClientAuthMethod = Literal[
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
]
ProofMode = Literal["off", "optional", "strict"]


def _logout_methods() -> list[LogoutMethod]:
    return ["POST", "DELETE"]


def _param_types() -> list[ParamType]:
    return ["header", "body"]


def _token_methods() -> list[AuthMethod]:
    """A route's default auth_methods: the two that validate a token the caller sends."""
    return ["bearer", "introspection"]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEADER_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")  # a quoted-string without quotes or escapes
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 section 3.3
_MTLS_METHODS: Final = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})
_SECRET_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})


class GatewayConfigError(Exception):
    """The gateway's configuration cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _https_url(value: str | None, *, schemes: tuple[str, ...] = ("https",)) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an {' or '.join(s + '://' for s in schemes)} URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not have a query, a fragment or credentials")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


class ListenerSettings(_Section):
    """``[listener]``: the gateway's own TLS listener, as ``serve``'s (docs/tls.md)."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(9443, ge=1, le=65535, description="HTTPS port.")
    tls_cert: Path = Field(description="Server certificate of the gateway (PEM, chain after the leaf).")
    tls_key: Path = Field(description="Its private key (PEM).")
    client_ca: Path | None = Field(
        None,
        description="CAs a proof-of-possession certificate must also chain to (Kong's mtls-auth); unset: "
        "any certificate, only its thumbprint matters (Kong's tls-handshake-modifier).",
    )
    tls_mode: Literal["auto", "native", "degraded"] = Field(
        "auto", description="How client certificates reach the gateway: auto, native or degraded."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses (CIDRs) whose forwarded client-certificate header is believed.",
    )
    forwarded_cert_header: ForwardedCertHeader | None = Field(
        None, description="Header format the trusted proxies forward the client certificate in."
    )
    forwarded_cert_intermediates: Path | None = Field(
        None, description="PEM bundle of intermediates added to forwarded chains."
    )
    client_cert_revocation: RevocationMode = Field(
        "ocsp,crl",
        description="With client_ca: revocation checking of proof-of-possession certificates (as serve's): "
        "OCSP then CRLs, CRLs only, OCSP only, or off.",
    )
    client_cert_revocation_soft_fail: bool = Field(
        False,
        description="Accept, with a warning, a certificate whose revocation status cannot be had; false "
        "refuses it (cert.revocation_unknown).",
    )
    client_cert_revocation_max_age: int = Field(
        86400, ge=60, le=30 * 86400, description="Longest an OCSP answer or a CRL is used (s)."
    )
    client_ca_crls: list[str] = Field(
        default_factory=list,
        description="CRLs of the client CAs (files or http/https URLs, PEM or DER), for PKIs whose "
        "certificates name no CRL or OCSP responder.",
    )
    outbound_allow_private: bool = Field(
        False,
        description="Let the OCSP and CRL URLs that client certificates name reach loopback and private "
        "addresses (as serve's outbound_allow_private).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return proxy_cidrs(value)

    @field_validator("client_ca_crls")
    @classmethod
    def _crls(cls, value: list[str]) -> list[str]:
        return crl_locations(value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return _bind_host(value)


def _bind_host(value: str) -> str:
    """An address to listen on: an IP address or a host name (``--check`` names it, not the bind)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError("must be a host name or IP address") from None
    return value


class CertificateSettings(_Section):
    """One of the gateway's client certificates (``client_certificates = [{cert, key, use_from}]``)."""

    cert: Path
    key: Path
    use_from: datetime | None = Field(
        None, description="From when this certificate is presented (an offset date-time): rotation."
    )

    @field_validator("use_from")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset (1979-05-27T07:32:00Z)")
        return value


class IdpSettings(_Section):
    """``[idp]`` or ``[idps.NAME]``: an identity provider and how the gateway authenticates to it."""

    issuer: str = Field(description="Issuer URL; metadata is discovered from it (RFC 8414, then OIDC).")
    client_id: str | None = Field(
        None, description="The gateway's client_id at the IdP; needed for introspection."
    )
    client_auth: ClientAuthMethod = Field("tls_client_auth", description="Any of the seven methods.")
    tls_client_auth_cert: Path | None = Field(None, description="The gateway's client certificate (PEM).")
    tls_client_auth_key: Path | None = Field(None, description="Its private key (PEM).")
    client_certificates: list[CertificateSettings] = Field(
        default_factory=list, description="More client certificates, for a rotation (use_from)."
    )
    tls_client_auth_ssl_verify: bool = Field(True, description="Verify the IdP's server certificate.")
    ca_bundle: Path | None = Field(
        None, description="CAs for the IdP's server certificate; default: the system store."
    )
    client_secret: SecretStr | None = Field(None, description="For the client_secret_* methods.")
    client_secret_file: Path | None = Field(None, description="File holding the client secret.")
    client_jwk_file: Path | None = Field(None, description="Private JWK (JSON file) for private_key_jwt.")
    client_alg: str | None = Field(
        None, description="Assertion alg: HS256/384/512 (client_secret_jwt), the JWK's (private_key_jwt)."
    )
    introspection_endpoint_auth_method: ClientAuthMethod | None = Field(
        None, description="Another method than client_auth at the introspection endpoint."
    )
    revocation_endpoint_auth_method: ClientAuthMethod | None = Field(
        None, description="Another method than client_auth at the revocation endpoint."
    )
    mtls_token_endpoint: str | None = Field(None, description="Overrides the discovered mTLS alias.")
    mtls_introspection_endpoint: str | None = Field(None, description="Overrides the discovered mTLS alias.")
    mtls_revocation_endpoint: str | None = Field(None, description="Overrides the discovered mTLS alias.")
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds for each call to the IdP.")

    @field_validator(
        "issuer", "mtls_token_endpoint", "mtls_introspection_endpoint", "mtls_revocation_endpoint"
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _https_url(value)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable()):
            raise ValueError("must be a non-empty printable string")
        return value

    def methods(self) -> set[str]:
        """Every client authentication method the gateway uses at this IdP."""
        own = (self.introspection_endpoint_auth_method, self.revocation_endpoint_auth_method)
        return {self.client_auth, *(m for m in own if m is not None)}


class RouteSettings(_Section):
    """``[[routes]]``: which requests, which upstream, and what a token must be to pass."""

    name: str = Field(description="The route's name, in logs and metrics.")
    paths: list[str] = Field(min_length=1, description="Path prefixes (whole segments).")
    upstream: str | None = Field(
        None, description="http:// or https:// URL (a path is prepended); unset: auth_request only."
    )
    upstream_ca_bundle: Path | None = Field(None, description="CAs for an https upstream; default system.")
    upstream_connect_timeout: float = Field(5.0, gt=0, le=300, description="Seconds to connect upstream.")
    upstream_read_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds for the upstream answer's head, then between reads."
    )
    strip_path: bool = Field(False, description="Remove the matched prefix before forwarding.")
    idp: str | None = Field(None, description="The [idps.NAME] validating tokens; default [idp].")
    auth_methods: list[AuthMethod] = Field(
        default_factory=_token_methods,
        min_length=1,
        description="bearer: JWT checked with the IdP's JWKS; introspection: RFC 7662 at the IdP.",
    )
    proof_of_possession_mtls: ProofMode = Field("off", description="off | optional | strict (Kong's).")
    scopes_required: list[str] = Field(
        default_factory=list, description="Space-separated = all of them, items = alternatives."
    )
    scopes_claim: str = Field("scope", description="Claim holding the scopes (string or list).")
    audience_required: list[str] = Field(default_factory=list, description="Same form, against aud.")
    audience_claim: str = Field("aud", description="Claim holding the audiences.")
    upstream_headers: dict[str, str] = Field(
        default_factory=dict, description="Header name -> claim whose value the upstream receives."
    )
    hide_credentials: bool = Field(False, description="Do not send the Authorization header upstream.")
    cache_introspection: bool = Field(True, description="Cache introspection answers by token hash.")
    cache_ttl_max: int = Field(300, ge=0, le=86400, description="Longest a cached verdict is used (s).")
    cache_ttl_neg: int = Field(0, ge=0, le=3600, description="How long an inactive answer is cached (s).")
    leeway: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat (s).")
    realm: str | None = Field(None, description="WWW-Authenticate realm; default the route's name.")
    # -- part 2: the gateway as the relying party (Kong's names) ------------------------------------
    scopes: list[str] = Field(
        default_factory=lambda: ["openid"], description="Scopes asked for at the IdP (the code flow)."
    )
    redirect_uri: str | None = Field(None, description="The gateway's callback URL, under the route's paths.")
    login_action: Literal["upstream", "redirect"] = Field(
        "upstream", description="After the callback: the saved request goes on, or to login_redirect_uri."
    )
    login_redirect_uri: str | None = Field(
        None, description="Where login_action = redirect sends the browser."
    )
    authorization_query_args: dict[str, str] = Field(
        default_factory=dict, description="More parameters of the authorization request (prompt, ...)."
    )
    use_pushed_authorization_requests: bool = Field(
        False, description="PAR even when the IdP allows without."
    )
    logout_uri_suffix: str | None = Field(None, description="A path ending in it logs out.")
    logout_methods: list[LogoutMethod] = Field(
        default_factory=_logout_methods, min_length=1, description="Methods that log out."
    )
    logout_revoke: bool = Field(False, description="Revoke the session's tokens at the IdP on logout.")
    logout_revoke_access_token: bool = Field(True, description="With logout_revoke: the access token.")
    logout_revoke_refresh_token: bool = Field(True, description="With logout_revoke: the refresh token.")
    logout_redirect_uri: str | None = Field(
        None, description="post_logout_redirect_uri at the IdP; without end_session_endpoint, where to go."
    )
    login_starts_per_second: float = Field(
        20.0, gt=0, le=10_000, description="Logins begun per second per worker (a burst of 10 s' worth)."
    )
    session_storage: Literal["store", "redis"] = Field("store", description="Where sessions live.")
    redis_url: str | None = Field(None, description="redis://host:port/db for session_storage = redis.")
    session_absolute_timeout: int = Field(86400, ge=60, le=31 * 86400, description="Longest session (s).")
    session_idle_timeout: int = Field(3600, ge=0, le=31 * 86400, description="Idle limit (s); 0: none.")
    downstream_refresh_token_header: str | None = Field(
        "X-Refresh-Token", description="Response header handing a rotated refresh token back (refresh_token)."
    )
    upstream_access_token_header: str = Field(
        "Authorization:Bearer", description="Header (and prefix) carrying the obtained token upstream."
    )
    client_credentials_param_type: list[ParamType] = Field(
        default_factory=_param_types, min_length=1, description="Where client credentials come."
    )
    password_param_type: list[ParamType] = Field(
        default_factory=_param_types, min_length=1, description="Where username/password come."
    )
    cache_tokens: bool = Field(True, description="Cache tokens obtained with caller credentials.")
    cache_tokens_leeway: int = Field(
        30, ge=0, le=3600, description="Stop using a cached token this early (s)."
    )
    cache_tokens_salt: str | None = Field(None, description="Salt of the credential hash; default random.")

    @field_validator("redirect_uri", "login_redirect_uri", "logout_redirect_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
            raise ValueError("must be an absolute http(s) URL without a fragment")
        return value

    @field_validator("downstream_refresh_token_header")
    @classmethod
    def _downstream_header(cls, value: str | None) -> str | None:
        if value == "":
            return None  # TOML has no null: "" says never
        if value is not None and not _HEADER_TOKEN.fullmatch(value):
            raise ValueError(f"{value!r} is not a header name")
        return value

    @field_validator("upstream_access_token_header")
    @classmethod
    def _token_header(cls, value: str) -> str:
        name = value.split(":", 1)[0]
        if not _HEADER_TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name")
        # Authorization is its usual place; a field HTTP or the gateway writes itself (Host, framing,
        # forwarding) would be sent twice or contradict the request's own
        if name.lower().replace("_", "-") in RESERVED_HEADERS - {"authorization"}:
            raise ValueError(f"{name!r} is set by the gateway or HTTP itself; choose another name")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        if not all(_SCOPE_TOKEN.fullmatch(v) for v in value):
            raise ValueError("each scope is one value of printable ASCII")
        return value

    @field_validator("logout_uri_suffix")
    @classmethod
    def _suffix(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "?" in value or not value.isprintable()):
            raise ValueError("must be a path suffix starting with '/'")
        return value

    def login_enabled(self) -> bool:
        return "authorization_code" in self.auth_methods

    def sessions_used(self) -> bool:
        return bool(LOGIN_METHODS & set(self.auth_methods))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_path_prefix(path) for path in value]

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str | None) -> str | None:
        return _https_url(value, schemes=("http", "https"))

    @field_validator("scopes_required", "audience_required")
    @classmethod
    def _alternatives(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.split() or not all(_SCOPE_TOKEN.fullmatch(v) for v in item.split()):
                raise ValueError(f"{item!r} is not space-separated values of printable ASCII")
        return value

    @field_validator("scopes_claim", "audience_claim")
    @classmethod
    def _claim(cls, value: str) -> str:
        if not value:
            raise ValueError("must name a claim")
        return value

    @field_validator("upstream_headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, claim in value.items():
            if not _HEADER_TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name")
            folded = name.lower().replace("_", "-")
            if folded in RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by the gateway or HTTP itself; choose another name")
            if folded in seen:
                raise ValueError(f"{name!r} names the same header as another entry")
            seen.add(folded)
            if not claim:
                raise ValueError(f"{name!r} must name a claim")
        return value

    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str | None) -> str | None:
        if value is not None and not _REALM.fullmatch(value):
            raise ValueError("must be printable ASCII without quotes or backslashes")
        return value


class AuthRequestSettings(_Section):
    """``[auth_request]``: the decision endpoint for nginx ``auth_request`` (docs/gateway.md)."""

    path: str = Field("/_auth", description="Where trusted proxies ask for decisions.")
    original_uri_header: str = Field("X-Original-URI", description="Header carrying the request's URI.")
    original_method_header: str = Field("X-Original-Method", description="Header carrying its method.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        path = _path_prefix(value)
        if path in ("/", HEALTH_PATH):
            raise ValueError(f"must be a path of its own, not {path}")
        return path

    @field_validator("original_uri_header", "original_method_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER_TOKEN.fullmatch(value):
            raise ValueError(f"{value!r} is not a header name")
        return value


class StoreSettings(_Section):
    """``[store]``: where the gateway's sessions live, as ``serve``'s store (SQLite in data_dir, or
    PostgreSQL), and the key that seals session cookies and tokens at rest."""

    data_dir: Path = Field(Path("data"), description="SQLite database and the sealing key go here.")
    database_url: str | None = Field(None, description="sqlite:///... or postgresql://...; default data_dir.")
    session_secret_file: Path | None = Field(
        None, description="The 32-byte key sealing cookies and sessions; default data_dir/session.key."
    )

    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'certbound.db').resolve()}"


class GatewaySettings(_Section):
    """The whole file."""

    listener: ListenerSettings
    idp: IdpSettings | None = Field(None, description="The default identity provider.")
    idps: dict[str, IdpSettings] = Field(default_factory=dict, description="More, by name.")
    routes: list[RouteSettings] = Field(min_length=1)
    auth_request: AuthRequestSettings | None = Field(None, description="The nginx decision endpoint.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Where sessions live.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the listening socket.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["json", "console"] = Field("json", description="json or console.")
    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus metrics listener.")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Its port; unset: off.")

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, value: str) -> str:
        return _bind_host(value)

    def identity_providers(self) -> dict[str, IdpSettings]:
        """Every IdP by the name routes use: ``[idp]`` as :data:`DEFAULT_IDP`, then ``[idps.NAME]``."""
        found = {DEFAULT_IDP: self.idp} if self.idp is not None else {}
        return found | dict(self.idps)

    def idp_of(self, route: RouteSettings) -> str:
        """The name of the IdP that validates `route`'s tokens."""
        return route.idp if route.idp is not None else DEFAULT_IDP


def _path_prefix(value: str) -> str:
    """A path prefix as routes match it: absolute, no query, no dot segments, no trailing slash."""
    if not value.startswith("/") or any(c in value for c in "?#\\\x00") or not value.isprintable():
        raise ValueError(f"{value!r} must be an absolute path without query, fragment or backslash")
    segments = value.split("/")
    if any(s in (".", "..") for s in segments) or "//" in value:
        raise ValueError(f"{value!r} must not have empty, '.' or '..' segments")
    return value.rstrip("/") or "/"


# -- reading the file -----------------------------------------------------------------------------


def load_gateway_settings(path: Path) -> GatewaySettings:
    """Read and check the file; GatewayConfigError with one line naming the bad key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GatewayConfigError(f"config: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GatewayConfigError(f"config: cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GatewayConfigError(f"config: {path} is not TOML: {exc}") from None
    return parse_gateway_settings(data)


def parse_gateway_settings(data: Mapping[str, Any]) -> GatewaySettings:
    """The settings of a parsed TOML document, checked (GatewayConfigError)."""
    try:
        settings = GatewaySettings.model_validate(data)
    except ValidationError as exc:
        raise GatewayConfigError(_first_error(exc)) from None
    problem = _consistency_problem(settings)
    if problem:
        raise GatewayConfigError(problem)
    return settings


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{_key(loc)}: {msg}"


def _consistency_problem(s: GatewaySettings) -> str | None:
    """The first contradiction, or missing piece, in settings that are each well-formed."""
    problem = forwarding_problem(s.listener, "listener.")
    if problem:
        return problem
    if s.auth_request is not None and not s.listener.trusted_proxies:
        return "auth_request: needs listener.trusted_proxies (only a trusted proxy may ask for decisions)"
    problem = _revocation_problem(s.listener)
    if problem:
        return problem
    if s.metrics_port is not None and s.metrics_port == s.listener.port:
        return f"metrics_port and listener.port: both are {s.metrics_port}"
    idps = s.identity_providers()
    if not idps:
        return 'idp: no identity provider ([idp], or [idps.NAME] and idp = "NAME" on each route)'
    if s.idp is not None and DEFAULT_IDP in s.idps:
        return f"idps.{DEFAULT_IDP}: {DEFAULT_IDP!r} is the name of [idp]; choose another"
    for name in s.idps:
        if not _NAME.fullmatch(name):
            return f"idps.{name}: the name must be letters, digits, '_', '.' or '-'"
    for name, idp in idps.items():
        problem = _idp_problem(idp, idp_key(s, name))
        if problem:
            return problem
    return _routes_problem(s, idps) or _files_problem(s)


def _revocation_problem(listener: ListenerSettings) -> str | None:
    """CRLs that would never be read: no client_ca (nothing is checked), or a mode without CRLs."""
    if not listener.client_ca_crls:
        return None
    if listener.client_ca is None:
        return "listener.client_ca_crls: needs listener.client_ca (only chains to it are checked)"
    if not listener.client_cert_revocation.endswith("crl"):
        return (
            f"listener.client_ca_crls and listener.client_cert_revocation: the CRLs are never read with "
            f"{listener.client_cert_revocation!r}; use 'ocsp,crl' or 'crl', or drop client_ca_crls"
        )
    for location in listener.client_ca_crls:
        if not location.lower().startswith(("http://", "https://")) and not Path(location).is_file():
            return f"listener.client_ca_crls: no such file: {location}"
    return None


def _idp_problem(idp: IdpSettings, key: str) -> str | None:
    if (idp.tls_client_auth_cert is None) != (idp.tls_client_auth_key is None):
        return f"{key}.tls_client_auth_cert and {key}.tls_client_auth_key: give both or neither"
    if idp.ca_bundle is not None and not idp.tls_client_auth_ssl_verify:
        return f"{key}.ca_bundle and {key}.tls_client_auth_ssl_verify = false: give one or the other"
    if idp.client_secret is not None and idp.client_secret_file is not None:
        return f"{key}.client_secret and {key}.client_secret_file: give one, not both"
    if idp.client_id is None:
        return None
    methods = idp.methods()
    has_cert = idp.tls_client_auth_cert is not None or bool(idp.client_certificates)
    for method in sorted(methods):
        if method in _MTLS_METHODS and not has_cert:
            return f"{key}.tls_client_auth_cert: {method} needs the gateway's client certificate and key"
        if method in _SECRET_METHODS and idp.client_secret is None and idp.client_secret_file is None:
            return f"{key}.client_secret: {method} needs a client secret (or client_secret_file)"
        if method == "private_key_jwt" and idp.client_jwk_file is None:
            return f"{key}.client_jwk_file: private_key_jwt needs the gateway's private JWK"
    if idp.client_alg is not None and not ({"client_secret_jwt", "private_key_jwt"} & methods):
        return f"{key}.client_alg: only client_secret_jwt and private_key_jwt sign assertions"
    overrides = ("mtls_token_endpoint", "mtls_introspection_endpoint", "mtls_revocation_endpoint")
    for name in overrides:
        if getattr(idp, name) is not None and not has_cert:
            return f"{key}.{name}: used only with a client certificate, and none is configured"
    return None


def _routes_problem(s: GatewaySettings, idps: Mapping[str, IdpSettings]) -> str | None:
    names: set[str] = set()
    prefixes: dict[str, str] = {}
    for index, route in enumerate(s.routes):
        key = f"routes[{index}]"
        if route.name in names:
            return f"{key}.name: {route.name!r} is the name of another route"
        names.add(route.name)
        if route.login_enabled() and route.name.endswith("-login"):
            other = route.name.removesuffix("-login")
            if any(r.name == other and r.login_enabled() for r in s.routes):
                # __Host-cbgw-<name>-login is the other route's login cookie: each would end the other's
                return f"{key}.name: {route.name!r} is the name of route {other!r}'s login cookie; rename it"
        for path in route.paths:
            if path in prefixes:
                return f"{key}.paths: {path!r} is already a path of route {prefixes[path]!r}"
            if path == HEALTH_PATH or (s.auth_request is not None and path == s.auth_request.path):
                return f"{key}.paths: {path!r} is answered by the gateway itself"
            prefixes[path] = route.name
        idp_name = s.idp_of(route)
        idp = idps.get(idp_name)
        if idp is None:
            if route.idp is None:
                return f"{key}.idp: no [idp] is configured; name one of [idps] ({', '.join(idps)})"
            return f"{key}.idp: no [idps.{route.idp}]"
        if "introspection" in route.auth_methods and idp.client_id is None:
            where = idp_key(s, idp_name)
            return f"{where}.client_id: route {route.name!r} introspects tokens, which needs a client_id"
        if len(set(route.auth_methods)) != len(route.auth_methods):
            return f"{key}.auth_methods: a method is listed twice"
        if route.upstream_ca_bundle is not None and not (route.upstream or "").startswith("https://"):
            return f"{key}.upstream_ca_bundle: only for an https:// upstream"
        if route.cache_ttl_neg and not route.cache_introspection:
            return f"{key}.cache_ttl_neg: needs cache_introspection = true"
        problem = _login_problem(route, key, idp, idp_key(s, idp_name))
        if problem:
            return problem
    return None


def _login_problem(route: RouteSettings, key: str, idp: IdpSettings, where: str) -> str | None:
    """The part-2 keys of a route: what each method needs, and what contradicts."""
    methods = set(route.auth_methods)
    if methods - {"bearer", "client_credentials", "introspection", "userinfo"} and idp.client_id is None:
        return f"{where}.client_id: route {route.name!r} gets tokens from the IdP, which needs a client_id"
    if "session" in methods and "authorization_code" not in methods:
        return f"{key}.auth_methods: session needs authorization_code (the login that makes sessions)"
    if route.login_enabled():
        if route.redirect_uri is None:
            return f"{key}.redirect_uri: authorization_code needs the gateway's callback URL"
        path = urlsplit(route.redirect_uri).path
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in route.paths):
            return f"{key}.redirect_uri: its path {path!r} is not under the route's paths"
        if "openid" not in route.scopes:
            return f"{key}.scopes: authorization_code logs people in with OpenID Connect: include 'openid'"
        if route.upstream is None:
            return f"{key}.upstream: authorization_code needs an upstream (auth_request has no browser)"
    if route.login_action == "redirect" and route.login_redirect_uri is None and route.login_enabled():
        return f"{key}.login_redirect_uri: login_action = 'redirect' needs it"
    if route.session_storage == "redis" and route.redis_url is None:
        return f"{key}.redis_url: session_storage = 'redis' needs it"
    if route.redis_url is not None and not route.redis_url.startswith(("redis://", "rediss://")):
        return f"{key}.redis_url: must be a redis:// or rediss:// URL"
    both = {"client_credentials", "password"} <= methods
    if both and "header" in route.client_credentials_param_type and "header" in route.password_param_type:
        return (f"{key}.password_param_type: client_credentials_param_type reads the Basic header too; "
                "give 'header' to one of them only")  # fmt: skip
    if route.logout_uri_suffix is not None and not route.sessions_used():
        return f"{key}.logout_uri_suffix: only a route with sessions (authorization_code) logs out"
    return None


def _files_problem(s: GatewaySettings) -> str | None:
    files: list[tuple[str, Path | None]] = [
        ("listener.tls_cert", s.listener.tls_cert),
        ("listener.tls_key", s.listener.tls_key),
        ("listener.client_ca", s.listener.client_ca),
        ("listener.forwarded_cert_intermediates", s.listener.forwarded_cert_intermediates),
    ]
    for name, idp in s.identity_providers().items():
        key = idp_key(s, name)
        for field in ("tls_client_auth_cert", "tls_client_auth_key", "ca_bundle", "client_secret_file",
                      "client_jwk_file"):  # fmt: skip
            files.append((f"{key}.{field}", getattr(idp, field)))
        for index, cert in enumerate(idp.client_certificates):
            files += [(f"{key}.client_certificates[{index}].cert", cert.cert),
                      (f"{key}.client_certificates[{index}].key", cert.key)]  # fmt: skip
    for index, route in enumerate(s.routes):
        files.append((f"routes[{index}].upstream_ca_bundle", route.upstream_ca_bundle))
    for name, path in files:
        if path is not None and not path.is_file():
            return f"{name}: no such file: {path}"
    return None


def idp_key(settings: GatewaySettings, name: str) -> str:
    """How the file names the IdP called `name` (``idp`` or ``idps.NAME``), for messages."""
    return "idp" if name == DEFAULT_IDP and settings.idp is not None else f"idps.{name}"
