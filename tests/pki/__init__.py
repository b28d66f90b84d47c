"""Tests of certbound.pki and the `certbound pki` commands."""
