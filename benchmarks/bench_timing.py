"""Benchmark: the timing figures the tests no longer assert, each beside an anchor measured in the same run.

The tests check only orders and bounds that hold on any machine however busy
(a fault op is recorded after its schedule and before the next one is due, a
latency toxic adds at least its latency, a retry waits at least Retry-After).
How late, how fast and how long are figures, printed here, each with the
anchor it should be read against, measured in the same invocation:

- timer lateness of this machine right now (`time.sleep` overshoot): the anchor
  for every "how late" figure below;
- Redis PING direct, through a Toxiproxy proxy, and with a 200 ms latency toxic
  (anchor: the direct ping; the toxic's added delay as a ratio of 200 ms);
- the Locust child's send lag on a micro-burst, and its retry lateness after
  Retry-After (anchor: timer lateness);
- the reference API's 503 when its Redis goes silent (anchor: its 300 ms
  Redis timeout, as a ratio), and how long SIGTERM takes to stop it;
- the nemesis' lateness on a short run with a toxic and a kill (anchor: timer
  lateness).

    python benchmarks/bench_timing.py [--skip-run]

Prints a table and exits 0: the figures are the result, nothing is asserted
(a busy machine must not turn a benchmark into a failure).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.faults import Direction, ToxicType  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.faults.toxiproxy_adapter import ToxiproxyAdapter  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.driver import LoadRunConfig, RetryPolicy, run_load  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.profile import MicroBurst, Steady  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.stub_api import StubBehaviour, start_stub  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.stack import LocalStack, StackConfig  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.stack.ports import free_port  # noqa: E402 - after the sys.path line that makes the checkout importable

SHORT_RUN = {
    "name": "bench-timing",
    "seed": 5,
    "duration_s_max": 90,
    "system": {"consumers": 2, "partitions": 4},
    "load": {"profile": {"kind": "steady", "base_rate_per_s": 100, "duration_s": 12}, "generator": {"accounts": 200}},
    "faults": [
        {
            "kind": "toxic",
            "link": "consumer_redis",
            "toxic": "latency",
            "attributes": {"latency": 100},
            "start_s": 3,
            "duration_s": 3,
        },
        {"kind": "process", "action": "kill", "target": "one_consumer", "start_s": 7, "duration_s": 2},
    ],
    "phases": {"warmup_s": 2, "drain_s_max": 30},
}


def _ms(values_s) -> str:
    array = np.asarray(values_s, dtype=float) * 1000.0
    if array.size == 0:
        return "n/a"
    p50, p99 = np.percentile(array, [50, 99])
    return f"p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  max {array.max():8.2f} ms  (n={array.size})"


def timer_lateness_s(samples: int = 100, sleep_s: float = 0.01) -> np.ndarray:
    late = []
    for _ in range(samples):
        began = time.perf_counter()
        time.sleep(sleep_s)
        late.append(time.perf_counter() - began - sleep_s)
    return np.array(late)


def _ping_s(client, count: int = 20) -> np.ndarray:
    out = []
    for _ in range(count):
        began = time.perf_counter()
        client.ping()
        out.append(time.perf_counter() - began)
    return np.array(out)


def ping_figures(services) -> None:
    import redis

    proxies = ToxiproxyAdapter(services.toxiproxy_url)
    port = urlparse(services.redis_url).port
    proxy = proxies.create_proxy("bench_redis", f"127.0.0.1:{port}")
    try:
        direct = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        through = redis.Redis(host="127.0.0.1", port=proxy.listen_port, socket_timeout=5)
        direct_s, through_s = _ping_s(direct), _ping_s(through)
        proxies.add_toxic("bench_redis", ToxicType.LATENCY, {"latency": 200}, Direction.DOWNSTREAM)
        toxic_s = _ping_s(through, 5)
        added_ratio = (np.median(toxic_s) - np.median(through_s)) / 0.200
        print(f"  redis ping direct (anchor)    {_ms(direct_s)}")
        print(
            f"  through toxiproxy             {_ms(through_s)}  ratio to direct {np.median(through_s) / np.median(direct_s):.1f}x"
        )
        print(f"  with a 200 ms latency toxic   {_ms(toxic_s)}  added / 200 ms = {added_ratio:.3f}")
    finally:
        proxies.delete_proxy("bench_redis")


def load_figures(tmp: Path, anchor_p50_s: float) -> None:
    with start_stub(StubBehaviour(), duration_s_max=120) as stub:
        config = LoadRunConfig(
            api_url=stub.url,
            profile=MicroBurst(base_rate_per_s=100, duration_s=4.0),
            seed=1,
            t0_monotonic=time.monotonic(),
            start_offset_s=1.5,
            ops_dir=tmp / "burst",
            users=100,
            request_timeout_s=2.0,
        )
        ops = run_load(config).ops
    sent = ops[(ops["type"] == "invoke") & (ops["attempt"] == 1) & (ops["f"] == "submit")]
    lag_s = (sent["time_s"] - sent["intended_time_s"]).to_numpy()
    print(f"  micro-burst send lag          {_ms(lag_s)}  p50 / timer p50 = {np.median(lag_s) / anchor_p50_s:.1f}x")

    behaviour = StubBehaviour(reject_status=429, reject_first_attempts=2, retry_after_s=0.3)
    with start_stub(behaviour, duration_s_max=120) as stub:
        config = LoadRunConfig(
            api_url=stub.url,
            profile=Steady(base_rate_per_s=20, duration_s=1.0),
            seed=7,
            t0_monotonic=time.monotonic(),
            start_offset_s=1.5,
            ops_dir=tmp / "retry",
            users=50,
            request_timeout_s=2.0,
            retry=RetryPolicy(),
        )
        ops = run_load(config).ops
    invokes = ops[ops["type"] == "invoke"].set_index("op_id")
    done = ops[ops["type"] != "invoke"].set_index("op_id")["time_s"].rename("time_s_done")
    joined = invokes.join(done).sort_values("time_s")
    late = []
    for _, tries in joined[joined["f"] == "submit"].groupby("event_id"):
        gaps = tries["time_s"].to_numpy()[1:] - tries["time_s_done"].to_numpy()[:-1]
        late.extend(gaps - 0.3)
    print(f"  retry sent after Retry-After  {_ms(late)}  (lateness beyond 0.3 s)")


def api_figures(services, tmp: Path) -> None:
    proxies = ToxiproxyAdapter(services.toxiproxy_url)
    proxy = proxies.create_proxy("bench_api_redis", f"127.0.0.1:{urlparse(services.redis_url).port}")
    port = free_port()
    log = open(tmp / "api.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reference_system",
            "api",
            "--port",
            str(port),
            "--redis-url",
            f"redis://127.0.0.1:{proxy.listen_port}/0",
            "--postgres-url",
            services.postgres_url,
            "--redis-timeout-ms",
            "300",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        proxies.add_toxic("bench_api_redis", ToxicType.TIMEOUT, {"timeout": 0})
        took = []
        with httpx.Client(timeout=10) as client:
            for i in range(10):
                body = {
                    "event_id": f"00000000-0000-4000-8000-{i:012d}",
                    "key": "k",
                    "debit_account": "a",
                    "credit_account": "b",
                    "amount_minor": 1,
                    "currency": "EUR",
                }
                began = time.perf_counter()
                status = client.post(f"{url}/v1/events", json=body).status_code
                took.append(time.perf_counter() - began)
                if status != 503:
                    print(f"  (answer {status}, not 503)")
        print(f"  503 with Redis silent         {_ms(took)}  p50 / 300 ms timeout = {np.median(took) / 0.3:.2f}")
        proxies.remove_toxic("bench_api_redis", proxies.toxics("bench_api_redis")[0].name)
        began = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        print(
            f"  API stop on SIGTERM           {(time.perf_counter() - began) * 1000:8.1f} ms (exit {proc.returncode})"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
        proxies.delete_proxy("bench_api_redis")


def nemesis_figures(tmp: Path, anchor_p50_s: float) -> None:
    from harness.history.store import load_history
    from harness.run.engine import RunOptions, run_scenario
    from harness.scenario import scenario_from_mapping

    outcome = run_scenario(scenario_from_mapping(SHORT_RUN), RunOptions(reports_dir=tmp, run_id="timing"))
    ops = load_history(outcome.run_dir).ops
    nemesis = ops[ops["process"] == "nemesis"]
    late_s = (nemesis["time_s"] - nemesis["intended_time_s"]).to_numpy()
    print(f"  nemesis op after its schedule {_ms(late_s)}  p50 / timer p50 = {np.median(late_s) / anchor_p50_s:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-run", action="store_true", help="leave out the short scenario run (nemesis figures)")
    args = parser.parse_args()
    anchor = timer_lateness_s()
    anchor_p50_s = max(float(np.median(anchor)), 1e-6)
    print("timing figures (anchors measured in this run)")
    print(f"  timer lateness (anchor)       {_ms(anchor)}  (time.sleep(10 ms) overshoot)")
    with tempfile.TemporaryDirectory(prefix="bench-timing-") as folder:
        tmp = Path(folder)
        load_figures(tmp, anchor_p50_s)
        with LocalStack(StackConfig(run_dir=tmp / "stack")) as services:
            ping_figures(services)
            api_figures(services, tmp)
        if not args.skip_run:
            nemesis_figures(tmp, anchor_p50_s)
    print(f"  timer lateness again          {_ms(timer_lateness_s())}  (did the machine's load change?)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
