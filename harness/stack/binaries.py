"""Where the stack's programs live: PATH, PostgreSQL's versioned folder, the project's tools/bin."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from harness.errors import StackError

__all__ = ["PROJECT_ROOT", "TOOLS_BIN", "find_binary", "postgres_bin_dir"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(os.environ.get("LEDGERCHAOS_TOOLS_BIN", PROJECT_ROOT / "tools" / "bin"))

_HINTS = {
    "redis-server": "apt-get install redis-server (or run `make setup`)",
    "toxiproxy-server": "run `make setup`, which builds Toxiproxy v2.12.0 into tools/bin",
    "postgres": "apt-get install postgresql (or run `make setup`)",
}


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<N>/bin, where Debian keeps initdb and postgres off PATH."""
    override = os.environ.get("LEDGERCHAOS_PG_BIN")
    if override:
        return Path(override)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    return Path(candidates[-1]) if candidates else None


def find_binary(name: str) -> Path:
    """The path of a program the stack needs, or StackError saying how to install it."""
    search = [TOOLS_BIN]
    pg_dir = postgres_bin_dir()
    if pg_dir is not None:
        search.append(pg_dir)
    for folder in search:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    hint = _HINTS.get(name, "install it")
    raise StackError(f"{name} not found (looked in {', '.join(map(str, search))} and PATH): {hint}")
