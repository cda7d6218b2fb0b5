"""check_run on stored runs (table, evidence, exit code, stored thresholds), CheckConfig's JSON form and exit_code."""

from __future__ import annotations

import io
import json
import re

import pytest

from harness.checkers import CHECKER_NAMES, CheckConfig, Evidence, Validity, Verdict, check_run, exit_code
from harness.checkers.console import write_check_config
from harness.checkers.timeline import Timeline
from harness.cli import main
from harness.errors import UsageError
from harness.history.store import save_history


def stored_run(tmp_path, lose_one: bool = False):
    t = Timeline(run_id="run-7", seed=7)
    t.ok("e1", at=0.0, key="A")
    t.ok("e2", at=0.1, key="A")
    t.metric(0.1, "ledger_backlog_events_total", 1.0)
    t.post("e1")
    if not lose_one:
        t.post("e2")
    save_history(tmp_path, t.build())
    return tmp_path


def test_a_correct_run_prints_every_checker_and_exits_0(tmp_path):
    out = io.StringIO()
    assert check_run(stored_run(tmp_path), out=out) == 0
    text = out.getvalue()
    for name in CHECKER_NAMES:
        assert name in text
    assert "run run-7 (seed 7)" in text
    assert re.search(r"exit 0: \d+ judged, all hold; \d+ not judged", text), text[-300:]
    assert "NOT JUDGED" in text  # slo and backlog_bounded have no bound here: said, not shown as a pass


def test_a_violation_prints_its_evidence_and_exits_1(tmp_path):
    out = io.StringIO()
    assert check_run(stored_run(tmp_path, lose_one=True), out=out) == 1
    text = out.getvalue()
    assert "no_lost_ack: invalid" in text
    assert "event e2: acknowledged, then neither posted, dead-lettered nor rejected" in text
    assert "client-0-0 invoke submit key=A A->bank 100 EUR op_id=2 attempt=1" in text
    assert re.search(r"exit 1: \d+ judged, \d+ hold; \d+ not judged \(invalid: no_lost_ack\)", text)


def test_the_stored_check_config_is_used_and_may_allow_unknown(tmp_path):
    run = stored_run(tmp_path)
    write_check_config(run, CheckConfig(latency_ms_p99_max=0.001))
    out = io.StringIO()
    assert check_run(run, out=out) == 1
    assert "latency_ms_p99" in out.getvalue()
    assert "check_config.json" in out.getvalue()
    assert check_run(run, config=CheckConfig(), out=io.StringIO()) == 0  # an explicit config wins


def test_a_partial_run_is_said_to_be_partial(tmp_path):
    from dataclasses import replace

    t = Timeline(run_id="cut")
    t.ok("e1", at=0.0)
    t.post("e1")
    history = t.build()
    save_history(tmp_path, replace(history, meta=replace(history.meta, complete=False, notes=("interrupted",))))
    out = io.StringIO()
    check_run(tmp_path, out=out)
    assert "note: the run did not complete: the history is partial" in out.getvalue()
    assert "note: interrupted" in out.getvalue()


def test_unknown_fails_the_gate_unless_allowed(tmp_path):
    t = Timeline()
    t.ok("e1", at=0.0)
    save_history(tmp_path, t.build(observed=False))
    assert check_run(tmp_path, out=io.StringIO()) == 1
    ledger = [n for n in CHECKER_NAMES if n not in ("graceful_degradation", "slo")]
    out = io.StringIO()
    assert check_run(tmp_path, CheckConfig(allow_unknown=ledger), out=out) == 0
    assert "UNKNOWN (allowed)" in out.getvalue()


def test_a_wrong_check_config_file_is_a_usage_error_naming_the_field(tmp_path):
    run = stored_run(tmp_path)
    (run / "check_config.json").write_text(json.dumps({"grace": 3}))
    with pytest.raises(
        UsageError,
        match=r"check_config\.json: check_config\.json\.grace: not a checker setting \(did "
        r'you mean "grace_s"\?\)',
    ):
        check_run(run, out=io.StringIO())


