"""junit.xml: one testcase per checker so that any CI system shows which invariant failed, and why.

Why JUnit: every CI system (GitHub Actions reporters, GitLab, Jenkins) reads it
without a plugin. Layout: one <testsuite> per run (name = scenario), one
<testcase> per verdict (classname = scenario, name = checker). An invalid
verdict is a <failure> carrying its summary and evidence; an unknown one is an
<error> (it could not be judged: not a pass), or <skipped> when the scenario
allows that checker to be unknown. An incomplete run adds a `run_complete`
testcase in error, and a run with no verdicts a `verdicts` failure, so neither
can look green. Built from summary dicts, so it never disagrees with summary.json.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

__all__ = ["junit_xml", "evidence_text", "MESSAGE_CHARS_MAX", "TEXT_CHARS_MAX"]

MESSAGE_CHARS_MAX = 1000
TEXT_CHARS_MAX = 20_000
# XML 1.0 cannot hold these characters at all, escaped or not (an event id may carry them).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_OP_FIELDS = (
    "time_s",
    "process",
    "type",
    "f",
    "op_id",
    "attempt",
    "status_code",
    "latency_ms",
    "error",
    "retry_after_s",
    "value",
    "key",
    "amount_minor",
    "currency",
    "fault",
)


def _clean(text, limit: int) -> str:
    text = _NOT_XML.sub("\ufffd", str(text))
    return text if len(text) <= limit else text[: limit - 20] + " ... (truncated)"


def op_line(op: Mapping) -> str:
    """One op as a line of text: its time first, then its fields in a fixed order."""
    parts = []
    for name in _OP_FIELDS:
        if name in op and op[name] is not None:
            value = op[name]
            parts.append(f"{value:.3f}s" if name == "time_s" and isinstance(value, (int, float)) else f"{name}={value}")
    return " ".join(parts)


def evidence_text(verdict: Mapping) -> str:
    """A verdict's summary, counts and evidence as plain text (the body of a JUnit failure)."""
    lines = [str(verdict.get("summary", ""))]
    counts = verdict.get("counts") or {}
    if counts:
        lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    figures = verdict.get("figures") or {}
    if figures:
        lines.append("figures: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    for item in verdict.get("evidence") or ():
        event = item.get("event_id")
        lines.append(
            f"- event {event}: {item.get('problem', '')}" if event is not None else f"- {item.get('problem', '')}"
        )
        for op in item.get("ops") or ():
            lines.append("    " + op_line(op))
    return "\n".join(lines)


def _suite(summary: Mapping, index: int) -> ET.Element:
    scenario = _clean(summary.get("scenario") or summary.get("run_id") or "run", MESSAGE_CHARS_MAX)
    suite = ET.Element("testsuite", {"name": scenario, "id": str(index)})
    properties = ET.SubElement(suite, "properties")
    for name in ("run_id", "seed", "outcome", "exit_code", "replay_command", "run_dir"):
        if summary.get(name) is not None:
            ET.SubElement(properties, "property", {"name": name, "value": _clean(summary[name], MESSAGE_CHARS_MAX)})
    cases: list[ET.Element] = []
    tally = {"failures": 0, "errors": 0, "skipped": 0}
    replay = summary.get("replay_command")
    tail = f"\n\nreplay: {replay}" if replay else ""
    if not summary.get("complete", False):
        case = ET.Element("testcase", {"name": "run_complete", "classname": scenario, "time": "0"})
        notes = "\n".join(str(n) for n in summary.get("notes") or ()) or "the run did not complete"
        error = ET.SubElement(
            case,
            "error",
            {"type": "incomplete", "message": _clean("INCOMPLETE: " + notes.splitlines()[0], MESSAGE_CHARS_MAX)},
        )
        error.text = _clean(notes + tail, TEXT_CHARS_MAX)
        tally["errors"] += 1
        cases.append(case)
    verdicts = list(summary.get("verdicts") or ())
    if not verdicts:
        case = ET.Element("testcase", {"name": "verdicts", "classname": scenario, "time": "0"})
        failure = ET.SubElement(case, "failure", {"type": "not_judged", "message": "no checker judged this run"})
        failure.text = _clean("nothing judged is not a pass" + tail, TEXT_CHARS_MAX)
        tally["failures"] += 1
        cases.append(case)
    for verdict in verdicts:
        case = ET.Element(
            "testcase",
            {"name": _clean(verdict.get("name", "?"), MESSAGE_CHARS_MAX), "classname": scenario, "time": "0"},
        )
        validity = verdict.get("validity")
        message = _clean(f"{str(validity).upper()}: {verdict.get('summary', '')}", MESSAGE_CHARS_MAX)
        if validity == "invalid":
            element = ET.SubElement(case, "failure", {"type": "invalid", "message": message})
            tally["failures"] += 1
        elif validity == "unknown" and verdict.get("allowed_unknown"):
            element = ET.SubElement(
                case,
                "skipped",
                {
                    "message": _clean(
                        f"unknown, allowed by the scenario: {verdict.get('summary', '')}", MESSAGE_CHARS_MAX
                    )
                },
            )
            tally["skipped"] += 1
        elif validity == "not_judged":  # never a pass, never a failure: skipped with its reason
            element = ET.SubElement(case, "skipped", {"message": message})
            tally["skipped"] += 1
        elif validity != "valid":
            element = ET.SubElement(case, "error", {"type": "unknown", "message": message})
            tally["errors"] += 1
        else:
            element = None
        if element is not None and validity != "not_judged":
            element.text = _clean(evidence_text(verdict) + tail, TEXT_CHARS_MAX)
        cases.append(case)
    suite.set("tests", str(len(cases)))
    for name, count in tally.items():
        suite.set(name, str(count))
    suite.set("time", f"{_duration_s(summary):.3f}")
    stamp = str(summary.get("generated_at_utc") or "")
    if stamp:
        suite.set("timestamp", stamp.rstrip("Z"))  # the JUnit schema's timestamp has no zone (it is UTC)
    suite.extend(cases)
    return suite


def _duration_s(summary: Mapping) -> float:
    ends = [p.get("end_s") for p in summary.get("phases") or () if isinstance(p.get("end_s"), (int, float))]
    return float(max(ends)) if ends else 0.0


def junit_xml(summaries: Iterable[Mapping], name: str = "ledgerchaos") -> bytes:
    """The JUnit XML document (UTF-8 bytes): <testsuites> with one <testsuite> per summary."""
    root = ET.Element("testsuites", {"name": _clean(name, MESSAGE_CHARS_MAX)})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_s = 0.0
    for index, summary in enumerate(summaries):
        suite = _suite(summary, index)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        time_s += float(suite.get("time", "0"))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{time_s:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
