"""The typed client model: what the server reads from a client's metadata, read once.

Every way a client comes to exist validates its metadata first (`certbound.server.clients.metadata`),
but a stored row may predate a rule or have been written by hand, so `client_model` reads each field
the way the server always has and never raises: a missing or mistyped value means "not registered"
(no grant type, no scope, no resource, no binding, the default method), never an error and never a
guess. The model is built once per client where clients are compiled
(`certbound.server.clientauth.directory`) and travels with the authenticated client, so grants,
scope, resource, binding, introspection rules and the token minter read typed fields, not the dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from certbound.auth_methods import DEFAULT_METHOD, ENDPOINTS, Endpoint
from certbound.store.records import Client

__all__ = [
    "DEFAULT_ID_TOKEN_ALG",
    "TLS_CLIENT_AUTH_SUBJECT_FIELDS",
    "ClientModel",
    "TokenFormat",
    "client_model",
]

#: ``id_token_signed_response_alg`` when none is registered (OpenID Connect Registration section 2).
DEFAULT_ID_TOKEN_ALG: Final = "RS256"  # noqa: S105 (an algorithm name)

#: The access-token formats a client may register (``access_token_format``).
TokenFormat = Literal["jwt", "opaque"]

#: RFC 8705 section 2.1.2, in the order a registration names them.
TLS_CLIENT_AUTH_SUBJECT_FIELDS: Final = (
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
)


@dataclass(frozen=True, slots=True)
class ClientModel:
    """One client's registration, typed (RFC 7591, RFC 8705, RFC 8707 and certbound's own fields).

    `scope` holds the registered scope values, each once, in registration order; `methods` and
    `signing_algs` hold the token, introspection and revocation endpoints' entries with the defaults
    applied; `tls_client_auth_subject` holds every subject field that is set, value as stored (the
    rule that compares certificates with it is `certbound.server.clientauth.subject`'s).
    """

    client_id: str
    methods: Mapping[Endpoint, str] = field(hash=False)
    signing_algs: Mapping[Endpoint, str | None] = field(hash=False)
    grant_types: frozenset[str] = frozenset()
    scope: tuple[str, ...] = ()
    resources: frozenset[str] = frozenset()
    certificate_bound: bool = False
    access_token_format: TokenFormat | None = None
    resource_server_audiences: frozenset[str] = frozenset()
    jwks_uri: str | None = None
    tls_client_auth_subject: tuple[tuple[str, object], ...] = ()
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    response_types: frozenset[str] = frozenset()
    client_name: str | None = None
    id_token_signed_response_alg: str = DEFAULT_ID_TOKEN_ALG
    userinfo_signed_response_alg: str | None = None  # None: plain JSON (OpenID Connect Registration)
    consent_required: bool = True
    require_pushed_authorization_requests: bool = False

    @property
    def is_public(self) -> bool:
        """A public client (``token_endpoint_auth_method`` none): it holds no credential."""
        return self.methods["token"] == "none"  # noqa: S105 (a method name)

    def method_for(self, endpoint: Endpoint) -> str:
        """The authentication method registered for `endpoint` (the token endpoint's by default)."""
        return self.methods[endpoint]

    def signing_alg_for(self, endpoint: Endpoint) -> str | None:
        """The assertion ``alg`` registered for `endpoint`, None when any allowed one will do."""
        return self.signing_algs[endpoint]


def client_model(client: Client) -> ClientModel:
    """The model of a stored client (never raises: see the module docstring)."""
    md = client.metadata
    token_method = _non_empty(md.get("token_endpoint_auth_method")) or DEFAULT_METHOD
    methods: dict[Endpoint, str] = {"token": token_method}
    for endpoint in ENDPOINTS[1:]:
        methods[endpoint] = _non_empty(md.get(f"{endpoint}_endpoint_auth_method")) or token_method
    token_alg = md.get("token_endpoint_auth_signing_alg")
    algs: dict[Endpoint, str | None] = {}
    for endpoint in ENDPOINTS:
        own = md.get(f"{endpoint}_endpoint_auth_signing_alg")
        # an endpoint that shares the token endpoint's method shares its alg, unless it names its own
        alg = own if own is not None else (token_alg if methods[endpoint] == token_method else None)
        algs[endpoint] = alg if isinstance(alg, str) else None
    scope = md.get("scope")
    return ClientModel(
        client_id=client.client_id,
        methods=MappingProxyType(methods),
        signing_algs=MappingProxyType(algs),
        grant_types=frozenset(_strings(md.get("grant_types"))),
        scope=tuple(dict.fromkeys(scope.split())) if isinstance(scope, str) else (),
        resources=frozenset(_strings(md.get("resources"))),
        certificate_bound=md.get("tls_client_certificate_bound_access_tokens") is True,
        access_token_format=_token_format(md.get("access_token_format")),
        resource_server_audiences=frozenset(v for v in _strings(md.get("resource_server_audiences")) if v),
        jwks_uri=_non_empty(md.get("jwks_uri")),
        tls_client_auth_subject=tuple(
            (name, md[name]) for name in TLS_CLIENT_AUTH_SUBJECT_FIELDS if md.get(name) is not None
        ),
        redirect_uris=tuple(_strings(md.get("redirect_uris"))),
        post_logout_redirect_uris=tuple(_strings(md.get("post_logout_redirect_uris"))),
        response_types=frozenset(_strings(md.get("response_types"))),
        client_name=_non_empty(md.get("client_name")),
        id_token_signed_response_alg=_non_empty(md.get("id_token_signed_response_alg"))
        or DEFAULT_ID_TOKEN_ALG,
        userinfo_signed_response_alg=_non_empty(md.get("userinfo_signed_response_alg")),
        consent_required=md.get("consent_required") is not False,
        require_pushed_authorization_requests=md.get("require_pushed_authorization_requests") is True,
    )


def _non_empty(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _token_format(value: Any) -> TokenFormat | None:
    if value == "opaque":
        return "opaque"
    if value == "jwt":
        return "jwt"
    return None  # the server's default


def _strings(value: Any) -> list[str]:
    """The strings of a JSON array; nothing for anything else (a string is not a list of one)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
