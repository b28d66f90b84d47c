"""The client authentication method names (RFC 6749, RFC 7523, RFC 8705), in one place.

A leaf module on purpose: registration, client authentication, metadata and the outbound client all
need the list, and none of them should import another just for it.
"""

from typing import Final

METHODS: Final = (
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
)
