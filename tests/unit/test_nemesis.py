"""The nemesis applies a schedule at its times, records each start and stop, and heals everything."""

from __future__ import annotations

import json
import random
import threading

import pytest

from harness.errors import FaultError
from harness.faults import (
    FaultSchedule,
    Link,
    LinkDown,
    ProcessAction,
    ProcessFault,
    ProcessTarget,
    ToxicFault,
    ToxicType,
)
from harness.faults.nemesis import Nemesis, timeline


class SimClock:
    """Simulated time: waiting jumps the clock, so the test never sleeps."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def now_s(self) -> float:
        return self.t_s

    def wait_until_s(self, t_s: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.t_s = max(self.t_s, t_s)
        return False


class FakeLinks:
    def __init__(self, fail_on: str = "") -> None:
        self.toxics = {}
        self.disabled = set()
        self.calls = []
        self.fail_on = fail_on

    def add_toxic(self, proxy, toxic, attributes, direction, toxicity, name):
        if self.fail_on == "add":
            raise FaultError("toxiproxy said no")
        self.toxics[(proxy, name)] = (toxic, dict(attributes), direction, toxicity)
        self.calls.append(("add", proxy, name))
        return name

    def remove_toxic(self, proxy, name):
        del self.toxics[(proxy, name)]
        self.calls.append(("remove", proxy, name))

    def disable(self, name):
        self.disabled.add(name)
        self.calls.append(("disable", name))

    def enable(self, name):
        self.disabled.discard(name)
        self.calls.append(("enable", name))

    def reset(self):
        self.toxics.clear()
        self.disabled.clear()
        self.calls.append(("reset",))


class FakeProcesses:
    def __init__(self) -> None:
        self.state = {"api": "up", "consumer-0": "up", "consumer-1": "up"}
        self.next_pid = 100

    def victims(self, target, rng):
        consumers = sorted(n for n in self.state if n.startswith("consumer"))
        if target is ProcessTarget.API:
            return ["api"]
        if target is ProcessTarget.ALL_CONSUMERS:
            return consumers
        return [rng.choice(consumers)]

    def _set(self, names, state):
        for name in names:
            self.state[name] = state
        self.next_pid += 1
        return {name: self.next_pid for name in names}

    def kill(self, names):
        return self._set(names, "dead")

    def pause(self, names):
        return self._set(names, "paused")

    def resume(self, names):
        return self._set(names, "up")

    def stop(self, names):
        return self._set(names, "stopped")

    def start(self, names):
        return self._set(names, "up")


PROXIES = {link: link.value for link in Link}


def make(schedule, links=None, processes=None, offset_s=0.0):
    ops = []
    nemesis = Nemesis(
        schedule=schedule,
        clock=SimClock(),
        record=ops.append,
        rng=random.Random(7),
        proxies=PROXIES,
        links=links,
        processes=processes,
        offset_s=offset_s,
    )
    return nemesis, ops


def test_steps_are_recorded_at_their_times_with_offset():
    schedule = FaultSchedule(
        (
            ToxicFault(Link.API_REDIS, ToxicType.LATENCY, 5.0, 2.0, attributes={"latency": 200}),
            ProcessFault(ProcessAction.KILL, ProcessTarget.ONE_CONSUMER, 6.0, 1.0),
        )
    )
    links, processes = FakeLinks(), FakeProcesses()
    nemesis, ops = make(schedule, links, processes, offset_s=10.0)
    nemesis.run(threading.Event())
    assert [(op["f"], op["fault_id"], op["time_s"]) for op in ops] == [
        ("fault_start", 0, 15.0),
        ("fault_start", 1, 16.0),
        ("fault_stop", 0, 17.0),
        ("fault_stop", 1, 17.0),
    ]
    assert all(op["type"] == "ok" and op["process"] == "nemesis" for op in ops)
    assert links.toxics == {}
    assert all(state == "up" for state in processes.state.values())
    kill = json.loads(ops[1]["value"])
    assert kill["action"] == "kill" and len(kill["victims"]) == 1


def test_stop_before_start_at_equal_times():
    schedule = FaultSchedule(
        (
            ProcessFault(ProcessAction.KILL, ProcessTarget.ONE_CONSUMER, 1.0, 1.0),
            ProcessFault(ProcessAction.KILL, ProcessTarget.ONE_CONSUMER, 2.0, 1.0),
        )
    )
    steps = timeline(schedule)
    assert [(s.time_s, s.starting) for s in steps] == [(1.0, True), (2.0, False), (2.0, True), (3.0, False)]


def test_overlapping_link_downs_enable_only_after_the_last():
    schedule = FaultSchedule(
        (
            LinkDown(Link.CONSUMER_REDIS, 1.0, 4.0),
            LinkDown(Link.CONSUMER_REDIS, 2.0, 1.0),
        )
    )
    links = FakeLinks()
    nemesis, _ops = make(schedule, links)
    nemesis.run(threading.Event())
    assert links.calls == [("disable", "consumer_redis"), ("enable", "consumer_redis")]


def test_heal_all_undoes_what_is_active_when_stopped_early():
    schedule = FaultSchedule(
        (
            ToxicFault(Link.CONSUMER_POSTGRES, ToxicType.RESET_PEER, 1.0, 100.0),
            ProcessFault(ProcessAction.PAUSE, ProcessTarget.ALL_CONSUMERS, 2.0, 100.0),
        )
    )
    links, processes = FakeLinks(), FakeProcesses()
    nemesis, ops = make(schedule, links, processes)
    stop = threading.Event()

    class StopAfterTwo(SimClock):
        def wait_until_s(self, t_s, stop_event):
            if len(ops) >= 2:
                return True
            return super().wait_until_s(t_s, stop_event)

    nemesis.clock = StopAfterTwo()
    nemesis.run(stop)
    assert processes.state["consumer-0"] == "paused"
    assert nemesis.active()
    nemesis.heal_all()
    nemesis.heal_all()  # idempotent
    assert processes.state["consumer-0"] == "up" and processes.state["consumer-1"] == "up"
    assert links.toxics == {} and links.calls[-1] == ("reset",)
    stops = [op for op in ops if op["f"] == "fault_stop" and op["fault_id"] is not None]
    assert len(stops) == 2 and all(json.loads(op["value"])["healed_early"] for op in stops)
    assert nemesis.active() == []


def test_a_failed_fault_is_recorded_as_info_and_the_run_goes_on():
    schedule = FaultSchedule(
        (
            ToxicFault(Link.API_REDIS, ToxicType.LATENCY, 1.0, 1.0, attributes={"latency": 5}),
            ProcessFault(ProcessAction.KILL, ProcessTarget.API, 3.0, 1.0),
        )
    )
    nemesis, ops = make(schedule, FakeLinks(fail_on="add"), FakeProcesses())
    nemesis.run(threading.Event())
    assert ops[0]["type"] == "info" and "toxiproxy said no" in ops[0]["value"]
    assert [op["f"] for op in ops[1:]] == ["fault_start", "fault_stop"]  # the failed one has no stop


def test_missing_seams_are_refused_before_the_run():
    schedule = FaultSchedule((LinkDown(Link.CLIENT_API, 1.0, 1.0),))
    nemesis, _ = make(schedule, links=None)
    with pytest.raises(FaultError, match="needs Toxiproxy"):
        nemesis.check_supported()
    schedule = FaultSchedule((ProcessFault(ProcessAction.KILL, ProcessTarget.API, 1.0, 1.0),))
    nemesis, _ = make(schedule, links=FakeLinks())
    with pytest.raises(FaultError, match="process fault"):
        nemesis.check_supported()


def test_victim_choice_is_seeded():
    schedule = FaultSchedule(
        tuple(ProcessFault(ProcessAction.KILL, ProcessTarget.ONE_CONSUMER, float(i), 0.5) for i in range(1, 9))
    )
    picks = []
    for _ in range(2):
        nemesis, ops = make(schedule, FakeLinks(), FakeProcesses())
        nemesis.run(threading.Event())
        picks.append([json.loads(op["value"])["victims"][0] for op in ops if op["f"] == "fault_start"])
    assert picks[0] == picks[1] and len(set(picks[0])) == 2
