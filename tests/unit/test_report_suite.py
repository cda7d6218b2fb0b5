"""`ledgerchaos suite`: validate every scenario before running any, run each (engine faked here), one JUnit file,
an index page, and the worst exit code."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
import yaml

import harness.run.engine as engine
from harness.checkers import Validity, Verdict
from harness.checkers.timeline import Timeline
from harness.errors import StackError, UsageError
from harness.report.write import write_report
from harness.run.suite import suite_command

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _scenario(name):
    return {
        "name": name,
        "seed": 7,
        "duration_s_max": 60,
        "load": {"profile": {"kind": "steady", "base_rate_per_s": 50, "duration_s": 8}},
        "phases": {"warmup_s": 2, "drain_s_max": 20},
    }


def _folder(tmp_path, names, broken=()):
    folder = tmp_path / "scenarios"
    (folder / "plans").mkdir(parents=True)
    (folder / "plans" / "plan.yaml").write_text("not: [a, scenario")  # not a scenario: never read
    for name in names:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(_scenario(name)))
    for name, text in broken:
        (folder / f"{name}.yaml").write_text(text)
    return folder


def _fake_engine(monkeypatch, results):
    """run_scenario answering per scenario name: an exit code (0 / 1) or an exception."""
    calls = []

    def run_scenario(scenario, options):
        calls.append(scenario.name)
        result = results[scenario.name]
        if isinstance(result, Exception):
            raise result
        t = Timeline(run_id=f"{scenario.name}-run", seed=scenario.seed)
        t.phase("baseline", 0, 2)
        t.ok("e1", at=0.5)
        history = t.build()
        history = history.__class__(
            history.ops,
            history.metrics,
            history.observation,
            history.meta.__class__(**{**history.meta.__dict__, "scenario": scenario.name}),
        )
        validity = Validity.VALID if result == 0 else Validity.INVALID
        verdicts = (Verdict("no_lost_ack", validity, "holds" if result == 0 else "violated: <lost>"),)
        run_dir = options.reports_dir / history.meta.run_id
        run_dir.mkdir(parents=True)
        files = write_report(run_dir, history, verdicts)  # the real engine's render phase writes these
        return engine.RunOutcome(run_dir=run_dir, history=history, verdicts=verdicts, exit_code=result, report=files)

    monkeypatch.setattr(engine, "run_scenario", run_scenario)
    return calls


def test_a_scenario_that_does_not_validate_stops_the_suite_before_anything_runs(tmp_path, monkeypatch):
    folder = _folder(tmp_path, ["a_ok"], broken=[("b_bad", yaml.safe_dump({**_scenario("b"), "seed": -1}))])
    calls = _fake_engine(monkeypatch, {"a_ok": 0})
    out = io.StringIO()
    assert suite_command(folder, tmp_path / "junit.xml", tmp_path / "reports", out=out, now=NOW) == 2
    assert calls == []
    assert "b_bad.yaml: seed: -1" in out.getvalue()
    assert "plan.yaml" not in out.getvalue()
    assert not (tmp_path / "junit.xml").exists() and not (tmp_path / "reports").exists()


def test_the_suite_runs_every_scenario_in_order_and_exits_with_the_worst_code(tmp_path, monkeypatch):
    folder = _folder(tmp_path, ["c_down", "a_pass", "b_violated"])
    calls = _fake_engine(
        monkeypatch, {"a_pass": 0, "b_violated": 1, "c_down": StackError("redis-server <b>not</b> found")}
    )
    out = io.StringIO()
    code = suite_command(folder, tmp_path / "ci" / "junit.xml", tmp_path / "reports", out=out, now=NOW)
    assert code == 3, out.getvalue()
    assert calls == ["a_pass", "b_violated", "c_down"]
    root = ET.parse(tmp_path / "ci" / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a_pass", "b_violated", "c_down"]
    assert suites[0].get("failures") == "0" and suites[0].get("errors") == "0"
    assert suites[1].find("testcase/failure").get("message") == "INVALID: violated: <lost>"
    assert (
        suites[2]
        .find("testcase[@name='run_complete']/error")
        .text.startswith("the run could not start: redis-server <b>not</b> found")
    )
    suite_dir = tmp_path / "reports" / "suite-20260102T030405Z"
    assert (suite_dir / "junit.xml").read_bytes() == (tmp_path / "ci" / "junit.xml").read_bytes()
    index = (suite_dir / "index.html").read_text()
    assert 'href="../a_pass-run/report.html"' in index and 'href="../b_violated-run/report.html"' in index
    assert "redis-server &lt;b&gt;not&lt;/b&gt; found" in index and "<b>" not in index
    assert "no report (the run could not start)" in index
    assert (tmp_path / "reports" / "a_pass-run" / "report.html").is_file()


def test_all_passing_is_zero_and_a_violation_is_one(tmp_path, monkeypatch):
    folder = _folder(tmp_path, ["a", "b"])
    _fake_engine(monkeypatch, {"a": 0, "b": 0})
    assert suite_command(folder, None, tmp_path / "r1", out=io.StringIO(), now=NOW) == 0
    _fake_engine(monkeypatch, {"a": 0, "b": 1})
    assert suite_command(folder, None, tmp_path / "r2", out=io.StringIO(), now=NOW) == 1


def test_a_folder_without_scenarios_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        suite_command(tmp_path / "nope", None, tmp_path / "r", out=io.StringIO())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"holds no \*.yaml scenario"):
        suite_command(tmp_path / "empty", None, tmp_path / "r", out=io.StringIO())
