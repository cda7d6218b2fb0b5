"""run (in progress)."""
