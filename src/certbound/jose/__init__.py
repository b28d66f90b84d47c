"""certbound.jose: signing and verifying JWTs, shared by the server, the client and the gateway.

Signing: the algorithms (`algorithms`, the one list), keys and the signer (`signer`), the server's own
key ring (`keyring`). Verifying: one compact-JWS path (`jws`) behind one entry point
(`verify.verify_jwt`), keys from a source (`key_source`: the key ring, a remote JWKS in
`remote_jwks`, JWK Sets read by `jwk_set`), claim profiles (`claims`: at+jwt, client assertions, ID
tokens), the ``cnf`` certificate binding (`binding`), typed refusals with reason codes (`errors`), and
a cache of tokens already verified (`verified_cache`).
"""
