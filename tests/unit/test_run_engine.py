"""The record phase with in-memory parts: the order of its steps, heal on error, a partial record on interrupt.

The engine's parts (stack, link control, system under test, sampler, load, observation) are
passed in as small protocols (harness/run/parts.py); these fakes write every call to one
event list, so the tests read the run as a sequence. The real parts run in tests/integration.
"""

from __future__ import annotations

import contextlib
import time

import pytest

import harness.run.engine as engine
from harness.errors import RunError
from harness.faults.schedule import Link
from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    Gap,
    Observation,
    empty_frame,
)
from harness.history.store import load_history
from harness.load.driver import LoadResult, ops_frame
from harness.run.links import LinkPlan
from harness.run.parts import RunParts
from harness.scenario import scenario_from_mapping
from harness.stack.local import Services

SCENARIO = {
    "name": "fake",
    "seed": 4,
    "load": {"profile": {"kind": "steady", "base_rate_per_s": 10, "duration_s": 6}},
    "phases": {"warmup_s": 0, "drain_s_max": 5, "sample_interval_s": 0.05},
    "invariants": {"grace_s": 1},
}
TOXIC = {"kind": "toxic", "link": "api_redis", "toxic": "latency", "attributes": {"latency": 50}, "start_s": 0,
         "duration_s": 5}  # fmt: skip
BOUND_S = 10  # every wait in a fake ends within this, so a broken engine fails instead of hanging


class Events(list):
    def saw(self, name: str) -> bool:
        return name in self

    def before(self, first: str, then: str) -> bool:
        return first in self and then in self and self.index(first) < self.index(then)


class FakeControl:
    def __init__(self, events: Events) -> None:
        self.events = events
        self.active: set[str] = set()

    def add_toxic(self, proxy, toxic, attributes, direction, toxicity, name):
        self.active.add(name)
        self.events.append("toxic added")
        return name

    def remove_toxic(self, proxy, name):
        self.active.discard(name)
        self.events.append("toxic removed")

    def disable(self, name):
        self.events.append(f"disable {name}")

    def enable(self, name):
        self.events.append(f"enable {name}")

    def reset(self):
        self.active.clear()
        self.events.append("proxies reset")


class FakeSystem:
    def __init__(self, events: Events) -> None:
        self.events = events

    def start(self):
        self.events.append("system started")

    def stop_all(self):
        self.events.append("system stopped")
        return {}

    def consumer_names(self):
        return ["c1"]

    def start_named(self, names):
        self.events.append("consumers restarted for the drain")
        return {}


class FakeSampler:
    latest: dict = {}

    def __init__(self, events: Events) -> None:
        self.events = events

    def start(self):
        self.events.append("sampler started")

    def stop(self):
        self.events.append("sampler stopped")

    def backlog(self):
        return {0: 0}


class FakeLoad:
    """Finishes on its third poll, or raises `fail` once the control holds a toxic (a fault in effect)."""

    def __init__(self, events: Events, control: FakeControl, fail: BaseException | None) -> None:
        self.events, self.control, self.fail, self.polls = events, control, fail, 0

    def start(self):
        self.events.append("load started")

    def _result(self, complete: bool) -> LoadResult:
        ops = ops_frame([])
        return LoadResult(ops=ops, complete=complete, stop_reasons={0: "completed" if complete else "signal"})

    def wait(self, timeout_s=None):
        self.polls += 1
        if self.fail is not None:
            deadline = time.monotonic() + BOUND_S
            while not self.control.active and time.monotonic() < deadline:
                time.sleep(0.01)
            assert self.control.active, "the toxic was never applied"
            self.events.append("load failed")
            raise self.fail
        if self.polls < 3:
            return None
        self.events.append("load finished")
        return self._result(True)

    def stop(self):
        self.events.append("load stopped")
        return self._result(False)

    def progress(self):
        raise AssertionError("no progress display in these runs")


def _observation() -> Observation:
    return Observation(
        journal=empty_frame(JOURNAL_COLUMNS),
        lines=empty_frame(LINES_COLUMNS),
        balances=empty_frame(BALANCES_COLUMNS),
        dead_letters=empty_frame(DEAD_LETTERS_COLUMNS),
    )


