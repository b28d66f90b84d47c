"""Tests for certbound.tls: real TLS handshakes on 127.0.0.1."""
