"""certbound.server.tokens: the access tokens the server mints, introspects and revokes.

They are signed with `certbound.jose` (keys: docs/keys.md).
"""