def _parts(events: Events, fail: BaseException | None = None, observe_fails: bool = False) -> RunParts:
    control = FakeControl(events)

    @contextlib.contextmanager
    def stack(scenario, run_dir):
        events.append("stack up")
        try:
            yield Services("redis://127.0.0.1:1/0", "postgresql://x@127.0.0.1:2/x", "http://127.0.0.1:3")
        finally:
            events.append("stack down")

    def links(control_, services, api_port):
        return LinkPlan({link: link.value for link in Link}, "http://127.0.0.1:4", "redis://a", "redis://b", "pg://c")

    def observe(services, t0_wall_s):
        events.append("ledger observed")
        if observe_fails:
            raise RunError("final observation: cannot read the ledger")
        return _observation()

    return RunParts(
        stack=stack,
        fault_proxy=lambda services: control,
        links=links,
        versions=lambda services, control_: {"redis": "7.9.9"},
        reset=lambda services: events.append("reset"),
        api_port=lambda: 5,
        system=lambda config, log_dir: FakeSystem(events),
        sampler=lambda *args: FakeSampler(events),
        load=lambda config: FakeLoad(events, control, fail),
        observe=observe,
    )


@pytest.fixture(autouse=True)
def _no_start_up_offset(monkeypatch):
    monkeypatch.setattr(engine, "LOAD_START_OFFSET_S", 0.0)  # no Locust child to wait for


def _record(tmp_path, parts, faults=()):
    scenario = scenario_from_mapping({**SCENARIO, "faults": list(faults)})
    return engine.record_run(scenario, engine.RunOptions(reports_dir=tmp_path, run_id="r", parts=parts))


def test_a_run_goes_through_its_steps_in_order_and_undoes_them_in_reverse(tmp_path):
    events = Events()
    record = _record(tmp_path, _parts(events))
    order = ["stack up", "system started", "sampler started", "load started", "load finished",
             "consumers restarted for the drain", "ledger observed", "stack down"]  # fmt: skip
    assert [e for e in events if e in order] == order
    assert events.before("load finished", "proxies reset")  # the heal after the load
    assert events.before("ledger observed", "stack down") and events[-1] == "stack down"
    assert record.complete and record.gaps == () and record.drain is not None and record.drain.completed
    assert record.versions == {"redis": "7.9.9"}
    stored = load_history(record.run_dir)  # saved before anything is judged
    assert stored.meta.complete and stored.meta.extra["versions"] == {"redis": "7.9.9"}
    assert (record.run_dir / "scenario.resolved.yaml").is_file() and (record.run_dir / "check_config.json").is_file()


def test_an_error_mid_fault_heals_stops_everything_and_keeps_a_partial_record(tmp_path):
    events = Events()
    record = _record(tmp_path, _parts(events, fail=RunError("the load child died")), faults=[TOXIC])
    assert events.before("toxic added", "load failed")
    assert events.before("load failed", "toxic removed")  # healed, not left in place
    for undone in ("proxies reset", "system stopped", "sampler stopped", "stack down"):
        assert events.saw(undone), undone
    assert not record.complete and Gap.RUN_FAILED in record.gaps
    assert any("the load child died" in note for note in record.notes)
    assert not load_history(record.run_dir).meta.complete  # the partial history is on disk


def test_an_interrupt_heals_saves_the_partial_record_and_propagates(tmp_path):
    events = Events()
    with pytest.raises(KeyboardInterrupt):
        _record(tmp_path, _parts(events, fail=KeyboardInterrupt()), faults=[TOXIC])
    assert events.before("load failed", "toxic removed") and events[-1] == "stack down"
    assert events.saw("system stopped") and events.saw("load stopped")
    meta = load_history(tmp_path / "r").meta
    assert not meta.complete and Gap.INTERRUPTED in meta.gaps and Gap.NOT_OBSERVED in meta.gaps


def test_a_ledger_that_cannot_be_read_is_a_gap_not_a_pass(tmp_path):
    events = Events()
    record = _record(tmp_path, _parts(events, observe_fails=True))
    assert record.gaps == (Gap.RUN_FAILED, Gap.NOT_OBSERVED) and not record.complete
    assert events[-1] == "stack down"
