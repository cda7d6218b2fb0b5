"""Versions of the project and of the tools a run used (Redis, PostgreSQL, Toxiproxy, Locust, Python),
and whether the installed Python packages are the ones constraints.txt pins.

Why in the summary: a regression between two runs is often a tool upgrade, and
a replay is only faithful on the same versions. The run may record them in
meta.extra; where absent, each is found cheaply (one `--version` call, bounded
in time, or package metadata; Locust is never imported: its gevent patching
breaks other imports). A tool that cannot be found is None, never an error:
a report must not fail for lack of a version string.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import re
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

__all__ = ["tool_versions", "constraints_status", "CONSTRAINTS_FILE", "TOOLS", "VERSION_TIMEOUT_S"]

TOOLS = ("ledgerchaos", "python", "redis", "postgresql", "toxiproxy", "locust", "constraints")
CONSTRAINTS_FILE = Path(__file__).resolve().parents[2] / "constraints.txt"  # in the checkout; absent in a wheel
_DIFFERENCES_SHOWN = 3
_CONSTRAINTS_CHARS_MAX = 240
VERSION_TIMEOUT_S = 5.0
_VERSION_CHARS_MAX = 80

# tool -> (binary, argument, pattern whose group 1 is the version)
_BINARIES = {
    "redis": ("redis-server", "--version", r"v=(\S+)"),
    "postgresql": ("postgres", "--version", r"PostgreSQL\)\s+(\S+)"),
    "toxiproxy": ("toxiproxy-server", "-version", r"version\s+v?(\S+)"),
}


def tool_versions(extra: Mapping | None = None) -> dict:
    """{tool: version text or None} for TOOLS; meta.extra's "versions" mapping or "<tool>_version"
    keys win over what is found on this machine (the run may have used attached services)."""
    extra = extra or {}
    recorded = extra.get("versions") if isinstance(extra.get("versions"), Mapping) else {}
    out = {}
    for tool in TOOLS:
        value = recorded.get(tool, extra.get(f"{tool}_version"))
        if tool == "ledgerchaos" and value is None:
            value = extra.get("harness_version")
        limit = _CONSTRAINTS_CHARS_MAX if tool == "constraints" else _VERSION_CHARS_MAX
        out[tool] = str(value)[:limit] if value is not None else _found(tool)
    return out


def constraints_status(path: Path = CONSTRAINTS_FILE) -> str | None:
    """ "constraints.txt sha256:<12 hex>, all N pins installed", or which pins the installed packages
    differ from; None when there is no constraints file (an install from a wheel)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    pins = [line.split("==", 1) for line in text.splitlines() if "==" in line and not line.startswith("#")]
    differ = []
    for name, pinned in pins:
        try:
            installed: str | None = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned.strip():
            differ.append(f"{name.strip()} {installed or 'missing'} (pinned {pinned.strip()})")
    head = f"{path.name} sha256:{digest}"
    if not differ:
        return f"{head}, all {len(pins)} pins installed"
    shown = ", ".join(differ[:_DIFFERENCES_SHOWN]) + (", ..." if len(differ) > _DIFFERENCES_SHOWN else "")
    return f"{head}, {len(differ)} of {len(pins)} differ: {shown}"[:_CONSTRAINTS_CHARS_MAX]


@functools.cache
def _found(tool: str) -> str | None:
    if tool == "ledgerchaos":
        from harness import __version__

        return __version__
    if tool == "python":
        return platform.python_version()
    if tool == "constraints":
        return constraints_status()
    if tool == "locust":
        try:
            return metadata.version("locust")
        except metadata.PackageNotFoundError:
            return None
    binary, argument, pattern = _BINARIES[tool]
    return _binary_version(binary, argument, pattern)


def _binary_version(binary: str, argument: str, pattern: str) -> str | None:
    from harness.errors import StackError
    from harness.stack.binaries import find_binary

    try:
        path = find_binary(binary)
        done = subprocess.run(
            [str(path), argument], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False
        )
    except (StackError, OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout or "") + (done.stderr or "")
    match = re.search(pattern, text)
    if match:
        return match.group(1)[:_VERSION_CHARS_MAX]
    first = text.strip().splitlines()[:1]
    return first[0][:_VERSION_CHARS_MAX] if first else None
