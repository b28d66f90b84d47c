"""certbound.grants: one module per grant type, dispatched by `registry.GrantRegistry`.

A grant decides what a token request may get (scope, audience, binding) and asks
`certbound.tokens.access_token.AccessTokenIssuer` to mint it. No web framework here.
"""

from certbound.grants.registry import GrantRegistry, default_grants
from certbound.grants.types import Grant, GrantRequest

__all__ = ["Grant", "GrantRegistry", "GrantRequest", "default_grants"]
