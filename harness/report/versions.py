"""Versions of the project and of the tools a run used (Redis, PostgreSQL, Toxiproxy, Locust, Python).

Why in the summary: a regression between two runs is often a tool upgrade, and
a replay is only faithful on the same versions. The run may record them in
meta.extra; where absent, each is found cheaply (one `--version` call, bounded
in time, or package metadata; Locust is never imported: its gevent patching
breaks other imports). A tool that cannot be found is None, never an error:
a report must not fail for lack of a version string.
"""

from __future__ import annotations

import functools
import platform
import re
import subprocess
from collections.abc import Mapping

__all__ = ["tool_versions", "TOOLS", "VERSION_TIMEOUT_S"]

TOOLS = ("ledgerchaos", "python", "redis", "postgresql", "toxiproxy", "locust")
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
        out[tool] = str(value)[:_VERSION_CHARS_MAX] if value is not None else _found(tool)
    return out


@functools.cache
def _found(tool: str) -> str | None:
    if tool == "ledgerchaos":
        from harness import __version__

        return __version__
    if tool == "python":
        return platform.python_version()
    if tool == "locust":
        from importlib import metadata

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
