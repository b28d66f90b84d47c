"""The client authentication method names (RFC 6749, RFC 7523, RFC 8705), in one place.

A leaf module on purpose: registration, client authentication, metadata and the outbound client all
need the list, and none of them should import another just for it. The default method and the
endpoints a client registers a method for live here too, for the same reason.
"""

from typing import Final, Literal

METHODS: Final = (
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
)

#: The ``token_endpoint_auth_method`` of a client that registered none (RFC 7591 section 2).
DEFAULT_METHOD: Final = "client_secret_basic"

#: The endpoints that authenticate clients; each has its ``<endpoint>_endpoint_auth_method``.
Endpoint = Literal["token", "introspection", "revocation"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = ("token", "introspection", "revocation")
