"""Tests for harness.load.driver without Locust: ops tables, progress summing, refusal of a used ops_dir."""

import json
import time
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.history.schema import OPS_COLUMNS
from harness.load.driver import LoadRun, LoadRunConfig, ops_frame, read_ops
from harness.load.profile import Steady


def test_ops_frame_orders_by_time_and_keeps_invoke_before_completion():
    records = [
        {
            "time_s": 2.0,
            "type": "ok",
            "f": "submit",
            "op_id": 1,
            "process": "client-0-0",
            "status_code": 202,
            "latency_ms": 1.0,
        },
        {
            "time_s": 1.0,
            "type": "invoke",
            "f": "submit",
            "op_id": 1,
            "process": "client-0-0",
            "event_id": "e",
            "amount_minor": 5,
            "duplicate": False,
            "valid_body": True,
            "attempt": 1,
            "intended_time_s": 0.9,
        },
        {"time_s": 2.0, "type": "invoke", "f": "status", "op_id": 2, "process": "client-0-0", "event_id": "e"},
        {"time_s": 2.0, "type": "info", "f": "status", "op_id": 2, "process": "client-0-0", "error": "timeout"},
    ]
    frame = ops_frame(records)
    assert list(frame.columns) == list(OPS_COLUMNS)
    assert list(frame["index"]) == [0, 1, 2, 3]
    assert list(zip(frame["op_id"], frame["type"])) == [(1, "invoke"), (1, "ok"), (2, "invoke"), (2, "info")]
    assert str(frame["amount_minor"].dtype) == "Int64" and frame["latency_ms"].isna().sum() == 3


def test_empty_ops_make_an_empty_table():
    frame = ops_frame([])
    assert len(frame) == 0 and list(frame.columns) == list(OPS_COLUMNS)


def test_read_ops_merges_files_and_tolerates_missing_ones(tmp_path):
    (tmp_path / "ops-0.jsonl").write_text(
        json.dumps({"time_s": 1.0, "type": "invoke", "f": "submit", "process": "client-0-0", "op_id": 0}) + "\n"
    )
    (tmp_path / "ops-1.jsonl").write_text(
        json.dumps({"time_s": 0.5, "type": "invoke", "f": "submit", "process": "client-1-0", "op_id": 10**12}) + "\n{"
    )
    frame, unreadable = read_ops([tmp_path / "ops-0.jsonl", tmp_path / "ops-1.jsonl", tmp_path / "ops-2.jsonl"])
    assert list(frame["op_id"]) == [10**12, 0] and unreadable == 1


def config(tmp_path: Path, **overrides) -> LoadRunConfig:
    base = dict(
        api_url="http://127.0.0.1:9",
        profile=Steady(base_rate_per_s=1, duration_s=1),
        t0_monotonic=time.monotonic(),
        ops_dir=tmp_path,
        workers=2,
    )
    base.update(overrides)
    return LoadRunConfig(**base)


def test_a_used_ops_dir_is_refused(tmp_path):
    (tmp_path / "ops-0.jsonl").write_text("")
    with pytest.raises(UsageError, match="already holds ops files"):
        LoadRun(config(tmp_path)).start()


def test_wait_before_start_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="call start"):
        LoadRun(config(tmp_path)).wait(0)


def test_progress_sums_the_workers_reports(tmp_path):
    (tmp_path / "progress-0.json").write_text(
        json.dumps(
            {
                "state": "running",
                "time_s": 3.0,
                "requests": 10,
                "requests_per_s": 5.0,
                "ops_per_s": 10.0,
                "ops_written": 20,
                "in_flight": 1,
                "outcomes": {"ok": 8, "fail": 2},
                "errors_by_kind": {"http_429": 2},
                "send_lag_ms_max_recent": 4.0,
            }
        )
    )
    (tmp_path / "progress-1.json").write_text(
        json.dumps(
            {
                "state": "finished",
                "time_s": 3.5,
                "requests": 4,
                "requests_per_s": 1.0,
                "ops_written": 8,
                "in_flight": 0,
                "outcomes": {"ok": 3, "info": 1},
                "errors_by_kind": {"timeout": 1},
                "send_lag_ms_max_recent": 9.0,
            }
        )
    )
    progress = LoadRun(config(tmp_path)).progress()
    assert (progress.requests, progress.requests_per_s, progress.ops_written, progress.in_flight) == (14, 6.0, 28, 1)
    assert progress.outcomes == {"ok": 11, "fail": 2, "info": 1}
    assert progress.errors_by_kind == {"http_429": 2, "timeout": 1}
    assert progress.states == ("running", "finished") and progress.time_s == 3.5
    assert progress.send_lag_ms_max_recent == 9.0 and not progress.running and progress.ops_per_s == 10.0


def test_the_driver_never_imports_locust_or_gevent():
    # In a fresh interpreter: Locust's monkey-patching must stay inside the child process.
    import subprocess
    import sys

    code = (
        "import sys, harness.load.driver, harness.load.stub_api; print(sorted({'locust', 'gevent'} & set(sys.modules)))"
    )
    from harness.load.child_env import child_env

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
