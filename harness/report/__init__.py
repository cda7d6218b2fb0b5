"""Report: the files a person reads and a CI job gates on (summary.json, junit.xml, report.html, summary.md).

Public surface:
- render_run(run_dir) -> ReportFiles: the render phase, from what the run folder holds;
- write_report(run_dir, history, verdicts, config=None, overlay=None) -> ReportFiles (from in-memory values);
- report_command(run_dir, out) -> exit code (`ledgerchaos report RUN_DIR`: re-judge and re-render);
- compare_command(run_a, run_b, threshold_pct, out) -> exit code (`ledgerchaos compare RUN_A RUN_B`).
The format of summary.json is docs/summary-schema.json (schema_version 1); see docs/report.md.
"""

from harness.report.compare import compare_command, compare_summaries
from harness.report.summary import SUMMARY_SCHEMA_VERSION, build_summary
from harness.report.write import ReportFiles, render_run, report_command, write_report

__all__ = [
    "ReportFiles",
    "SUMMARY_SCHEMA_VERSION",
    "build_summary",
    "compare_command",
    "compare_summaries",
    "report_command",
    "render_run",
    "write_report",
]
