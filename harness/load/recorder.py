"""Ops to a JSON-lines file, buffered in memory and written in batches, with a hard op budget.

Why buffered: a write per op would cost a system call per request in the
load loop; the Locust child flushes the buffer every 250 ms instead, so a
crash loses at most that much and leaves every written line readable. Why a
budget: a run must not fill the disk; callers reserve room for an invoke and
its completion before sending, and stop the load when the budget is spent.
No Locust, no gevent: the child's flusher greenlet calls flush().
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # orjson is several times faster; recording cost is a measured goal (benchmarks/bench_load.py)
    import orjson

    def _dumps(op: dict) -> bytes:
        return orjson.dumps(op, option=orjson.OPT_APPEND_NEWLINE)

    _loads = orjson.loads
    _DecodeError: tuple = (orjson.JSONDecodeError, ValueError)

except ImportError:  # pragma: no cover - orjson is a dependency, the fallback keeps a broken install usable

    def _dumps(op: dict) -> bytes:
        return (json.dumps(op, separators=(",", ":")) + "\n").encode()

    _loads = json.loads
    _DecodeError = (ValueError,)


__all__ = ["OpsRecorder", "write_json_atomic", "read_ops_file"]


class OpsRecorder:
    """Append-only ops file. reserve(n) before recording n ops; False means the budget is spent."""

    def __init__(self, path: Path, ops_max: int) -> None:
        self.path = Path(path)
        self.ops_max = ops_max
        self.ops_reserved = 0
        self.ops_written = 0
        self._buffer: list = []
        self._file = open(self.path, "wb", buffering=0)

    def reserve(self, count: int) -> bool:
        if self.ops_reserved + count > self.ops_max:
            return False
        self.ops_reserved += count
        return True

    def record(self, op: dict) -> None:
        self._buffer.append(op)

    def flush(self) -> int:
        """Write what is buffered in one write; return how many ops went out."""
        if not self._buffer or self._file.closed:
            return 0
        batch, self._buffer = self._buffer, []
        self._file.write(b"".join(_dumps(op) for op in batch))
        self.ops_written += len(batch)
        return len(batch)

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace path with data as JSON so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def read_ops_file(path: Path, lines_max: int | None = None) -> tuple[list, int]:
    """(ops, unreadable_lines) from a JSON-lines ops file, reading at most lines_max lines.

    A crashed writer can leave a cut last line; it is skipped and counted, never guessed at.
    """
    ops = []
    unreadable = 0
    for index, line in enumerate(_lines(Path(path))):
        if lines_max is not None and index >= lines_max:
            break
        try:
            op = _loads(line)
        except _DecodeError:
            unreadable += 1
            continue
        if isinstance(op, dict):
            ops.append(op)
        else:
            unreadable += 1
    return ops, unreadable


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line
