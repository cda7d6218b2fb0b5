"""write_report and `ledgerchaos report RUN_DIR`: a run folder gets summary.json, junit.xml, report.html, summary.md.

Why one entry point: the run command, the suite, the pytest plugin and a
re-render all produce the same four files the same way. Every file is written
atomically; summary.json is written last, so a reader that sees it knows the
other three are complete. A plot that fails to draw is named on the page (the
verdicts, the gate and the other files do not depend on it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness.files import write_bytes_atomic, write_text_atomic
from harness.history.schema import History
from harness.overlay import ModelOverlay, read_overlay
from harness.report.figures import recovery_times_s
from harness.report.html import render_html
from harness.report.junit import junit_xml
from harness.report.markdown import render_markdown
from harness.report.series import fault_windows
from harness.report.summary import SUMMARY_FILE, build_summary, summary_json_text

__all__ = [
    "ReportFiles",
    "render_run",
    "write_report",
    "report_command",
    "JUNIT_FILE",
    "HTML_FILE",
    "MARKDOWN_FILE",
    "SUMMARY_FILE",
]

JUNIT_FILE = "junit.xml"
HTML_FILE = "report.html"
MARKDOWN_FILE = "summary.md"


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went, and what it says (exit_code: 0 pass, 1 violated/unknown, 3 incomplete)."""

    run_dir: Path
    summary_json: Path
    junit_xml: Path
    report_html: Path
    summary_md: Path
    exit_code: int
    outcome: str
    problems: tuple = ()  # plots that could not be drawn, and why
    summary: dict = field(default_factory=dict, compare=False, repr=False)


def render_run(run_dir: Path) -> ReportFiles:
    """The render phase: the four report files from what the run folder holds, and nothing else.

    The history, the verdicts judge_run wrote (none: the report says nothing was judged, exit 1),
    the thresholds they were judged by, the model's prediction predict_run wrote, the versions
    the run recorded. Rendering twice gives the same files.
    """
    from harness.checkers.judge import read_judgement
    from harness.history.store import load_history

    run_dir = Path(run_dir)
    history = load_history(run_dir)
    judgement = read_judgement(run_dir)
    overlay, no_overlay = read_overlay(run_dir)
    verdicts = judgement.verdicts if judgement is not None else ()
    config = judgement.config if judgement is not None else None
    return write_report(run_dir, history, verdicts, config, overlay=overlay, overlay_missing=no_overlay)


def write_report(
    run_dir: Path,
    history: History,
    verdicts: tuple,
    config=None,
    overlay: ModelOverlay | None = None,
    overlay_missing: str | None = None,
) -> ReportFiles:
    """Write the four report files into run_dir (created if needed) and return their paths and exit code.

    config: the CheckConfig the verdicts were judged with (its allow_unknown decides the gate).
    overlay: the capacity model's prediction (predicted metrics on the run's clock) to lay over the
    measured backlog; overlay_missing: why the model did not predict this run, named on the page.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    verdicts = tuple(verdicts)
    summary = build_summary(run_dir, history, verdicts, config)
    problems = [overlay_missing] if overlay_missing else []
    predicted_metrics = overlay.metrics if overlay is not None else None
    timeline = _drawn("timeline", problems, lambda: _timeline(history, verdicts, predicted_metrics))
    model = None
    if overlay is not None:
        model = _drawn("model against measurement", problems, lambda: prediction_png(overlay, history))
    paths = {
        "junit_xml": run_dir / JUNIT_FILE,
        "report_html": run_dir / HTML_FILE,
        "summary_md": run_dir / MARKDOWN_FILE,
        "summary_json": run_dir / SUMMARY_FILE,
    }
    write_bytes_atomic(paths["junit_xml"], junit_xml([summary], name=f"ledgerchaos {summary['scenario']}"))
    write_text_atomic(paths["report_html"], render_html(summary, timeline, model, problems))
    write_text_atomic(paths["summary_md"], render_markdown(summary))
    write_text_atomic(paths["summary_json"], summary_json_text(summary))
    return ReportFiles(
        run_dir=run_dir,
        exit_code=summary["exit_code"],
        outcome=summary["outcome"],
        problems=tuple(problems),
        summary=summary,
        **paths,
    )


def _drawn(name: str, problems: list, draw):
    try:
        return draw()
    except Exception as exc:  # noqa: BLE001 - a plot must not cost the verdicts their report; it is named instead
        problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return None


def _timeline(history: History, verdicts: tuple, predicted_metrics) -> bytes:
    from harness.report.plots import timeline_png
    from harness.report.series import backlog_total

    predicted = backlog_total(predicted_metrics) if predicted_metrics is not None else None
    return timeline_png(history, fault_windows(history), recovery_times_s(verdicts), predicted)


def prediction_png(overlay: ModelOverlay, history: History) -> bytes:
    from harness.report.plots import prediction_png as draw

    return draw(overlay.metrics, history.metrics, overlay.latency)


def report_command(run_dir: Path, out: TextIO | None = None) -> int:
    """`ledgerchaos report RUN_DIR`: re-judge a stored run with its check_config.json and write its report.

    Returns the run's exit code (0 / 1, or 3 when the stored run is incomplete).
    Raises UsageError (exit 2) when the folder or a file in it is wrong. out: where to print (None: sys.stdout
    at call time, so that a captured stdout captures it).
    """
    out = out if out is not None else sys.stdout
    from harness.checkers.judge import judge_run

    judgement = judge_run(run_dir)
    files = render_run(run_dir)
    summary = files.summary
    print(f"run {summary['run_id']} (seed {summary['seed']}); thresholds: {judgement.config_source}", file=out)
    if not summary["complete"]:
        print("INCOMPLETE: the stored run did not complete; exit 3 whatever the verdicts", file=out)
    for verdict in judgement.verdicts:
        print(f"  {verdict.validity.value.upper():8s} {verdict.name}: {verdict.summary}", file=out)
    for problem in files.problems:
        print(f"note: plot not drawn: {problem}", file=out)
    print(f"report: {files.report_html}", file=out)
    print(f"exit {files.exit_code} ({files.outcome}); replay with: {files.summary['replay_command']}", file=out)
    return files.exit_code
