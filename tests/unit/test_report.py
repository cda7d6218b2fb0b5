"""write_report on small hand-made histories: schema, JUnit, escaping, incomplete runs, atomic writes, re-render."""

from __future__ import annotations

import base64
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness import files as atomic
from harness.checkers import CheckConfig, Validity, Verdict, check_all
from harness.checkers.timeline import Timeline
from harness.errors import UsageError
from harness.history.schema import METRICS_COLUMNS, conform
from harness.history.store import save_history
from harness.overlay import ModelOverlay
from harness.report.schema_check import validate
from harness.report.write import report_command, write_report

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "summary-schema.json").read_text())
EVIL_ID = "<script>alert('id')</script>"
EVIL_FAULT = "latency <script>alert('fault')</script> & <img src=x onerror=alert(1)> on client_api"


def _history(observed: bool = True):
    """80 submits at 10/s, a fault from 3 s to 4 s answered 503, one timeout, one event posted twice."""
    t = Timeline(run_id="r1", seed=3)
    for name, start, end in (
        ("warmup", 0, 1),
        ("baseline", 1, 3),
        ("fault", 3, 4),
        ("recovery", 4, 8.5),
        ("drain", 8.5, 9),
    ):
        t.phase(name, start, end)
    for i in range(80):
        at = i * 0.1
        if 30 <= i < 40:
            t.fail(f"e{i}", at=at, status=503, retry_after_s=1.0)
        else:
            t.ok(f"e{i}", at=at, took=0.01 + (i % 5) * 0.002)
            t.post(f"e{i}")
    t.post("e5")  # posted twice: no_double_posting is violated
    t.info(EVIL_ID, at=3.5)
    t.fault(start=3.0, stop=4.0, fault=EVIL_FAULT)
    for i in range(36):
        for partition in range(2):
            t.metric(i * 0.25, "ledger_backlog_events", float((i % 6) * (partition + 1)), partition=partition)
    return t.build(observed=observed)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    history = _history()
    verdicts = check_all(history, CheckConfig())
    files = write_report(tmp_path_factory.mktemp("run") / "r1", history, verdicts, CheckConfig())
    return history, verdicts, files


def test_summary_validates_against_the_documented_schema_and_holds_the_figures(judged):
    history, verdicts, files = judged
    summary = json.loads(files.summary_json.read_text())
    assert validate(summary, SCHEMA) == []
    try:  # a second opinion where the full validator happens to be installed (it is not a dependency)
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        jsonschema.validate(summary, SCHEMA)
    assert summary["schema_version"] == 1 and summary["seed"] == 3 and summary["run_id"] == "r1"
    assert summary["outcome"] == "violated" and summary["exit_code"] == 1 == files.exit_code
    assert summary["replay_command"] == f"ledgerchaos run {files.run_dir / 'scenario.resolved.yaml'} --seed 3"
    assert [v["name"] for v in summary["verdicts"]] == [v.name for v in verdicts]
    assert [v["validity"] for v in summary["verdicts"]] == [v.validity.value for v in verdicts]
    figures = summary["figures"]
    assert figures["errors_by_kind"] == {"http_503": 10, "timeout": 1}
    assert figures["ops_indeterminate"] == 1
    assert figures["submits_invoked"] == 81 and figures["submits_ok"] == 70
    assert figures["latency_ms_p50"] == pytest.approx(14.0)
    assert figures["backlog_events_peak"] == 15.0  # 5 + 10 at the same sample
    assert figures["fault_windows"] == 1 and summary["faults"][0]["description"] == EVIL_FAULT
    assert "fault_0.recovery_s" in figures["recovery_s"]
    assert set(summary["versions"]) == {
        "ledgerchaos",
        "python",
        "redis",
        "postgresql",
        "toxiproxy",
        "locust",
        "constraints",
    }
    # This history recorded none: a re-render shows "not recorded", never this machine's versions.
    recorded = history.meta.extra.get("versions", {})
    assert all(summary["versions"][tool] == recorded.get(tool) for tool in summary["versions"]), summary["versions"]


def test_the_schema_validator_rejects_what_the_schema_forbids(judged):
    summary = json.loads(judged[2].summary_json.read_text())
    broken = json.loads(json.dumps(summary))
    del broken["seed"]
    broken["exit_code"] = 2
    broken["complete"] = "yes"
    broken["figures"]["submits_ok"] = True  # a bool is not an integer in JSON
    broken["verdicts"][0]["validity"] = "fine"
    broken["surprise"] = 1
    errors = validate(broken, SCHEMA)
    for needle in (
        "'seed' is missing",
        "$.exit_code",
        "$.complete",
        "$.figures.submits_ok",
        "$.verdicts[0].validity",
        "$.surprise",
    ):
        assert any(needle in e for e in errors), (needle, errors)
    with pytest.raises(ValueError, match="pattern"):
        validate("x", {"type": "string", "pattern": "^a"})


