"""Tests for harness.load.recorder: batches land as readable lines, the budget holds, a cut line is skipped."""

import json

from harness.load.recorder import OpsRecorder, read_ops_file, write_json_atomic


def test_ops_reach_the_file_on_flush_only(tmp_path):
    path = tmp_path / "ops-0.jsonl"
    recorder = OpsRecorder(path, ops_max=10)
    recorder.record({"type": "invoke", "op_id": 1, "time_s": 0.5})
    assert path.read_bytes() == b""
    assert recorder.flush() == 1
    recorder.record({"type": "ok", "op_id": 1, "time_s": 0.75})
    recorder.close()
    ops, unreadable = read_ops_file(path)
    assert [op["type"] for op in ops] == ["invoke", "ok"] and unreadable == 0


def test_budget_refuses_what_would_pass_it(tmp_path):
    recorder = OpsRecorder(tmp_path / "ops.jsonl", ops_max=5)
    assert recorder.reserve(2) and recorder.reserve(2)
    assert not recorder.reserve(2)
    assert recorder.reserve(1)
    recorder.close()


def test_a_cut_last_line_is_counted_not_guessed(tmp_path):
    path = tmp_path / "ops.jsonl"
    path.write_text(json.dumps({"op_id": 1}) + "\n" + json.dumps({"op_id": 2}) + "\n" + '{"op_id": 3, "ti')
    ops, unreadable = read_ops_file(path)
    assert [op["op_id"] for op in ops] == [1, 2] and unreadable == 1
    ops, _ = read_ops_file(path, lines_max=1)
    assert len(ops) == 1


def test_write_json_atomic_replaces_the_file(tmp_path):
    path = tmp_path / "progress.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert not list(tmp_path.glob("*.tmp"))
