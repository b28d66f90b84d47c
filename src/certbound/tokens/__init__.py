"""certbound.tokens: signing keys and JWKS (`algorithms`, `signer`, `keyring`), and the tokens made with them.

Key life cycle and storage are described in docs/keys.md.
"""
