"""Benchmark of the reference system: bare HTTP->XADD ceiling, sustained end-to-end rate, ingest p99 at half rate.

Run: `cd /work/main && python benchmarks/bench_reference_system.py` (about 90 s; prints figures, writes nothing
outside /tmp/lc-refsys). All phases run in the same process against the same fresh stack, so the figures are
comparable: wrk (C, one thread) drives HTTP; the API, 2 consumers, Redis and PostgreSQL share the machine.

Phases:
1. ceiling: a bare raw-ASGI endpoint on the same uvicorn setup that only XADDs the body (no validation,
   no idempotency) under wrk at full speed;
2. saturation: the reference system (API + 2 consumers) under wrk at full speed: accepted and posted rates;
3. sustained: wrk paced at the measured consumer rate; the backlog must not grow;
4. half rate: wrk paced at half the sustained rate; ingest latency percentiles;
5. exactly-once audit after the drain: journal rows == accepted events, no duplicate id, replay == projection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path("/tmp/lc-refsys/bench")
CONNECTIONS = 64
WRK_THREADS = 1

WRK_SCRIPT = r"""
local counter = 0
local nonce = 0
local delay_ms = 0
local statuses = {}
init = function(args)
  nonce = tonumber(args[1])
  delay_ms = tonumber(args[2])
  math.randomseed(nonce)
end
request = function()
  counter = counter + 1
  local id = string.format("%08x-%04x-4000-8000-%012x", nonce, math.random(0, 65535), counter)
  local body = '{"event_id":"' .. id .. '","key":"k' .. (counter % 997) .. '","debit_account":"a' .. (counter % 101)
    .. '","credit_account":"b' .. (counter % 89) .. '","amount_minor":' .. math.random(1, 100000) .. ',"currency":"EUR"}'
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
if tonumber(os.getenv("WRK_DELAY_MS") or "0") > 0 then
  delay = function() return delay_ms end
end
done = function(summary, latency, requests)
  io.write(string.format("LAT_MS p50=%.3f p90=%.3f p99=%.3f max=%.3f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("TOTALS requests=%d non2xx=%d duration_s=%.3f\n",
    summary.requests, summary.errors.status, summary.duration / 1e6))
