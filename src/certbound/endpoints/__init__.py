"""certbound.endpoints."""
