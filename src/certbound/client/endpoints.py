"""Which URL to call for an endpoint: explicit override, then mTLS alias, then the metadata.

RFC 8705 section 5: a client that authenticates with (or binds tokens to) a certificate uses the URLs
in ``mtls_endpoint_aliases`` for every endpoint listed there; the server may ask for certificates only
on those hosts. Explicit ``mtls_*_endpoint`` settings (the names Kong uses) win over both, for servers
whose metadata is wrong or absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from certbound.client.config import ClientConfig
from certbound.client.errors import DiscoveryError

__all__ = ["Endpoint", "EndpointChoice", "resolve_endpoint"]

Endpoint = Literal["token", "introspection", "revocation"]

EndpointChoice = tuple[str, Literal["override", "mtls_alias", "metadata"]]


def _override(config: ClientConfig, endpoint: Endpoint) -> str | None:
    return {
        "token": config.mtls_token_endpoint,
        "introspection": config.mtls_introspection_endpoint,
        "revocation": config.mtls_revocation_endpoint,
    }[endpoint]


def resolve_endpoint(
    endpoint: Endpoint, metadata: Mapping[str, Any], config: ClientConfig, *, with_certificate: bool
) -> EndpointChoice:
    """The URL for `endpoint` and where it came from; DiscoveryError when the server has none."""
    name = f"{endpoint}_endpoint"
    if with_certificate:
        override = _override(config, endpoint)
        if override:
            return override, "override"
        aliases = metadata.get("mtls_endpoint_aliases")
        if isinstance(aliases, Mapping):
            alias = aliases.get(name)
            if isinstance(alias, str) and alias:
                return alias, "mtls_alias"
    url = metadata.get(name)
    if isinstance(url, str) and url:
        return url, "metadata"
    raise DiscoveryError(f"the server's metadata has no {name}", issuer=config.issuer)
