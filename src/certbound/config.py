"""One settings model for the whole server: defaults < TOML file < `CERTBOUND_*` environment < flags.

Every option has a safe default; a bad or contradictory setting is refused at start with a
`SettingsError` whose one-line message names the setting(s) and what is wrong.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_toml_path: ContextVar[Path | None] = ContextVar("certbound_toml_path", default=None)

#: The header formats a trusted proxy may forward the client certificate in (`certbound.tls.headers`).
ForwardedCertHeader = Literal["rfc9440", "nginx", "envoy-xfcc"]
#: ``client_cert_revocation``: the same values as `certbound.certstatus.Mode` (serve and the gateway).
RevocationMode = Literal["ocsp,crl", "crl", "ocsp", "off"]


class SettingsError(Exception):
    """A setting is missing, malformed or contradicts another; the message is one line for the user."""


class Settings(BaseSettings):
    """Everything `certbound serve` can be told. Each field is also `CERTBOUND_<NAME>` and a TOML key."""

    model_config = SettingsConfigDict(env_prefix="CERTBOUND_", extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8443, ge=1, le=65535, description="HTTPS port of the main listener.")
    mtls_port: int | None = Field(
        None, ge=1, le=65535, description="Optional second listener for mutual TLS (mtls_endpoint_aliases)."
    )
    issuer: str | None = Field(None, description="Issuer URL; default https://<host>:<port>.")
    mtls_base_url: str | None = Field(
        None,
        description="Base URL of the mTLS listener as clients reach it; default the issuer on mtls_port.",
    )
    tls_cert: Path | None = Field(None, description="Server certificate (PEM, chain after the leaf).")
    tls_key: Path | None = Field(None, description="Private key of the server certificate (PEM).")
    client_ca: Path | None = Field(None, description="PEM bundle of CAs trusted for tls_client_auth.")
    client_cert_revocation: RevocationMode = Field(
        "ocsp,crl",
        description="Revocation checking of tls_client_auth certificates: OCSP (the certificate's AIA) then "
        "CRLs (client_ca_crls, then its distribution points), CRLs only, OCSP only, or off.",
    )
    client_cert_revocation_soft_fail: bool = Field(
        False,
        description="Accept, with a warning, a certificate whose revocation status cannot be had (responder "
        "down, CRL expired); false refuses it (invalid_client, reason cert.revocation_unknown).",
    )
    client_cert_revocation_max_age: int = Field(
        86400,
        ge=60,
        le=30 * 86400,
        description="Longest an OCSP answer or a CRL is used, in seconds, whatever its nextUpdate says.",
    )
    client_cert_rotation_overlap: int = Field(
        86400,
        ge=0,
        le=90 * 86400,
        description="When an RFC 7592 update replaces a registered certificate, the old one stays valid this "
        "many seconds more (or until it expires, if sooner); 0 drops it at once.",
    )
    client_ca_crls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CRLs of the client CAs (files or http/https URLs, PEM or DER), for PKIs whose "
        "certificates name no CRL or OCSP responder; each applies to the CA that issued and signed it.",
    )
    data_dir: Path = Field(Path("data"), description="Where the SQLite database, KEK and dev PKI live.")
    database_url: str | None = Field(
        None, description="sqlite:///path or postgresql://...; default SQLite in the data dir.", repr=False
    )
    registration_token: SecretStr | None = Field(
        None, description="Initial access token for dynamic registration; registration is closed without it."
    )
    registration_token_file: Path | None = Field(None, description="File holding the registration token.")
    kek: SecretStr | None = Field(
        None, description="Key-encryption key (32 bytes, base64url or hex) sealing secrets at rest."
    )
    kek_file: Path | None = Field(None, description="File holding the KEK; default <data_dir>/kek, created.")
    clients_file: Path | None = Field(None, description="TOML file of clients declared at start (read-only).")
    allowed_scopes: list[str] | None = Field(
        None, description="Scope catalogue; without one any scope may be registered."
    )
    signing_alg: Literal["ES256", "ES384", "RS256", "PS256", "EdDSA"] = Field(
        "ES256", description="Algorithm of the signing key generated on first start."
    )
    access_token_lifetime: int = Field(600, ge=10, le=86400, description="Access token lifetime in seconds.")
    access_token_format: Literal["jwt", "opaque"] = Field(
        "jwt", description="Default access token format (RFC 9068 JWT or opaque); a client may ask otherwise."
    )
    default_audience: str | None = Field(
        None, description="`aud` of access tokens issued without a `resource`; default the issuer."
    )
    assertion_max_lifetime: int = Field(
        300, ge=10, le=3600, description="How far ahead a client assertion's `exp` may be, in seconds."
    )
    clock_skew: int = Field(30, ge=0, le=300, description="Leeway for `exp`/`nbf`/`iat` checks, in seconds.")
    jwks_uri_max_age: int = Field(
        60, ge=0, le=86400, description="Longest time a client's fetched jwks_uri is used, in seconds."
    )
    jwks_uri_refetch_interval: int = Field(
        10, ge=0, le=3600, description="Least time between refetches of one jwks_uri on an unknown key."
    )
    outbound_ca_bundle: Path | None = Field(
        None, description="Extra CAs trusted for outbound HTTPS (jwks_uri), besides the system store."
    )
    outbound_allow_private: bool = Field(
        False,
        description="Allow fetching jwks_uri from loopback/private addresses (else only if the issuer is).",
    )
    tls_mode: Literal["auto", "native", "degraded"] = Field(
        "auto",
        description="How client certificates reach the app: auto (self-check decides), native, or degraded.",
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the listening sockets.")
    dev: bool = Field(
        False, description="Embedded default: create a dev PKI, demo client and registration token."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["json", "console"] = Field(
        "json", description="json: one JSON object per line (for collectors); console: for humans."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxy addresses (CIDRs) whose forwarded client-certificate header is believed.",
    )
    forwarded_cert_header: ForwardedCertHeader | None = Field(
        None, description="Header format the trusted proxies use to forward the client certificate."
    )
    forwarded_cert_intermediates: Path | None = Field(
        None,
        description="PEM bundle of intermediates added to forwarded chains (for proxies that send the leaf).",
    )
    require_pkce: bool = Field(
        True,
        description="PKCE (S256) required of every client at /authorize; public clients need it regardless.",
    )
    require_pushed_authorization_requests: bool = Field(
        False, description="Authorization requests only by reference from /par (RFC 9126), for every client."
    )
    refresh_token_lifetime: int = Field(
        1209600,
        ge=60,
        le=31536000,
        description="Lifetime of a grant and its refresh tokens, in seconds.",
    )
    id_token_lifetime: int = Field(600, ge=60, le=86400, description="ID token lifetime in seconds.")
    login_session_lifetime: int = Field(
        28800,
        ge=60,
        le=2592000,
        description="How long a login at the login page lasts, in seconds.",
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed logins of one username before it is locked out.",
    )
    login_max_address_failures: int = Field(
        20,
        ge=1,
        le=100000,
        description="Failed logins from one address before it is locked out.",
    )
    login_lockout: int = Field(
        30,
        ge=1,
        le=86400,
        description="First lock-out, seconds; it doubles with each further failure, to 1 h.",
    )
    fast_paths: bool = Field(
        True,
        description="Hot-path shortcuts (direct SQLite/PostgreSQL reads, direct log writes, "
        "hot routes ahead of the middleware); false runs the general path, for diagnosis.",
    )
    wait_for_database: float = Field(
        0,
        ge=0,
        le=3600,
        description="At start, wait up to this many seconds for an unreachable database (one warning, "
        "then retries with back-off); 0 stops start-up at once.",
    )
    max_header_bytes: int = Field(
        96 * 1024,
        ge=8 * 1024,
        le=1024 * 1024,
        description="Largest request line and headers, in bytes; a larger request head is answered 431 "
        "and its connection closed.",
    )
    max_header_count: int = Field(
        100,
        ge=16,
        le=1000,
        description="Most headers in one request; more are answered 431 and the connection closed.",
    )
    header_timeout: float = Field(
        20.0,
        ge=1,
        le=300,
        description="Seconds from the TLS handshake, or a request's first byte, to the end of its headers; "
        "a slower head is answered 408 and its connection closed.",
    )
    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus metrics listener.")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the Prometheus metrics listener (plain HTTP); unset: off."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) beat the environment, which beats the TOML file, which beats the defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_path.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @field_validator("issuer", "mtls_base_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("trusted_proxies", "client_ca_crls", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """`CERTBOUND_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1` or a JSON list; a TOML list as it is."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return proxy_cidrs(value)

    @field_validator("client_ca_crls")
    @classmethod
    def _crl_locations(cls, value: list[str]) -> list[str]:
        return crl_locations(value)

    @field_validator("host", "metrics_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("must be a host name or IP address")
        return value

    # -- derived values -------------------------------------------------------------------------

    @property
    def issuer_url(self) -> str:
        """The issuer, defaulting to the main listener's URL."""
        return self.issuer or f"https://{_url_host(self.host)}:{self.port}"

    @property
    def mtls_url(self) -> str:
        """Base URL of the endpoints clients call with a certificate (RFC 8705 section 5)."""
        if self.mtls_base_url:
            return self.mtls_base_url
        if self.mtls_port is None:
            return self.issuer_url
        return _mtls_url(self.issuer_url, self.host, self.mtls_port)

    @property
    def id_token_signing_algs(self) -> tuple[str, ...]:
        """What ID tokens may be signed with: RS256 (the registration default, OpenID Connect Dynamic
        Client Registration section 2) and the access tokens' algorithm; the key ring keeps one key each."""
        return tuple(dict.fromkeys(("RS256", self.signing_alg)))

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'certbound.db').resolve()}"

    @property
    def dev_pki_dir(self) -> Path:
        return self.data_dir / "pki"

    def registration_token_value(self) -> str | None:
        """The initial access token from the setting or its file (checked at load to be one, not both)."""
        if self.registration_token is not None:
            return self.registration_token.get_secret_value()
        if self.registration_token_file is not None:
            return read_secret_file(self.registration_token_file, "registration_token_file")
        return None


