"""The three real services a run needs: Redis, PostgreSQL and the Toxiproxy server.

Each `start_*` function starts one service on a loopback port in its own
folder, waits (bounded) until it answers, and returns a `Service`; on failure it
stops what it started and raises StackError with the service's log tail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StackError
from harness.stack.binaries import find_binary
from harness.stack.ports import LOOPBACK, ensure_port_free, free_port, port_open
from harness.stack.process import ManagedProcess, wait_until

__all__ = [
    "Service",
    "start_redis",
    "start_postgres",
    "start_toxiproxy",
    "redis_ping",
    "postgres_ready",
    "toxiproxy_version",
]

POSTGRES_USER = "postgres"


@dataclass
class Service:
    """A started service: its address and the process behind it (None in attach mode)."""

    name: str
    url: str
    port: int
    process: ManagedProcess | None = None
    side_dir: Path | None = None  # a folder outside the run folder, removed on stop

    def stop(self, timeout_s: float = 10.0) -> None:
        try:
            if self.process is not None:
                self.process.stop(timeout_s)
        finally:
            if self.side_dir is not None:
                shutil.rmtree(self.side_dir, ignore_errors=True)


def _reachable_by_others(path: Path) -> bool:
    """True when every ancestor of path lets other users through (o+x)."""
    for ancestor in path.resolve().parents:
        if not ancestor.stat().st_mode & 0o001:
            return False
    return True


def _port(requested: int, service: str) -> int:
    if requested:
        ensure_port_free(requested, service)
        return requested
    return free_port()


def _started(process: ManagedProcess, ready, timeout_s: float, what: str) -> None:
    """Wait for readiness; on failure stop the process and raise with its log tail."""
    try:
        wait_until(ready, timeout_s, what, alive=process.alive)
    except StackError as exc:
        process.stop(timeout_s=3.0)
        raise process.failure(str(exc).split(": ", 1)[-1]) from None


def redis_ping(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when Redis answers PING with PONG (raw RESP: no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(folder: Path, port: int = 0, timeout_s: float = 10.0) -> Service:
    """redis-server on loopback with the append-only file on (durable as the design asks)."""
    binary = find_binary("redis-server")
    port = _port(port, "redis")
    data = folder / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        "--bind",
        LOOPBACK,
        "--port",
        str(port),
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",
    ]
    process = ManagedProcess.start("redis", argv, folder / "logs" / "redis.log")
    _started(process, lambda: redis_ping(LOOPBACK, port), timeout_s, "redis")
    return Service("redis", f"redis://{LOOPBACK}:{port}/0", port, process)


def _as_postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: use the `postgres` account when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise StackError(
            "PostgreSQL refuses to run as root and there is no `postgres` user: "
            "apt-get install postgresql creates it, or run the harness as an ordinary user"
        ) from None
    return POSTGRES_USER


def postgres_ready(port: int, timeout_s: float = 1.0) -> bool:
    """True when PostgreSQL accepts connections (pg_isready: no client library needed)."""
    try:
        result = subprocess.run(
            [
                str(find_binary("pg_isready")),
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-U",
                POSTGRES_USER,
                "-d",
                "postgres",
                "-t",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s + 1,
        )
    except (subprocess.TimeoutExpired, OSError):
        return False
    return result.returncode == 0


def start_postgres(folder: Path, port: int = 0, timeout_s: float = 20.0, extra_settings: dict | None = None) -> Service:
    """A fresh PostgreSQL cluster (initdb) on loopback, trust auth, run as `postgres` when root."""
    initdb = find_binary("initdb")
    postgres = find_binary("postgres")
    user = _as_postgres_user()
    port = _port(port, "postgres")
    side_dir = None
    pg_home = folder
    if user is not None and not _reachable_by_others(folder):
        # The run folder sits where the postgres account cannot go (pytest's
        # /tmp/pytest-of-root is 0700): keep the cluster in a side folder instead.
        side_dir = Path(tempfile.mkdtemp(prefix="ledgerchaos-pg-"))
        pg_home = side_dir
    data = pg_home / "postgres"
    sockets = pg_home / "pg-socket"
    for path in (data, sockets):
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, mode=0o700)
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if user is not None:
        account = pwd.getpwnam(user)
        # The folder (and its parents) must be reachable by the postgres account.
        for path in (pg_home, data, sockets, logs):
            os.chown(path, account.pw_uid, account.pw_gid)
        pg_home.chmod(0o755)
    init_log = logs / "initdb.log"
    init = ManagedProcess.start(
        "initdb",
        [str(initdb), "-D", str(data), "-U", POSTGRES_USER, "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        init_log,
        user=user,
    )
    try:
        init.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        init.stop(1.0)
        raise init.failure(f"did not finish within {timeout_s:g} s") from None
    if init.popen.returncode != 0:
        if side_dir is not None:
            shutil.rmtree(side_dir, ignore_errors=True)
        raise init.failure(f"failed with exit code {init.popen.returncode}")
    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "max_connections": "200",
        "shared_buffers": "128MB",
        "fsync": "on",
        "synchronous_commit": "on",
        "log_min_messages": "warning",
    }
    settings.update({k: str(v) for k, v in (extra_settings or {}).items()})
    argv = [str(postgres), "-D", str(data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    # SIGINT is PostgreSQL's "fast shutdown": roll back and stop, without waiting for clients.
    process = ManagedProcess.start("postgres", argv, logs / "postgres.log", user=user, stop_signal=signal.SIGINT)
    try:
        _started(process, lambda: postgres_ready(port), timeout_s, "postgres")
    except StackError:
        if side_dir is not None:
            shutil.rmtree(side_dir, ignore_errors=True)
        raise
    return Service("postgres", f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{port}/postgres", port, process, side_dir)


def toxiproxy_version(port: int, host: str = LOOPBACK, timeout_s: float = 1.0) -> str | None:
    """The server's /version answer, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/version", timeout=timeout_s) as response:
            return response.read().decode().strip()
    except OSError:
        return None


def start_toxiproxy(folder: Path, port: int = 0, timeout_s: float = 10.0) -> Service:
    """The real Toxiproxy server (v2.12.0, built by setup) with its API on loopback."""
    binary = find_binary("toxiproxy-server")
    port = _port(port, "toxiproxy")
    argv = [str(binary), "-host", LOOPBACK, "-port", str(port)]
    process = ManagedProcess.start("toxiproxy", argv, folder / "logs" / "toxiproxy.log")
    _started(process, lambda: toxiproxy_version(port) is not None, timeout_s, "toxiproxy")
    return Service("toxiproxy", f"http://{LOOPBACK}:{port}", port, process)


def port_of(url: str) -> int:
    """The port of a service URL (for attach mode health checks)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.port is None:
        raise StackError(f"{url!r} names no port")
    return parsed.port


__all__ += ["port_of", "port_open"]
