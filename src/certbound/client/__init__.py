"""certbound.client."""
