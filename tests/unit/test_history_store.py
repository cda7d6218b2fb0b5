"""History store: save then load gives equal frames; hand-made files that are wrong give a sentence naming file and column."""

from __future__ import annotations

import json
import os

import pandas as pd
import pandas.testing as pdt
import pytest

from harness.checkers.timeline import Timeline
from harness.errors import UsageError
from harness.history.schema import OPS_COLUMNS, History, Phase, RunMeta
from harness.history.store import load_history, ops_from_records, save_history


def sample() -> History:
    t = Timeline(run_id="r-1", seed=42)
    t.fail("e1", at=0.0, status=429, retry_after_s=0.25)
    t.ok("e1", at=0.3, key="A")
    t.info("e2", at=0.4, key="B", took=1.5)
    t.fail("bad", at=0.5, status=422, valid_body=False, currency="EURO")
    t.pending("e3", at=0.6)
    t.status("e2", at=2.0, value="posted")
    t.fault(start=1.0, stop=2.0, fault="latency(latency=500) downstream on client_api")
    t.metric(0.25, "ledger_backlog_events", 3.0)
    t.metric(0.25, "ledger_partition_lag", 1.0 / 3.0, partition=2)
    t.phase("baseline", 0.0, 1.0)
    t.post("e1")
    t.post("e2")
    t.dead_letter("e3", reason=None)
    return t.build()


def assert_histories_equal(a: History, b: History) -> None:
    pdt.assert_frame_equal(a.ops, b.ops)
    pdt.assert_frame_equal(a.metrics, b.metrics)
    assert (a.observation is None) == (b.observation is None)
    if a.observation is not None:
        for name in ("journal", "lines", "balances", "dead_letters"):
            pdt.assert_frame_equal(getattr(a.observation, name), getattr(b.observation, name))
    assert a.meta == b.meta


def test_round_trip_gives_equal_frames_and_meta(tmp_path):
    history = sample()
    save_history(tmp_path, history)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.parquet", "meta.json", "metrics.csv", "observation"]
    assert sorted(p.name for p in (tmp_path / "observation").iterdir()) == [
        "balances.parquet",
        "dead_letters.parquet",
        "journal.parquet",
        "lines.parquet",
    ]
    loaded = load_history(tmp_path)
    assert_histories_equal(history, loaded)
    assert loaded.meta.phases == (Phase("baseline", 0.0, 1.0),)
    assert loaded.metrics["value"].iloc[1] == 1.0 / 3.0  # CSV keeps every bit of a float


def test_without_observation_there_is_no_observation_folder_even_over_an_old_run(tmp_path):
    save_history(tmp_path, sample())
    from dataclasses import replace

    history = replace(sample(), observation=None)
    save_history(tmp_path, history)
    assert not (tmp_path / "observation").exists()
    assert load_history(tmp_path).observation is None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ops_from_records_sorts_by_time_numbers_ops_and_keeps_invoke_before_completion():
    ops = ops_from_records(
        [
            {
                "time_s": 0.5,
                "process": "client-0-0",
                "type": "ok",
                "f": "submit",
                "op_id": 1,
                "event_id": "a",
                "status_code": 202,
                "ignored_field": 1,
            },
            {
                "time_s": 0.2,
                "process": "client-0-0",
                "type": "invoke",
                "f": "submit",
                "op_id": 1,
                "event_id": "a",
                "amount_minor": 5,
            },
            {"time_s": 0.5, "process": "client-0-1", "type": "invoke", "f": "submit", "op_id": 2, "event_id": "b"},
            {"time_s": 0.3, "process": "nemesis", "type": "ok", "f": "fault_start", "fault_id": 0},
            {"time_s": 0.9, "process": "client-0-1", "type": "ok", "f": "submit", "op_id": 3, "event_id": "c"},
            {"time_s": 0.9, "process": "client-0-1", "type": "invoke", "f": "submit", "op_id": 3, "event_id": "c"},
        ]
    )
    assert list(ops.columns) == list(OPS_COLUMNS)
    assert ops["index"].tolist() == [0, 1, 2, 3, 4, 5]
    assert ops["time_s"].tolist() == [0.2, 0.3, 0.5, 0.5, 0.9, 0.9]
    assert ops["type"].tolist()[4:] == ["invoke", "ok"]  # recorded completion-first, put back in order
    assert ops["type"].tolist()[:4] == ["invoke", "ok", "ok", "invoke"]  # at equal times: by op_id, invoke first
    assert ops["op_id"].tolist() == [1, -1, 1, 2, 3, 3]  # the nemesis op gets a negative id
    assert str(ops["amount_minor"].dtype) == "Int64"


