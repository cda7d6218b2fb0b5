"""The Locust child process: runs one load headless, as a local runner or as a master or worker of a distributed run.

Run as `python -m harness.load.locust_process --config FILE.json [--role local|master|worker]
[--worker-index I --master-port P]`; `harness.load.driver` starts it, never imports it.

Why a process of its own: Locust monkey-patches the standard library with
gevent on import, which breaks other libraries in the same process (and
importing requests/urllib3 before Locust crashes it). So this module imports
Locust first and the harness talks to it through files only: the config JSON
in, a JSON-lines ops file and a small progress file out.

How arrivals are honoured (open model): Locust's load shapes tick once a
second, too coarse for a 200 ms burst. Instead every worker walks the seeded
schedule (`harness.load.schedule.open_schedule`), and a pool of Locust users
take the next arrival from it, sleep until its intended time and send it. While
a user waits for a slow answer the others keep taking arrivals, so responses
delay arrivals only when the whole pool is busy; then the actual send time lags
the intended one in the history, which is how coordinated omission shows.

HTTP client: FastHttpUser (geventhttpclient), because one process must reach
the peak of a 10x micro-burst and it sends several times more requests per
second than HttpUser (requests). Each request has a total deadline (a gevent
Timeout of request_timeout_s) besides the client's connect and read timeouts,
and the client's own retries are off: every retry is ours, recorded as an op.

Nothing is judged here: answers are recorded, never asserted.
"""

# Locust first: its gevent monkey-patching must precede every other import that
# touches sockets or ssl (see the module docstring).
from locust import FastHttpUser, constant, task  # isort: skip
from locust.exception import StopUser  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import collections
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

import gevent
import gevent.event

from harness.load.config import OP_ID_STRIDE, LoadModel, LoadRunConfig
from harness.load.generator import generate_postings
from harness.load.outcome import Outcome, classify_exception, classify_status, parse_retry_after, retry_wait_s
from harness.load.recorder import OpsRecorder, write_json_atomic
from harness.load.schedule import closed_posting_rng, open_schedule

try:
    import orjson

    _dumps = orjson.dumps
except ImportError:  # pragma: no cover

    def _dumps(value) -> bytes:
        return json.dumps(value).encode()


FLUSH_INTERVAL_S = 0.25
PROGRESS_INTERVAL_S = 0.5
WORKERS_CONNECT_S_MAX = 60.0
DONE_MESSAGE = "ledgerchaos_done"
_HEADERS = {"Content-Type": "application/json"}
_BODY_FIELDS = ("key", "debit_account", "credit_account", "amount_minor", "currency")

log = logging.getLogger("ledgerchaos.load")


def ops_path(ops_dir: Path, worker_index: int) -> Path:
    return Path(ops_dir) / f"ops-{worker_index}.jsonl"


def progress_path(ops_dir: Path, worker_index: int) -> Path:
    return Path(ops_dir) / f"progress-{worker_index}.json"


