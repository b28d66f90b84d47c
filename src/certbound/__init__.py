"""certbound: an OAuth 2.0 authorization server, client and gateway built around mutual TLS."""

__version__ = "0.1.0"
