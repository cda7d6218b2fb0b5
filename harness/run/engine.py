"""The run: a scenario becomes a stored history, then verdicts. A short sequence of phases.

stack up → proxies → reference system up → sampler → load (+ nemesis) → heal →
drain → system down → final observation → history saved → judged → stack down.

Why phases passing values instead of one runner object with state: each phase
can fail on its own terms, and the `finally` blocks undo exactly what was done,
in reverse order, whatever happened — Ctrl-C included (STYLE: no god-object runner).
Recording and judging stay apart: the history is saved before any checker runs,
so `ledgerchaos check` can re-judge it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from harness import __version__
from harness.errors import LedgerchaosError
from harness.faults.nemesis import Nemesis
from harness.history.schema import METRICS_COLUMNS, Gap, History, Phase, RunMeta, conform, empty_frame
from harness.run.clock import RunClock
from harness.run.parts import RunParts, Sampler, real_parts
from harness.run.record import DrainOutcome, RunRecord
from harness.run.system import SystemConfig, process_control
from harness.scenario import Scenario, StackMode, scenario_to_yaml
from harness.stack import terminate_as_exception

if TYPE_CHECKING:
    from harness.report.write import ReportFiles

__all__ = ["RunOptions", "RunOutcome", "run_scenario", "record_run", "phases_of", "new_run_id"]

LOAD_START_OFFSET_S = 2.0  # the Locust child's start-up: load time 0 is t0 + this
NEMESIS_OP_ID_BASE = 10**15  # nemesis op ids, far above any client's (worker * 10**12 + n)
DRAIN_POLL_S = 0.25


@dataclass(frozen=True)
class RunOptions:
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    progress: Callable | None = None  # called with a dict of figures ~4 times a second
    judge: bool = True  # False: record only (predict, judge and render later, from the run folder)
    parts: RunParts | None = None  # None: the real parts (harness/run/parts.py); tests pass fakes


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    history: History
    verdicts: tuple = ()
    exit_code: int = 0
    notes: tuple = ()
    prediction: str | None = None  # the capacity model's a-priori figures, one line, for the console
    report: ReportFiles | None = None  # the rendered files (None when options.judge is False)


def new_run_id(scenario: Scenario, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{scenario.name}-{stamp}-s{scenario.seed}"


def phases_of(
    scenario: Scenario, load_start_s: float, load_end_s: float, drain_end_s: float | None
) -> tuple[Phase, ...]:
    """The named spans of a run on the run's clock (see PhaseSpec)."""
    warm_end = load_start_s + scenario.phases.warmup_s
    phases = [Phase("warmup", load_start_s, warm_end)]
    faults = scenario.faults.faults
    if faults:
        first = load_start_s + min(f.start_s for f in faults)
        last = load_start_s + max(f.end_s for f in faults)
        phases.append(Phase("baseline", warm_end, first))
        phases.append(Phase("fault", first, last))
        phases.append(Phase("recovery", last, load_end_s))
    else:
        phases.append(Phase("baseline", warm_end, load_end_s))
    # A run cut short (Ctrl-C, a crash) ends its phases where the load ended; none starts after it.
    phases = [Phase(p.name, p.start_s, min(p.end_s, load_end_s)) for p in phases if p.start_s < load_end_s]
    if drain_end_s is not None:
        phases.append(Phase("drain", load_end_s, drain_end_s))
    return tuple(phases)


