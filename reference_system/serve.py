"""Process entry points: run the API under uvicorn, run a consumer, or supervise both (`serve`).

Why uvicorn with uvloop and httptools, one worker, access log off: that is the
fastest pure-Python HTTP path available here, and one API process keeps the
ingest counters in one place (consumers publish theirs through Redis).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import subprocess
import sys
import time

from reference_system.settings import Settings

__all__ = ["run_api", "run_consumer_process", "supervise"]

log = logging.getLogger("reference_system.serve")

EXIT_COULD_NOT_START = 3
STOP_S_MAX = 5.0
RESTARTS_MAX = 5


def _loop_name() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def run_api(settings: Settings, host: str, port: int, redis_url: str, postgres_url: str, log_level: str) -> int:
    import uvicorn

    from reference_system.api import IngestApp

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(
        IngestApp(settings, redis_url, postgres_url),
        host=host,
        port=port,
        loop=_loop_name(),
        http=http,
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.drain_s_max),
        backlog=2048,
        proxy_headers=False,  # loopback only: no proxy to trust, and the middleware costs CPU per request
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    main = sys.modules.get("__main__")
    if getattr(main, "STOP_REQUESTED", None):  # SIGTERM arrived while the process was importing
        return 0
    server.run()
    return 0 if server.started else EXIT_COULD_NOT_START


def run_consumer_process(name: str, settings: Settings, redis_url: str, postgres_url: str, seed: int) -> int:
    from reference_system.consumer import run_consumer

    if _loop_name() == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    try:
        runner(run_consumer(name, settings, redis_url, postgres_url, seed))
    except (TimeoutError, OSError) as exc:
        log.error("consumer %s could not start: %s", name, exc)
        return EXIT_COULD_NOT_START
    except Exception as exc:  # asyncpg / redis errors at setup, after the bounded retries
        log.error("consumer %s could not start: %s: %s", name, type(exc).__name__, exc)
        return EXIT_COULD_NOT_START
    return 0


def supervise(
    settings: Settings, host: str, port: int, consumers: int, redis_url: str, postgres_url: str, log_level: str
) -> int:
    """Start the API and N consumers; restart a crashed child (bounded); SIGTERM/Ctrl-C stops all."""
    common = ["--redis-url", redis_url, "--postgres-url", postgres_url, "--log-level", log_level, *settings.to_argv()]
    commands = {"api": ["api", "--host", host, "--port", str(port), *common]}
    for i in range(1, consumers + 1):
        commands[f"consumer-{i}"] = ["consumer", "--name", f"consumer-{i}", *common]
    children: dict[str, subprocess.Popen] = {}
    restarts = {name: 0 for name in commands}
    stopping = False

    def start(name: str) -> None:
        children[name] = subprocess.Popen([sys.executable, "-m", "reference_system", *commands[name]])

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for name in commands:
        start(name)
    print(f"reference system: API on http://{host}:{port}, {consumers} consumers; Ctrl-C stops", flush=True)
    while not stopping:
        time.sleep(0.2)
        for name, child in list(children.items()):
            code = child.poll()
            if code is None or stopping:
                continue
            if restarts[name] >= RESTARTS_MAX:
                log.error("%s exited with %s %d times; stopping everything", name, code, RESTARTS_MAX)
                stopping = True
                break
            restarts[name] += 1
            log.warning("%s exited with %s; restart %d of %d", name, code, restarts[name], RESTARTS_MAX)
            start(name)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_S_MAX
    for child in children.values():
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0
