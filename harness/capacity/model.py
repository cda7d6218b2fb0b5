"""The pipeline model in SimPy: ingest, partition queues, a consumer pool with batches, retries, faults, scaling.

This is the only module of the harness that imports SimPy (STYLE habit 9).

Why it is shaped this way (speed is a requirement: a one-hour profile in seconds):
- one process for arrivals, one per consumer, one for the scaler: no process
  per event. An event is an index into flat lists; a partition is a deque of
  indexes. Per event the model schedules one arrival timeout; per batch one
  service timeout.
- an idle consumer waits on its own SimPy event, which an enqueue on one of
  its partitions (or a rebalance) succeeds; nothing polls.
- the backlog over time is not sampled by a process: every event's enqueue and
  leave times are kept and the samples are counted afterwards (prediction.py),
  exactly, at no cost to the simulation.

Time is only env.now. Randomness comes from streams derived from the seed
(arrivals use harness.load.schedule.arrival_rng(seed), the live driver's stream).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterable

import numpy as np
import simpy

from harness.capacity.config import (
    ModelConfig,
    NoScaling,
    Ownership,
    PredictiveScaling,
    ReactiveScaling,
    Workers,
    make_batch_sampler,
    make_sampler,
)
from harness.capacity.fault_map import FaultWindows, map_faults
from harness.capacity.prediction import EventTrace, Outcome, Prediction, build_prediction
from harness.capacity.scaling import RateWindow, predictive_target, reactive_target
from harness.faults.schedule import FaultSchedule
from harness.load.profile import LoadProfile, arrival_times
from harness.load.schedule import arrival_rng

__all__ = ["simulate", "simulate_arrivals"]


def simulate(
    config: ModelConfig,
    profile: LoadProfile,
    faults: FaultSchedule | None = None,
    seed: int = 0,
    *,
    keep_trace: bool = True,
) -> Prediction:
    """Simulate the pipeline under `profile` and `faults`; return what a live run would measure.

    Arrivals are `arrival_times(profile, arrival_rng(seed))`, the same
    function and random stream the live load driver uses
    (harness.load.schedule), so one seed gives one arrival sequence in both. keep_trace=False drops the per-event arrays
    (plans keep only the figures of many replications).
    """
    arrivals_s = _take_arrivals(arrival_times(profile, arrival_rng(seed)), config.events_max)
    return _run(config, arrivals_s, profile.duration_s, faults, seed, keep_trace)


def simulate_arrivals(
    config: ModelConfig,
    arrivals_s: Iterable[float],
    duration_s: float,
    faults: FaultSchedule | None = None,
    seed: int = 0,
    *,
    keep_trace: bool = True,
) -> Prediction:
    """Simulate given arrival times (seconds, increasing), e.g. the invokes of a measured run (calibration)."""
    arrivals = _take_arrivals(arrivals_s, config.events_max)
    return _run(config, arrivals, duration_s, faults, seed, keep_trace)


def _run(config: ModelConfig, arrivals: list, duration_s: float, faults: FaultSchedule | None, seed: int,
         keep_trace: bool) -> Prediction:  # fmt: skip
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'"seed" must be a whole number >= 0, got {seed!r}')
    if duration_s <= 0 or not math.isfinite(duration_s):
        raise ValueError(f'"duration_s" must be a finite number > 0, got {duration_s}')
    windows = map_faults(faults, config)
    sim = _Sim(config, arrivals, duration_s, windows, seed)
    sim.run()
    return build_prediction(sim.trace(), config, seed, sim.end_s, sim.completed, sim.pool_timeline, sim.busy_s(),
                            windows.unmapped, keep_trace=keep_trace)  # fmt: skip


def _take_arrivals(arrivals_s: Iterable[float], events_max: int) -> list:
    out = []
    previous_s = 0.0
    for t_s in arrivals_s:
        if t_s < previous_s:
            raise ValueError(f"arrival times must be >= 0 and increasing; got {t_s} after {previous_s}")
        previous_s = t_s
        out.append(t_s)
        if len(out) > events_max:
            raise ValueError(f'more than events_max={events_max} arrivals; raise "events_max" or shorten the profile')
    return out


class _Consumer:
    """One consumer process's state."""

    __slots__ = ("cid", "parts", "rr", "idle", "busy_s", "retired", "ready_s", "lease_held_until_s", "cpu_free_s")

    def __init__(self, cid: int, ready_s: float) -> None:
        self.cid = cid
        self.parts: list = []
        self.rr = 0
        self.idle: simpy.Event | None = None
        self.busy_s = 0.0
        self.retired = False
        self.ready_s = ready_s
        self.lease_held_until_s = -math.inf
        self.cpu_free_s = 0.0  # PER_PARTITION: when this consumer's CPU is next free


