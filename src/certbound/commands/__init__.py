"""certbound.commands."""