def test_junit_has_one_testcase_per_verdict_and_a_failure_with_evidence_for_each_invalid_one(judged):
    history, verdicts, files = judged
    root = ET.parse(files.junit_xml).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "timeline"
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [v.name for v in verdicts]
    assert {c.get("classname") for c in cases} == {"timeline"}
    invalid = {v.name: v for v in verdicts if v.validity is Validity.INVALID}
    assert "no_double_posting" in invalid
    for case in cases:
        failure = case.find("failure")
        assert (failure is not None) == (case.get("name") in invalid)
        if failure is not None:
            assert invalid[case.get("name")].summary in failure.get("message")
            assert "--seed 3" in failure.text
    double = next(c for c in cases if c.get("name") == "no_double_posting").find("failure")
    assert "event e5" in double.text
    assert suites[0].get("failures") == str(len(invalid)) == root.get("failures")
    assert suites[0].get("tests") == str(len(verdicts))


def test_junit_reports_unknown_as_error_unless_allowed_and_survives_characters_xml_cannot_hold(tmp_path):
    history = _history()
    verdicts = (
        Verdict("no_phantom", Validity.UNKNOWN, "cannot judge: \x00 no observation"),
        Verdict("ordering", Validity.UNKNOWN, "cannot judge: crashed"),
        Verdict("slo", Validity.VALID, "holds"),
    )
    config = CheckConfig(allow_unknown=["ordering"])
    files = write_report(tmp_path, history, verdicts, config)
    cases = {c.get("name"): c for c in ET.parse(files.junit_xml).getroot().iter("testcase")}
    assert cases["no_phantom"].find("error").get("type") == "unknown"
    assert "\ufffd" in cases["no_phantom"].find("error").get("message")
    assert cases["ordering"].find("skipped") is not None and cases["ordering"].find("error") is None
    assert list(cases["slo"]) == []
    assert files.exit_code == 1 and files.outcome == "unknown"
    assert write_report(tmp_path, history, verdicts[1:], config).exit_code == 0  # only the allowed unknown is left


def test_no_verdict_at_all_is_not_a_pass(tmp_path):
    files = write_report(tmp_path, _history(), (), CheckConfig())
    assert files.exit_code == 1 and files.outcome == "unknown"
    cases = list(ET.parse(files.junit_xml).getroot().iter("testcase"))
    assert [c.get("name") for c in cases] == ["verdicts"] and cases[0].find("failure") is not None


def test_html_escapes_a_malicious_event_id_and_fault_description_and_is_self_contained(judged):
    html = judged[2].report_html.read_text()
    assert "<script" not in html.lower()
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")  # only as escaped text
    assert "&lt;script&gt;alert(&#x27;id&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for src in images)
    assert html.index("Verdicts") < html.index("<img")  # the verdict table comes first
    md = judged[2].summary_md.read_text()
    assert "<script" not in md and "VIOLATED" in md and "--seed 3" in md


def test_an_incomplete_history_still_gets_every_file_marked_incomplete(tmp_path):
    history = _history(observed=False)
    history = replace(
        history, meta=replace(history.meta, complete=False, notes=("the run could not complete: <b>stack died</b>",))
    )
    verdicts = check_all(history, CheckConfig())
    files = write_report(tmp_path / "cut", history, verdicts, CheckConfig())
    for path in (files.summary_json, files.junit_xml, files.report_html, files.summary_md):
        assert path.is_file() and path.stat().st_size > 0
    summary = json.loads(files.summary_json.read_text())
    assert validate(summary, SCHEMA) == []
    assert summary["complete"] is False and summary["outcome"] == "incomplete" and summary["exit_code"] == 3
    assert summary["figures"]["events_posted"] is None
    html = files.report_html.read_text()
    assert html.index("INCOMPLETE") < html.index("<h1>")
    assert "&lt;b&gt;stack died&lt;/b&gt;" in html
    assert files.summary_md.read_text().splitlines()[2].startswith("> **INCOMPLETE**")
    error = next(c for c in ET.parse(files.junit_xml).getroot().iter("testcase") if c.get("name") == "run_complete")
    assert error.find("error").get("type") == "incomplete" and "stack died" in error.find("error").text


def test_writes_leave_no_temporary_files_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    files = write_report(tmp_path, _history(), (Verdict("slo", Validity.VALID, "holds"),), CheckConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.html", "summary.json", "summary.md"]
    before = files.summary_json.read_bytes()

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text_atomic(files.summary_json, "{half")
    assert files.summary_json.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")] == []


def test_a_plot_that_cannot_be_drawn_is_named_on_the_page_and_the_files_are_still_written(tmp_path, monkeypatch):
    import harness.report.plots as plots

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plots, "timeline_png", broken)
    files = write_report(tmp_path, _history(), (Verdict("slo", Validity.VALID, "holds"),), CheckConfig())
    assert files.problems == ("timeline: RuntimeError: no fonts",)
    assert "plot not drawn: timeline: RuntimeError: no fonts" in files.report_html.read_text()
    assert files.exit_code == 0


