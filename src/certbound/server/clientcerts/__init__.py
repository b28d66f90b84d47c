"""certbound.server.clientcerts: the life of client certificates around the server (issue 16).

Revoked leaves known to every worker and node, and the certificates clients present
(:mod:`.watch`); expiry: the gauge, the warnings and the listing of certificates about to expire
(:mod:`.expiry`).
"""

from certbound.server.clientcerts.expiry import ExpiryMonitor, client_certificates, expiring_within
from certbound.server.clientcerts.watch import CertificateWatch

__all__ = ["CertificateWatch", "ExpiryMonitor", "client_certificates", "expiring_within"]
