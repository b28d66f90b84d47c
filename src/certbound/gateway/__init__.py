"""certbound.gateway."""
