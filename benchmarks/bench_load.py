"""Benchmark: requests per second one Locust load process sends with history recording on, off, and wrk's rate.

All three run in one invocation against the same fast local endpoint (the stub
ingest API in `fast` mode: 202 to every POST without reading the body, in its
own process), so the figures are comparable. Locust runs the closed model with
zero think time: every user sends as fast as answers come back, which is the
most one process can send. The goal is that recording costs at most 20% of
Locust's raw rate (on / off >= 0.80).

    python benchmarks/bench_load.py [--duration-s 5] [--users 50] [--repeats 2]

Prints a table and exits 0 (the figures are the result; nothing is asserted
here, so a busy machine does not turn a benchmark into a failure).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.load.driver import LoadRunConfig, run_load  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.generator import GeneratorConfig  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.profile import Steady  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.stub_api import StubBehaviour, start_stub  # noqa: E402 - after the sys.path line that makes the checkout importable

_WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event_id":"6f1c2a4e-1b7d-4c1e-9a51-3f0f3c1d2e4b","key":"acct-000001","debit_account":"acct-000001","credit_account":"acct-000002","amount_minor":1250,"currency":"EUR"}'
"""


def locust_rate(url: str, work_dir: Path, record: bool, users: int, duration_s: float) -> dict:
    ops_dir = Path(tempfile.mkdtemp(prefix=f"bench-{'on' if record else 'off'}-", dir=work_dir))
    config = LoadRunConfig(
        api_url=url,
        profile=Steady(base_rate_per_s=1, duration_s=duration_s),
        t0_monotonic=time.monotonic(),
        start_offset_s=1.5,
        ops_dir=ops_dir,
        model="closed",
        users=users,
        think_time_s=0.0,
        record=record,
        request_timeout_s=5.0,
        generator=GeneratorConfig(),
        duration_s_max=duration_s + 30,
    )
    result = run_load(config)
    final = result.progress[0] or {}
    requests = int(final.get("requests", 0))
    row = {
        "mode": f"locust, recording {'on' if record else 'off'}",
        "requests": requests,
        "requests_per_s": requests / duration_s,
        "ops": len(result.ops),
        "send_lag_ms_max": final.get("send_lag_ms_max"),
        "complete": result.complete,
    }
    shutil.rmtree(ops_dir, ignore_errors=True)
    return row


def open_model_lag(url: str, work_dir: Path, rate_per_s: float, users: int, duration_s: float) -> dict:
    """The open model at a fixed rate, recording on: how late do arrivals go out as the rate climbs?"""
    ops_dir = Path(tempfile.mkdtemp(prefix=f"bench-open-{rate_per_s:g}-", dir=work_dir))
    config = LoadRunConfig(
        api_url=url,
        profile=Steady(base_rate_per_s=rate_per_s, duration_s=duration_s),
        t0_monotonic=time.monotonic(),
        start_offset_s=1.5,
        ops_dir=ops_dir,
        users=users,
        request_timeout_s=5.0,
        duration_s_max=duration_s + 30,
    )
    result = run_load(config)
    ops = result.ops
    sent = ops[(ops["type"] == "invoke") & (ops["attempt"] == 1)]
    lag_ms = (sent["time_s"] - sent["intended_time_s"]).to_numpy() * 1000
    shutil.rmtree(ops_dir, ignore_errors=True)
    span_s = float(sent["time_s"].max() - sent["time_s"].min()) if len(sent) > 1 else float("nan")
    return {
        "rate_per_s": rate_per_s,
        "sent": len(sent),
        "sent_per_s": len(sent) / span_s,
        "lag_ms_p50": float(np.percentile(lag_ms, 50)),
        "lag_ms_p99": float(np.percentile(lag_ms, 99)),
        "lag_ms_max": float(lag_ms.max()),
    }


