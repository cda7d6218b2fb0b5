"""A real short run gets every report file; report.html renders in headless Chromium with no console error and
every image a PNG; re-rendering the stored run gives the same verdicts."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.schema_check import validate
from harness.report.write import report_command
from harness.run.engine import RunOptions, run_scenario
from harness.scenario import scenario_from_mapping

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_TIMEOUT_S = 90
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SHORT = {
    "name": "report-short",
    "seed": 21,
    "duration_s_max": 90,
    "system": {"consumers": 2, "partitions": 2},
    "load": {
        "profile": {"kind": "steady", "base_rate_per_s": 100, "duration_s": 10},
        "generator": {"accounts": 100, "duplicate_share": 0.02, "invalid_share": 0.01},
    },
    "faults": [
        {
            "kind": "toxic",
            "link": "consumer_redis",
            "toxic": "latency",
            "attributes": {"latency": 100},
            "start_s": 5,
            "duration_s": 2,
        }
    ],
    "phases": {"warmup_s": 2, "drain_s_max": 30},
    "invariants": {"grace_s": 1, "recovery_s_max": 3, "recovery_window_s": 1},
}


def _chromium(args, tmp_path: Path) -> subprocess.CompletedProcess:
    """Headless Chromium on a fresh profile, bounded in time; its whole process group is killed on a hang."""
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.fail("chromium is missing: apt-get install chromium (CI installs it)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    command = [
        CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S} s")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def page_problems(html_path: Path, tmp_path: Path) -> list:
    """What is wrong with a page as Chromium sees it: console messages, and images that are not embedded PNGs."""
    done = _chromium(["--dump-dom", html_path.resolve().as_uri()], tmp_path)
    problems = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    if done.returncode != 0 or "<body" not in done.stdout:
        problems.append(f"chromium exit {done.returncode}, no DOM: {done.stderr[-500:]}")
    images = re.findall(r"<img\b[^>]*>", done.stdout)
    if not images:
        problems.append("no image on the page")
    for tag in images:
        src = re.search(r'src="([^"]*)"', tag)
        data = src.group(1) if src else ""
        if not data.startswith("data:image/png;base64,"):
            problems.append(f"image not embedded as PNG: {data[:60]!r}")
        elif base64.b64decode(data.split(",", 1)[1])[:8] != PNG_MAGIC:
            problems.append("embedded image does not decode as PNG")
    return problems


def test_the_page_checker_sees_a_console_error_and_a_broken_image(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA"><img src="missing.png">'
        '<script>console.error("boom"); undefinedFunction();</script></body></html>'
    )
    problems = page_problems(bad, tmp_path)
    assert any("boom" in p for p in problems), problems
    assert any("Uncaught" in p for p in problems), problems
    assert any("missing.png" in p for p in problems), problems
    assert any("does not decode as PNG" in p for p in problems), problems


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    scenario = scenario_from_mapping(SHORT)
    outcome = run_scenario(scenario, RunOptions(reports_dir=reports, run_id="short"))
    return scenario, outcome, outcome.report  # the report the run rendered itself, once: what CI keeps


def test_a_real_run_gets_every_file_and_they_agree(short_run):
    scenario, outcome, files = short_run
    for path in (files.summary_json, files.junit_xml, files.report_html, files.summary_md):
        assert path.is_file() and path.stat().st_size > 0
    summary = json.loads(files.summary_json.read_text())
    schema = json.loads((REPO / "docs" / "summary-schema.json").read_text())
    assert validate(summary, schema) == []
    assert summary["complete"] is True and summary["exit_code"] == outcome.exit_code == files.exit_code
    assert summary["replay_command"] == f"ledgerchaos run {outcome.run_dir / 'scenario.resolved.yaml'} --seed 21"
    assert (outcome.run_dir / "scenario.resolved.yaml").is_file()
    for phase_file in ("verdicts.json", "prediction.json", "prediction_metrics.csv"):  # judge and predict wrote
        assert (outcome.run_dir / phase_file).is_file(), phase_file
    html = files.report_html.read_text()
    assert "Capacity model against measurement" in html and files.problems == ()  # every panel, first time
    figures = summary["figures"]
    assert 80 <= figures["throughput_per_s_offered"] <= 130, figures  # ~100/s offered
    assert figures["throughput_per_s_posted"] > 50 and figures["latency_ms_p99"] > 0
    assert figures["events_posted"] > 500 and figures["fault_windows"] == 1
    assert figures["backlog_events_peak"] is not None
    assert summary["faults"][0]["stop_s"] - summary["faults"][0]["start_s"] == pytest.approx(2.0, abs=0.3)
    # Asked of the services when the run ran (INFO server, SHOW server_version, GET /version).
    for tool in ("redis", "postgresql", "toxiproxy"):
        assert re.match(r"^\d+\.\d+", summary["versions"][tool] or ""), summary["versions"]
    assert summary["versions"] == {k: v for k, v in outcome.history.meta.extra["versions"].items()}
    cases = ET.parse(files.junit_xml).getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == [v.name for v in outcome.verdicts]
    failing = {v.name for v in outcome.verdicts if v.validity.value == "invalid"}
    assert {c.get("name") for c in cases if c.find("failure") is not None} == failing


def test_report_html_renders_in_chromium_with_no_console_error_and_every_image_a_png(short_run, tmp_path):
    files = short_run[2]
    assert page_problems(files.report_html, tmp_path) == []
    # No SLO or backlog bound in this scenario: the page says not judged (its own badge), not a pass.
    html = files.report_html.read_text()
    assert 'class="badge not_judged">NOT JUDGED</span>' in html and "not judged" in html
    screenshot = tmp_path / "report.png"
    done = _chromium(
        [f"--screenshot={screenshot}", "--window-size=1400,3000", files.report_html.resolve().as_uri()], tmp_path
    )
    assert done.returncode == 0 and screenshot.read_bytes()[:8] == PNG_MAGIC, done.stderr[-500:]
    keep = os.environ.get("LEDGERCHAOS_KEEP_SCREENSHOT")
    if keep:  # for a person to look at the page: LEDGERCHAOS_KEEP_SCREENSHOT=/tmp/report.png
        shutil.copyfile(screenshot, keep)


def test_re_rendering_the_stored_run_gives_the_same_verdicts(short_run, capsys):
    scenario, outcome, files = short_run
    first = json.loads(files.summary_json.read_text())
    code = report_command(outcome.run_dir)
    again = json.loads(files.summary_json.read_text())
    assert [(v["name"], v["validity"], v["summary"]) for v in again["verdicts"]] == [
        (v.name, v.validity.value, v.summary) for v in outcome.verdicts
    ]
    assert again["verdicts"] == first["verdicts"] and code == first["exit_code"]
    assert again["versions"] == first["versions"]  # recorded by the run, not probed again
    assert "Capacity model against measurement" in files.report_html.read_text()  # the stored prediction
    assert "report.html" in capsys.readouterr().out