class _Load:
    """The state one process shares among its users: schedule, recorder, counters, stop flag."""

    def __init__(self, config: LoadRunConfig, worker_index: int) -> None:
        self.config = config
        self.worker_index = worker_index
        self.t0 = config.t0_monotonic
        self.deadline = config.t0_monotonic + config.run_s_max
        self.recorder = OpsRecorder(ops_path(config.ops_dir, worker_index), config.ops_max) if config.record else None
        self.stopped = gevent.event.Event()
        self.stop_reason: str | None = None
        self.op_counter = 0
        self.user_counter = 0
        self.in_flight = 0  # arrivals (or closed-model iterations) taken and not finished
        self.exhausted = False
        self.arrivals_taken = 0
        self.requests = 0
        self.outcomes: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.lag_ms_max_window = 0.0
        self.lag_ms_max = 0.0
        self.arrivals_late_100ms = 0
        if config.model is LoadModel.OPEN:
            self.schedule = open_schedule(
                config.profile, config.generator, config.seed, config.start_offset_s, worker_index, config.workers
            )
            self.postings = None
        else:
            self.schedule = None
            self.postings = generate_postings(config.generator, closed_posting_rng(config.seed, worker_index))
        self.load_end_s = config.start_offset_s + float(config.profile.duration_s)

    # -- time ---------------------------------------------------------------------------------------
    def now_s(self) -> float:
        return time.monotonic() - self.t0

    def sleep_until(self, at_s: float) -> None:
        delay_s = self.t0 + at_s - time.monotonic()
        if delay_s > 0:
            gevent.sleep(delay_s)

    # -- lifecycle ----------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stopped.set()

    def done(self) -> bool:
        if self.in_flight:
            return False
        if self.config.model is LoadModel.OPEN:
            return self.exhausted
        return self.now_s() >= self.load_end_s

    def idle(self) -> None:
        """A user with nothing left to send waits for the end of the run (stopping it earlier would
        make Locust's distributed user accounting see a missing user); after the end it stops."""
        if self.stopped.is_set():
            raise StopUser()
        self.stopped.wait(timeout=max(0.0, self.deadline - time.monotonic()))

    def next_arrival(self):
        if self.stopped.is_set():
            return None
        try:
            arrival = next(self.schedule)
        except StopIteration:
            self.exhausted = True
            return None
        self.arrivals_taken += 1
        return arrival

    def new_process_name(self) -> str:
        name = f"client-{self.worker_index}-{self.user_counter}"
        self.user_counter += 1
        return name

    # -- one event: submit, retry, resolve ----------------------------------------------------------
    def submit(self, user, process: str, posting, intended_s: float) -> None:
        policy = self.config.retry
        body = _dumps(posting.body)
        attempt, waited_s = 1, 0.0
        while True:
            self.sleep_until(intended_s)
            result = self._request(
                user, process, "POST", "/v1/events", body, "submit", posting.event_id, intended_s, attempt, posting
            )
            if result is None:  # op budget spent
                return
            outcome, status, retry_after_s = result
            if status in policy.retry_statuses and attempt < policy.attempts_max and not self.stopped.is_set():
                wait_s = retry_wait_s(retry_after_s, attempt, policy.backoff_s, policy.retry_after_s_cap)
                if waited_s + wait_s <= policy.wait_s_max:
                    waited_s += wait_s
                    attempt += 1
                    intended_s = self.now_s() + wait_s
                    continue
            break
        if outcome.type == "info" and posting.event_id is not None:
            self.resolve(user, process, posting.event_id)

    def resolve(self, user, process: str, event_id: str) -> None:
        """Ask the API what became of an event whose submission ended indeterminate."""
        policy = self.config.retry
        for attempt in range(1, policy.resolve_attempts_max + 1):
            if self.stopped.is_set():
                return
            intended_s = self.now_s() + policy.resolve_delay_s
            self.sleep_until(intended_s)
            path = f"/v1/events/{quote(event_id, safe='')}"
            result = self._request(user, process, "GET", path, None, "status", event_id, intended_s, attempt, None)
            if result is None or result[0].type != "info":
                return

    def _request(self, user, process, method, path, body, f, event_id, intended_s, attempt, posting):
        """Send one request and record its invoke and completion; (outcome, status, retry_after_s)."""
        recorder = self.recorder
        if recorder is not None and not recorder.reserve(2):
            self.stop("ops_max")
            return None
        op_id = self.worker_index * OP_ID_STRIDE + self.op_counter
        self.op_counter += 1
        sent = time.monotonic()
        sent_s = sent - self.t0
        if attempt == 1 and f == "submit":  # the send lag of arrivals, not of deliberate waits
            lag_ms = (sent_s - intended_s) * 1000.0
            if lag_ms > self.lag_ms_max_window:
                self.lag_ms_max_window = lag_ms
            if lag_ms > 100.0:
                self.arrivals_late_100ms += 1
        if recorder is not None:
            op = {
                "time_s": sent_s,
                "process": process,
                "type": "invoke",
                "f": f,
                "op_id": op_id,
                "event_id": event_id,
                "intended_time_s": intended_s,
                "attempt": attempt,
            }
            if posting is not None:
                fields = posting.body
                for name in _BODY_FIELDS:
                    if name in fields:
                        op[name] = fields[name]
                op["duplicate"] = posting.duplicate
                op["valid_body"] = posting.valid_body
                label = posting.label
                if label is not None:
                    op["value"] = label
            recorder.record(op)
        self.requests += 1
        timer = gevent.Timeout(self.config.request_timeout_s)
        timer.start()
        status = 0
        retry_after_s = None
        value = None
        try:
            response = user.client.request(
                method,
                path,
                data=body,
                headers=_HEADERS if body else None,
                name=f"{method} {'/v1/events' if f == 'submit' else '/v1/events/{id}'}",
            )
            status = response.status_code or 0
            if status:
                outcome = classify_status(status)
                headers = response.headers
                if headers is not None:
                    retry_after_s = parse_retry_after(headers.get("Retry-After"), time.time)
                if f == "status":
                    outcome, value = _status_value(status, response, outcome)
            else:
                outcome = classify_exception(response.error)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            outcome = classify_exception(exc)
        except gevent.GreenletExit:
            # The run is stopping with this request in flight: its fate is unknown.
            self._complete(process, f, op_id, event_id, sent, 0, "info", "client_stopped", None, None)
            raise
        finally:
            timer.close()
        self._complete(process, f, op_id, event_id, sent, status, outcome.type, outcome.error, retry_after_s, value)
        return outcome, status, retry_after_s

    def _complete(self, process, f, op_id, event_id, sent, status, type_, error, retry_after_s, value) -> None:
        done = time.monotonic()
        self.outcomes[type_] += 1
        if error is not None:
            self.errors[error] += 1
        if self.recorder is None:
            return
        op = {
            "time_s": done - self.t0,
            "process": process,
            "type": type_,
            "f": f,
            "op_id": op_id,
            "event_id": event_id,
            "latency_ms": (done - sent) * 1000.0,
        }
        if status:
            op["status_code"] = status
        if error is not None:
            op["error"] = error
        if retry_after_s is not None:
            op["retry_after_s"] = retry_after_s
        if value is not None:
            op["value"] = value
        self.recorder.record(op)

    # -- files ----------------------------------------------------------------------------------------
    def ops_recorded(self) -> int:
        return self.recorder.ops_reserved if self.recorder is not None else 0

    def progress(self, state: str, window_s: float, requests_before: int, ops_before: int = 0) -> dict:
        ops = self.recorder.ops_written if self.recorder is not None else 0
        return {
            "worker_index": self.worker_index,
            "state": state,
            "stop_reason": self.stop_reason,
            "time_s": self.now_s(),
            "requests": self.requests,
            "requests_per_s": (self.requests - requests_before) / window_s if window_s > 0 else 0.0,
            "ops_per_s": (self.ops_recorded() - ops_before) / window_s if window_s > 0 else 0.0,
            "ops_written": ops,
            "arrivals_taken": self.arrivals_taken,
            "in_flight": self.in_flight,
            "outcomes": dict(self.outcomes),
            "errors_by_kind": dict(self.errors),
            "send_lag_ms_max_recent": self.lag_ms_max_window,
            "send_lag_ms_max": self.lag_ms_max,
            "sends_late_100ms": self.arrivals_late_100ms,
            "ops_max_reached": self.stop_reason == "ops_max",
        }


