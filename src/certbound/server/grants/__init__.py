"""certbound.server.grants: one module per grant type, dispatched by `registry.GrantRegistry`.

A grant decides what a token request may get (scope, audience, binding) and asks
`certbound.server.tokens.minter.TokenMinter` to mint it, which returns a `TokenSet`. No web framework
here.
"""

from certbound.server.grants.registry import GrantRegistry, default_grants
from certbound.server.grants.types import Grant, GrantRequest

__all__ = ["Grant", "GrantRegistry", "GrantRequest", "default_grants"]
