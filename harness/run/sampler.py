"""The metrics sampler: every interval, the backlog read straight from Redis and the API's /metrics.

Why straight from Redis (not through a proxy, not only from the API): during a
fault the API may be the thing that is down; the backlog must still be measured.
Samples go to a JSON-lines file as they come (a crash leaves them readable) and
are bounded in count.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import redis

__all__ = ["MetricsSampler", "parse_prometheus", "SAMPLES_MAX"]

SAMPLES_MAX = 5_000_000
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# The families worth a time series; histogram buckets stay out (their _sum/_count come in).
_KEEP_PREFIX = "ledger_"


def parse_prometheus(text: str) -> list[tuple]:
    """(name, labels dict, value) for each sample line of Prometheus text; buckets skipped."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2) or "", match.group(3)
        if name.endswith("_bucket") or not name.startswith(_KEEP_PREFIX):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        out.append((name, dict(_LABEL.findall(labels)), number))
    return out


class MetricsSampler:
    """A thread that samples until stopped. `latest` holds the last figures for the progress display."""

    def __init__(
        self,
        redis_url: str,
        partitions: int,
        api_port: int | None,
        out_path: Path,
        clock_s: Callable[[], float],
        interval_s: float = 0.25,
        timeout_s: float = 0.5,
    ) -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.partitions = partitions
        self.api_port = api_port
        self.out_path = Path(out_path)
        self.clock_s = clock_s
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.latest: dict[str, float] = {}
        self.samples = 0
        self.rounds = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backlog(self) -> dict[int, int] | None:
        """Events not yet acknowledged per partition (consumer-group lag + pending); None if Redis is unreachable."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for partition in range(self.partitions):
                pipe.xinfo_groups(f"ledger:p:{partition}")
            answers = pipe.execute(raise_on_error=False)
        except redis.RedisError:
            return None
        backlog = {}
        for partition, groups in enumerate(answers):
            if isinstance(groups, Exception) or not groups:
                backlog[partition] = 0  # the stream does not exist yet: nothing was enqueued there
                continue
            group = next((g for g in groups if _text(g.get("name")) == "ledger"), groups[0])
            lag = group.get("lag")
            pending = int(group.get("pending") or 0)
            backlog[partition] = pending + (int(lag) if lag is not None else 0)
        return backlog

    def _scrape(self) -> list[tuple]:
        if self.api_port is None:
            return []
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/metrics", timeout=self.timeout_s) as resp:
                return parse_prometheus(resp.read().decode("utf-8", errors="replace"))
        except (OSError, ValueError):
            self.errors += 1
            return []

    def sample_once(self, handle: TextIO) -> None:
        now_s = self.clock_s()
        self.rounds += 1
        rows = []
        backlog = self.backlog()
        if backlog is not None:
            for partition, value in backlog.items():
                rows.append(
                    {"time_s": now_s, "metric": "ledger_backlog_events", "partition": partition, "value": value}
                )
            rows.append(
                {
                    "time_s": now_s,
                    "metric": "ledger_backlog_events_total",
                    "partition": None,
                    "value": sum(backlog.values()),
                }
            )
            self.latest["backlog"] = float(sum(backlog.values()))
        else:
            self.errors += 1
        for name, labels, value in self._scrape():
            if name == "ledger_backlog_events":
                continue  # measured directly above
            partition = labels.get("partition")
            metric = name
            extra = {k: v for k, v in labels.items() if k != "partition"}
            if extra:
                metric += "{" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "}"
            rows.append(
                {
                    "time_s": now_s,
                    "metric": metric,
                    "partition": int(partition) if partition and partition.isdigit() else None,
                    "value": value,
                }
            )
            if name in ("ledger_posted_events_total", "ledger_dead_letters_total"):
                self.latest[name] = value
            if name == "ledger_breaker_open":
                self.latest["breaker_open"] = max(self.latest.get("breaker_open", 0.0), value) if extra else value
        for row in rows:
            row["round"] = self.rounds  # one round: its samples are summed together (backlog across partitions)
            handle.write(json.dumps(row) + "\n")
        handle.flush()
        self.samples += len(rows)

    def _loop(self) -> None:
        with open(self.out_path, "a", encoding="utf-8") as handle:
            while not self._stop.is_set() and self.samples < SAMPLES_MAX:
                began = self.clock_s()
                self.latest.pop("breaker_open", None)
                self.sample_once(handle)
                self._stop.wait(max(0.0, self.interval_s - (self.clock_s() - began)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="metrics-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._redis.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
