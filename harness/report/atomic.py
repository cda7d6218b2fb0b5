"""Atomic file writes for the report: a reader sees the old file or the new one, never half of one.

Why: a CI job may read junit.xml while a re-render is writing it, and a run
killed mid-report must not leave a truncated summary.json that parses as
something else. Each write goes to a temporary name in the same folder (so the
rename stays on one filesystem), is flushed to disk, then renamed over the
target; the folder is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_bytes_atomic", "write_text_atomic", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write data to path atomically; return path. The temporary file never outlives the call."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """write_bytes_atomic for text, always UTF-8 (the HTML and XML declare it)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse to open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