def _status_value(status: int, response, outcome):
    """A status read: 200 with {"status": ...} or 404 (the API never heard of the event) are definite answers."""
    if status == 404:
        return classify_status(200), "not_found"
    if status == 200:
        try:
            value = json.loads(response.content)["status"]
        except (ValueError, TypeError, KeyError):
            return Outcome("info", "unreadable_status"), None
        return outcome, str(value)
    return outcome, None


def _user_classes(config: LoadRunConfig, load: _Load | None):
    """Two Locust user classes bound to this process's load; the same names in master and workers
    (the master never instantiates them, so it passes no load)."""

    class _LedgerUser(FastHttpUser):
        abstract = True  # holds no task: Locust would inherit a base class's tasks into both models
        host = config.api_url
        wait_time = constant(0)
        network_timeout = config.request_timeout_s
        connection_timeout = config.request_timeout_s
        max_retries = 0  # every retry is ours, and recorded

        def on_start(self) -> None:
            self.process_name = load.new_process_name()

    class LedgerOpenUser(_LedgerUser):
        @task
        def arrival(self) -> None:
            arrival = load.next_arrival()
            if arrival is None:
                load.idle()
                return
            load.in_flight += 1
            try:
                load.submit(self, self.process_name, arrival.posting, arrival.intended_time_s)
            finally:
                load.in_flight -= 1

    class LedgerClosedUser(_LedgerUser):
        def on_start(self) -> None:
            super().on_start()
            self.next_intended_s = max(load.now_s(), config.start_offset_s)

        @task
        def arrival(self) -> None:
            if load.stopped.is_set() or self.next_intended_s >= load.load_end_s:
                load.idle()
                return
            load.in_flight += 1
            try:
                load.submit(self, self.process_name, next(load.postings), self.next_intended_s)
            finally:
                load.in_flight -= 1
            self.next_intended_s = load.now_s() + config.think_time_s

    return {LoadModel.OPEN: LedgerOpenUser, LoadModel.CLOSED: LedgerClosedUser}


