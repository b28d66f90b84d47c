"""certbound.clientauth."""
