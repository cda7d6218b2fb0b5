"""check_run: re-judge a stored run folder and print the verdicts as a table with evidence; returns the exit code.

Why here and not in the CLI: `ledgerchaos check RUN_DIR` is a thin call to
this, and tests call it directly with a string buffer as `out`. The thresholds
come from the run's own check_config.json when present, so a stored run is
re-judged exactly as it was judged when it ran.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.checkers.config import CheckConfig
from harness.checkers.verdict import Validity, Verdict
from harness.errors import UsageError
from harness.history.store import load_history

__all__ = [
    "check_run",
    "read_check_config",
    "write_check_config",
    "render_verdicts",
    "judged_line",
    "CHECK_CONFIG_FILE",
]

CHECK_CONFIG_FILE = "check_config.json"
_CONFIG_BYTES_MAX = 1_000_000
_STYLE = {Validity.VALID: "green", Validity.INVALID: "bold red", Validity.UNKNOWN: "yellow", Validity.NOT_JUDGED: "dim"}
# Op fields in the order a person reads them; the event id is the evidence's heading already.
_OP_FIELDS = ("op_id", "attempt", "status_code", "error", "latency_ms", "retry_after_s", "value", "fault_id", "fault")


def read_check_config(path: Path) -> CheckConfig:
    """A CheckConfig from a JSON file; UsageError naming the file and the field when it is wrong."""
    path = Path(path)
    if path.stat().st_size > _CONFIG_BYTES_MAX:
        raise UsageError(f"{path}: larger than {_CONFIG_BYTES_MAX} bytes; a check config is a short file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    try:
        return CheckConfig.from_mapping(data, where=path.name)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from None


def write_check_config(run_dir: Path, config: CheckConfig) -> Path:
    """Store the thresholds beside the history so that `ledgerchaos check` re-judges with them."""
    path = Path(run_dir) / CHECK_CONFIG_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(config.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def check_run(
    run_dir: Path, config: CheckConfig | None = None, out: TextIO | None = None, as_json: bool = False
) -> int:
    """Load a stored run, judge it, print the verdicts and evidence to out; return 0 (all hold), 1, or 3
    (the stored run is incomplete, whatever its verdicts).

    config: explicit thresholds; else run_dir/check_config.json; else CheckConfig() defaults.
    as_json: print the verdicts.json document instead of the table (verdicts in summary.json's schema).
    Raises UsageError (exit 2) when the folder or a file in it is wrong.
    """
    from harness.checkers.judge import judge_run

    out = out if out is not None else sys.stdout
    run_dir = Path(run_dir)
    history = load_history(run_dir)
    judgement = judge_run(run_dir, config, history=history, write=False)  # check reads; it writes nothing
    verdicts, config, source = judgement.verdicts, judgement.config, judgement.config_source
    code = judgement.exit_code if history.meta.complete else 3
    if as_json:
        from harness.checkers.judge import judgement_json

        document = {
            "run_id": history.meta.run_id,
            "seed": int(history.meta.seed),
            "complete": bool(history.meta.complete),
            "gaps": [g.value for g in history.meta.gaps],
            **judgement_json(judgement),
            "exit_code": code,
        }
        out.write(json.dumps(document, indent=2, default=str) + "\n")
        return code
    notes = (
        ()
        if history.meta.complete
        else (("the run did not complete: the history is partial",) + tuple(history.meta.notes))
    )
    render_verdicts(
        verdicts,
        config,
        out,
        title=f"run {history.meta.run_id} (seed {history.meta.seed}) in {run_dir}",
        config_source=source,
        code=code,
        notes=notes,
    )
    return code


def render_verdicts(
    verdicts: Iterable[Verdict],
    config: CheckConfig,
    out: TextIO,
    title: str = "",
    config_source: str = "",
    code: int | None = None,
    notes: Iterable[str] = (),
) -> None:
    """The verdict table, then counts, figures and evidence for each verdict that did not hold."""
    verdicts = tuple(verdicts)
    console = Console(file=out, width=None if _is_tty(out) else 140, highlight=False, soft_wrap=False)
    table = Table(title=escape(title) if title else None, show_lines=False, expand=False)
    table.add_column("checker", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("summary")
    for v in verdicts:
        label = v.validity.value.upper().replace("_", " ")
        if v.validity is Validity.UNKNOWN and v.name in config.allow_unknown:
            label += " (allowed)"
        table.add_row(v.name, f"[{_STYLE[v.validity]}]{label}[/]", escape(v.summary))
    console.print(table)
    if config_source:
        console.print(f"thresholds: {escape(config_source)}")
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    for v in verdicts:
        if v.figures and v.name in ("graceful_degradation", "slo"):
            console.print(f"[bold]{v.name}[/] figures: {escape(_pairs(v.figures, float_format=True))}")
    for v in verdicts:
        if v.validity in (Validity.VALID, Validity.NOT_JUDGED):
            continue
        console.print()
        console.print(f"[{_STYLE[v.validity]}]{v.name}: {v.validity.value}[/]  {escape(_pairs(v.counts))}")
        for e in v.evidence:
            heading = f"event {e.event_id}: " if e.event_id is not None else ""
            console.print(f"  - {escape(heading + e.problem)}")
            for op in e.ops:
                console.print(f"      {escape(format_op(op))}")
    if code is not None:
        invalid = [v.name for v in verdicts if v.validity is Validity.INVALID]
        unknown = [v.name for v in verdicts if v.validity is Validity.UNKNOWN]
        parts = []
        if invalid:
            parts.append("invalid: " + ", ".join(invalid))
        if unknown:
            parts.append("unknown: " + ", ".join(unknown))
        console.print()
        console.print(f"exit {code}: {judged_line(verdicts)}" + (f" ({'; '.join(parts)})" if parts else ""))


def judged_line(verdicts: Iterable[Verdict]) -> str:
    """How many invariants were judged and how they stand, e.g. "7 judged, all hold; 3 not judged"."""
    verdicts = tuple(verdicts)
    judged = [v for v in verdicts if v.validity is not Validity.NOT_JUDGED]
    skipped = len(verdicts) - len(judged)
    if not judged:
        head = "nothing judged" + (" (no checker enabled)" if not verdicts else "")
    elif all(v.validity is Validity.VALID for v in judged):
        head = f"{len(judged)} judged, all hold"
    else:
        holding = sum(1 for v in judged if v.validity is Validity.VALID)
        head = f"{len(judged)} judged, {holding} hold"
    return head + (f"; {skipped} not judged" if skipped else "")


def format_op(op: Mapping) -> str:
    """One op on one line: time, process, type, f, then whatever it carries."""
    head = f"{op.get('time_s', float('nan')):10.4f}s {op.get('process', '?')} {op.get('type', '?')} {op.get('f', '?')}"
    body = ""
    if "debit_account" in op or "amount_minor" in op:
        body = (
            f" key={op.get('key', '-')} {op.get('debit_account', '-')}->{op.get('credit_account', '-')} "
            f"{op.get('amount_minor', '-')} {op.get('currency', '-')}"
        )
    flags = "".join(f" {name}" for name in ("duplicate",) if op.get(name) is True)
    if op.get("valid_body") is False:
        flags += " invalid_body"
    rest = " ".join(f"{name}={op[name]}" for name in _OP_FIELDS if name in op)
    return f"{head}{body}{flags} {rest}".rstrip()


def _pairs(values: Mapping, float_format: bool = False) -> str:
    if float_format:
        return ", ".join(f"{k}={v:.3f}" for k, v in values.items())
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _is_tty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
