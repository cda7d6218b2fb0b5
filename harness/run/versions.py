"""The versions a run used, asked of the services it ran against, at run time.

Why at run time and from the services: a regression between two runs is often a
tool upgrade, and a replay is only faithful on the same versions. The report of
a run re-rendered elsewhere must show what the run used, not what the rendering
machine has installed; and an attached Redis or PostgreSQL is not the binary on
this machine's PATH. Each question is bounded in time; a version that cannot be
learnt is None (recorded as unknown), never a failed run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Protocol

import asyncpg
import redis

from harness import __version__
from harness.history.schema import RECORDED_TOOLS

__all__ = ["versions_at_run_time", "constraints_status", "CONSTRAINTS_FILE", "VERSION_TIMEOUT_S"]

CONSTRAINTS_FILE = Path(__file__).resolve().parents[2] / "constraints.txt"  # in the checkout; absent in a wheel
VERSION_TIMEOUT_S = 3.0
_DIFFERENCES_SHOWN = 3
_CONSTRAINTS_CHARS_MAX = 240
_VERSION_CHARS_MAX = 80


class VersionedProxy(Protocol):
    """The fault injector, when there is one: Toxiproxy answers GET /version."""

    def version(self) -> str: ...


def versions_at_run_time(
    redis_url: str | None, postgres_url: str | None, proxy: VersionedProxy | None
) -> dict[str, str | None]:
    """{tool: version or None} for every RECORDED_TOOLS entry."""
    found = {
        "ledgerchaos": __version__,
        "python": platform.python_version(),
        "redis": _redis_version(redis_url) if redis_url else None,
        "postgresql": _postgres_version(postgres_url) if postgres_url else None,
        "toxiproxy": _proxy_version(proxy) if proxy is not None else None,
        "locust": _package_version("locust"),  # never imported here: its gevent patching breaks other imports
        "constraints": constraints_status(),
    }
    assert tuple(found) == RECORDED_TOOLS, "every recorded tool is asked, in the format's order"
    return {tool: (value[:_CONSTRAINTS_CHARS_MAX] if value else None) for tool, value in found.items()}


def _redis_version(url: str) -> str | None:
    client = redis.Redis.from_url(url, socket_timeout=VERSION_TIMEOUT_S, socket_connect_timeout=VERSION_TIMEOUT_S)
    try:
        version = client.info("server").get("redis_version")
        return str(version)[:_VERSION_CHARS_MAX] if version else None
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _postgres_version(url: str) -> str | None:
    async def ask() -> str:
        conn = await asyncpg.connect(url, timeout=VERSION_TIMEOUT_S)
        try:
            return str(await conn.fetchval("SHOW server_version", timeout=VERSION_TIMEOUT_S))
        finally:
            await conn.close(timeout=VERSION_TIMEOUT_S)

    try:
        return asyncio.run(asyncio.wait_for(ask(), VERSION_TIMEOUT_S * 2))[:_VERSION_CHARS_MAX]
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None


def _proxy_version(proxy: VersionedProxy) -> str | None:
    """Toxiproxy answers its version as text, or (2.6 and later) as {"version": "..."}."""
    try:
        text = str(proxy.version()).strip()
        if text.startswith("{"):
            text = str(json.loads(text).get("version", ""))
        return text.lstrip("v")[:_VERSION_CHARS_MAX] or None
    except Exception:  # noqa: BLE001 - a version string must not fail a run; unknown is recorded instead
        return None


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


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
        installed = _package_version(name.strip())
        if installed != pinned.strip():
            differ.append(f"{name.strip()} {installed or 'missing'} (pinned {pinned.strip()})")
    head = f"{path.name} sha256:{digest}"
    if not differ:
        return f"{head}, all {len(pins)} pins installed"
    shown = ", ".join(differ[:_DIFFERENCES_SHOWN]) + (", ..." if len(differ) > _DIFFERENCES_SHOWN else "")
    return f"{head}, {len(differ)} of {len(pins)} differ: {shown}"[:_CONSTRAINTS_CHARS_MAX]
