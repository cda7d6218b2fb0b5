"""report.html: the one self-contained page a person reads first (verdicts on top, plots, evidence, replay).

Why self-contained: the page is a CI artifact opened from a zip or a file
share, often offline; images are embedded as base64 PNG, the style is inline,
and there is no script at all (nothing to fail, nothing to fetch). Every value
that comes from the run (event ids, fault descriptions, notes, error names) is
escaped with html.escape: a history is data from a system under test, and a
malicious event id must show as text, never run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from harness.report.figures import fault_of_figure
from harness.report.summary import judged_sentence

__all__ = ["render_html", "OP_COLUMNS"]

# Evidence op columns, in the order a person follows an event; others follow alphabetically.
OP_COLUMNS = (
    "time_s",
    "process",
    "type",
    "f",
    "op_id",
    "attempt",
    "event_id",
    "key",
    "debit_account",
    "credit_account",
    "amount_minor",
    "currency",
    "status_code",
    "latency_ms",
    "error",
    "retry_after_s",
    "value",
    "fault_id",
    "fault",
)
_FIGURE_ROWS = (
    ("throughput_per_s_offered", "offered (submit invokes/s)", "{:.1f}"),
    ("throughput_per_s_accepted", "accepted (ok submits/s)", "{:.1f}"),
    ("throughput_per_s_posted", "posted (applied/s)", "{:.1f}"),
    ("latency_ms_p50", "ingest latency p50 (ms, ok submits)", "{:.1f}"),
    ("latency_ms_p95", "ingest latency p95 (ms)", "{:.1f}"),
    ("latency_ms_p99", "ingest latency p99 (ms)", "{:.1f}"),
    ("submits_invoked", "submits invoked", "{}"),
    ("submits_ok", "submits ok", "{}"),
    ("ops_indeterminate", "indeterminate ops (info)", "{}"),
    ("ops_unanswered", "invokes never answered", "{}"),
    ("events_posted", "events in the journal", "{}"),
    ("backlog_events_peak", "backlog peak (events)", "{:.0f}"),
    ("backlog_events_peak_s", "backlog peak at (run s)", "{:.1f}"),
    ("drain_s", "drain time (s)", "{:.2f}"),
    ("drain_completed", "drain completed", "{}"),
    ("backlog_left_events", "backlog left after the drain", "{}"),
    ("load_span_s", "load span (s)", "{:.1f}"),
)
PAGE_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1360px;color:#1b1b1b;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em} td,th{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .mono,pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.badge{display:inline-block;padding:.1em .6em;border-radius:.3em;font-weight:600;color:#fff}
.valid,.pass{background:#1a7f37} .invalid,.violated{background:#c62828} .unknown{background:#b26a00}
.allowed{background:#6b7280} .incomplete{background:#7b1fa2} .not_judged{background:#9ca3af;color:#111}
.banner{background:#fbe9f7;border:2px solid #7b1fa2;padding:.7em 1em;margin:.8em 0;font-weight:600}
.outcome{font-size:1.15em;margin:.5em 0} img{max-width:100%;border:1px solid #eee}
.small{color:#555;font-size:.85em} .wide{overflow-x:auto} table.ops td{white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _badge(validity: str, allowed: bool = False) -> str:
    css = "allowed" if allowed else validity
    text = "UNKNOWN (allowed)" if allowed else validity.upper().replace("_", " ")
    return f'<span class="badge {_e(css)}">{_e(text)}</span>'


def _verdict_table(verdicts: Sequence[Mapping]) -> str:
    if not verdicts:
        return '<p><span class="badge unknown">NOT JUDGED</span> no checker judged this run: nothing judged is not a pass.</p>'
    rows = []
    for i, v in enumerate(verdicts):
        link = f' <a href="#evidence-{i}">evidence</a>' if v.get("validity") not in ("valid", "not_judged") else ""
        rows.append(
            f"<tr><td class=mono>{_e(v.get('name'))}</td><td>{_badge(str(v.get('validity')), bool(v.get('allowed_unknown')))}"
            f"</td><td>{_e(v.get('summary'))}{link}</td></tr>"
        )
    return "<table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>" + "".join(rows) + "</table>"


def _fmt(value, pattern: str) -> str:
    if value is None:
        return "—"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def _figures_table(figures: Mapping) -> str:
    rows = [
        f"<tr><td>{_e(label)}</td><td class=num>{_e(_fmt(figures.get(key), pattern))}</td></tr>"
        for key, label, pattern in _FIGURE_ROWS
        if key in figures
    ]
    errors = figures.get("errors_by_kind") or {}
    error_text = ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none"
    rows.append(f"<tr><td>errors by kind</td><td class=mono>{_e(error_text)}</td></tr>")
    return "<table><tr><th>figure</th><th>value</th></tr>" + "".join(rows) + "</table>"


def _fault_table(faults: Sequence[Mapping], recovery_s: Mapping) -> str:
    if not faults:
        return "<p>No fault windows in this run.</p>"
    rows = []
    for f in faults:
        stop = f.get("stop_s")
        length = f"{stop - f['start_s']:.2f}" if stop is not None else "still open"
        fid = f.get("fault_id")
        recovered = [
            f"{_fmt(v, '{:.2f} s')}" if v is not None else "never"
            for k, v in recovery_s.items()
            if fid is not None and _names_fault(k, fid)
        ]
        rows.append(
            f"<tr><td>F{_e(fid)}</td><td class=num>{f['start_s']:.2f}</td><td class=num>{_e(_fmt(stop, '{:.2f}'))}</td>"
            f"<td class=num>{_e(length)}</td><td>{_e(f.get('description'))}</td>"
            f"<td>{'yes' if f.get('applied') else 'NO (could not be applied)'}</td><td>{_e(', '.join(recovered) or '—')}</td></tr>"
        )
    other = {
        k: v
        for k, v in recovery_s.items()
        if not any(f.get("fault_id") is not None and _names_fault(k, f["fault_id"]) for f in faults)
    }
    extra = ""
    if other:
        extra = (
            "<p>Recovery figures: "
            + ", ".join(f"<span class=mono>{_e(k)}</span> = {_e(_fmt(v, '{:.2f} s'))}" for k, v in other.items())
            + "</p>"
        )
    return (
        "<table><tr><th>fault</th><th>start (s)</th><th>stop (s)</th><th>length (s)</th><th>what</th>"
        "<th>applied</th><th>recovery</th></tr>" + "".join(rows) + "</table>" + extra
    )


def _names_fault(figure: str, fault_id) -> bool:
    return fault_of_figure(figure) == int(fault_id)


def _ops_table(ops: Sequence[Mapping], event_id=None) -> str:
    if not ops:
        return '<p class="small">no ops of this event in the history</p>'
    present = {k for op in ops for k in op}
    if event_id is not None and all(op.get("event_id") == event_id for op in ops):
        present.discard("event_id")  # the heading names it already
    columns = [c for c in OP_COLUMNS if c in present] + sorted(present - set(OP_COLUMNS))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for op in ops:
        cells = []
        for c in columns:
            value = op.get(c)
            if isinstance(value, float):
                value = f"{value:.3f}"
            cells.append(f"<td class=mono>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class=wide><table class=ops><tr>{head}</tr>{''.join(body)}</table></div>"


def _evidence_section(verdicts: Sequence[Mapping]) -> str:
    parts = []
    for i, v in enumerate(verdicts):
        if v.get("validity") in ("valid", "not_judged"):
            continue
        parts.append(
            f'<h3 id="evidence-{i}">{_badge(str(v.get("validity")), bool(v.get("allowed_unknown")))} '
            f"<span class=mono>{_e(v.get('name'))}</span></h3><p>{_e(v.get('summary'))}</p>"
        )
        counts = v.get("counts") or {}
        figures = v.get("figures") or {}
        if counts or figures:
            pairs = list(counts.items()) + [(k, _fmt(x, "{:.4g}")) for k, x in figures.items()]
            parts.append("<p class=small>" + ", ".join(f"{_e(k)} = {_e(x)}" for k, x in pairs) + "</p>")
        evidence = v.get("evidence") or []
        if not evidence:
            parts.append('<p class="small">no offending events listed (the summary says why)</p>')
        for item in evidence:
            event = item.get("event_id")
            title = f"event <span class=mono>{_e(event)}</span>: " if event is not None else ""
            parts.append(f"<p>{title}{_e(item.get('problem'))}</p>{_ops_table(item.get('ops') or [], event)}")
    return "".join(parts) or "<p>Every verdict holds: nothing to show.</p>"


def render_html(
    summary: Mapping, timeline_png: bytes | None, prediction_png: bytes | None = None, plot_problems: Iterable[str] = ()
) -> str:
    """The whole page as text. plot_problems: why a plot is missing (shown in its place)."""
    verdicts = summary.get("verdicts") or []
    figures = summary.get("figures") or {}
    outcome = str(summary.get("outcome", "unknown"))
    complete = bool(summary.get("complete"))
    title = f"ledgerchaos: {summary.get('scenario')} ({summary.get('run_id')})"
    out = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{PAGE_STYLE}</style></head><body>"
    ]
    if not complete:
        notes = "".join(f"<li>{_e(n)}</li>" for n in summary.get("notes") or []) or "<li>no note recorded</li>"
        out.append(
            f"<div class=banner id=incomplete>INCOMPLETE: this run did not complete; the verdicts judge a "
            f"partial history and the exit code is 3.<ul>{notes}</ul></div>"
        )
    out.append(f"<h1>{_e(title)}</h1>")
    out.append(
        f'<p class=outcome><span class="badge {_e(outcome)}">{_e(outcome.upper())}</span> '
        f"{_e(judged_sentence(summary))} · exit code {_e(summary.get('exit_code'))} · seed {_e(summary.get('seed'))} · "
        f"{_e(summary.get('generated_at_utc'))}</p>"
    )
    out.append("<h2>Verdicts</h2>" + _verdict_table(verdicts))
    out.append(f"<h2>Replay</h2><pre>{_e(summary.get('replay_command'))}</pre>")
    if complete and summary.get("notes"):
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in summary["notes"]) + "</ul>")
    out.append("<h2>Figures</h2>" + _figures_table(figures))
    out.append(
        "<h2>Timeline</h2><p class=small>One shared axis in run seconds. Shaded: fault windows "
        "(labelled F&lt;id&gt;); dashed vertical lines: where throughput recovered after a fault.</p>"
    )
    out.append(_img(timeline_png, "timeline: throughput, latency, backlog, errors") if timeline_png else "")
    for problem in plot_problems:
        out.append(f'<p class="banner">plot not drawn: {_e(problem)}</p>')
    out.append("<h2>Fault windows</h2>" + _fault_table(summary.get("faults") or [], figures.get("recovery_s") or {}))
    if prediction_png:
        out.append("<h2>Capacity model against measurement</h2>" + _img(prediction_png, "model against measurement"))
    out.append("<h2>Evidence</h2>" + _evidence_section(verdicts))
    phases = "".join(
        f"<tr><td>{_e(p.get('name'))}</td><td class=num>{_e(_fmt(p.get('start_s'), '{:.2f}'))}</td>"
        f"<td class=num>{_e(_fmt(p.get('end_s'), '{:.2f}'))}</td></tr>"
        for p in summary.get("phases") or []
    )
    versions = "".join(
        f"<tr><td>{_e(k)}</td><td class=mono>{_e(v if v is not None else 'not found')}</td></tr>"
        for k, v in (summary.get("versions") or {}).items()
    )
    config = json.dumps(summary.get("check_config"), indent=2, sort_keys=True)
    out.append(
        "<h2>Run</h2><table><tr><th>phase</th><th>start (s)</th><th>end (s)</th></tr>" + phases + "</table>"
        "<table><tr><th>tool</th><th>version</th></tr>" + versions + "</table>"
        f"<details><summary>check configuration</summary><pre>{_e(config)}</pre></details>"
        f"<p class=small>run folder: <span class=mono>{_e(summary.get('run_dir'))}</span> · "
        "files: summary.json, junit.xml, summary.md, history.parquet, metrics.csv</p>"
    )
    out.append("</body></html>\n")
    return "".join(out)