class _OpSink:
    """Thread-safe collector of nemesis ops, streamed to a JSON-lines file as they happen."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._ids = itertools.count(NEMESIS_OP_ID_BASE)
        self.records: list[dict] = []

    def __call__(self, op: dict) -> None:
        with self._lock:
            op = {**op, "op_id": next(self._ids)}
            self.records.append(op)
            self._handle.write(json.dumps(op) + "\n")
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()


def _write_resolved_scenario(run_dir: Path, scenario: Scenario) -> None:
    """The Scenario that runs, overrides included: `ledgerchaos run` of this file replays it exactly."""
    (run_dir / "scenario.resolved.yaml").write_text(scenario_to_yaml(scenario), encoding="utf-8")


def _metrics_frame(path: Path) -> pd.DataFrame:
    if not path.exists():
        return empty_frame(METRICS_COLUMNS)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a cut last line after a kill
    if not rows:
        return empty_frame(METRICS_COLUMNS)
    return conform(pd.DataFrame(rows), METRICS_COLUMNS, "metrics")


def _drain(sampler: Sampler, clock: RunClock, bound_s: float, stop: threading.Event) -> DrainOutcome:
    """Wait (bounded) until no event is waiting or in flight."""
    began = clock.now_s()
    left: int | None = None
    calm = 0
    while clock.now_s() - began < bound_s and not stop.is_set():
        backlog = sampler.backlog()
        left = sum(backlog.values()) if backlog is not None else None
        calm = calm + 1 if left == 0 else 0
        if calm >= 2:  # twice in a row: an XADD racing the read cannot fool it
            return DrainOutcome(True, clock.now_s() - began, bound_s, 0)
        time.sleep(DRAIN_POLL_S)
    return DrainOutcome(False, clock.now_s() - began, bound_s, left)


def run_scenario(scenario: Scenario, options: RunOptions = RunOptions()) -> RunOutcome:
    """Run one scenario in its four phases: record, predict, judge, render.

    Each phase after the record is a function of the run folder the record wrote; `ledgerchaos
    report` later goes through the same judge and render. Raises StackError (exit 3) when the stack
    cannot start; any later failure still saves the partial history, its gaps named.
    """
    from harness.capacity.run_prediction import predict_run
    from harness.checkers.judge import judge_run
    from harness.report.write import render_run

    record = record_run(scenario, options)
    notes = list(record.notes)
    if not options.judge:
        return RunOutcome(record.run_dir, record.history, exit_code=0 if record.complete else 3, notes=tuple(notes))
    overlay, no_overlay = predict_run(record.run_dir, scenario, record.history)
    if no_overlay:
        notes.append(no_overlay)
    judgement = judge_run(record.run_dir, history=record.history)
    files = render_run(record.run_dir)
    return RunOutcome(
        run_dir=record.run_dir,
        history=record.history,
        verdicts=judgement.verdicts,
        exit_code=files.exit_code,  # the judged code, or 3 for an incomplete run whatever its verdicts
        notes=tuple(notes),
        prediction=overlay.line if overlay is not None else None,
        report=files,
    )


def record_run(scenario: Scenario, options: RunOptions = RunOptions()) -> RunRecord:
    """The record phase: stack, system, load and faults; the history saved in the run folder.

    Raises StackError (exit 3) when the stack cannot start; any later failure still saves the
    partial history, its gaps named (RunMeta.gaps)."""
    from harness.load.config import LoadRunConfig
    from harness.load.driver import ops_frame

    run_id = options.run_id or new_run_id(scenario)
    run_dir = Path(options.reports_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_resolved_scenario(run_dir, scenario)
    if scenario.invariants is not None and hasattr(scenario.invariants, "to_json"):
        (run_dir / "check_config.json").write_text(json.dumps(scenario.invariants.to_json(), indent=2))

    notes: list[str] = []
    clock: RunClock | None = None
    sink = _OpSink(run_dir / "nemesis.jsonl")
    load_result = None
    observation = None
    load_start_s = LOAD_START_OFFSET_S
    load_end_s = None
    drain: DrainOutcome | None = None
    gaps: list[Gap] = []
    versions: dict[str, str | None] = {}
    stop = threading.Event()
    run_deadline = time.monotonic() + scenario.duration_s_max

    parts = options.parts or real_parts()
    with contextlib.ExitStack() as undo, terminate_as_exception():
        services = undo.enter_context(parts.stack(scenario, run_dir))
        control = parts.fault_proxy(services)
        if scenario.stack.mode is StackMode.ATTACH and scenario.stack.reset_state:
            parts.reset(services)
        api_port = parts.api_port()
        links = parts.links(control, services, api_port)
        if control is not None:
            undo.callback(control.reset)
        versions = parts.versions(services, control)

        system = parts.system(
            SystemConfig(
                api_redis_url=links.api_redis_url,
                api_postgres_url=services.postgres_url,
                consumer_redis_url=links.consumer_redis_url,
                consumer_postgres_url=links.consumer_postgres_url,
                consumers=scenario.system.consumers,
                partitions=scenario.system.partitions,
                variant=scenario.system.variant.value,
                batch_size=scenario.system.batch_size,
                high_water_mark=scenario.system.high_water_mark,
                options=dict(scenario.system.options),
                api_port=api_port,
                start_timeout_s=scenario.system.start_timeout_s,
            ),
            run_dir / "logs",
        )
        undo.callback(system.stop_all)
        system.start()

        clock = RunClock()
        nemesis = Nemesis(
            schedule=scenario.faults,
            clock=clock,
            record=sink,
            rng=random.Random(scenario.seed ^ 0x5EED),
            proxies=links.proxies,
            links=control,
            processes=process_control(system),
            offset_s=load_start_s,
        )
        nemesis.check_supported()
        sampler = parts.sampler(
            services,
            scenario.system.partitions,
            api_port,
            run_dir / "metrics.jsonl",
            clock.now_s,
            scenario.phases.sample_interval_s,
        )
        sampler.start()
        undo.callback(sampler.stop)

        load = parts.load(
            LoadRunConfig(
                api_url=links.api_url_for_clients,
                profile=scenario.load.profile,
                t0_monotonic=clock.t0_monotonic,
                ops_dir=run_dir / "ops",
                seed=scenario.seed,
                generator=scenario.load.generator,
                start_offset_s=load_start_s,
                request_timeout_s=scenario.load.request_timeout_s,
                retry=scenario.load.retry,
                workers=scenario.load.workers,
                model=scenario.load.model,
                users=scenario.load.users,
                think_time_s=scenario.load.think_time_s,
                ops_max=scenario.load.ops_max,
            )
        )
        try:
            load.start()
            nemesis_thread = threading.Thread(target=nemesis.run, args=(stop,), name="nemesis", daemon=True)
            nemesis_thread.start()
            try:
                while True:
                    load_result = load.wait(timeout_s=0.25)
                    if options.progress is not None:
                        options.progress(_figures(scenario, clock, load, sampler, nemesis, "load"))
                    if load_result is not None:
                        break
                    if time.monotonic() > run_deadline:
                        notes.append(f"the run reached duration_s_max ({scenario.duration_s_max:g} s); load stopped")
                        load_result = load.stop()
                        break
            finally:
                stop.set()
                nemesis_thread.join(timeout=30)
                nemesis.heal_all()
            load_end_s = clock.now_s()
            if load_result is None:
                load_result = load.stop()
            notes.extend(load_result.notes)
            # A consumer may have died of a fault the schedule did not restart: the drain needs them all.
            system.start_named(system.consumer_names())
            drain_bound_s = max(1.0, min(scenario.phases.drain_s_max, run_deadline - time.monotonic()))
            drain_stop = threading.Event()
            if options.progress is not None:
                options.progress(_figures(scenario, clock, load, sampler, nemesis, "drain"))
            drain = _drain(sampler, clock, drain_bound_s, drain_stop)
            if not drain.completed:
                notes.append(f"the drain did not finish within {drain_bound_s:g} s; {drain.backlog_left} event(s) left")
            sampler.stop()
            system.stop_all()
            observation = parts.observe(services, clock.t0_wall_s)
        except KeyboardInterrupt:
            gaps.append(Gap.INTERRUPTED)
            notes.append("the run was interrupted (Ctrl-C or SIGTERM); the history is partial")
            raise
        except LedgerchaosError as exc:
            gaps.append(Gap.RUN_FAILED)
            notes.append(f"the run could not complete: {exc}")
        finally:
            if load_result is None:
                with contextlib.suppress(Exception):
                    load_result = load.stop()
            sink.close()
            history = _assemble(
                scenario,
                run_id,
                run_dir,
                clock,
                load_result,
                sink.records,
                observation,
                load_start_s,
                load_end_s,
                drain,
                notes,
                ops_frame,
                gaps,
                versions,
            )
            _save(run_dir, history)
    return RunRecord(run_dir=run_dir, scenario=scenario, history=history, versions=versions, drain=drain)


def _assemble(
    scenario,
    run_id,
    run_dir,
    clock,
    load_result,
    nemesis_records,
    observation,
    load_start_s,
    load_end_s,
    drain: DrainOutcome | None,
    notes,
    ops_frame,
    gaps: list[Gap],
    versions: dict[str, str | None],
) -> History:
    records = list(nemesis_records)
    load_ops = load_result.ops if load_result is not None else None
    nemesis_ops = ops_frame(records) if records else None
    frames = [f for f in (load_ops, nemesis_ops) if f is not None and len(f)]
    if frames:
        ops = pd.concat(frames, ignore_index=True).sort_values(["time_s", "op_id"], kind="stable")
        ops["index"] = range(len(ops))
        ops = ops.reset_index(drop=True)
    else:
        ops = ops_frame([])
    end_s = clock.now_s() if clock else 0.0
    load_end = load_end_s if load_end_s is not None else end_s
    gaps = list(gaps)
    if load_result is None or not load_result.complete:
        gaps.append(Gap.LOAD_INCOMPLETE)
    if observation is None:
        gaps.append(Gap.NOT_OBSERVED)
    drain_end = load_end + drain.duration_s if drain is not None else None
    meta = RunMeta(
        run_id=run_id,
        seed=scenario.seed,
        scenario=scenario.name,
        complete=not gaps,
        gaps=tuple(dict.fromkeys(gaps)),
        phases=phases_of(scenario, load_start_s, load_end, drain_end),
        load_start_s=load_start_s,
        drain_completed=drain.completed if drain is not None else None,
        drain_duration_s=drain.duration_s if drain is not None else None,
        backlog_left=drain.backlog_left if drain is not None else None,
        notes=tuple(notes),
        extra={
            "versions": dict(versions),
            "harness_version": __version__,
            "variant": scenario.system.variant.value,
            "system": {
                "consumers": scenario.system.consumers,
                "partitions": scenario.system.partitions,
                "batch_size": scenario.system.batch_size,
                "high_water_mark": scenario.system.high_water_mark,
                "variant": scenario.system.variant.value,
            },
            "t0_wall_s": clock.t0_wall_s if clock else None,
            "faults": [f.describe() for f in scenario.faults],
        },
    )
    return History(ops=ops, metrics=_metrics_frame(run_dir / "metrics.jsonl"), observation=observation, meta=meta)


def _save(run_dir: Path, history: History) -> None:
    from harness.history.store import save_history

    save_history(run_dir, history)


def _figures(scenario, clock, load, sampler, nemesis, phase) -> dict:
    progress = load.progress()
    elapsed_s = clock.now_s()
    total_s = LOAD_START_OFFSET_S + scenario.load.profile.duration_s
    return {
        "phase": phase,
        "elapsed_s": elapsed_s,
        "load_left_s": max(0.0, total_s - elapsed_s),
        "requests_per_s": progress.requests_per_s,
        "requests": progress.requests,
        "outcomes": dict(progress.outcomes),
        "errors_by_kind": dict(progress.errors_by_kind),
        "in_flight": progress.in_flight,
        "backlog": sampler.latest.get("backlog"),
        "posted": sampler.latest.get("ledger_posted_events_total"),
        "breaker_open": sampler.latest.get("breaker_open"),
        "active_faults": nemesis.active(),
    }
