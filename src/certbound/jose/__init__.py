"""certbound.jose: signing and verifying JWTs, shared by the server, the client and the gateway.

Signing algorithms and keys (`algorithms`, `signer`), the server's own key ring (`keyring`), and a
cache of tokens already verified (`verified_cache`).
"""