def test_a_prediction_is_laid_over_the_measured_backlog(tmp_path):
    history = _history()
    predicted = conform(
        pd.DataFrame(
            {
                "time_s": [0.0, 1.0, 2.0, 3.0],
                "metric": ["ledger_backlog_events"] * 4,
                "partition": [None] * 4,
                "value": [0.0, 4.0, 9.0, 2.0],
            }
        ),
        METRICS_COLUMNS,
        "metrics",
    )
    latency = {q: {"measured": None, "predicted": ms} for q, ms in (("p50", 10.0), ("p95", 20.0), ("p99", 30.0))}
    overlay = ModelOverlay(line="a prediction", metrics=predicted, latency=latency)
    files = write_report(tmp_path, history, (Verdict("slo", Validity.VALID, "holds"),), CheckConfig(), overlay=overlay)
    html = files.report_html.read_text()
    assert "Capacity model against measurement" in html
    assert len(re.findall(r"<img ", html)) == 2


def test_report_command_rerenders_a_stored_run_with_its_thresholds_and_the_same_verdicts(tmp_path):
    history = _history()
    save_history(tmp_path, history)
    config = CheckConfig(allow_unknown=["ordering"], grace_s=1.0)
    (tmp_path / "check_config.json").write_text(json.dumps(config.to_json()))
    expected = [(v.name, v.validity.value, v.summary) for v in check_all(history, config)]
    lines = []
    out = SimpleNamespace(write=lines.append, flush=lambda: None)
    code = report_command(tmp_path, out=out)
    first = json.loads((tmp_path / "summary.json").read_text())
    assert [(v["name"], v["validity"], v["summary"]) for v in first["verdicts"]] == expected
    assert first["check_config"]["allow_unknown"] == ["ordering"] and first["check_config"]["grace_s"] == 1.0
    assert code == first["exit_code"] == 1
    assert report_command(tmp_path, out=out) == code
    again = json.loads((tmp_path / "summary.json").read_text())
    assert again["verdicts"] == first["verdicts"] and again["figures"] == first["figures"]
    assert "report.html" in "".join(lines)


def test_report_command_on_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such run folder"):
        report_command(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="history.parquet"):
        report_command(tmp_path / "empty")
    assert os.listdir(tmp_path / "empty") == []


def test_a_run_that_recorded_nothing_still_gets_a_valid_report(tmp_path):
    from harness.history.schema import History, RunMeta, empty_frame
    from harness.history.store import ops_from_records

    history = History(
        ops=ops_from_records([]),
        metrics=empty_frame(METRICS_COLUMNS),
        observation=None,
        meta=RunMeta(run_id="empty", seed=1, complete=False, notes=("the stack died",)),
    )
    files = write_report(tmp_path, history, check_all(history, CheckConfig()), CheckConfig())
    assert files.exit_code == 3 and files.problems == ()
    summary = json.loads(files.summary_json.read_text())
    assert validate(summary, SCHEMA) == []
    assert summary["figures"]["latency_ms_p99"] is None and summary["figures"]["throughput_per_s_offered"] is None


def test_compare_reads_the_summaries_write_report_writes(judged, tmp_path):
    from harness.report.compare import compare_command

    out = []
    sink = SimpleNamespace(write=out.append, flush=lambda: None)
    run_dir = judged[2].run_dir
    assert compare_command(run_dir, run_dir, out=sink) == 0
    assert "no regression" in "".join(out)


def test_a_checker_that_judged_nothing_is_said_everywhere_and_never_counted_as_a_pass(tmp_path):
    verdicts = (
        Verdict("no_lost_ack", Validity.VALID, "holds: 70 acknowledged events"),
        Verdict("slo", Validity.NOT_JUDGED, "not judged: no SLO bound is set (figures reported only)"),
        Verdict("backlog_bounded", Validity.NOT_JUDGED, "not judged: no backlog_events_max set (peak 15 events)"),
    )
    files = write_report(tmp_path, _history(), verdicts, CheckConfig())
    summary = json.loads(files.summary_json.read_text())
    assert validate(summary, SCHEMA) == []
    counts = summary["verdict_counts"]
    assert (counts["valid"], counts["not_judged"], counts["judged"]) == (1, 2, 1)
    assert summary["outcome"] == "pass" and files.exit_code == 0  # not judged never fails the gate...
    assert [v["gates"] for v in summary["verdicts"]] == [False, False, False]
    cases = {c.get("name"): c for c in ET.parse(files.junit_xml).getroot().findall("testsuite/testcase")}
    skipped = cases["slo"].find("skipped")  # ...and never counts as a passing test case
    assert skipped is not None and "no SLO bound" in skipped.get("message")
    assert cases["no_lost_ack"].find("skipped") is None and cases["no_lost_ack"].find("failure") is None
    html = files.report_html.read_text()
    assert html.count('class="badge not_judged">NOT JUDGED</span>') == 2
    assert "1 judged, all hold; 2 not judged" in html
    assert "1 judged, all hold; 2 not judged" in files.summary_md.read_text()
    assert "➖ not judged" in files.summary_md.read_text()


def test_nothing_judged_at_all_is_not_a_pass(tmp_path):
    verdicts = (Verdict("slo", Validity.NOT_JUDGED, "not judged: no SLO bound is set"),)
    files = write_report(tmp_path, _history(), verdicts, CheckConfig())
    assert files.exit_code == 1 and files.outcome == "unknown"
    assert "nothing judged" in files.report_html.read_text()
