"""The reference system's processes, started one by one so the nemesis can kill, pause or restart each.

Why the harness starts the API and every consumer itself (instead of the
system's own `serve` supervisor): a process fault needs the pid of exactly one
consumer, and a crashed consumer must stay down until the schedule restarts it.
The harness reaches the system only over the network and through these
processes; it never imports `reference_system`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import StackError
from harness.faults.schedule import ProcessTarget
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.process import ManagedProcess, wait_until

__all__ = ["SystemConfig", "ReferenceSystem", "api_health"]

API = "api"


@dataclass(frozen=True)
class SystemConfig:
    """How to start the reference system; URLs are what each process should dial (proxies or direct)."""

    api_redis_url: str
    api_postgres_url: str
    consumer_redis_url: str
    consumer_postgres_url: str
    consumers: int = 2
    partitions: int = 4
    variant: str = "correct"
    batch_size: int = 200
    high_water_mark: int = 20_000
    options: Mapping[str, str] = field(default_factory=dict)
    api_port: int = 0
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 8.0


def api_health(port: int, timeout_s: float = 1.0) -> dict | None:
    """GET /v1/health straight to the API (not through a proxy); None when it does not answer 200."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/v1/health", timeout=timeout_s) as response:
            if response.status != 200:
                return None
            return json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return None