def test_ops_from_records_names_a_missing_required_field():
    with pytest.raises(ValueError, match=r"ops\.process"):
        ops_from_records([{"time_s": 0.0, "type": "invoke", "f": "submit", "op_id": 1}])
    with pytest.raises(ValueError, match=r"ops\.op_id: client op in record 0"):
        ops_from_records([{"time_s": 0.0, "process": "client-0-0", "type": "invoke", "f": "submit"}])


def test_ops_from_no_records_is_an_empty_conformed_table():
    ops = ops_from_records([])
    assert list(ops.columns) == list(OPS_COLUMNS) and len(ops) == 0


# -- a user's hand-made history must get a clear error ------------------------------------------


def write(tmp_path, ops=None, journal=None):
    history = sample()
    save_history(tmp_path, history)
    if ops is not None:
        ops.to_parquet(tmp_path / "history.parquet", index=False)
    if journal is not None:
        journal.to_parquet(tmp_path / "observation" / "journal.parquet", index=False)


def test_a_value_a_column_cannot_take_names_the_file_and_column(tmp_path):
    ops = sample().ops.astype({"amount_minor": "string"})  # a user wrote amounts as text...
    ops.loc[0, "amount_minor"] = "lots"  # ...and one of them is not a number
    write(tmp_path, ops=ops)
    with pytest.raises(UsageError, match=r"history\.parquet: column 'amount_minor' cannot be read as Int64"):
        load_history(tmp_path)


def test_a_fractional_amount_is_refused_not_truncated(tmp_path):
    journal = sample().observation.journal.astype({"amount_minor": "float64"})
    journal.loc[0, "amount_minor"] = 1250.5  # astype(int64) would read 1250 and judge that
    write(tmp_path, journal=journal)
    with pytest.raises(UsageError, match=r"journal\.parquet: column 'amount_minor' row 0 holds 1250\.5, not a whole"):
        load_history(tmp_path)


def test_whole_numbers_written_as_floats_are_read_exactly(tmp_path):
    expected = sample().observation.journal["amount_minor"].tolist()
    write(tmp_path, journal=sample().observation.journal.astype({"amount_minor": "float64"}))
    assert load_history(tmp_path).observation.journal["amount_minor"].tolist() == expected


def test_a_missing_required_column_is_named(tmp_path):
    write(tmp_path, ops=sample().ops.drop(columns=["op_id"]))
    with pytest.raises(UsageError, match=r"history\.parquet: column 'op_id' is missing"):
        load_history(tmp_path)


def test_an_unknown_op_type_is_named_with_the_allowed_values(tmp_path):
    ops = sample().ops
    ops["type"] = ops["type"].astype("object")
    ops.loc[2, "type"] = "done"
    write(tmp_path, ops=ops)
    with pytest.raises(UsageError, match=r"column 'type' holds 'done' in row 2; use one of fail, info, invoke, ok"):
        load_history(tmp_path)


def test_an_empty_required_value_is_named_with_its_row(tmp_path):
    journal = sample().observation.journal.copy()
    journal.loc[1, "event_id"] = pd.NA
    write(tmp_path, journal=journal)
    with pytest.raises(UsageError, match=r"journal\.parquet: column 'event_id' is empty in row 1"):
        load_history(tmp_path)