# Both are read on every token request (assertion audiences): pure functions, cached.
@functools.lru_cache(maxsize=64)
def _url_host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


@functools.lru_cache(maxsize=64)
def _mtls_url(issuer_url: str, host: str, mtls_port: int) -> str:
    parts = urlsplit(issuer_url)
    netloc = f"{_url_host(parts.hostname or host)}:{mtls_port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def read_secret_file(path: Path, setting: str) -> str:
    """A secret kept in a file (stripped); SettingsError naming `setting` when it is unreadable or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise SettingsError(f"{setting}: {path} is empty")
    return value


def crl_locations(value: list[str]) -> list[str]:
    """``client_ca_crls``: each an http(s) URL with a host, or a file path (checked to exist later)."""
    for item in value:
        parts = urlsplit(item)
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise ValueError(f"{item!r} is not a URL with a host")
        if parts.scheme not in ("", "http", "https") and len(parts.scheme) > 1:  # C:\ is a path
            raise ValueError(f"{item!r}: only files and http/https URLs are read")
    return value


def proxy_cidrs(value: list[str]) -> list[str]:
    """`trusted_proxies` normalized; a network with host bits set is refused (a typo that would trust
    too much), and so is one that trusts every address. Shared by `serve` and `gateway`."""
    out: list[str] = []
    for item in value:
        text = item.strip()
        try:
            network = ipaddress.ip_network(text)
        except ValueError:
            try:
                meant = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
            raise ValueError(f"{item!r} has host bits set; did you mean {meant}?") from None
        if network.prefixlen == 0:  # anyone could then forge the forwarded certificate header
            raise ValueError(f"{item!r} trusts every address; name the proxies themselves")
        out.append(str(network))
    return out


class ForwardingSettings(Protocol):
    """The three settings of trusted-proxy certificate headers, as `serve` and `gateway` name them."""

    @property
    def trusted_proxies(self) -> list[str]: ...
    @property
    def forwarded_cert_header(self) -> ForwardedCertHeader | None: ...
    @property
    def forwarded_cert_intermediates(self) -> Path | None: ...


def forwarding_problem(s: ForwardingSettings, prefix: str = "") -> str | None:
    """What is contradictory in the forwarding settings (one line naming them), or None."""
    if bool(s.trusted_proxies) != (s.forwarded_cert_header is not None):
        return (
            f"{prefix}trusted_proxies and {prefix}forwarded_cert_header: give both (which proxies, which "
            "header) or neither"
        )
    if s.forwarded_cert_intermediates is not None and not s.trusted_proxies:
        return (
            f"{prefix}forwarded_cert_intermediates: needs {prefix}trusted_proxies and "
            f"{prefix}forwarded_cert_header"
        )
    return None


@contextmanager
def _toml_source(path: Path | None) -> Iterator[None]:
    token = _toml_path.set(path)
    try:
        yield
    finally:
        _toml_path.reset(token)


def load_settings(
    flags: Mapping[str, Any] | None = None, config_file: Path | None = None, *, serving: bool = True
) -> Settings:
    """Build and check the settings; raise SettingsError with one line naming what is wrong.

    `serving=False` is for commands that only open the store (`certbound keys`): no server certificate.
    """
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config: no such file: {config_file}")
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    try:
        with _toml_source(config_file):
            settings = Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_first_error(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config: {config_file}: {exc}") from None
    except (ValueError, OSError) as exc:  # a malformed environment value
        raise SettingsError(f"config: {exc}") from None
    check_consistency(settings, serving=serving)
    return settings


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err["loc"]) or "settings"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{name}: {msg}{more}"


def check_consistency(s: Settings, *, serving: bool = True) -> None:
    """Refuse contradictory settings, naming both options."""
    if s.registration_token is not None and s.registration_token_file is not None:
        raise SettingsError("registration_token and registration_token_file: give one, not both")
    if s.kek is not None and s.kek_file is not None:
        raise SettingsError("kek and kek_file: give one, not both")
    if (s.tls_cert is None) != (s.tls_key is None):
        raise SettingsError("tls_cert and tls_key: give both or neither")
    if s.tls_cert is None and not s.dev and serving:
        raise SettingsError("tls_cert: required (a server certificate and key), or use --dev for a dev PKI")
    if s.mtls_port is not None and s.mtls_port == s.port:
        raise SettingsError(f"mtls_port and port: both are {s.port}; the mTLS listener needs its own port")
    if s.mtls_base_url is not None and s.mtls_port is None:
        raise SettingsError("mtls_base_url: needs mtls_port (the listener it describes)")
    problem = forwarding_problem(s)
    if problem:
        raise SettingsError(problem)
    if s.metrics_port is not None and s.metrics_port in (s.port, s.mtls_port):
        raise SettingsError(f"metrics_port and port/mtls_port: {s.metrics_port} is taken by a main listener")
    if s.client_ca_crls and not s.client_cert_revocation.endswith("crl"):
        raise SettingsError(
            f"client_ca_crls and client_cert_revocation: the CRLs are never read with client_cert_revocation "
            f"= {s.client_cert_revocation!r}; use 'ocsp,crl' or 'crl', or drop client_ca_crls"
        )
    for location in s.client_ca_crls:
        if not location.lower().startswith(("http://", "https://")) and not Path(location).is_file():
            raise SettingsError(f"client_ca_crls: no such file: {location}")
    files = ("tls_cert", "tls_key", "client_ca", "clients_file", "registration_token_file", "kek_file",
             "outbound_ca_bundle", "forwarded_cert_intermediates")  # fmt: skip
    for name in files:
        path: Path | None = getattr(s, name)
        if path is not None and not path.is_file():
            raise SettingsError(f"{name}: no such file: {path}")
    if s.database_url is not None and not s.database_url.startswith(
        ("sqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")
    ):
        raise SettingsError("database_url: must start with sqlite:/// or postgresql://")
    if serving:
        token = s.registration_token_value()  # reads registration_token_file: empty or unreadable fails here
        if token is not None and len(token) < 16:
            name = "registration_token" if s.registration_token is not None else "registration_token_file"
            raise SettingsError(f"{name}: too short; use at least 16 characters (32 random bytes is better)")
