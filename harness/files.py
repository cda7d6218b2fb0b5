"""File edges shared by the harness: atomic writes, and reading a small YAML file with clear errors.

Atomic writes: a reader sees the old file or the new one, never half of one. A
CI job may read junit.xml while a re-render writes it, and a run killed
mid-write must not leave a truncated summary.json or history that parses as
something else. Each write goes to a temporary name in the same folder (so the
rename stays on one filesystem), is flushed to disk, then renamed over the
target; the folder is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError

__all__ = ["TEMP_SUFFIX", "fsync_dir", "write_atomic", "write_bytes_atomic", "write_text_atomic", "read_yaml_file"]

TEMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    """Make renames in folder durable (a folder's entries live in the folder)."""
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


def write_atomic(path: Path, write: Callable[[str], object]) -> Path:
    """Let write(temp_path) produce the file (pandas, pyarrow...), then fsync and rename it over path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        write(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write data to path atomically; return path. The temporary file never outlives the call."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: Path, text: str) -> Path:
    """write_bytes_atomic for text, always UTF-8 (the HTML and XML declare it)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def read_yaml_file(path: Path, what: str, bytes_max: int) -> Any:
    """Parse a small YAML file; ScenarioError (exit 2) naming the file and the problem otherwise."""
    path = Path(path)
    try:
        if path.stat().st_size > bytes_max:
            raise ScenarioError(f"{path}: larger than {bytes_max} bytes; a {what} is a short file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such {what}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read as a text file ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
