"""stack (in progress)."""
