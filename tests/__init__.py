"""The test suite: a package, so tests/reference_system never shadows the real reference_system."""
