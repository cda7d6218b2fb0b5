"""Command line: `python -m reference_system api|consumer|serve ...` (see docs/reference-system.md).

Why three commands: the harness starts the API and each consumer as separate
processes so it can kill -9 or SIGSTOP one of them; `serve` starts them all
for a person at a terminal. Exit codes: 0 clean stop, 2 bad flags, 3 could not
start (Redis or PostgreSQL unreachable within the setup bound).
"""

from __future__ import annotations

import signal
import sys

# Before the heavy imports (asyncpg, redis, uvicorn take ~0.5 s on a busy machine): a SIGTERM
# that arrives while the process is still starting must mean "stop cleanly", not a -15 death.
STOP_REQUESTED: list[int] = []


def _early_stop(signum: int, frame: object) -> None:
    STOP_REQUESTED.append(signum)


signal.signal(signal.SIGTERM, _early_stop)

import argparse  # noqa: E402 - after the SIGTERM handler, installed before the slow imports
import logging  # noqa: E402 - after the SIGTERM handler, installed before the slow imports
import zlib  # noqa: E402 - after the SIGTERM handler, installed before the slow imports
from collections.abc import Sequence

from reference_system.settings import SettingsError, add_settings_flags, settings_from_args

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference_system", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    api = commands.add_parser("api", help="the ingest API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, required=True)
    consumer = commands.add_parser("consumer", help="one consumer process")
    consumer.add_argument("--name", required=True)
    consumer.add_argument("--seed", type=int, default=None, help="backoff jitter seed (default: from the name)")
    serve = commands.add_parser("serve", help="the API and N consumers, supervised")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--consumers", type=int, default=2)
    for sub in (api, consumer, serve):
        sub.add_argument("--redis-url", required=True)
        sub.add_argument("--postgres-url", required=True)
        sub.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
        add_settings_flags(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        parser.exit(2, f"error: {exc}\n")
    if getattr(args, "port", 1) is not None and not 0 < getattr(args, "port", 1) < 65536:
        parser.exit(2, f"error: --port: {args.port} is outside [1, 65535]\n")
    if STOP_REQUESTED:
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format=f"%(asctime)s {args.command} %(name)s %(levelname)s %(message)s"
    )
    if args.command == "api":
        from reference_system.serve import run_api

        return run_api(settings, args.host, args.port, args.redis_url, args.postgres_url, args.log_level)
    if args.command == "consumer":
        from reference_system.serve import run_consumer_process

        seed = args.seed if args.seed is not None else zlib.crc32(args.name.encode())
        return run_consumer_process(args.name, settings, args.redis_url, args.postgres_url, seed)
    if not 1 <= args.consumers <= 64:
        parser.exit(2, f"error: --consumers: {args.consumers} is outside [1, 64]\n")
    from reference_system.serve import supervise

    return supervise(settings, args.host, args.port, args.consumers, args.redis_url, args.postgres_url, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