class ReferenceSystem:
    """Starts and controls the API and N consumers; implements the nemesis's ProcessControl."""

    def __init__(self, config: SystemConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = Path(log_dir)
        self.api_port = config.api_port or free_port()
        self._processes: dict[str, ManagedProcess] = {}
        self._lock = threading.RLock()
        self.restarts = 0

    # -- lifecycle --------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def consumer_names(self) -> list[str]:
        return [f"consumer-{i}" for i in range(self.config.consumers)]

    def _settings_argv(self) -> list[str]:
        cfg = self.config
        argv = [
            "--partitions",
            str(cfg.partitions),
            "--variant",
            cfg.variant,
            "--batch-size",
            str(cfg.batch_size),
            "--high-water-mark",
            str(cfg.high_water_mark),
        ]
        for key, value in sorted(cfg.options.items()):
            argv += ["--" + str(key).replace("_", "-"), str(value)]
        return argv

    def _argv(self, name: str) -> list[str]:
        cfg = self.config
        if name == API:
            return [
                sys.executable,
                "-m",
                "reference_system",
                "api",
                "--host",
                LOOPBACK,
                "--port",
                str(self.api_port),
                "--redis-url",
                cfg.api_redis_url,
                "--postgres-url",
                cfg.api_postgres_url,
                *self._settings_argv(),
            ]
        return [
            sys.executable,
            "-m",
            "reference_system",
            "consumer",
            "--name",
            name,
            "--redis-url",
            cfg.consumer_redis_url,
            "--postgres-url",
            cfg.consumer_postgres_url,
            *self._settings_argv(),
        ]

    def _spawn(self, name: str) -> ManagedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = ManagedProcess.start(name, self._argv(name), self.log_dir / f"{name}.log", env=env)
        with self._lock:
            self._processes[name] = process
        return process

    def start(self) -> None:
        """Start the API, wait until healthy, then the consumers, and wait until all report alive."""
        api = self._spawn(API)
        try:
            wait_until(
                lambda: api_health(self.api_port) is not None,
                self.config.start_timeout_s,
                "reference system API",
                interval_s=0.1,
                alive=api.alive,
            )
        except StackError as exc:
            raise api.failure(str(exc).split(": ", 1)[-1]) from None
        for name in self.consumer_names():
            self._spawn(name)
        self.wait_consumers_alive(self.config.consumers, self.config.start_timeout_s)

    def wait_consumers_alive(self, count: int, timeout_s: float) -> None:
        def enough() -> bool:
            for name in self.consumer_names():
                process = self._processes.get(name)
                if process is not None and not process.alive():
                    raise process.failure("exited while starting")
            health = api_health(self.api_port)
            return bool(health) and int(health.get("consumers_alive", 0)) >= count

        try:
            wait_until(enough, timeout_s, "reference system consumers", interval_s=0.1)
        except StackError as exc:
            tails = "\n".join(p.failure("log").args[0] for n, p in self._processes.items() if n != API)
            raise StackError(f"{exc}\n{tails}") from None

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM every process (consumers first, so they drain), SIGKILL after the bound. Exit codes by name."""
        codes: dict[str, int | None] = {}
        with self._lock:
            order = [n for n in self._processes if n != API] + ([API] if API in self._processes else [])
            for name in order:
                try:
                    codes[name] = self._processes[name].stop(self.config.stop_timeout_s)
                except StackError:
                    codes[name] = None
        return codes

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {name: p.pid for name, p in self._processes.items() if p.alive()}

    def alive(self, name: str) -> bool:
        with self._lock:
            process = self._processes.get(name)
            return process is not None and process.alive()

    # -- ProcessControl -----------------------------------------------------------------

    def victims(self, target: ProcessTarget, rng: random.Random) -> list[str]:
        if target is ProcessTarget.API:
            return [API]
        consumers = [n for n in self.consumer_names() if self.alive(n)]
        if target is ProcessTarget.ALL_CONSUMERS:
            return consumers
        return [rng.choice(consumers)] if consumers else []

    def _signal(self, names: Sequence[str], signum: int) -> dict[str, int]:
        done = {}
        with self._lock:
            for name in names:
                process = self._processes.get(name)
                if process is None or not process.alive():
                    continue
                os.kill(process.pid, signum)
                done[name] = process.pid
        return done

    def kill(self, names: Sequence[str]) -> dict[str, int]:
        pids = self._signal(names, signal.SIGKILL)
        with self._lock:
            for name in pids:
                try:
                    self._processes[name].popen.wait(timeout=5)
                except Exception:  # noqa: BLE001 - the kernel reaps it; nothing to do
                    pass
        return pids

    def pause(self, names: Sequence[str]) -> dict[str, int]:
        return self._signal(names, signal.SIGSTOP)

    def resume(self, names: Sequence[str]) -> dict[str, int]:
        return self._signal(names, signal.SIGCONT)

    def stop(self, names: Sequence[str]) -> dict[str, int]:
        stopped = {}
        with self._lock:
            for name in names:
                process = self._processes.get(name)
                if process is not None and process.alive():
                    stopped[name] = process.pid
                    process.stop(self.config.stop_timeout_s)
        return stopped

    def start_named(self, names: Sequence[str]) -> dict[str, int]:
        """Start processes again (after a kill or a stop); waits for the API to be healthy if it was one."""
        started = {}
        for name in names:
            if self.alive(name):
                continue
            process = self._spawn(name)
            self.restarts += 1
            started[name] = process.pid
        if API in started:
            wait_until(
                lambda: api_health(self.api_port) is not None,
                self.config.start_timeout_s,
                "reference system API restart",
                interval_s=0.05,
            )
        return started


class _ProcessControlView:
    """Adapts ReferenceSystem to the nemesis's ProcessControl, whose `start` takes names
    (ReferenceSystem.start() is the lifecycle start and takes none)."""

    def __init__(self, system: ReferenceSystem) -> None:
        self._system = system

    def victims(self, target, rng):
        return self._system.victims(target, rng)

    def kill(self, names):
        return self._system.kill(names)

    def pause(self, names):
        return self._system.pause(names)

    def resume(self, names):
        return self._system.resume(names)

    def stop(self, names):
        return self._system.stop(names)

    def start(self, names):
        return self._system.start_named(names)


def process_control(system: ReferenceSystem) -> _ProcessControlView:
    """The nemesis's view of a running reference system."""
    return _ProcessControlView(system)


__all__ += ["process_control"]
