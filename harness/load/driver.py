"""Runs a load in Locust child processes and brings back their ops as one history table.

The harness imports this module, never Locust: `LoadRun` starts
`python -m harness.load.locust_process` (one local runner, or Locust's own
master and N workers on 127.0.0.1) in one process group of its own, watches
it against a deadline, stops the whole group on timeout, error or Ctrl-C, and
reads the JSON-lines ops files the children wrote into a DataFrame in the
`harness.history.schema.OPS_COLUMNS` format.

Why files and not a pipe: a child that crashes or is killed still leaves
every op it flushed (at most 250 ms old), and a stored run can be re-read.
Nothing is judged here either: a partial run comes back marked incomplete,
with the reason, for the checkers to treat as such.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import RunError, UsageError
from harness.history.schema import OPS_COLUMNS, empty_frame
from harness.load.child_env import child_env
from harness.load.config import LoadModel, LoadRunConfig, RetryPolicy
from harness.load.recorder import read_ops_file

__all__ = [
    "LoadRunConfig",
    "LoadModel",
    "RetryPolicy",
    "LoadRun",
    "LoadResult",
    "LoadProgress",
    "run_load",
    "read_ops",
    "ops_frame",
]

KILL_GRACE_S = 5.0  # after SIGTERM, how long the children get to flush before SIGKILL
DEADLINE_SLACK_S = 10.0  # the driver's backstop beyond the children's own deadline
MASTER_START_S_MAX = 30.0
_POLL_S = 0.05


@dataclass(frozen=True)
class LoadProgress:
    """The load as the children last reported it (files rewritten every ~500 ms), summed over workers."""

    time_s: float  # since t0, from the newest report
    requests: int
    requests_per_s: float
    ops_written: int
    in_flight: int
    outcomes: Mapping[str, int]
    errors_by_kind: Mapping[str, int]
    send_lag_ms_max_recent: float
    states: tuple  # one per worker: starting / running / finished / unknown
    running: bool  # a child process is still alive
    ops_per_s: float = 0.0  # ops recorded per second over the last report window


@dataclass(frozen=True)
class LoadResult:
    """What the load did. `complete` is False when any worker stopped for another reason than
    running out of arrivals (signal, deadline, op budget, crash); `notes` say why."""

    ops: pd.DataFrame
    complete: bool
    stop_reasons: Mapping[int, str | None]  # worker index -> completed / signal / duration_s_max / ops_max / None
    notes: tuple = ()
    unreadable_lines: int = 0
    duration_s: float = 0.0
    progress: tuple = ()  # the final progress report of each worker (dicts)
    ops_files: tuple = ()
    exit_codes: Mapping[str, int | None] = field(default_factory=dict)


class LoadRun:
    """A load running in the background: start(), then progress() and wait(timeout_s) as often as
    wanted, stop() to end it early. Always ends its children: use it as a context manager, or
    call stop() in a finally."""

    def __init__(self, config: LoadRunConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._processes: dict = {}  # role name -> Popen
        self._logs: list = []
        self._pgid: int | None = None
        self._started_at: float | None = None
        self._result: LoadResult | None = None
        self._notes: list = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LoadRun:
        if self._started_at is not None:
            raise UsageError("LoadRun.start(): this run was already started; make a new LoadRun")
        ops_dir = self.config.ops_dir
        ops_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(ops_dir.glob("ops-*.jsonl"))
        if stale:
            raise UsageError(f"ops_dir: {ops_dir} already holds ops files ({stale[0].name}...); use a fresh directory")
        config_path = ops_dir / "load-config.json"
        config_path.write_text(json.dumps(self.config.to_json(), indent=2))
        self._started_at = self._clock()
        try:
            if self.config.workers == 1:
                self._spawn("local", ["--role", "local"])
            else:
                port_file = ops_dir / "master.port"
                self._spawn("master", ["--role", "master", "--port-file", str(port_file)])
                port = self._wait_for_master_port(port_file)
                for index in range(self.config.workers):
                    self._spawn(
                        f"worker-{index}",
                        ["--role", "worker", "--worker-index", str(index), "--master-port", str(port)],
                    )
        except BaseException:
            self._kill_group()
            raise
        return self

    def _spawn(self, role: str, args: list) -> None:
        log = open(self.config.ops_dir / f"locust-{role}.log", "wb")
        self._logs.append(log)
        command = [
            sys.executable,
            "-m",
            "harness.load.locust_process",
            "--config",
            str(self.config.ops_dir / "load-config.json"),
            *args,
        ]
        # The first child leads a new process group; the others join it, so one killpg ends them all.
        group = {"process_group": 0 if self._pgid is None else self._pgid}
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env(), **group
        )
        if self._pgid is None:
            self._pgid = process.pid
        self._processes[role] = process

    def _wait_for_master_port(self, port_file: Path) -> int:
        deadline = self._clock() + MASTER_START_S_MAX
        master = self._processes["master"]
        while self._clock() < deadline:
            if port_file.exists():
                return int(json.loads(port_file.read_text())["port"])
            if master.poll() is not None:
                raise RunError(
                    f"the Locust master exited with code {master.returncode} before listening; "
                    f"see {self.config.ops_dir / 'locust-master.log'}"
                )
            time.sleep(_POLL_S)
        raise RunError(
            f"the Locust master did not listen within {MASTER_START_S_MAX:.0f} s; "
            f"see {self.config.ops_dir / 'locust-master.log'}"
        )

    @property
    def deadline_monotonic(self) -> float:
        """When the driver stops waiting and kills the children (they should have stopped themselves)."""
        return self.config.t0_monotonic + self.config.run_s_max + DEADLINE_SLACK_S

    def _failed_child(self) -> str | None:
        for role, process in self._processes.items():
            code = process.poll()
            if code is not None and code != 0:
                return role
        return None

    def running(self) -> bool:
        return any(p.poll() is None for p in self._processes.values())

    def wait(self, timeout_s: float | None = None) -> LoadResult | None:
        """Wait up to timeout_s (None: until the run's deadline) for the children to end.

        Returns the result once they have ended, None if they are still running after timeout_s.
        At the deadline the children are killed and a partial result is returned.
        """
        if self._started_at is None:
            raise UsageError("LoadRun.wait(): call start() first")
        if self._result is not None:
            return self._result
        limit = self.deadline_monotonic
        if timeout_s is not None:
            limit = min(limit, self._clock() + timeout_s)
        while self.running() and self._clock() < limit:
            failed = self._failed_child()
            if failed is not None:
                # One dead worker leaves its share of the schedule unsent: stop the rest now, not at the deadline.
                self._notes.append(f"{failed} failed while the others ran; the load was stopped")
                self._terminate_group()
                break
            time.sleep(_POLL_S)
        if self.running():
            if self._clock() < self.deadline_monotonic:
                return None
            bound_s = self.config.run_s_max + DEADLINE_SLACK_S
            self._notes.append(
                f"the load did not end by its deadline ({bound_s:.0f} s after t0); its processes were stopped"
            )
            self._terminate_group()
        return self._collect()

    def stop(self) -> LoadResult:
        """End the run now: SIGTERM to the group (the children flush and exit), SIGKILL after a grace."""
        if self._started_at is None:
            raise UsageError("LoadRun.stop(): call start() first")
        if self._result is None and self.running():
            self._notes.append("the load was stopped before it ended")
            self._terminate_group()
        return self._collect()

    def kill(self) -> LoadResult:
        """End the run at once with SIGKILL (no flush): for a hung child, and to prove that a crash
        leaves a readable ops file. Ops flushed before the kill (at most 250 ms old) are kept."""
        if self._started_at is None:
            raise UsageError("LoadRun.kill(): call start() first")
        if self._result is None and self.running():
            self._notes.append("the load was killed (SIGKILL) before it ended")
            self._kill_group()
        return self._collect()

    def __enter__(self) -> LoadRun:
        return self.start() if self._started_at is None else self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.running():
            if exc_type is not None:
                self._notes.append(f"the load was stopped because of {exc_type.__name__}")
            else:
                self._notes.append("the load was stopped when its with-block ended")
            self._terminate_group()
        if self._result is None and self._started_at is not None:
            self._collect()

    def _terminate_group(self) -> None:
        self._signal_group(signal.SIGTERM)
        deadline = self._clock() + KILL_GRACE_S
        while self.running() and self._clock() < deadline:
            time.sleep(_POLL_S)
        if self.running():
            self._notes.append(f"a child did not stop within {KILL_GRACE_S:.0f} s of SIGTERM and was killed")
            self._kill_group()

    def _kill_group(self) -> None:
        self._signal_group(signal.SIGKILL)
        for process in self._processes.values():
            try:
                process.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:  # a zombie we cannot reap; noted, never waited on forever
                self._notes.append(f"process {process.pid} did not exit after SIGKILL")

    def _signal_group(self, sig: int) -> None:
        if self._pgid is None:
            return
        try:
            os.killpg(self._pgid, sig)
        except ProcessLookupError:
            pass

    # -- reading -----------------------------------------------------------------------------------
    def worker_indexes(self) -> range:
        return range(self.config.workers)

    def progress(self) -> LoadProgress:
        reports = [_read_json(self.config.ops_dir / f"progress-{i}.json") for i in self.worker_indexes()]
        known = [r for r in reports if r]
        outcomes: dict = {}
        errors: dict = {}
        for report in known:
            for name, count in report.get("outcomes", {}).items():
                outcomes[name] = outcomes.get(name, 0) + count
            for name, count in report.get("errors_by_kind", {}).items():
                errors[name] = errors.get(name, 0) + count
        return LoadProgress(
            time_s=max((r.get("time_s", 0.0) for r in known), default=0.0),
            requests=sum(r.get("requests", 0) for r in known),
            requests_per_s=sum(r.get("requests_per_s", 0.0) for r in known),
            ops_written=sum(r.get("ops_written", 0) for r in known),
            in_flight=sum(r.get("in_flight", 0) for r in known),
            outcomes=outcomes,
            errors_by_kind=errors,
            send_lag_ms_max_recent=max((r.get("send_lag_ms_max_recent", 0.0) for r in known), default=0.0),
            states=tuple(r.get("state", "unknown") if r else "unknown" for r in reports),
            running=self.running(),
            ops_per_s=sum(r.get("ops_per_s", 0.0) for r in known),
        )

    def _collect(self) -> LoadResult:
        if self._result is not None:
            return self._result
        for log in self._logs:
            log.close()
        notes = list(self._notes)
        exit_codes = {role: p.poll() for role, p in self._processes.items()}
        for role, code in exit_codes.items():
            if code not in (0, None):
                tail = _tail(self.config.ops_dir / f"locust-{role}.log")
                notes.append(f"{role} exited with code {code}" + (f": {tail}" if tail else ""))
        reports = [_read_json(self.config.ops_dir / f"progress-{i}.json") for i in self.worker_indexes()]
        stop_reasons = {i: (r or {}).get("stop_reason") for i, r in enumerate(reports)}
        for index, reason in stop_reasons.items():
            if reason != "completed":
                notes.append(f"worker {index} stopped: {reason or 'without a final report'}")
        paths = tuple(self.config.ops_dir / f"ops-{i}.jsonl" for i in self.worker_indexes())
        ops, unreadable = read_ops(paths, lines_max=self.config.ops_max)
        if unreadable:
            notes.append(f"{unreadable} unreadable line(s) in the ops files (a cut last line after a kill)")
        complete = (
            all(reason == "completed" for reason in stop_reasons.values())
            and all(code == 0 for code in exit_codes.values())
            and not self._notes
            and not unreadable
        )
        self._result = LoadResult(
            ops=ops,
            complete=complete,
            stop_reasons=stop_reasons,
            notes=tuple(notes),
            unreadable_lines=unreadable,
            duration_s=self._clock() - (self._started_at or self._clock()),
            progress=tuple(reports),
            ops_files=tuple(p for p in paths if p.exists()),
            exit_codes=exit_codes,
        )
        return self._result


def run_load(config: LoadRunConfig) -> LoadResult:
    """Run the load to its end (or its deadline) and return its ops. Ctrl-C or an error stops the children."""
    run = LoadRun(config)
    with run:
        return run.wait()


def read_ops(paths, lines_max: int | None = None) -> tuple:
    """(ops DataFrame, unreadable line count) from the workers' ops files; missing files count as empty."""
    records: list = []
    unreadable = 0
    for path in paths:
        if Path(path).exists():
            ops, bad = read_ops_file(path, lines_max=lines_max)
            records.extend(ops)
            unreadable += bad
    return ops_frame(records), unreadable


def ops_frame(records: list) -> pd.DataFrame:
    """Records (dicts as the child writes them) to the ops table: time order, index 0..n-1, schema dtypes.

    Ties in time_s (rare, sub-microsecond) keep an invoke before its completion.
    """
    if not records:
        return empty_frame(OPS_COLUMNS)
    from harness.history.store import ops_from_records  # the one place that makes ops tables

    return ops_from_records(records)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tail(path: Path, chars: int = 400) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return text[-chars:].replace("\n", " | ")
