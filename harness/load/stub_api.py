"""A small real HTTP stand-in for the ledger ingest API, to exercise the load driver end to end.

Why it exists: the driver's retry, timeout, reset and status-resolution paths
must be tested over real sockets, and its throughput measured against an
endpoint faster than the load process itself (so the figure is the driver's,
not the server's). It speaks the same contract as the reference system's
ingest API (`POST /v1/events`, `GET /v1/events/{id}`) and misbehaves on
purpose, per event and deterministically, as a `StubBehaviour` says.

It is not the system under test and judges nothing; it is an asyncio server
(uvloop and httptools when installed) on 127.0.0.1 only, run as its own process:
`python -m harness.load.stub_api --behaviour '{"reject_status": 429}'` prints
`LISTENING <port>` and serves until SIGTERM or --duration-s-max.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import asdict, dataclass

import httptools

from harness.load.child_env import child_env

__all__ = ["StubBehaviour", "StubProcess", "start_stub", "main"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_FIELDS = ("event_id", "key", "debit_account", "credit_account", "amount_minor", "currency")
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class StubBehaviour:
    """How the stand-in answers. Per-event choices use a hash of the event id, so they are
    the same in every run and for every worker.

    - `fast`: answer 202 to every POST without reading the body (the benchmark endpoint);
    - `reject_status` (429 or 503) for the first `reject_first_attempts` POSTs of each
      event, with `Retry-After: retry_after_s` when `retry_after_s` >= 0;
    - `slow_share` of event ids get their first POST answered after `slow_s`
      (the event is stored: a status read then says "queued");
    - `reset_share` of event ids get their first POST answered by a TCP reset
      (the event is not stored: a status read says 404);
    - `error_share` of event ids get 500 on their first POST (not stored).
    """

    fast: bool = False
    reject_status: int = 0
    reject_first_attempts: int = 0
    retry_after_s: float = -1.0
    slow_share: float = 0.0
    slow_s: float = 0.0
    reset_share: float = 0.0
    error_share: float = 0.0
    events_max: int = 1_000_000

    def __post_init__(self) -> None:
        if self.reject_status not in (0, 429, 503):
            raise ValueError(f'"reject_status" must be 0, 429 or 503, got {self.reject_status}')
        for name in ("slow_share", "reset_share", "error_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'"{name}" must be within [0, 1], got {getattr(self, name)}')
        if self.slow_s < 0 or self.slow_s > 600:
            raise ValueError(f'"slow_s" must be within [0, 600], got {self.slow_s}')
        if self.events_max < 1:
            raise ValueError(f'"events_max" must be >= 1, got {self.events_max}')


def _share_hit(event_id: str, salt: bytes, share: float) -> bool:
    return share > 0 and zlib.crc32(salt + event_id.encode()) / 2**32 < share


def _validate(body: object) -> tuple | None:
    """(field, detail) of the first defect, or None."""
    if not isinstance(body, dict):
        return ("body", "must be a JSON object")
    for name in _FIELDS:
        if name not in body:
            return (name, "is required")
    if not isinstance(body["event_id"], str) or not _UUID.match(body["event_id"]):
        return ("event_id", "must be a UUID")
    for name in ("key", "debit_account", "credit_account"):
        if not isinstance(body[name], str) or not body[name]:
            return (name, "must be a non-empty string")
    amount = body["amount_minor"]
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return ("amount_minor", "must be a whole number > 0")
    currency = body["currency"]
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        return ("currency", "must be an ISO 4217 code such as EUR")
    return None


class _State:
    """Events seen and attempts per event, bounded by events_max (oldest forgotten first)."""

    def __init__(self, behaviour: StubBehaviour) -> None:
        self.behaviour = behaviour
        self.events: collections.OrderedDict = collections.OrderedDict()
        self.posts_by_event: collections.OrderedDict = collections.OrderedDict()

    def _remember(self, table: collections.OrderedDict, key: str, value) -> None:
        table[key] = value
        if len(table) > self.behaviour.events_max:
            table.popitem(last=False)

    def post_count(self, event_id: str) -> int:
        n = self.posts_by_event.get(event_id, 0) + 1
        self._remember(self.posts_by_event, event_id, n)
        return n


def _response(status: int, payload: object = None, headers: tuple = ()) -> bytes:
    body = b"" if payload is None else json.dumps(payload).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    head.extend(headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_FAST_202 = _response(202, {"status": "accepted"})


class _Protocol(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_response(400, {"error": "bad_request", "field": "http", "detail": "unparseable"}))
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        if method == b"POST" and self.state.behaviour.fast:
            self.transport.write(_FAST_202)
            return
        self._answer(method, url.decode("latin-1"), body)

    def _reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 makes close() send RST: the client sees a reset, not a clean close.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _answer(self, method: bytes, url: str, raw: bytes) -> None:
        state, behaviour = self.state, self.state.behaviour
        path = url.split("?", 1)[0]
        if method == b"GET" and path.startswith("/v1/events/"):
            event_id = path[len("/v1/events/") :]
            stored = state.events.get(event_id)
            if stored is None:
                self.transport.write(_response(404, {"error": "not_found", "field": "event_id", "detail": event_id}))
            else:
                self.transport.write(_response(200, {"event_id": event_id, "status": "queued"}))
            return
        if method != b"POST" or path != "/v1/events":
            self.transport.write(_response(404, {"error": "not_found", "field": "path", "detail": path}))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.transport.write(_response(400, {"error": "bad_json", "field": "body", "detail": "not JSON"}))
            return
        defect = _validate(body)
        if defect is not None:
            self.transport.write(_response(422, {"error": "invalid", "field": defect[0], "detail": defect[1]}))
            return
        event_id = body["event_id"]
        attempt = state.post_count(event_id)
        if behaviour.reject_status and attempt <= behaviour.reject_first_attempts:
            headers = (f"Retry-After: {behaviour.retry_after_s:g}",) if behaviour.retry_after_s >= 0 else ()
            self.transport.write(
                _response(behaviour.reject_status, {"error": "busy", "field": None, "detail": "try later"}, headers)
            )
            return
        first = attempt == 1 + (behaviour.reject_first_attempts if behaviour.reject_status else 0)
        if first and _share_hit(event_id, b"reset", behaviour.reset_share):
            self._reset()
            return
        if first and _share_hit(event_id, b"error", behaviour.error_share):
            self.transport.write(_response(500, {"error": "internal", "field": None, "detail": "on purpose"}))
            return
        stored = state.events.get(event_id)
        if stored is not None and stored != body:
            self.transport.write(
                _response(409, {"error": "conflict", "field": "event_id", "detail": "same id, other body"})
            )
            return
        if stored is None:
            state._remember(state.events, event_id, body)
        answer = _response(202, {"event_id": event_id, "status": "queued"})
        if first and _share_hit(event_id, b"slow", behaviour.slow_share):
            transport = self.transport
            asyncio.get_running_loop().call_later(
                behaviour.slow_s, lambda: None if transport.is_closing() else transport.write(answer)
            )
            return
        self.transport.write(answer)


async def _serve(behaviour: StubBehaviour, port: int, duration_s_max: float) -> None:
    loop = asyncio.get_running_loop()
    state = _State(behaviour)
    server = await loop.create_server(lambda: _Protocol(state), "127.0.0.1", port, backlog=2048)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration_s_max)
    except TimeoutError:
        pass
    server.close()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--behaviour", default="{}", help="StubBehaviour fields as JSON")
    parser.add_argument("--duration-s-max", type=float, default=600.0, help="exit after this long regardless")
    args = parser.parse_args(argv)
    try:
        behaviour = StubBehaviour(**json.loads(args.behaviour))
    except (TypeError, ValueError) as exc:
        print(f"--behaviour: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is slower but correct
        pass
    asyncio.run(_serve(behaviour, args.port, args.duration_s_max))
    return 0


@dataclass
class StubProcess:
    """A running stand-in: its URL and process; stop() ends it (SIGTERM, then SIGKILL)."""

    url: str
    process: subprocess.Popen

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> StubProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_stub(
    behaviour: StubBehaviour = StubBehaviour(), duration_s_max: float = 600.0, ready_timeout_s: float = 15.0
) -> StubProcess:
    """Start the stand-in in its own process on a free loopback port; return once it listens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.load.stub_api",
            "--behaviour",
            json.dumps(asdict(behaviour)),
            "--duration-s-max",
            str(duration_s_max),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    deadline = time.monotonic() + ready_timeout_s
    line = ""
    # readline blocks, so a dead child is caught by EOF ("" line) and a hung one by the watchdog.
    watchdog = threading.Timer(ready_timeout_s, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()
    finally:
        watchdog.cancel()
    if not line.startswith("LISTENING ") or time.monotonic() > deadline:
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError(f"the stub API did not start within {ready_timeout_s} s (said {line!r})")
    return StubProcess(url=f"http://127.0.0.1:{int(line.split()[1])}", process=process)


if __name__ == "__main__":
    sys.exit(main())
