"""certbound.grants."""