def test_missing_files_and_bad_meta_are_named(tmp_path):
    with pytest.raises(UsageError, match="no such run folder"):
        load_history(tmp_path / "nope")
    save_history(tmp_path, sample())
    os.remove(tmp_path / "observation" / "lines.parquet")
    with pytest.raises(UsageError, match=r"lines\.parquet: missing"):
        load_history(tmp_path)
    save_history(tmp_path, sample())
    (tmp_path / "meta.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(UsageError, match=r"meta\.json: field 'run_id' is missing"):
        load_history(tmp_path)
    (tmp_path / "meta.json").write_text(
        json.dumps({"run_id": "x", "seed": 1, "phases": [{"name": "b", "start_s": 5, "end_s": 1}]})
    )
    with pytest.raises(UsageError, match=r"phase 'b' has start_s=5, end_s=1"):
        load_history(tmp_path)
    (tmp_path / "history.parquet").write_text("not parquet")
    with pytest.raises(UsageError, match=r"history\.parquet: not a readable Parquet file"):
        load_history(tmp_path)


def test_a_hand_made_history_from_plain_frames_loads(tmp_path):
    """The docs' way: plain pandas frames with object columns, only the columns one has."""
    history = History(
        ops=pd.DataFrame(
            {
                "index": [0, 1],
                "time_s": [0.0, 0.1],
                "process": ["c", "c"],
                "type": ["invoke", "ok"],
                "f": ["submit", "submit"],
                "op_id": [1, 1],
                "event_id": ["e1", "e1"],
            }
        ),
        metrics=pd.DataFrame(),
        observation=None,
        meta=RunMeta(run_id="mine", seed=0),
    )
    save_history(tmp_path, history)
    loaded = load_history(tmp_path)
    assert loaded.ops["event_id"].tolist() == ["e1", "e1"]
    assert len(loaded.metrics) == 0


def test_the_docs_example_writes_a_history_that_checks_clean(tmp_path, monkeypatch):
    """docs/history-format.md's snippet, run as written: a user copying it gets a valid run."""
    import io
    import re
    from pathlib import Path

    from harness.checkers import check_run

    text = (Path(__file__).resolve().parents[2] / "docs" / "history-format.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/history-format.md", "exec"), {})
    out = io.StringIO()
    assert check_run(tmp_path / "my-run", out=out) == 0, out.getvalue()


def test_two_invokes_sharing_one_op_id_are_refused_not_paired_silently(tmp_path):
    ops = sample().ops.copy()
    invokes = ops.index[(ops["type"] == "invoke").to_numpy()]
    ops.loc[invokes[1], "op_id"] = ops.loc[invokes[0], "op_id"]  # a second request under the first one's id
    write(tmp_path, ops=ops)
    with pytest.raises(UsageError, match=r"history\.parquet: op_id \d+ is invoked 2 times .*its own op_id"):
        load_history(tmp_path)


def test_a_completion_without_an_invoke_is_refused(tmp_path):
    ops = sample().ops.copy()
    first_invoke = ops.index[(ops["type"] == "invoke").to_numpy()][0]
    write(tmp_path, ops=ops.drop(index=first_invoke).assign(index=range(len(ops) - 1)))
    with pytest.raises(UsageError, match=r"completes without an invoke"):
        load_history(tmp_path)


def test_a_completion_before_its_invoke_is_refused(tmp_path):
    ops = sample().ops.copy()
    pair = ops.loc[ops["op_id"] == ops.loc[(ops["type"] == "invoke").to_numpy(), "op_id"].iloc[0]]
    assert len(pair) == 2
    a, b = pair.index
    swapped = ops.copy()
    swapped.loc[a, "type"], swapped.loc[b, "type"] = ops.loc[b, "type"], ops.loc[a, "type"]
    write(tmp_path, ops=swapped)
    with pytest.raises(UsageError, match=r"completes \(row \d+\) before its invoke"):
        load_history(tmp_path)