def _run_loops(load: _Load) -> list:
    """Greenlets that flush the ops file every 250 ms and rewrite the progress file every 500 ms."""

    def flusher() -> None:
        while not load.stopped.is_set():
            load.stopped.wait(timeout=FLUSH_INTERVAL_S)
            if load.recorder is not None:
                load.recorder.flush()

    def reporter() -> None:
        path = progress_path(load.config.ops_dir, load.worker_index)
        requests_before, ops_before, last = 0, 0, time.monotonic()
        while not load.stopped.is_set():
            load.stopped.wait(timeout=PROGRESS_INTERVAL_S)
            now = time.monotonic()
            write_json_atomic(path, load.progress("running", now - last, requests_before, ops_before))
            load.lag_ms_max = max(load.lag_ms_max, load.lag_ms_max_window)
            load.lag_ms_max_window = 0.0
            requests_before, ops_before, last = load.requests, load.ops_recorded(), now

    return [gevent.spawn(flusher), gevent.spawn(reporter)]


def _install_signals(load: _Load) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, load.stop, "signal")


def _fail_on_user_errors(load: _Load, env: Environment) -> None:
    """An exception inside a user is a bug of this module, not a load outcome: Locust would log it
    and carry on, leaving a quietly thinner history; here it ends the run, named in the outcome."""

    def on_user_error(user_instance, exception, tb, **kwargs) -> None:
        log.error("a load user crashed; stopping the run", exc_info=(type(exception), exception, tb))
        load.stop(f"user_error: {type(exception).__name__}: {exception}")

    env.events.user_error.add_listener(on_user_error)


def _wait_until_done(load: _Load, poll_s: float = 0.05) -> None:
    parent = os.getppid()
    while not load.stopped.is_set():
        if load.done():
            load.stop("completed")
        elif time.monotonic() >= load.deadline:
            load.stop("duration_s_max")
        elif os.getppid() != parent:
            # The driver died without stopping us (kill -9): nobody will read on, so stop now.
            load.stop("parent_died")
        else:
            load.stopped.wait(timeout=poll_s)


def _finish(load: _Load, loops: list) -> None:
    load.stopped.set()
    gevent.joinall(loops, timeout=2.0)
    if load.recorder is not None:
        load.recorder.close()
    load.lag_ms_max = max(load.lag_ms_max, load.lag_ms_max_window)
    write_json_atomic(progress_path(load.config.ops_dir, load.worker_index), load.progress("finished", 0.0, 0))


def run_local(config: LoadRunConfig) -> int:
    load = _Load(config, 0)
    env = Environment(user_classes=[_user_classes(config, load)[config.model]], host=config.api_url, stop_timeout=0)
    runner = env.create_local_runner()
    _install_signals(load)
    _fail_on_user_errors(load, env)
    loops = _run_loops(load)
    write_json_atomic(progress_path(config.ops_dir, 0), load.progress("starting", 0.0, 0))
    # Spawn the whole pool at once: users sleep until their arrival, so early spawning costs nothing.
    runner.start(config.users, spawn_rate=config.users * 1000)
    try:
        _wait_until_done(load)
    finally:
        runner.quit()  # kills users still holding a request: each records info "client_stopped"
        _finish(load, loops)
    return _exit_code(load)


