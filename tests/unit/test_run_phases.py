"""The phases after the record meet only in the run folder: predict and judge write into it, render reads it.

A stored run (a hand-made history saved as a run would save it) goes through the same functions
the run command, the suite, the pytest plugin and `ledgerchaos report` call.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checkers import CheckConfig, check_run
from harness.checkers.judge import VERDICTS_FILE, judge_run, read_judgement
from harness.checkers.timeline import Timeline
from harness.history.store import save_history
from harness.overlay import PREDICTION_FILE, read_overlay
from harness.report.write import render_run
from harness.scenario import scenario_from_mapping

REPO = Path(__file__).resolve().parents[2]
SCENARIO = scenario_from_mapping(
    {
        "name": "phases",
        "seed": 5,
        "load": {"profile": {"kind": "steady", "base_rate_per_s": 20, "duration_s": 4}},
        "phases": {"warmup_s": 1, "drain_s_max": 10},
    }
)


def _stored_run(folder: Path, lose_one: bool = False) -> Path:
    t = Timeline(run_id="phases-run", seed=5)
    t.phase("warmup", 0, 1)
    t.phase("baseline", 1, 4)
    for i in range(40):
        t.ok(f"e{i}", at=i * 0.1, took=0.01)
        if not (lose_one and i == 7):
            t.post(f"e{i}")
    for i in range(16):
        t.metric(i * 0.25, "ledger_backlog_events", float(i % 4), partition=0)
    save_history(folder, t.build())
    return folder


def test_judge_writes_the_verdicts_and_the_thresholds_they_were_judged_by(tmp_path):
    run = _stored_run(tmp_path / "run", lose_one=True)
    judgement = judge_run(run, CheckConfig(grace_s=1.5))
    assert judgement.exit_code == 1 and judgement.config_source == "given"
    stored = read_judgement(run)
    assert stored is not None
    assert [(v.name, v.validity, v.summary) for v in stored.verdicts] == [
        (v.name, v.validity, v.summary) for v in judgement.verdicts
    ]
    assert stored.config == judgement.config and stored.exit_code == 1


def test_render_reads_only_the_folder_and_twice_gives_the_same_report(tmp_path):
    from harness.capacity.run_prediction import predict_run
    from harness.history.store import load_history

    run = _stored_run(tmp_path / "run")
    overlay, missing = predict_run(run, SCENARIO, load_history(run))
    assert overlay is not None and missing is None and overlay.line.startswith("backlog peak")
    judge_run(run)
    first = render_run(run)
    html = first.report_html.read_text()
    assert "Capacity model against measurement" in html and len(re.findall(r"<img ", html)) == 2
    again = render_run(run)
    keep = lambda s: {k: v for k, v in s.items() if k != "generated_at_utc"}  # noqa: E731 - a one-line view
    assert keep(again.summary) == keep(first.summary)
    assert [v["name"] for v in first.summary["verdicts"]] == [v.name for v in read_judgement(run).verdicts]


def test_a_folder_never_judged_renders_as_nothing_judged_not_as_a_pass(tmp_path):
    run = _stored_run(tmp_path / "run")
    files = render_run(run)
    assert files.summary["verdicts"] == [] and files.exit_code == 1 and files.outcome == "unknown"


def test_a_model_that_cannot_run_is_named_in_the_folder_and_on_the_page(tmp_path):
    from harness.capacity.run_prediction import predict_run
    from harness.history.store import load_history

    run = _stored_run(tmp_path / "run")
    overlay, missing = predict_run(run, object(), load_history(run))  # not a scenario: the model refuses
    assert overlay is None and missing.startswith("capacity model prediction unavailable")
    assert json.loads((run / PREDICTION_FILE).read_text())["available"] is False
    assert read_overlay(run) == (None, missing)
    judge_run(run)
    files = render_run(run)
    assert missing in files.problems and "capacity model prediction unavailable" in files.report_html.read_text()


def test_check_judges_a_folder_it_may_not_own_without_writing_to_it(tmp_path):
    run = _stored_run(tmp_path / "theirs", lose_one=True)
    before = sorted(os.listdir(run))
    assert check_run(run, out=io.StringIO()) == 1
    assert sorted(os.listdir(run)) == before and VERDICTS_FILE not in before


def test_rendering_does_not_import_the_capacity_model(tmp_path):
    from harness.capacity.run_prediction import predict_run
    from harness.history.store import load_history

    run = _stored_run(tmp_path / "run")
    predict_run(run, SCENARIO, load_history(run))
    judge_run(run)
    code = (
        "import sys; from harness.report.write import render_run; "
        f"render_run({str(run)!r}); "
        "print(sorted(m for m in sys.modules if m.startswith(('harness.capacity', 'simpy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


@pytest.mark.parametrize("name", ["verdicts.json", "prediction.json"])
def test_a_damaged_phase_file_is_a_usage_error_naming_it(tmp_path, name):
    from harness.errors import UsageError

    run = _stored_run(tmp_path / "run")
    (run / name).write_text("{not json")
    with pytest.raises(UsageError, match=name):
        render_run(run)


def test_check_json_prints_the_verdicts_in_the_summary_schema_and_writes_nothing(tmp_path, capsys):
    from harness.cli import main

    run = _stored_run(tmp_path / "theirs", lose_one=True)
    before = sorted(os.listdir(run))
    assert main(["check", str(run), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 1 and document["complete"] is True and document["gaps"] == []
    lost = {v["name"]: v for v in document["verdicts"]}["no_lost_ack"]
    assert lost["validity"] == "invalid" and lost["gates"] is True and lost["evidence"][0]["event_id"] == "e7"
    schema = json.loads((REPO / "docs" / "summary-schema.json").read_text())
    from harness.report.schema_check import validate

    item = schema["properties"]["verdicts"]["items"]
    assert all(validate(v, item) == [] for v in document["verdicts"])  # the same schema as summary.json's
    assert sorted(os.listdir(run)) == before