class _Sim:
    """One simulation run. Private: simulate() is the interface."""

    def __init__(self, config: ModelConfig, arrivals_s: list, duration_s: float, windows: FaultWindows, seed: int):
        self.config = config
        self.duration_s = duration_s
        self.windows = windows
        self.env = simpy.Environment()
        n = len(arrivals_s)
        self.arrival_s = arrivals_s
        parts_rng = np.random.default_rng([seed, 1])
        if config.partition_weights is None:
            self.part = parts_rng.integers(0, config.partitions, size=n).tolist()
        else:
            weights = np.asarray(config.partition_weights, dtype=float)
            self.part = parts_rng.choice(config.partitions, size=n, p=weights / weights.sum()).tolist()
        nan = math.nan
        self.enqueue_s = [nan] * n
        self.start_s = [nan] * n
        self.done_s = [nan] * n
        self.outcome = bytearray(n)  # Outcome values; 0 = pending
        self.queues: list[deque[int]] = [deque() for _ in range(config.partitions)]
        self.all_parts = list(range(config.partitions))
        self.shared = config.ownership is Ownership.SHARED
        self.idle_shared: list = []
        self.backlog = 0
        self.offered = 0  # arrivals so far, shed or not (the demand the predictive scaler sees)
        self.pending_enqueues = 0
        self.arrivals_done = False
        self.completed = False
        self.end_s = 0.0

        self.rng_retry = random.Random(f"{seed}/retry")
        self.rng_ingest = random.Random(f"{seed}/ingest")
        service_rng = random.Random(f"{seed}/service")
        self.draw_overhead = make_sampler(config.overhead, service_rng)
        self.draw_per_event = make_batch_sampler(config.per_event, service_rng)
        # draw_per_event(1) is exactly one draw of this sampler on the same stream.
        self.draw_single = make_sampler(config.per_event, service_rng)

        self.per_partition = config.workers is Workers.PER_PARTITION
        self.cpu_share = config.consumer_cpu_share if self.per_partition else 0.0
        self.worker_idle: list = [None] * config.partitions  # PER_PARTITION: each worker's wake-up event
        self.pool: list = []
        self.owner: list = [None] * config.partitions
        self.pool_timeline: list = [(0.0, config.consumers)]
        self.stop = self.env.event()

    # --- run -------------------------------------------------------------------

    def run(self) -> None:
        env = self.env
        for _ in range(self.config.consumers):
            self._add_consumer(ready_s=0.0)
        self._rebalance()
        if self.per_partition:
            for p in range(self.config.partitions):
                env.process(self._partition_worker(p))
        env.process(self._arrivals())
        for stop in self.windows.consumer_stops:
            env.process(self._stop_window(stop))
        if not isinstance(self.config.scaling, NoScaling):
            env.process(self._scaler())
        cap = env.timeout(self.duration_s + self.config.drain_s_max)
        cap.callbacks.append(self._on_cap)
        env.run(until=self.stop)
        self.end_s = env.now

    def _on_cap(self, _event) -> None:
        if not self.stop.triggered:
            self.stop.succeed()

    def _check_done(self) -> None:
        if self.arrivals_done and self.backlog == 0 and self.pending_enqueues == 0 and not self.stop.triggered:
            self.completed = True
            self.stop.succeed()

    # --- ingest ----------------------------------------------------------------

    def _arrivals(self):
        env = self.env
        timeout = env.timeout
        outcome = self.outcome
        high_water = self.config.backlog_high_water_events
        windows = self.windows
        faulty = bool(windows.ingest_outages or windows.ingest_delays)
        part, queues, enqueue_s, wake_for = self.part, self.queues, self.enqueue_s, self._wake_for
        for eid, t_s in enumerate(self.arrival_s):
            dt_s = t_s - env.now
            if dt_s > 0:
                yield timeout(dt_s)
            self.offered += 1
            if faulty:
                now = env.now
                if self._ingest_down(now):
                    outcome[eid] = Outcome.UNAVAILABLE
                    continue
                delay_s = _delay_at(windows.ingest_delays, now)
            else:
                delay_s = 0.0
            if high_water is not None and self.backlog >= high_water:
                outcome[eid] = Outcome.SHED
                continue
            if delay_s > 0:
                self.pending_enqueues += 1
                ev = timeout(delay_s, eid)
                ev.callbacks.append(self._delayed_enqueue)
            else:
                # _enqueue, inlined: once per arrival.
                p = part[eid]
                queues[p].append(eid)
                enqueue_s[eid] = env.now
                self.backlog += 1
                wake_for(p)
        rest_s = self.duration_s - env.now
        if rest_s > 0:
            yield timeout(rest_s)
        self.arrivals_done = True
        self._check_done()

    def _ingest_down(self, now: float) -> bool:
        for w in self.windows.ingest_outages:
            if w.start_s <= now < w.end_s and (w.probability >= 1.0 or self.rng_ingest.random() < w.probability):
                return True
        return False

    def _delayed_enqueue(self, event) -> None:
        self.pending_enqueues -= 1
        self._enqueue(event.value)

    def _enqueue(self, eid: int) -> None:
        p = self.part[eid]
        self.queues[p].append(eid)
        self.enqueue_s[eid] = self.env.now
        self.backlog += 1
        self._wake_for(p)

    def _wake_for(self, p: int) -> None:
        if self.per_partition:
            ev = self.worker_idle[p]
            if ev is not None:
                self.worker_idle[p] = None
                ev.succeed()
            return
        if self.shared:
            idle = self.idle_shared
            while idle:
                c = idle.pop()
                ev = c.idle
                if ev is not None:
                    c.idle = None
                    ev.succeed()
                    return
            return
        c = self.owner[p]
        if c is not None:
            ev = c.idle
            if ev is not None:
                c.idle = None
                ev.succeed()

    # --- consumers -------------------------------------------------------------

    def _add_consumer(self, ready_s: float) -> _Consumer:
        c = _Consumer(len(self.pool), ready_s)
        self.pool.append(c)
        if not self.per_partition:
            self.env.process(self._consume(c))
        return c

    def _stopped_until(self, c: _Consumer, now: float) -> float | None:
        until = None
        for w in self.windows.consumer_stops:
            if w.start_s <= now < w.end_s and (w.all_consumers or c.cid == 0):
                until = w.end_s if until is None else max(until, w.end_s)
        return until

    def _killed_during(self, c: _Consumer, t_from: float, t_to: float) -> bool:
        for w in self.windows.consumer_stops:
            if not w.graceful and t_from <= w.start_s <= t_to and (w.all_consumers or c.cid == 0):
                return True
        return False

    def _consume(self, c: _Consumer):
        env = self.env
        timeout = env.timeout
        cfg = self.config
        queues = self.queues
        batch_max = cfg.batch_size_max
        draw_overhead, draw_per_event = self.draw_overhead, self.draw_per_event
        windows = self.windows
        has_stops = bool(windows.consumer_stops)
        has_batch_faults = bool(windows.batch_outages or windows.batch_delays)
        failure_p = cfg.transient_failure_probability
        rng_retry = self.rng_retry
        start_s, done_s, outcome = self.start_s, self.done_s, self.outcome
        applied = Outcome.APPLIED
        draw_single = self.draw_single
        while True:
            if c.retired:
                return
            now = env.now
            if c.ready_s > now:
                yield timeout(c.ready_s - now)
                continue
            if has_stops:
                until = self._stopped_until(c, now)
                if until is not None:
                    yield timeout(until - now)
                    continue
            # Take a batch from the next non-empty partition, round robin.
            parts = self.all_parts if self.shared else c.parts
            k = len(parts)
            batch = None
            p = -1
            for i in range(k):
                p = parts[(c.rr + i) % k]
                q = queues[p]
                if q:
                    c.rr = (c.rr + i + 1) % k
                    if batch_max == 1 or len(q) == 1:
                        batch = [q.popleft()]
                    else:
                        batch = [q.popleft() for _ in range(min(batch_max, len(q)))]
                    break
            if batch is None:
                ev = c.idle = env.event()
                if self.shared:
                    self.idle_shared.append(c)
                yield ev
                continue

            n = len(batch)
            t0 = now
            for e in batch:
                start_s[e] = t0
            # The first attempt inline: it is the common case and must stay cheap.
            duration_s = draw_overhead() + (draw_single() if n == 1 else draw_per_event(n))
            failure = None
            if has_batch_faults:
                duration_s += _delay_at(windows.batch_delays, t0)
                fail_after_s = self._batch_failure(t0)
                if fail_after_s is not None:
                    duration_s, failure = fail_after_s, _OUTAGE
            if failure is None and failure_p and rng_retry.random() < failure_p:
                failure = _TRANSIENT  # fails at commit, after doing the work
            yield timeout(duration_s)
            c.busy_s += duration_s
            if has_stops and self._killed_during(c, t0, env.now):
                self._give_back(p, batch)
                continue
            if failure is None:
                # _finish, inlined: this is the path every batch takes.
                now = env.now
                for e in batch:
                    done_s[e] = now
                    outcome[e] = applied
                self.backlog -= n
                if self.arrivals_done:
                    self._check_done()
                continue
            rest = yield from self._recover(c, batch, failure)
            if rest:
                self._give_back(p, rest)

    def _partition_worker(self, p: int):
        """PER_PARTITION: the worker of partition p, serving for whichever consumer owns p."""
        env = self.env
        queue = self.queues[p]
        batch_max = self.config.batch_size_max
        windows = self.windows
        has_stops = bool(windows.consumer_stops)
        has_batch_faults = bool(windows.batch_outages or windows.batch_delays)
        failure_p = self.config.transient_failure_probability
        draw_overhead, draw_per_event = self.draw_overhead, self.draw_per_event
        start_s = self.start_s
        while True:
            c = self.owner[p]
            now = env.now
            if not queue or c is None or (has_stops and not self._eligible(c, now)):
                # Nothing to do, or the owner is stopped and still holds the lease:
                # an enqueue or a rebalance wakes this worker.
                ev = self.worker_idle[p] = env.event()
                yield ev
                continue
            n = min(batch_max, len(queue))
            batch = [queue.popleft()] if n == 1 else [queue.popleft() for _ in range(n)]
            for e in batch:
                start_s[e] = now
            duration_s = draw_overhead() + draw_per_event(n)
            failure = None
            if has_batch_faults:
                duration_s += _delay_at(windows.batch_delays, now)
                fail_after_s = self._batch_failure(now)
                if fail_after_s is not None:
                    duration_s, failure = fail_after_s, _OUTAGE
            if failure is None and failure_p and self.rng_retry.random() < failure_p:
                failure = _TRANSIENT
            yield env.timeout(self._hold_s(c, duration_s))
            c.busy_s += duration_s
            if has_stops and self._killed_during(c, now, env.now):
                self._give_back(p, batch)
                continue
            if failure is None:
                self._finish(batch, Outcome.APPLIED)
                continue
            rest = yield from self._recover(c, batch, failure)
            if rest:
                self._give_back(p, rest)

    def _hold_s(self, c: _Consumer, duration_s: float) -> float:
        """Wall time of a batch of duration_s: its CPU share waits for the consumer's CPU (FIFO).

        Arithmetic, not a SimPy resource: a single FIFO server's start time is
        max(now, when it is next free), so no request events are needed. With
        one worker per consumer the CPU is always free and this is duration_s.
        """
        cpu_s = duration_s * self.cpu_share
        if cpu_s <= 0.0:
            return duration_s
        now = self.env.now
        cpu_start_s = c.cpu_free_s if c.cpu_free_s > now else now
        c.cpu_free_s = cpu_start_s + cpu_s
        return (cpu_start_s - now) + duration_s

    def _finish(self, batch: list, result: Outcome) -> None:
        now = self.env.now
        done_s, outcome = self.done_s, self.outcome
        for e in batch:
            done_s[e] = now
            outcome[e] = result
        self.backlog -= len(batch)
        if self.arrivals_done:
            self._check_done()

    def _attempt(self, c: _Consumer, batch: list):
        """One try at a batch: (failure kind or None, killed while trying)."""
        env = self.env
        t0 = env.now
        duration_s = self.draw_overhead() + self.draw_per_event(len(batch))
        failure = None
        duration_s += _delay_at(self.windows.batch_delays, t0)
        fail_after_s = self._batch_failure(t0)
        if fail_after_s is not None:
            duration_s, failure = fail_after_s, _OUTAGE
        elif (
            self.config.transient_failure_probability
            and self.rng_retry.random() < self.config.transient_failure_probability
        ):
            failure = _TRANSIENT
        yield env.timeout(self._hold_s(c, duration_s))
        c.busy_s += duration_s
        return failure, self._killed_during(c, t0, env.now)

    def _recover(self, c: _Consumer, batch: list, failure: str, attempts: int = 0, waits: int = 0):
        """After a failed attempt: back off and retry, as the reference consumer does.

        An outage (the database or Redis unreachable: refused, reset, timed
        out) is waited out with capped backoff and never dead-letters, unless
        retry.bounded_on_outage; a transient error counts toward
        attempts_max, after which a batch is applied one event at a time so
        only the events that still fail are dead-lettered.
        Returns the events to deliver again ([] when every event is done).
        """
        env = self.env
        retry = self.config.retry
        while True:
            if failure is _OUTAGE and not retry.bounded_on_outage:
                ceiling_s = min(retry.backoff_cap_s, retry.backoff_base_s * 2 ** min(waits, 30))
                waits += 1
            else:
                attempts += 1
                if attempts >= retry.attempts_max:
                    if len(batch) == 1:
                        self._finish(batch, Outcome.DEAD_LETTERED)
                        return []
                    for i, e in enumerate(batch):
                        rest = yield from self._apply_one(c, e)
                        if rest:
                            return rest + batch[i + 1 :]
                    return []
                ceiling_s = min(retry.backoff_cap_s, retry.backoff_base_s * 2 ** min(attempts, 30))
            t_sleep = env.now
            # Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015).
            yield env.timeout(self.rng_retry.uniform(0.0, ceiling_s))
            if self._killed_during(c, t_sleep, env.now):
                return batch
            failure, killed = yield from self._attempt(c, batch)
            if killed:
                return batch
            if failure is None:
                self._finish(batch, Outcome.APPLIED)
                return []

    def _apply_one(self, c: _Consumer, e: int):
        failure, killed = yield from self._attempt(c, [e])
        if killed:
            return [e]
        if failure is None:
            self._finish([e], Outcome.APPLIED)
            return []
        return (yield from self._recover(c, [e], failure))

    def _batch_failure(self, now: float) -> float | None:
        for w in self.windows.batch_outages:
            if w.start_s <= now < w.end_s and (w.probability >= 1.0 or self.rng_retry.random() < w.probability):
                return w.fail_after_s
        return None

    def _give_back(self, p: int, batch: list) -> None:
        """A killed consumer never committed nor acked: its batch is delivered again, first."""
        self.queues[p].extendleft(reversed(batch))
        self._wake_for(p)

    # --- ownership -------------------------------------------------------------

    def _eligible(self, c: _Consumer, now: float) -> bool:
        return not c.retired and c.ready_s <= now and self._stopped_until(c, now) is None

    def _rebalance(self, _event=None) -> None:
        """Spread partitions over eligible consumers, moving as few as possible.

        A partition stays with a stopped consumer while its lease holds
        (lease_expiry_s after a kill or pause); a graceful stop or a retirement
        releases it at once.
        """
        now = self.env.now
        eligible = [c for c in self.pool if self._eligible(c, now)]
        if eligible:
            quota = -(-len(self.owner) // len(eligible))
            counts = {c.cid: 0 for c in eligible}
            free = []
            for p, o in enumerate(self.owner):
                if o is not None and o.cid in counts and counts[o.cid] < quota:
                    counts[o.cid] += 1
                elif o is not None and not o.retired and o.cid not in counts and now < o.lease_held_until_s:
                    continue
                else:
                    free.append(p)
            heap = [(counts[c.cid], c.cid) for c in eligible]
            heapq.heapify(heap)
            for p in free:
                count, cid = heapq.heappop(heap)
                self.owner[p] = self.pool[cid]
                heapq.heappush(heap, (count + 1, cid))
        for c in self.pool:
            c.parts = []
        for p, o in enumerate(self.owner):
            if o is not None:
                o.parts.append(p)
        for c in self.pool:
            ev = c.idle
            if ev is not None:
                c.idle = None
                ev.succeed()
        for p, ev in enumerate(self.worker_idle):
            if ev is not None:
                self.worker_idle[p] = None
                ev.succeed()

    def _stop_window(self, stop):
        env = self.env
        yield env.timeout(stop.start_s)
        victims = self.pool if stop.all_consumers else self.pool[:1]
        if stop.graceful:
            self._rebalance()
        else:
            for c in victims:
                c.lease_held_until_s = stop.start_s + self.config.lease_expiry_s
            expiry_s = stop.start_s + self.config.lease_expiry_s
            if expiry_s < stop.end_s:
                yield env.timeout(expiry_s - env.now)
                self._rebalance()
        yield env.timeout(stop.end_s - env.now)
        self._rebalance()

    # --- scaling ---------------------------------------------------------------

    def provisioned(self) -> int:
        return sum(1 for c in self.pool if not c.retired)

    def _scale_to(self, target: int, startup_s: float) -> None:
        env = self.env
        current = self.provisioned()
        if target > current:
            for _ in range(target - current):
                self._add_consumer(ready_s=env.now + startup_s)
            ready = env.timeout(startup_s)
            ready.callbacks.append(self._rebalance)
        elif target < current:
            # Retire the newest first: consumers still starting cost nothing more to drop.
            for c in reversed(self.pool):
                if current == target:
                    break
                if not c.retired:
                    c.retired = True
                    current -= 1
            self._rebalance()
        else:
            return
        self.pool_timeline.append((env.now, target))

    def _scaler(self):
        env = self.env
        policy = self.config.scaling
        assert not isinstance(policy, NoScaling)  # the scaler process starts only under a scaling policy
        last_change_s = -math.inf
        window = RateWindow(policy) if isinstance(policy, PredictiveScaling) else None
        while True:
            yield env.timeout(policy.interval_s)
            now = env.now
            current = self.provisioned()
            if isinstance(policy, ReactiveScaling):
                target = reactive_target(policy, current, self.backlog, now - last_change_s)
            else:
                assert window is not None  # made above for every predictive policy
                window.add(now, self.offered)
                forecast_per_s = window.forecast(now + policy.horizon_s)
                target = predictive_target(policy, current, forecast_per_s, self.backlog, now - last_change_s)
            if target != current:
                self._scale_to(target, policy.startup_s)
                last_change_s = now

    # --- results ---------------------------------------------------------------

    def busy_s(self) -> float:
        return sum(c.busy_s for c in self.pool)

    def trace(self) -> EventTrace:
        return EventTrace(
            arrival_s=np.asarray(self.arrival_s, dtype=float),
            partition=np.asarray(self.part, dtype=np.int64),
            enqueue_s=np.asarray(self.enqueue_s, dtype=float),
            start_s=np.asarray(self.start_s, dtype=float),
            done_s=np.asarray(self.done_s, dtype=float),
            outcome=np.frombuffer(bytes(self.outcome), dtype=np.uint8).copy(),
        )


_OUTAGE = "outage"
_TRANSIENT = "transient"


def _delay_at(delays: tuple, now: float) -> float:
    total_s = 0.0
    for w in delays:
        if w.start_s <= now < w.end_s:
            total_s += w.delay_s
    return total_s
