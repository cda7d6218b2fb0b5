"""The nemesis: applies a FaultSchedule at its times and records every start and stop as a history op.

Why a separate actor with small seams: it talks to Toxiproxy through `LinkControl`
and to processes through `ProcessControl`, so it is unit-tested with in-memory
fakes and a simulated clock, and driven for real by the run engine. Faults are
history (STYLE habit 4): each start and stop is an op on the same timeline as the
client ops, stamped with the time it actually took effect. `heal_all` undoes
everything and is safe to call twice (the run calls it in a `finally`).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.errors import FaultError
from harness.faults.schedule import (
    Direction,
    Fault,
    FaultSchedule,
    Link,
    LinkDown,
    ProcessAction,
    ProcessFault,
    ProcessTarget,
    ToxicFault,
    ToxicType,
)

__all__ = ["LinkControl", "ProcessControl", "Nemesis", "NemesisClock", "timeline"]


class LinkControl(Protocol):
    """What the nemesis needs of Toxiproxy (ToxiproxyAdapter has these)."""

    def add_toxic(
        self,
        proxy: str,
        toxic: ToxicType,
        attributes: Mapping[str, int],
        direction: Direction,
        toxicity: float,
        name: str | None,
    ) -> str: ...

    def remove_toxic(self, proxy: str, name: str) -> None: ...

    def disable(self, name: str) -> None: ...

    def enable(self, name: str) -> None: ...

    def reset(self) -> None: ...


class ProcessControl(Protocol):
    """What the nemesis needs of the system's processes. Victims are process names."""

    def victims(self, target: ProcessTarget, rng: random.Random) -> list[str]: ...

    def kill(self, names: Sequence[str]) -> dict[str, int]: ...  # SIGKILL; returns name -> pid

    def pause(self, names: Sequence[str]) -> dict[str, int]: ...  # SIGSTOP

    def resume(self, names: Sequence[str]) -> dict[str, int]: ...  # SIGCONT

    def stop(self, names: Sequence[str]) -> dict[str, int]: ...  # SIGTERM and wait (a clean restart's first half)

    def start(self, names: Sequence[str]) -> dict[str, int]: ...  # start again; returns the new pids


class NemesisClock(Protocol):
    """Run time in seconds, and a wait that returns early (True) when the run is stopping."""

    def now_s(self) -> float: ...

    def wait_until_s(self, t_s: float, stop: threading.Event) -> bool: ...


@dataclass(frozen=True)
class _Step:
    time_s: float
    fault_id: int
    starting: bool
    fault: Fault


def timeline(schedule: FaultSchedule) -> list[_Step]:
    """Every start and stop in time order; at equal times stops before starts (a kill loop heals, then hits)."""
    steps = []
    for fault_id, fault in enumerate(schedule.faults):
        steps.append(_Step(fault.start_s, fault_id, True, fault))
        steps.append(_Step(fault.end_s, fault_id, False, fault))
    return sorted(steps, key=lambda s: (s.time_s, s.starting, s.fault_id))


