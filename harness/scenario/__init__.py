"""scenario (in progress)."""
