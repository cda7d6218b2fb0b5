"""The local stack: start Redis, PostgreSQL and Toxiproxy in a per-run folder; always stop them.

Also the attach mode, which checks services that already run and starts nothing.
Both are context managers yielding the same `Services` value, so callers do not
care which one they got.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import StackError
from harness.stack.ports import LOOPBACK
from harness.stack.services import (
    Service,
    port_of,
    postgres_ready,
    redis_ping,
    start_postgres,
    start_redis,
    start_toxiproxy,
    toxiproxy_version,
)
from harness.stack.signals import terminate_as_exception

__all__ = ["StackConfig", "Services", "LocalStack", "AttachedStack", "attach_from_env", "ENV_URLS"]

# Attach mode reads these when a scenario gives no URLs.
ENV_URLS = {
    "redis": "LEDGERCHAOS_REDIS_URL",
    "postgres": "LEDGERCHAOS_POSTGRES_URL",
    "toxiproxy": "LEDGERCHAOS_TOXIPROXY_URL",
}


@dataclass(frozen=True)
class StackConfig:
    """What to start. Ports 0 mean "a free one"; run_dir None means a fresh temporary folder."""

    run_dir: Path | None = None
    keep_dir: bool = False
    toxiproxy: bool = True
    redis_port: int = 0
    postgres_port: int = 0
    toxiproxy_port: int = 0
    start_timeout_s: float = 20.0
    stop_timeout_s: float = 10.0
    postgres_settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Services:
    """Addresses of the running services (what every other part of the harness needs)."""

    redis_url: str
    postgres_url: str
    toxiproxy_url: str | None
    run_dir: Path | None = None
    pids: tuple = ()

    def describe(self) -> str:
        lines = [f"redis      {self.redis_url}", f"postgres   {self.postgres_url}"]
        if self.toxiproxy_url:
            lines.append(f"toxiproxy  {self.toxiproxy_url}")
        if self.run_dir:
            lines.append(f"folder     {self.run_dir}")
        return "\n".join(lines)


class LocalStack:
    """Context manager: start the services, yield Services, stop them whatever happens.

    Stopping happens on normal exit, on an exception, on Ctrl-C and on SIGTERM
    (converted to an exception while the stack is up). The folder is removed
    unless keep_dir is set.
    """

    def __init__(self, config: StackConfig = StackConfig()) -> None:
        self.config = config
        self._started: list[Service] = []
        self._folder: Path | None = None
        self._owns_folder = False
        self._signals = None
        self.startup_s: float | None = None

    def __enter__(self) -> Services:
        self._signals = terminate_as_exception()
        self._signals.__enter__()
        try:
            return self._start()
        except BaseException:
            self._stop()
            self._signals.__exit__(None, None, None)
            raise

    def _start(self) -> Services:
        began = time.monotonic()
        cfg = self.config
        if cfg.run_dir is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ledgerchaos-stack-"))
            self._owns_folder = True
        else:
            self._folder = Path(cfg.run_dir).resolve()
            self._owns_folder = not self._folder.exists()
            self._folder.mkdir(parents=True, exist_ok=True)
        self._folder.chmod(0o755)
        redis = start_redis(self._folder, cfg.redis_port, cfg.start_timeout_s)
        self._started.append(redis)
        postgres = start_postgres(self._folder, cfg.postgres_port, cfg.start_timeout_s, cfg.postgres_settings)
        self._started.append(postgres)
        toxiproxy = None
        if cfg.toxiproxy:
            toxiproxy = start_toxiproxy(self._folder, cfg.toxiproxy_port, cfg.start_timeout_s)
            self._started.append(toxiproxy)
        self.startup_s = time.monotonic() - began
        return Services(
            redis_url=redis.url,
            postgres_url=postgres.url,
            toxiproxy_url=toxiproxy.url if toxiproxy else None,
            run_dir=self._folder,
            pids=tuple(s.process.pid for s in self._started if s.process),
        )

    def _stop(self) -> None:
        errors = []
        for service in reversed(self._started):
            try:
                service.stop(self.config.stop_timeout_s)
            except StackError as exc:
                errors.append(str(exc))
        self._started.clear()
        if self._folder is not None and not self.config.keep_dir and self._owns_folder:
            shutil.rmtree(self._folder, ignore_errors=True)
        if errors:
            raise StackError("; ".join(errors))

    def __exit__(self, *exc_info) -> None:
        try:
            self._stop()
        finally:
            if self._signals is not None:
                self._signals.__exit__(None, None, None)


class AttachedStack:
    """Context manager for services that already run: health-check them, start nothing, stop nothing."""

    def __init__(self, redis_url: str, postgres_url: str, toxiproxy_url: str | None, timeout_s: float = 5.0) -> None:
        self.services = Services(redis_url=redis_url, postgres_url=postgres_url, toxiproxy_url=toxiproxy_url)
        self.timeout_s = timeout_s

    def __enter__(self) -> Services:
        from urllib.parse import urlparse

        checks = [
            ("redis", self.services.redis_url, lambda h, p: redis_ping(h, p)),
            ("postgres", self.services.postgres_url, lambda h, p: h in (LOOPBACK, "localhost") and postgres_ready(p)),
        ]
        if self.services.toxiproxy_url:
            checks.append(("toxiproxy", self.services.toxiproxy_url, lambda h, p: toxiproxy_version(p, h) is not None))
        for name, url, ready in checks:
            host = urlparse(url).hostname or LOOPBACK
            deadline = time.monotonic() + self.timeout_s
            while not ready(host, port_of(url)):
                if time.monotonic() >= deadline:
                    raise StackError(f"attach: {name} at {url} does not answer within {self.timeout_s:g} s")
                time.sleep(0.05)
        return self.services

    def __exit__(self, *exc_info) -> None:
        return None


def attach_from_env(environ=os.environ) -> AttachedStack | None:
    """An AttachedStack from LEDGERCHAOS_*_URL variables, or None when they are not set."""
    redis_url = environ.get(ENV_URLS["redis"])
    postgres_url = environ.get(ENV_URLS["postgres"])
    if not redis_url and not postgres_url:
        return None
    if not (redis_url and postgres_url):
        missing = ENV_URLS["redis"] if not redis_url else ENV_URLS["postgres"]
        raise StackError(f"attach mode needs both Redis and PostgreSQL URLs: set {missing} too")
    return AttachedStack(redis_url, postgres_url, environ.get(ENV_URLS["toxiproxy"]))