def run_worker(config: LoadRunConfig, worker_index: int, master_port: int) -> int:
    load = _Load(config, worker_index)
    env = Environment(user_classes=[_user_classes(config, load)[config.model]], host=config.api_url, stop_timeout=0)
    runner = env.create_worker_runner("127.0.0.1", master_port)
    _install_signals(load)
    _fail_on_user_errors(load, env)
    loops = _run_loops(load)
    write_json_atomic(progress_path(config.ops_dir, worker_index), load.progress("starting", 0.0, 0))

    # When the master quits it kills the runner greenlet: then this worker is done too.
    def watch_master() -> None:
        runner.greenlet.join()
        load.stop("master_quit")

    gevent.spawn(watch_master)
    try:
        _wait_until_done(load)
        if load.stop_reason in ("completed", "ops_max"):
            runner.send_message(DONE_MESSAGE, {"worker_index": worker_index, "reason": load.stop_reason})
            # Stay until the master quits (so Locust's shutdown is orderly), within the deadline.
            runner.greenlet.join(timeout=max(0.0, min(10.0, load.deadline - time.monotonic())))
    finally:
        runner.quit()
        _finish(load, loops)
    return _exit_code(load)


def _exit_code(load: _Load) -> int:
    """0 for an orderly stop (its reason is in the progress file), 1 when a user crashed."""
    return 1 if (load.stop_reason or "").startswith("user_error") else 0


def run_master(config: LoadRunConfig, port_file: Path) -> int:
    env = Environment(user_classes=[_user_classes(config, None)[config.model]], host=config.api_url, stop_timeout=0)
    runner = env.create_master_runner(master_bind_host="127.0.0.1", master_bind_port=0)
    stopped = gevent.event.Event()
    reason = {"value": None}
    done_workers: set = set()

    def stop(why: str) -> None:
        reason["value"] = reason["value"] or why
        stopped.set()

    def on_done(environment, msg, **kwargs) -> None:
        done_workers.add(msg.data["worker_index"])
        if len(done_workers) >= config.workers:
            stop("completed")

    runner.register_message(DONE_MESSAGE, on_done)
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop, "signal")
    write_json_atomic(port_file, {"port": runner.server.port})
    deadline = config.t0_monotonic + config.run_s_max
    connect_deadline = min(deadline, time.monotonic() + WORKERS_CONNECT_S_MAX)
    code = 0
    try:
        while runner.worker_count < config.workers and not stopped.is_set():
            if time.monotonic() >= connect_deadline:
                log.error(
                    "only %d of %d workers connected within %.0f s",
                    runner.worker_count,
                    config.workers,
                    WORKERS_CONNECT_S_MAX,
                )
                stop("workers_missing")
                code = 3
                break
            stopped.wait(timeout=0.05)
        if not stopped.is_set():
            total = config.users * config.workers
            runner.start(total, spawn_rate=total * 1000)
            parent = os.getppid()
            while not stopped.is_set() and time.monotonic() < deadline:
                if os.getppid() != parent:
                    stop("parent_died")
                elif runner.worker_count == 0:
                    stop("workers_gone")  # every worker quit (or died) without saying it was done
                else:
                    stopped.wait(timeout=0.1)
            stop("duration_s_max")
    finally:
        runner.quit()
        write_json_atomic(
            Path(port_file).with_name("master.json"),
            {"stop_reason": reason["value"], "workers_done": sorted(done_workers)},
        )
    return code


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="a LoadRunConfig as JSON (driver-written)")
    parser.add_argument("--role", choices=("local", "master", "worker"), default="local")
    parser.add_argument("--worker-index", type=int, default=0)
    parser.add_argument("--master-port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="master: where to write the port workers connect to")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The whole pool is spawned at once on purpose (users sleep until their arrival); hush that warning.
    logging.getLogger("locust.runners").addFilter(lambda record: "spawn rate is very high" not in record.getMessage())
    try:
        config = LoadRunConfig.from_json(json.loads(args.config.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"--config {args.config}: {exc}", file=sys.stderr)
        return 2
    if args.role == "master":
        if args.port_file is None:
            print("--port-file: required for --role master", file=sys.stderr)
            return 2
        return run_master(config, args.port_file)
    if args.role == "worker":
        if not 0 <= args.worker_index < config.workers or not 0 < args.master_port < 65536:
            print(f"--worker-index must be in [0, {config.workers}) and --master-port in [1, 65535]", file=sys.stderr)
            return 2
        return run_worker(config, args.worker_index, args.master_port)
    return run_local(config)


if __name__ == "__main__":
    sys.exit(main())
