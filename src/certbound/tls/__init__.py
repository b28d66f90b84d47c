"""certbound.tls: how a request's client certificate is obtained.

The native TLS listener (``listener``, ``protocol``, ``server_context``, ``openssl_verify``) and, later,
the trusted-proxy header readers (``headers``) all deliver a :class:`ClientCertificate`.
"""

from certbound.tls.client_certificate import ClientCertificate, client_certificate_from_scope

__all__ = ["ClientCertificate", "client_certificate_from_scope"]
