"""The live progress display of a run: phase, time left, ops per second, errors by kind, active faults.

Rich's live table on a terminal; on a pipe (CI logs) one plain line every few
seconds, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = ["ProgressDisplay"]

PLAIN_EVERY_S = 5.0


def _render(figures: dict) -> Table:
    table = Table(title=f"ledgerchaos — {figures.get('phase', '?')}", show_header=False, expand=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row(
        "elapsed", f"{figures.get('elapsed_s', 0):.1f} s (load ends in {figures.get('load_left_s', 0):.1f} s)"
    )
    table.add_row(
        "requests/s",
        f"{figures.get('requests_per_s', 0):.0f}  ({figures.get('requests', 0)} sent, "
        f"{figures.get('in_flight', 0)} in flight)",
    )
    outcomes = figures.get("outcomes") or {}
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "-")
    errors = figures.get("errors_by_kind") or {}
    table.add_row("errors", ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none")
    backlog = figures.get("backlog")
    table.add_row("backlog", "?" if backlog is None else f"{backlog:.0f}")
    posted = figures.get("posted")
    table.add_row("posted", "?" if posted is None else f"{posted:.0f}")
    table.add_row("breaker", "OPEN" if figures.get("breaker_open") else "closed")
    table.add_row("faults", "; ".join(figures.get("active_faults") or []) or "none")
    return table


def _plain(figures: dict) -> str:
    errors = figures.get("errors_by_kind") or {}
    return (
        f"[{figures.get('phase')}] t={figures.get('elapsed_s', 0):6.1f}s "
        f"rps={figures.get('requests_per_s', 0):6.0f} sent={figures.get('requests', 0)} "
        f"backlog={figures.get('backlog')} posted={figures.get('posted')} "
        f"errors={dict(sorted(errors.items()))} faults={figures.get('active_faults') or []}"
    )


class ProgressDisplay:
    """Context manager; call the instance with a figures dict whenever there is news."""

    def __init__(self, stream: TextIO = sys.stdout, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._live = Live(_render({}), console=Console(file=self.stream), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __call__(self, figures: dict) -> None:
        if self._live is not None:
            self._live.update(_render(figures))
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S or figures.get("phase") != "load":
            self._last_plain = now
            print(_plain(figures), file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
