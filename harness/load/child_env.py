"""The environment a child process of the load package starts with.

Why: the driver and the stub API start `python -m harness.load...` children; those
must import the same `harness` package as the parent whether or not it is
installed (a checkout run from its root, a CI job, an editable install).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["child_env"]

# The directory that holds the `harness` package this module belongs to.
_ROOT = str(Path(__file__).resolve().parents[2])


def child_env(extra: Mapping[str, str] | None = None) -> dict:
    """os.environ with the harness root first on PYTHONPATH and unbuffered output, plus extra."""
    env = dict(os.environ)
    parts = [_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != _ROOT]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env
