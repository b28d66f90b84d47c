"""certbound.server.endpoints."""
