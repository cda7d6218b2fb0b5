"""`ledgerchaos compare`: regressions past the threshold gate (exit 1), smaller changes and improvements do not."""

from __future__ import annotations

import copy
import io
import json

import pytest

from harness.errors import UsageError
from harness.report.compare import compare_command, compare_summaries

BASE = {
    "schema_version": 1,
    "run_id": "a",
    "scenario": "steady",
    "seed": 1,
    "complete": True,
    "outcome": "pass",
    "figures": {
        "latency_ms_p50": 10.0,
        "latency_ms_p95": 40.0,
        "latency_ms_p99": 100.0,
        "throughput_per_s_offered": 200.0,
        "throughput_per_s_accepted": 200.0,
        "throughput_per_s_posted": 198.0,
        "ops_indeterminate": 0,
        "backlog_events_peak": 50.0,
        "drain_s": 1.0,
    },
    "verdicts": [
        {"name": "no_double_posting", "validity": "valid"},
        {"name": "slo", "validity": "valid"},
        {"name": "ordering", "validity": "invalid"},
    ],
}


def _changed(path, value):
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _write(folder, summary):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.mark.parametrize(
    "path, value, regression",
    [
        (("figures", "latency_ms_p99"), 109.0, False),  # +9 %: below the threshold
        (("figures", "latency_ms_p99"), 111.0, True),  # +11 %
        (("figures", "latency_ms_p50"), 5.0, False),  # better
        (("figures", "throughput_per_s_accepted"), 181.0, False),  # -9.5 %
        (("figures", "throughput_per_s_accepted"), 179.0, True),  # -10.5 %
        (("figures", "throughput_per_s_offered"), 100.0, False),  # the offered load is input, not a result
        (("figures", "backlog_events_peak"), 5000.0, False),  # shown, not gated
        (("verdicts", 1, "validity"), "unknown", True),  # valid -> unknown
        (("verdicts", 0, "validity"), "invalid", True),  # valid -> invalid
        (("verdicts", 2, "validity"), "valid", False),  # invalid -> valid: better
    ],
)
def test_compare_gates_on_regressions_past_the_threshold_only(tmp_path, path, value, regression):
    a = _write(tmp_path / "a", BASE)
    b = _write(tmp_path / "b", _changed(path, value))
    out = io.StringIO()
    assert compare_command(a, b, threshold_pct=10.0, out=out) == (1 if regression else 0), out.getvalue()
    assert ("REGRESSION" in out.getvalue()) == regression


def test_a_verdict_that_disappears_is_a_regression_and_direction_is_reported():
    b = copy.deepcopy(BASE)
    b["verdicts"] = b["verdicts"][1:]
    changes = {c.name: c for c in compare_summaries(BASE, b, 10.0)}
    assert changes["no_double_posting"].after == "missing" and changes["no_double_posting"].regression
    slower = {c.name: c for c in compare_summaries(BASE, _changed(("figures", "latency_ms_p99"), 150.0), 10.0)}
    assert slower["latency_ms_p99"].change_pct == pytest.approx(50.0) and slower["latency_ms_p99"].verdict == "worse"


def test_a_folder_without_a_summary_is_a_usage_error_naming_the_file(tmp_path):
    a = _write(tmp_path / "a", BASE)
    (tmp_path / "b").mkdir()
    with pytest.raises(UsageError, match=r"b/summary.json: missing; .*ledgerchaos report"):
        compare_command(a, tmp_path / "b", out=io.StringIO())
    _write(tmp_path / "c", {**BASE, "schema_version": 99})
    with pytest.raises(UsageError, match="schema_version is 99"):
        compare_command(a, tmp_path / "c", out=io.StringIO())
    with pytest.raises(UsageError, match="threshold_pct"):
        compare_command(a, a, threshold_pct=-1, out=io.StringIO())
