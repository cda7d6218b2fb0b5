"""Exploration: Hypothesis over fault schedules and load, shrunk to a minimal reproducer scenario."""

from harness.explore.space import Episode, ExploreSpec

__all__ = ["Episode", "ExploreSpec"]
