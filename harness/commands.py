"""The subcommands beyond `version` and `stack`: each adds its parser; its handler imports lazily.

Why lazy: `ledgerchaos --help` must answer fast and must not import pandas,
SimPy or matplotlib; and a command's handler is the only place that knows
which package does the work.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["REGISTRY"]


def _check(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check", help="re-judge a stored run without new load")
    parser.add_argument("run_dir", help="a run folder, e.g. reports/<run-id>")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON (verdicts.json's format)")

    def handle(args: argparse.Namespace) -> int:
        from harness.checkers import check_run

        return check_run(Path(args.run_dir), as_json=args.json)

    parser.set_defaults(handler=handle)


def _plan(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plan", help="compare capacity plans with the SimPy model")
    parser.add_argument("plans_file", help="a plans YAML file, e.g. scenarios/plans/example.yaml")
    parser.add_argument("--out", default=None, help="output folder (default: reports/plan-<name>)")

    def handle(args: argparse.Namespace) -> int:
        from harness.capacity import run_plan_file

        path = Path(args.plans_file)
        out = Path(args.out) if args.out else Path("reports") / f"plan-{path.stem}"
        return run_plan_file(path, out)

    parser.set_defaults(handler=handle)


def _run(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run a scenario on the local stack and write its report")
    parser.add_argument("scenario", help="a scenario YAML file, e.g. scenarios/microburst.yaml")
    parser.add_argument("--seed", type=int, default=None, help="replay with this seed (default: the file's)")
    parser.add_argument("--reports-dir", default="reports", help="where run folders go (default: reports)")
    parser.add_argument("--run-id", default=None, help="name of the run folder (default: <name>-<time>-s<seed>)")
    parser.add_argument(
        "--variant", default=None, help="run the reference system as this variant instead of the file's (e.g. correct)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no live display")

    def handle(args: argparse.Namespace) -> int:
        from harness.run.command import run_command

        return run_command(
            Path(args.scenario),
            args.seed,
            Path(args.reports_dir),
            args.run_id,
            progress=not args.no_progress,
            variant=args.variant,
        )

    parser.set_defaults(handler=handle)


def _explore(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explore", help="search fault schedules with Hypothesis and shrink a failure")
    parser.add_argument("scenario", help="a scenario YAML file; its explore: section bounds the search")
    parser.add_argument("--budget", default="10m", help="wall time for the search, e.g. 90s, 10m, 1h (default 10m)")
    parser.add_argument("--max-examples", type=int, default=None, help="at most this many episodes")
    parser.add_argument("--replays", type=int, default=3, help="replays of the reproducer to measure flakiness")
    parser.add_argument("--reports-dir", default="reports", help="where the exploration folder goes")

    def handle(args: argparse.Namespace) -> int:
        from harness.explore.command import explore_command

        return explore_command(
            Path(args.scenario), args.budget, Path(args.reports_dir), args.max_examples, args.replays
        )

    parser.set_defaults(handler=handle)


def _report(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="re-judge and re-render the report of a stored run")
    parser.add_argument("run_dir", help="a run folder, e.g. reports/<run-id>")

    def handle(args: argparse.Namespace) -> int:
        from harness.report import report_command

        return report_command(Path(args.run_dir))

    parser.set_defaults(handler=handle)


def _suite(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("suite", help="run every scenario in a folder; one combined JUnit file and index page")
    parser.add_argument("scenarios_dir", help="a folder of scenario files, e.g. scenarios/")
    parser.add_argument("--junit", default=None, help="write the combined JUnit XML here")
    parser.add_argument("--reports-dir", default="reports", help="where run folders go (default: reports)")

    def handle(args: argparse.Namespace) -> int:
        from harness.run.suite import suite_command

        return suite_command(Path(args.scenarios_dir), Path(args.junit) if args.junit else None, Path(args.reports_dir))

    parser.set_defaults(handler=handle)


def _compare(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("compare", help="what got better or worse between two runs")
    parser.add_argument("run_a", help="the earlier run folder (the reference)")
    parser.add_argument("run_b", help="the later run folder")
    parser.add_argument(
        "--threshold-pct", type=float, default=10.0, help="a regression past this share fails the command (default 10)"
    )

    def handle(args: argparse.Namespace) -> int:
        from harness.report import compare_command

        return compare_command(Path(args.run_a), Path(args.run_b), args.threshold_pct)

    parser.set_defaults(handler=handle)


REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = [
    _run,
    _check,
    _report,
    _suite,
    _compare,
    _plan,
    _explore,
]
