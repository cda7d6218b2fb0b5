"""explore (in progress)."""
