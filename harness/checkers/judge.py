"""The judge phase: a run folder's history judged, and the verdicts written beside it (verdicts.json).

Why a file: rendering reads only what the folder holds, so the report shows the
verdicts that were judged, with the thresholds they were judged by; and every
entry point (run, suite, check, report, explore, the pytest plugin) judges
through this one function, so none of them can judge differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.checkers.config import CheckConfig
from harness.checkers.suite import check_all
from harness.checkers.verdict import Validity, Verdict, exit_code
from harness.errors import UsageError
from harness.files import write_text_atomic
from harness.history.schema import History

__all__ = ["Judgement", "judge_run", "read_judgement", "verdict_entries", "judgement_json", "VERDICTS_FILE"]

VERDICTS_FILE = "verdicts.json"
_BYTES_MAX = 50_000_000  # evidence is bounded per checker; a larger file was not written by this harness


@dataclass(frozen=True)
class Judgement:
    """The verdicts, the thresholds they were judged by and where those came from, and the gate's code
    (0: every verdict holds or is an allowed unknown; 1 otherwise, nothing judged included)."""

    verdicts: tuple[Verdict, ...]
    config: CheckConfig
    config_source: str
    exit_code: int


def verdict_entries(verdicts: tuple[Verdict, ...], allow_unknown: frozenset) -> list[dict]:
    """Each verdict as summary.json's `verdicts` hold it: Verdict.to_json plus allowed_unknown and gates."""
    entries = []
    for verdict in verdicts:
        entry = verdict.to_json()
        entry["allowed_unknown"] = verdict.validity is Validity.UNKNOWN and verdict.name in allow_unknown
        entry["gates"] = verdict.validity in (Validity.INVALID, Validity.UNKNOWN) and not entry["allowed_unknown"]
        entries.append(entry)
    return entries


def judgement_json(judgement: Judgement) -> dict:
    """The verdicts.json document (and `ledgerchaos check --json`)."""
    return {
        "exit_code": judgement.exit_code,
        "config_source": judgement.config_source,
        "config": judgement.config.to_json(),
        "verdicts": verdict_entries(judgement.verdicts, judgement.config.allow_unknown),
    }


def _config_for(run_dir: Path, config: CheckConfig | None) -> tuple[CheckConfig, str]:
    from harness.checkers.console import CHECK_CONFIG_FILE, read_check_config

    if config is not None:
        return config, "given"
    stored = run_dir / CHECK_CONFIG_FILE
    if stored.is_file():
        return read_check_config(stored), str(stored)
    return CheckConfig(), "defaults (no check_config.json in the run folder)"


def judge_run(
    run_dir: Path, config: CheckConfig | None = None, history: History | None = None, write: bool = True
) -> Judgement:
    """Judge the run in run_dir and write verdicts.json. config: explicit thresholds, else the folder's
    check_config.json, else the defaults. history: the folder's history when the caller holds it already.
    write=False judges without writing (`ledgerchaos check` reads a folder it may not own)."""
    from harness.history.store import load_history

    run_dir = Path(run_dir)
    history = history if history is not None else load_history(run_dir)
    config, source = _config_for(run_dir, config)
    verdicts = tuple(check_all(history, config))
    judgement = Judgement(verdicts, config, source, exit_code(verdicts, config.allow_unknown))
    if write:
        write_text_atomic(run_dir / VERDICTS_FILE, json.dumps(judgement_json(judgement), indent=2, default=str))
    return judgement


def read_judgement(run_dir: Path) -> Judgement | None:
    """The stored judgement, or None when the run was never judged."""
    path = Path(run_dir) / VERDICTS_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > _BYTES_MAX:
        raise UsageError(f"{path}: larger than {_BYTES_MAX} bytes; not a verdicts file this harness wrote")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        config = CheckConfig.from_json(document["config"])
        verdicts = tuple(Verdict.from_json(v) for v in document["verdicts"])
        return Judgement(verdicts, config, str(document.get("config_source", "")), int(document["exit_code"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable verdicts file ({type(exc).__name__}: {exc}); re-judge the run "
                         "with `ledgerchaos check`") from None  # fmt: skip