end
"""


# ----- the bare endpoint (phase 1) ------------------------------------------------------------------


def bare_server(port: int, redis_url: str) -> None:
    """Raw ASGI: read the body, XADD it, answer 202. The ceiling any Python HTTP->Redis service can reach here."""
    import redis.asyncio as aioredis
    import uvicorn

    client = aioredis.from_url(redis_url, socket_timeout=1)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await client.xadd("bare:stream", {"b": body}, maxlen=100_000, approximate=True)
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status":"queued"}'})

    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


# ----- helpers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def wrk(url: str, duration_s: int, nonce: int, rate_per_s: float = 0.0, connections: int = CONNECTIONS) -> dict:
    """Run wrk; paced when rate_per_s > 0 (each connection waits connections/rate between requests)."""
    script = Path(tempfile.mkdtemp(dir=ROOT)) / "post.lua"
    script.write_text(WRK_SCRIPT)
    delay_ms = int(1000 * connections / rate_per_s) if rate_per_s else 0
    env = {**os.environ, "WRK_DELAY_MS": str(delay_ms)}
    cmd = [
        "wrk",
        "-t",
        str(WRK_THREADS),
        "-c",
        str(connections),
        "-d",
        f"{duration_s}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(nonce),
        str(delay_ms),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 30).stdout
    lat = dict(re.findall(r"(p50|p90|p99|max)=([\d.]+)", out.split("LAT_MS", 1)[1]))
    totals = dict(re.findall(r"(requests|non2xx|duration_s)=([\d.]+)", out.split("TOTALS", 1)[1]))
    duration = float(totals["duration_s"])
    return {
        "rate_per_s": int(totals["requests"]) / duration,
        "ok_rate_per_s": (int(totals["requests"]) - int(totals["non2xx"])) / duration,
        "non2xx": int(totals["non2xx"]),
        "latency_ms": {k: float(v) for k, v in lat.items()},
        "duration_s": duration,
    }


def paced(url: str, duration_s: int, nonce: int, rate_per_s: float) -> dict:
    """wrk waits between a response and the next request, so the latency adds to the pause; calibrate the
    pause on two short runs (rate = connections / (pause + latency)) before the measured one."""
    pause_ms = 1000 * CONNECTIONS / rate_per_s
    for attempt in range(2):
        probe = wrk(url, 3, nonce=nonce * 100 + attempt, rate_per_s=CONNECTIONS * 1000 / max(pause_ms, 1))
        latency_ms = max(0.0, 1000 * CONNECTIONS / probe["rate_per_s"] - pause_ms)
        pause_ms = max(1.0, 1000 * CONNECTIONS / rate_per_s - latency_ms)
    return wrk(url, duration_s, nonce=nonce, rate_per_s=CONNECTIONS * 1000 / pause_ms)


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int, tree: bool = False) -> float:
    """CPU seconds used by pid, and by all its descendants when `tree` (PostgreSQL backends)."""

    def stat(p: int) -> list[str]:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return []

    pids = {pid}
    if tree:
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = stat(int(entry.name))
                if fields:
                    parents[int(entry.name)] = int(fields[1])
        grew = True
        while grew:
            found = {p for p, parent in parents.items() if parent in pids} - pids
            grew = bool(found)
            pids |= found
    total = 0.0
    for p in pids:
        fields = stat(p)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def metrics(base: str) -> dict[str, float]:
    import httpx

    text = httpx.get(base + "/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def backlog(m: dict[str, float]) -> float:
    return sum(v for k, v in m.items() if k.startswith("ledger_backlog_events"))


def accepted(m: dict[str, float]) -> float:
    return m['ledger_ingest_requests_total{outcome="accepted"}']


def posted(m: dict[str, float]) -> float:
    return m["ledger_posted_events_total"]


def wait_drained(base: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = metrics(base)
        if backlog(m) == 0 and m.get("ledger_consumer_inflight_events", 0) == 0:
            return
        time.sleep(0.25)
    raise RuntimeError("the backlog did not drain")


def sql(url: str, query: str) -> list:
    import asyncpg

    async def run():
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetch(query, timeout=60)
        finally:
            await conn.close()

    return asyncio.run(run())


# ----- the run --------------------------------------------------------------------------------------


def main() -> int:
    from harness.stack import LocalStack, StackConfig

    ROOT.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    logs = ROOT / "logs"
    logs.mkdir(exist_ok=True)

    def spawn(name: str, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            argv, stdout=open(logs / f"{name}.log", "wb"), stderr=subprocess.STDOUT, cwd="/work/main"
        )
        procs.append(proc)
        return proc

    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    from redis.utils import HIREDIS_AVAILABLE

    print(
        f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other work on the machine skews every figure); "
        f"redis-py reply parser: {'hiredis' if HIREDIS_AVAILABLE else 'pure Python (pip install hiredis: faster)'}"
    )
    with LocalStack(StackConfig(run_dir=ROOT / f"stack-{os.getpid()}", toxiproxy=False)) as services:
        try:
            # Phase 1: ceiling.
            port = free_port()
            bare = spawn("bare", [sys.executable, __file__, "--bare-server", str(port), services.redis_url])
            wait_http(f"http://127.0.0.1:{port}/")
            wrk(f"http://127.0.0.1:{port}/", 2, nonce=1)  # warm-up
            cpu_before = cpu_s(bare.pid)
            ceiling = wrk(f"http://127.0.0.1:{port}/", 10, nonce=2)
            bare_us = 1e6 * (cpu_s(bare.pid) - cpu_before) / max(1, ceiling["ok_rate_per_s"] * ceiling["duration_s"])
            stop(bare)
            print(
                f"1 ceiling (bare HTTP->XADD, {CONNECTIONS} connections): {ceiling['ok_rate_per_s']:,.0f} req/s, "
                f"p99 {ceiling['latency_ms']['p99']:.1f} ms, {bare_us:.0f} CPU us per request"
            )

            # Phase 2: the reference system at full speed.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            common = [
                "--redis-url",
                services.redis_url,
                "--postgres-url",
                services.postgres_url,
                "--high-water-mark",
                "200000",
            ]
            spawn("api", [sys.executable, "-m", "reference_system", "api", "--port", str(port), *common])
            wait_http(base + "/v1/health")
            for i in (1, 2):
                spawn(f"c{i}", [sys.executable, "-m", "reference_system", "consumer", "--name", f"c{i}", *common])
            time.sleep(2)  # consumers import and take their leases (setup, not a measurement)
            wrk(base + "/v1/events", 2, nonce=3)
            wait_drained(base)
            watched = {
                "api": procs[-3].pid,
                "c1": procs[-2].pid,
                "c2": procs[-1].pid,
                "redis": services.pids[0],
                "postgres": services.pids[1],
            }
            cpu_before = {n: cpu_s(p, n == "postgres") for n, p in watched.items()}
            before = metrics(base)
            t0 = time.monotonic()
            full = wrk(base + "/v1/events", 15, nonce=4)
            after = metrics(base)
            span = time.monotonic() - t0
            cpu = {n: (cpu_s(p, n == "postgres") - cpu_before[n]) / span for n, p in watched.items()}
            accepted_rate = (accepted(after) - accepted(before)) / span
            posted_rate = (posted(after) - posted(before)) / span
            print(
                f"2 saturation: offered {full['rate_per_s']:,.0f} req/s, accepted {accepted_rate:,.0f}/s, "
                f"posted {posted_rate:,.0f}/s, backlog {backlog(before):.0f} -> {backlog(after):.0f}, "
                f"p99 {full['latency_ms']['p99']:.1f} ms"
            )
            print(
                "  CPU cores used: "
                + ", ".join(f"{n} {v:.2f}" for n, v in cpu.items())
                + "; CPU us per event: "
                + ", ".join(f"{n} {1e6 * v / max(accepted_rate, 1):.0f}" for n, v in cpu.items())
            )
            sat_growth = backlog(after) - backlog(before)
            # Saturation counts as sustained when the backlog did not grow (beyond one batch per partition).
            sustained_sat = accepted_rate - sat_growth / span if sat_growth <= 4 * 256 else 0.0
            wait_drained(base)

            # Phase 3: paced at what the consumers kept up with.
            target = min(accepted_rate, posted_rate)
            wait_drained(base)
            before = metrics(base)
            t0 = time.monotonic()
            paced_run = paced(base + "/v1/events", 15, nonce=5, rate_per_s=target)
            after = metrics(base)
            span = time.monotonic() - t0
            growth = backlog(after) - backlog(before)
            # Events that went all the way through: accepted in the window minus what the backlog kept
            # (the posted counter lags by up to one 0.5 s publishing period, so it is not used here).
            sustained_paced = (accepted(after) - accepted(before) - growth) / span if growth <= 4 * 256 else 0.0
            sustained = max(sustained_sat, sustained_paced)
            print(
                f"3 sustained: paced at {target:,.0f}/s -> offered {paced_run['rate_per_s']:,.0f}/s, "
                f"through {sustained_paced:,.0f}/s, backlog {backlog(before):.0f} -> {backlog(after):.0f} "
                f"(growth {growth:+.0f}), ingest p99 {paced_run['latency_ms']['p99']:.1f} ms"
            )
            wait_drained(base)

            # Phase 4: half rate latency.
            half = paced(base + "/v1/events", 10, nonce=6, rate_per_s=sustained / 2)
            lat = half["latency_ms"]
            print(
                f"4 half rate: offered {half['rate_per_s']:,.0f}/s, ingest latency p50 {lat['p50']:.2f} ms, "
                f"p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms, max {lat['max']:.1f} ms"
            )
            wait_drained(base)

            # Phase 5: audit.
            time.sleep(1.5)  # consumers publish their counters every 0.5 s
            final = metrics(base)
            rows = sql(services.postgres_url, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM journal")[0]
            drift = sql(services.postgres_url, "SELECT count(*) AS n FROM ledger_projection_drift()")[0]["n"]
            print(
                f"5 audit: accepted {accepted(final):,.0f}, journal rows {rows['n']:,}, distinct ids {rows['d']:,}, "
                f"projection drift rows {drift}"
            )
            share = sustained / ceiling["ok_rate_per_s"]
            print(
                f"\nsustained end-to-end rate = {sustained:,.0f} events/s "
                f"(the better of saturation {sustained_sat:,.0f}/s and paced {sustained_paced:,.0f}/s, "
                f"each counted only when the backlog did not grow)"
            )
            print(
                f"sustained/ceiling = {share:.0%} (goal >= 80%); half-rate ingest p99 = {lat['p99']:.2f} ms "
                f"(goal <= 20 ms); load average after: {os.getloadavg()[0]:.2f}"
            )
            ok = rows["n"] == rows["d"] == int(accepted(final)) and drift == 0
            return 0 if ok else 1
        finally:
            for proc in reversed(procs):
                stop(proc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "REDIS_URL"))
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1])
        sys.exit(0)
    sys.exit(main())