def test_the_cli_check_command_maps_verdicts_and_bad_folders_to_exit_codes(tmp_path, capsys):
    assert main(["check", str(stored_run(tmp_path / "good"))]) == 0
    assert main(["check", str(stored_run(tmp_path / "bad", lose_one=True))]) == 1
    assert main(["check", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


# -- CheckConfig -----------------------------------------------------------------------------------


def test_check_config_json_round_trip():
    config = CheckConfig(
        enabled=["ordering", "slo"],
        allow_unknown={"slo"},
        grace_s=2.5,
        latency_ms_p99_max=250.0,
        degradation_errors_allowed=["connection_refused"],
        fault_windows_min=2,
    )
    data = json.loads(json.dumps(config.to_json()))
    assert data["enabled"] == ["ordering", "slo"]
    assert CheckConfig.from_json(data) == config


@pytest.mark.parametrize(
    "section, message",
    [
        ({"grace_s": -1}, r"invariants\.grace_s: must be a number >= 0 and <= 86400, got -1"),
        ({"recovery_share": 0}, r"invariants\.recovery_share: must be a number > 0"),
        ({"enabled": ["ordring"]}, r"invariants\.enabled: 'ordring' is not a checker \(did you mean \"ordering\"\?\)"),
        ({"allow_unknown": "slo"}, r"invariants\.allow_unknown: must be a list of names"),
        (
            {"latency_ms_p99": 5},
            r'invariants\.latency_ms_p99: not a checker setting \(did you mean "latency_ms_p99_max"',
        ),
        ({"fault_windows_min": 1.5}, r"invariants\.fault_windows_min: must be a whole number"),
        ({"throughput_per_s_min": True}, r"invariants\.throughput_per_s_min: must be a number"),
    ],
)
def test_check_config_errors_name_the_field_and_the_fix(section, message):
    with pytest.raises(ValueError, match=message):
        CheckConfig.from_mapping(section, where="invariants")


# -- verdicts and exit codes ---------------------------------------------------------------------


def v(name, validity):
    return Verdict(name, validity, "")


def test_exit_code():
    assert exit_code([v("a", Validity.VALID), v("b", Validity.VALID)]) == 0
    assert exit_code([v("a", Validity.VALID), v("b", Validity.INVALID)], {"b"}) == 1  # invalid is never allowed
    assert exit_code([v("a", Validity.UNKNOWN)]) == 1
    assert exit_code([v("a", Validity.UNKNOWN)], {"a"}) == 0
    assert exit_code([]) == 1  # nothing judged is not a pass
    assert exit_code([v("a", Validity.VALID), v("b", Validity.NOT_JUDGED)]) == 0  # passed over, not failed
    assert exit_code([v("a", Validity.NOT_JUDGED), v("b", Validity.NOT_JUDGED)]) == 1  # nothing was judged
    assert exit_code([v("a", Validity.NOT_JUDGED), v("b", Validity.INVALID)]) == 1


def test_a_required_checker_that_judged_nothing_is_unknown():
    from harness.checkers import check_all
    from harness.checkers.timeline import Timeline

    t = Timeline()
    t.ok("e1", at=0.1)
    t.post("e1")
    history = t.build()
    free = {v.name: v for v in check_all(history, CheckConfig())}
    assert free["slo"].validity is Validity.NOT_JUDGED and free["backlog_bounded"].validity is Validity.NOT_JUDGED
    required = {v.name: v for v in check_all(history, CheckConfig(require=["slo"]))}
    assert required["slo"].validity is Validity.UNKNOWN and "required" in required["slo"].summary
    assert required["backlog_bounded"].validity is Validity.NOT_JUDGED  # only what is required changes
    with pytest.raises(ValueError, match="require.*'slo' is not enabled"):
        CheckConfig(enabled=["ordering"], require=["slo"])
    with pytest.raises(ValueError, match="also in allow_unknown"):
        CheckConfig(require=["slo"], allow_unknown=["slo"])


def test_a_verdict_keeps_at_most_ten_evidence_items_and_round_trips_through_json():
    evidence = tuple(Evidence(f"e{i}", "lost", ({"time_s": 0.0, "type": "ok"},)) for i in range(25))
    verdict = Verdict("no_lost_ack", Validity.INVALID, "violated", {"lost": 25}, {"recovery_s": float("inf")}, evidence)
    assert len(verdict.evidence) == 10 and verdict.counts["lost"] == 25
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["figures"]["recovery_s"] is None
    again = Verdict.from_json(data)
    assert again.evidence == verdict.evidence and again.validity is Validity.INVALID


def test_a_stored_synthetic_run_is_rejudged_and_a_planted_defect_is_named(tmp_path, capsys):
    """The whole path a CI job takes: files on disk -> `ledgerchaos check` -> exit code and evidence."""
    import numpy as np

    from harness.checkers.synthetic import plant, synthetic_history

    history = synthetic_history(5000, seed=11)
    save_history(tmp_path / "good", history)
    save_history(tmp_path / "bad", plant(history, "ordering", np.random.default_rng(11)))
    assert main(["check", str(tmp_path / "good")]) == 0
    assert main(["check", str(tmp_path / "bad")]) == 1
    text = capsys.readouterr().out
    assert "(invalid: ordering)" in text and text.count("exit 1:") == 1
    assert "acknowledged first, applied after" in text
