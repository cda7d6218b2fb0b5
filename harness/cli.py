"""The `ledgerchaos` command: a thin layer that parses arguments and maps errors to exit codes.

Exit codes mean something (STYLE habit 13): 0 holds, 1 an invariant is violated
or unknown, 2 the command or its input is wrong, 3 the stack could not start or
the run could not complete. A mistake gets a sentence, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness import __version__
from harness.errors import LedgerchaosError, UsageError

__all__ = ["main", "build_parser"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error takes one path (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override] - argparse declares NoReturn; raising is exactly that
        raise _UsageProblem(f"{self.prog}: {message} (see `{self.prog} --help`)")


class _UsageProblem(Exception):
    pass


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"ledgerchaos {__version__}")
    return EXIT_OK


def _cmd_stack_up(args: argparse.Namespace) -> int:
    from harness.stack import LocalStack, StackConfig, Terminated

    config = StackConfig(
        run_dir=Path(args.run_dir) if args.run_dir else None,
        keep_dir=args.keep,
        toxiproxy=not args.no_toxiproxy,
        redis_port=args.redis_port,
        postgres_port=args.postgres_port,
        toxiproxy_port=args.toxiproxy_port,
        postgres_settings=_settings(args.postgres_setting),
    )
    stack = LocalStack(config)
    try:
        with stack as services:
            print(f"stack up in {stack.startup_s:.2f} s", flush=True)
            print(services.describe(), flush=True)
            print("pids       " + " ".join(str(p) for p in services.pids), flush=True)
            print("press Ctrl-C to stop", flush=True)
            deadline = time.monotonic() + args.duration_s if args.duration_s else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
    except Terminated:
        print("stopped", flush=True)
        return EXIT_OK
    except KeyboardInterrupt:
        print("stopped", flush=True)
        return EXIT_OK
    print("stopped", flush=True)
    return EXIT_OK


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--postgres-setting {pair!r} is not KEY=VALUE, e.g. shared_buffers=256MB")
        settings[key] = value
    return settings


def _add_stack(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="the local stack of real services")
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="COMMAND", parser_class=_Parser)
    stack_sub.required = True
    up = stack_sub.add_parser(
        "up", help="start Redis, PostgreSQL and Toxiproxy, print their addresses, run until Ctrl-C"
    )
    up.add_argument("--run-dir", help="folder for data and logs (default: a fresh temporary folder)")
    up.add_argument("--keep", action="store_true", help="keep the folder after stopping")
    up.add_argument("--no-toxiproxy", action="store_true", help="do not start the Toxiproxy server")
    up.add_argument("--redis-port", type=int, default=0, help="fixed Redis port (default: a free one)")
    up.add_argument("--postgres-port", type=int, default=0, help="fixed PostgreSQL port (default: a free one)")
    up.add_argument("--toxiproxy-port", type=int, default=0, help="fixed Toxiproxy API port (default: a free one)")
    up.add_argument(
        "--postgres-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a PostgreSQL setting, e.g. shared_buffers=256MB (repeatable)",
    )
    up.add_argument(
        "--duration-s", type=float, default=0, help="stop by itself after this many seconds (default: never)"
    )
    up.set_defaults(handler=_cmd_stack_up)


# Subcommands that other packages contribute: name -> function adding its parser.
# Kept as a list so this module stays a thin table of commands.
def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    from harness import commands

    return commands.REGISTRY


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ledgerchaos",
        description="Chaos testing and load simulation for asynchronous ledgers.",
        epilog="Exit codes: 0 all invariants hold, 1 violated or unknown, 2 bad command or input, 3 could not run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(handler=_cmd_version)
    _add_stack(sub)
    for add in _extra_commands():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except _UsageProblem as problem:
        print(str(problem), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    try:
        return int(args.handler(args))
    except LedgerchaosError as error:
        print(f"ledgerchaos: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("ledgerchaos: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
