"""certbound.cli."""
