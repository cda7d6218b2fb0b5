"""The suite's index.html: one row per scenario run, linking each run's report.html (self-contained, escaped).

Why a page of its own: a CI artifact of a suite is a folder of run folders; a
person opens the index, sees which scenario failed, and follows one link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from harness.report.html import PAGE_STYLE

__all__ = ["render_index"]


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_index(suite_dir: Path, entries: Sequence[Mapping], title: str, exit_code: int) -> str:
    """entries: {"scenario", "file", "summary" (summary dict), "report_html" (Path or None)} in run order."""
    rows = []
    for entry in entries:
        summary = entry.get("summary") or {}
        outcome = str(summary.get("outcome", "incomplete"))
        report = entry.get("report_html")
        if report is not None:
            href = quote(os.path.relpath(Path(report), Path(suite_dir)).replace(os.sep, "/"))
            link = f'<a href="{_e(href)}">report</a>'
        else:
            link = "no report (the run could not start)"
        counts = summary.get("verdict_counts") or {}
        tally = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "—"
        notes = "; ".join(str(n) for n in summary.get("notes") or ())
        rows.append(
            f"<tr><td class=mono>{_e(entry.get('scenario'))}</td>"
            f'<td><span class="badge {_e(outcome)}">{_e(outcome.upper())}</span></td>'
            f"<td class=num>{_e(summary.get('exit_code'))}</td><td>{_e(tally)}</td><td>{link}</td>"
            f"<td class=mono>{_e(summary.get('replay_command') or '')}</td><td>{_e(notes)}</td></tr>"
        )
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f"<p class=outcome>suite exit code {_e(exit_code)} (the worst of the runs: 3 could not run, "
        "1 violated or unknown, 0 every invariant holds)</p>"
        "<table><tr><th>scenario</th><th>outcome</th><th>exit</th><th>verdicts</th><th>report</th>"
        "<th>replay</th><th>notes</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )
