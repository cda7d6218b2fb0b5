"""capacity (in progress)."""
