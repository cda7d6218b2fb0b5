"""checkers (in progress)."""
