"""summary.md: a short Markdown verdict for a pull-request comment (outcome, verdict table, key figures, replay).

Why short: a PR comment is read in a few seconds; the evidence lives in
report.html. Cells are escaped (HTML and table pipes), since GitHub renders
inline HTML in comments and a history's text is data from a system under test.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from harness.report.summary import judged_sentence

__all__ = ["render_markdown", "CELL_CHARS_MAX"]

CELL_CHARS_MAX = 300
_MARK = {"pass": "✅ PASS", "violated": "❌ VIOLATED", "unknown": "⚠️ UNKNOWN", "incomplete": "🟣 INCOMPLETE"}
_VERDICT = {"valid": "✅ valid", "invalid": "❌ invalid", "unknown": "⚠️ unknown", "not_judged": "➖ not judged"}


def _cell(value) -> str:
    text = " ".join(str("" if value is None else value).split())
    if len(text) > CELL_CHARS_MAX:
        text = text[: CELL_CHARS_MAX - 1] + "…"
    return escape(text, quote=False).replace("|", "\\|")


def _num(value, pattern: str = "{:.1f}") -> str:
    return "—" if value is None else pattern.format(value)


def render_markdown(summary: Mapping) -> str:
    """The Markdown text of summary.md."""
    outcome = str(summary.get("outcome", "unknown"))
    lines = [
        f"### ledgerchaos `{_cell(summary.get('scenario'))}`: {_MARK.get(outcome, outcome)} "
        f"(exit {summary.get('exit_code')}; {judged_sentence(summary)})",
        "",
    ]
    if not summary.get("complete"):
        notes = "; ".join(str(n) for n in summary.get("notes") or ()) or "no note recorded"
        lines += [f"> **INCOMPLETE**: the run did not complete; verdicts judge a partial history. {_cell(notes)}", ""]
    verdicts = summary.get("verdicts") or []
    if verdicts:
        lines += ["| checker | verdict | summary |", "| --- | --- | --- |"]
        for v in verdicts:
            mark = (
                "⚪ unknown (allowed)"
                if v.get("allowed_unknown")
                else _VERDICT.get(v.get("validity"), v.get("validity"))
            )
            lines.append(f"| `{_cell(v.get('name'))}` | {mark} | {_cell(v.get('summary'))} |")
    else:
        lines.append("**No checker judged this run** (nothing judged is not a pass).")
    f = summary.get("figures") or {}
    errors = ", ".join(f"{_cell(k)} {v}" for k, v in (f.get("errors_by_kind") or {}).items()) or "none"
    lines += [
        "",
        f"Throughput offered / accepted / posted: {_num(f.get('throughput_per_s_offered'))} / "
        f"{_num(f.get('throughput_per_s_accepted'))} / {_num(f.get('throughput_per_s_posted'))} per s · "
        f"ingest latency p50 / p95 / p99: {_num(f.get('latency_ms_p50'))} / {_num(f.get('latency_ms_p95'))} / "
        f"{_num(f.get('latency_ms_p99'))} ms · indeterminate ops: {f.get('ops_indeterminate', '—')} · errors: {errors}",
        "",
        f"Seed {summary.get('seed')} · run `{_cell(summary.get('run_id'))}` · replay: "
        f"`{str(summary.get('replay_command', '')).replace('`', '')}`",
        "",
    ]
    return "\n".join(lines)