def recording_cpu_us_per_request(work_dir: Path, requests: int = 50_000) -> float:
    """CPU time of recording one request (invoke + completion dicts, JSON encoding, the write),
    measured in this process without the network: the cost the on/off comparison sees through noise."""
    from harness.load.recorder import OpsRecorder

    recorder = OpsRecorder(work_dir / "cpu-ops.jsonl", ops_max=2 * requests)
    body = {
        "key": "acct-000445",
        "debit_account": "acct-000445",
        "credit_account": "acct-000393",
        "amount_minor": 388201,
        "currency": "GBP",
    }
    started = time.process_time()
    for i in range(requests):
        recorder.reserve(2)
        op = {
            "time_s": i * 0.001,
            "process": "client-0-7",
            "type": "invoke",
            "f": "submit",
            "op_id": i,
            "event_id": "f5345ea6-352c-4c4e-9c85-ce9d171a75fb",
            "intended_time_s": i * 0.001,
            "attempt": 1,
        }
        for name in ("key", "debit_account", "credit_account", "amount_minor", "currency"):
            op[name] = body[name]
        op["duplicate"] = False
        op["valid_body"] = True
        recorder.record(op)
        recorder.record(
            {
                "time_s": i * 0.001 + 0.002,
                "process": "client-0-7",
                "type": "ok",
                "f": "submit",
                "op_id": i,
                "event_id": "f5345ea6-352c-4c4e-9c85-ce9d171a75fb",
                "latency_ms": 2.0,
                "status_code": 202,
            }
        )
        if i % 1000 == 999:  # about what 250 ms of a few thousand requests per second flushes at once
            recorder.flush()
    recorder.close()
    elapsed_s = time.process_time() - started
    (work_dir / "cpu-ops.jsonl").unlink()
    return elapsed_s / requests * 1e6


def wrk_rate(url: str, work_dir: Path, connections: int, duration_s: float) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"mode": "wrk (not installed)", "requests_per_s": float("nan")}
    script = work_dir / "post.lua"
    script.write_text(_WRK_SCRIPT)
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "-s", str(script), f"{url}/v1/events"],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
    )
    match = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
    rate = float(match.group(1)) if match else float("nan")
    return {"mode": f"wrk -t1 -c{connections}", "requests_per_s": rate}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=50, help="Locust users (and wrk connections)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per Locust mode, alternated; the median is kept")
    parser.add_argument(
        "--open-rates", default="1000,2000,3000", help="open-model rates (per s) to measure send lag at; empty to skip"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="lc-bench-load-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    runs: dict = {True: [], False: []}
    with start_stub(StubBehaviour(fast=True), duration_s_max=600) as stub:
        for _ in range(args.repeats):
            for record in (False, True):  # alternated, so machine noise hits both alike
                runs[record].append(locust_rate(stub.url, work_dir, record, args.users, args.duration_s))
        wrk = wrk_rate(stub.url, work_dir, args.users, args.duration_s)
        record_us = recording_cpu_us_per_request(work_dir)
        rates = [float(r) for r in args.open_rates.split(",") if r.strip()]
        open_rows = [open_model_lag(stub.url, work_dir, rate, 200, min(args.duration_s, 3.0)) for rate in rates]
    off = statistics.median(r["requests_per_s"] for r in runs[False])
    on = statistics.median(r["requests_per_s"] for r in runs[True])
    print(
        f"endpoint: stub ingest API (fast mode), {args.users} users/connections, {args.duration_s:g} s per run, "
        f"median of {args.repeats}"
    )
    print(f"{'mode':32} {'requests/s':>12}   runs")
    print(f"{'locust, recording off':32} {off:12.0f}   " + ", ".join(f"{r['requests_per_s']:.0f}" for r in runs[False]))
    print(f"{'locust, recording on':32} {on:12.0f}   " + ", ".join(f"{r['requests_per_s']:.0f}" for r in runs[True]))
    print(f"{wrk['mode']:32} {wrk['requests_per_s']:12.0f}")
    ratio = on / off if off else float("nan")
    print(
        f"recording on / off: {ratio:.2f} (goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
        f"locust off / wrk: {off / wrk['requests_per_s']:.3f}"
    )
    request_us = 1e6 / off if off else float("nan")
    print(
        f"recording CPU per request: {record_us:.1f} us, against {request_us:.0f} us per request at the off rate "
        f"({record_us / request_us:.1%} of it)"
    )
    if open_rows:
        print("open model, one local process, 200 users, recording on:")
        print(f"{'rate/s asked':>14} {'sent/s':>10} {'lag ms p50':>11} {'p99':>9} {'max':>9}")
        for row in open_rows:
            print(
                f"{row['rate_per_s']:14.0f} {row['sent_per_s']:10.0f} {row['lag_ms_p50']:11.2f} "
                f"{row['lag_ms_p99']:9.2f} {row['lag_ms_max']:9.2f}"
            )
    print(
        json.dumps(
            {
                "locust_off_rps": off,
                "locust_on_rps": on,
                "wrk_rps": wrk["requests_per_s"],
                "on_over_off": ratio,
                "recording_cpu_us_per_request": record_us,
            }
        )
    )
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
