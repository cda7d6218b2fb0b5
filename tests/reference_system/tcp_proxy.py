"""A small loopback TCP proxy the tests can break: pass traffic, black-hole it, or refuse it.

Why not Toxiproxy here: these tests only need two faults (a broker that hangs,
a broker that refuses), and a proxy in the test process needs no extra server.
"""

from __future__ import annotations

import enum
import select
import socket
import threading

__all__ = ["Mode", "TcpProxy"]

CONNECTIONS_MAX = 512


class Mode(enum.Enum):
    PASS = "pass"
    BLACKHOLE = "blackhole"  # connections stay open, bytes go nowhere (a hung broker)
    REFUSE = "refuse"  # every connection is closed at once (a dead broker)


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = Mode.PASS
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode is Mode.REFUSE:
            self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode is Mode.REFUSE or len(self._pairs) >= CONNECTIONS_MAX:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.1)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if self.mode is Mode.PASS:
                        peers[s].sendall(data)
                    elif self.mode is Mode.REFUSE:
                        return
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._drop_all()