@dataclass
class Nemesis:
    """Applies one schedule. `offset_s` maps schedule time (load time) to run time."""

    schedule: FaultSchedule
    clock: NemesisClock
    record: Callable[[dict], None]
    rng: random.Random
    proxies: Mapping[Link, str] = field(default_factory=dict)  # link -> Toxiproxy proxy name
    links: LinkControl | None = None
    processes: ProcessControl | None = None
    offset_s: float = 0.0
    _active: dict[int, dict] = field(default_factory=dict)  # fault_id -> what to undo
    _down_count: dict[Link, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_supported(self) -> None:
        """Fail before the run starts when a fault needs a seam this run lacks."""
        for index, fault in enumerate(self.schedule.faults):
            if isinstance(fault, (ToxicFault, LinkDown)):
                if self.links is None:
                    raise FaultError(f"faults[{index}]: a network fault needs Toxiproxy, and this run has none")
                if fault.link not in self.proxies:
                    raise FaultError(f"faults[{index}]: link {fault.link.value} has no proxy in this run")
            elif self.processes is None:
                raise FaultError(f"faults[{index}]: a process fault needs the reference system's processes")

    def active(self) -> list[str]:
        """Descriptions of the faults in effect now (for the progress display)."""
        with self._lock:
            return [self.schedule.faults[fid].describe() for fid in sorted(self._active)]

    def run(self, stop: threading.Event) -> None:
        """Apply the schedule until its end or until stop is set. Errors are recorded, not raised:
        one failed fault must not end the run, and the history says it failed."""
        for step in timeline(self.schedule):
            if self.clock.wait_until_s(self.offset_s + step.time_s, stop):
                return
            if step.starting:
                self._start(step)
            else:
                self._stop(step)

    def heal_all(self) -> None:
        """Undo every fault still in effect (reverse order), then reset Toxiproxy. Idempotent."""
        with self._lock:
            pending = sorted(self._active.items(), reverse=True)
        for fault_id, _undo in pending:
            fault = self.schedule.faults[fault_id]
            self._stop(_Step(fault.end_s, fault_id, False, fault), healing=True)
        if self.links is not None:
            try:
                self.links.reset()
            except FaultError as exc:
                self._emit("fault_stop", "info", None, None, "heal all: reset Toxiproxy", {"error": str(exc)})

    # -- one step ----------------------------------------------------------------

    def _start(self, step: _Step) -> None:
        fault = step.fault
        try:
            undo = self._apply(fault, step.fault_id)
        except FaultError as exc:
            self._emit("fault_start", "info", step, fault, fault.describe(), {"error": str(exc)})
            return
        with self._lock:
            self._active[step.fault_id] = undo
        self._emit("fault_start", "ok", step, fault, fault.describe(), undo)

    def _stop(self, step: _Step, healing: bool = False) -> None:
        with self._lock:
            undo = self._active.pop(step.fault_id, None)
        if undo is None:
            return  # never started, or already stopped
        fault = step.fault
        details = dict(undo)
        if healing:
            details["healed_early"] = True
        try:
            details.update(self._undo(fault, undo))
            kind = "ok"
        except FaultError as exc:
            details["error"] = str(exc)
            kind = "info"
        self._emit("fault_stop", kind, step, fault, fault.describe(), details)

    def _apply(self, fault: Fault, fault_id: int) -> dict:
        if isinstance(fault, ToxicFault):
            proxy = self.proxies[fault.link]
            name = f"f{fault_id}_{fault.toxic.value}_{fault.direction.value}"
            self.links.add_toxic(proxy, fault.toxic, fault.attributes, fault.direction, fault.toxicity, name)
            return {"proxy": proxy, "toxic": name}
        if isinstance(fault, LinkDown):
            proxy = self.proxies[fault.link]
            count = self._down_count.get(fault.link, 0)
            if count == 0:
                self.links.disable(proxy)
            self._down_count[fault.link] = count + 1
            return {"proxy": proxy}
        victims = self.processes.victims(fault.target, self.rng)
        if not victims:
            raise FaultError(f"{fault.describe()}: no process to hit")
        if fault.action is ProcessAction.KILL:
            pids = self.processes.kill(victims)
        elif fault.action is ProcessAction.PAUSE:
            pids = self.processes.pause(victims)
        else:
            pids = self.processes.stop(victims)
        return {"victims": list(victims), "pids": pids}

    def _undo(self, fault: Fault, undo: dict) -> dict:
        if isinstance(fault, ToxicFault):
            self.links.remove_toxic(undo["proxy"], undo["toxic"])
            return {}
        if isinstance(fault, LinkDown):
            count = self._down_count.get(fault.link, 1) - 1
            self._down_count[fault.link] = count
            if count == 0:
                self.links.enable(undo["proxy"])
            return {}
        if fault.action is ProcessAction.PAUSE:
            return {"resumed": self.processes.resume(undo["victims"])}
        return {"restarted": self.processes.start(undo["victims"])}

    def _emit(self, f: str, kind: str, step: _Step | None, fault: Fault | None, text: str, details: dict) -> None:
        now_s = self.clock.now_s()
        op = {
            "time_s": now_s,
            "process": "nemesis",
            "type": kind,
            "f": f,
            "fault_id": step.fault_id if step else None,
            "fault": text,
            "intended_time_s": (self.offset_s + step.time_s) if step else None,
            "value": json.dumps(_details(fault, details), sort_keys=True, default=str),
        }
        self.record(op)


def _details(fault: Fault | None, details: dict) -> dict:
    out = dict(details)
    if isinstance(fault, (ToxicFault, LinkDown)):
        out["link"] = fault.link.value
    if isinstance(fault, ToxicFault):
        out.update(
            toxic=fault.toxic.value,
            direction=fault.direction.value,
            attributes=dict(fault.attributes),
            toxicity=fault.toxicity,
        )
    if isinstance(fault, ProcessFault):
        out.update(action=fault.action.value, target=fault.target.value)
    return out
