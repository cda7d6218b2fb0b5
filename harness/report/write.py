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
from harness.report.figures import recovery_times_s
from harness.report.html import render_html
from harness.report.junit import junit_xml
from harness.report.markdown import render_markdown
from harness.report.series import fault_windows
from harness.report.summary import SUMMARY_FILE, build_summary, summary_json_text

__all__ = ["ReportFiles", "write_report", "report_command", "JUNIT_FILE", "HTML_FILE", "MARKDOWN_FILE", "SUMMARY_FILE"]

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


def write_report(
    run_dir: Path,
    history: History,
    verdicts: tuple,
    config=None,
    prediction=None,
    prediction_offset_s: float | None = None,
) -> ReportFiles:
    """Write the four report files into run_dir (created if needed) and return their paths and exit code.

    config: the CheckConfig the verdicts were judged with (its allow_unknown decides the gate).
    prediction: a harness.capacity Prediction to lay over the measured backlog; its times are
    shifted by prediction_offset_s (default: meta.load_start_s, since a model run from the
    LoadProfile starts at load time 0).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    verdicts = tuple(verdicts)
    summary = build_summary(run_dir, history, verdicts, config)
    problems = []
    predicted_metrics = None
    if prediction is not None:
        offset = history.meta.load_start_s if prediction_offset_s is None else prediction_offset_s
        predicted_metrics = prediction.metrics.assign(time_s=prediction.metrics["time_s"] + float(offset))
    timeline = _drawn("timeline", problems, lambda: _timeline(history, verdicts, predicted_metrics))
    model = None
    if predicted_metrics is not None:
        model = _drawn(
            "model against measurement", problems, lambda: _prediction(history, prediction, predicted_metrics)
        )
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


def _prediction(history: History, prediction, predicted_metrics) -> bytes:
    from harness.capacity import prediction_error
    from harness.report.plots import prediction_png

    # prediction_error compares both on the same basis (the model's commit against the journal's stamp).
    try:
        errors = prediction_error(prediction, history)
    except ValueError:  # apply times unknown (no applied_s, no posted counter): the backlogs still compare
        errors = {}
    latency = {
        q: {
            "measured": _finite((errors.get(f"latency_ms_{q}") or {}).get("measured")),
            "predicted": _finite(
                (errors.get(f"latency_ms_{q}") or {}).get("predicted", getattr(prediction, f"latency_ms_{q}"))
            ),
        }
        for q in ("p50", "p95", "p99")
    }
    return prediction_png(predicted_metrics, history.metrics, latency)


def _finite(value) -> float | None:
    import math

    return float(value) if value is not None and math.isfinite(float(value)) else None


def report_command(run_dir: Path, out: TextIO | None = None) -> int:
    """`ledgerchaos report RUN_DIR`: re-judge a stored run with its check_config.json and write its report.

    Returns the run's exit code (0 / 1, or 3 when the stored run is incomplete).
    Raises UsageError (exit 2) when the folder or a file in it is wrong. out: where to print (None: sys.stdout
    at call time, so that a captured stdout captures it).
    """
    out = out if out is not None else sys.stdout
    from harness.checkers import CheckConfig, check_all, read_check_config
    from harness.checkers.console import CHECK_CONFIG_FILE
    from harness.history.store import load_history

    run_dir = Path(run_dir)
    history = load_history(run_dir)
    stored = run_dir / CHECK_CONFIG_FILE
    if stored.is_file():
        config, source = read_check_config(stored), str(stored)
    else:
        config, source = CheckConfig(), "defaults (no check_config.json in the run folder)"
    verdicts = check_all(history, config)
    files = write_report(run_dir, history, verdicts, config)
    print(f"run {history.meta.run_id} (seed {history.meta.seed}); thresholds: {source}", file=out)
    if not history.meta.complete:
        print("INCOMPLETE: the stored run did not complete; exit 3 whatever the verdicts", file=out)
    for verdict in verdicts:
        print(f"  {verdict.validity.value.upper():8s} {verdict.name}: {verdict.summary}", file=out)
    for problem in files.problems:
        print(f"note: plot not drawn: {problem}", file=out)
    print(f"report: {files.report_html}", file=out)
    print(f"exit {files.exit_code} ({files.outcome}); replay with: {files.summary['replay_command']}", file=out)
    return files.exit_code
