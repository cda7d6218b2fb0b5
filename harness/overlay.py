"""The capacity model's prediction of a run, as stored in its run folder and drawn by its report.

Why a module of its own: the predict phase (harness.capacity) writes these two
files and the render phase (harness.report) reads them; neither imports the
other. `prediction.json` holds the headline line, the model's figures and its
error against the measured run; `prediction_metrics.csv` the predicted metrics
on the run's clock (already shifted by the history's load_start_s). A model that
could not run leaves `prediction.json` with `available: false` and the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UsageError
from harness.files import write_atomic, write_text_atomic
from harness.history.schema import METRICS_COLUMNS, conform

__all__ = ["ModelOverlay", "write_overlay", "write_no_overlay", "read_overlay", "PREDICTION_FILE", "METRICS_FILE"]

PREDICTION_FILE = "prediction.json"
METRICS_FILE = "prediction_metrics.csv"
_BYTES_MAX = 5_000_000
QUANTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class ModelOverlay:
    """line: the prediction in one sentence. metrics: METRICS_COLUMNS on the run's clock.
    latency: {"p50": {"measured": ms | None, "predicted": ms | None}, ...}. errors: prediction_error's dict."""

    line: str
    metrics: pd.DataFrame
    latency: Mapping[str, Mapping[str, float | None]]
    figures: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, Any] = field(default_factory=dict)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_overlay(run_dir: Path, overlay: ModelOverlay) -> None:
    run_dir = Path(run_dir)
    write_atomic(run_dir / METRICS_FILE, lambda p: overlay.metrics.to_csv(p, index=False))
    document = {
        "available": True,
        "line": overlay.line,
        "latency_ms": {q: {k: _finite(v) for k, v in overlay.latency.get(q, {}).items()} for q in QUANTILES},
        "figures": _jsonable(dict(overlay.figures)),
        "errors": _jsonable(dict(overlay.errors)),
    }
    write_text_atomic(run_dir / PREDICTION_FILE, json.dumps(document, indent=2, sort_keys=True))


def write_no_overlay(run_dir: Path, reason: str) -> None:
    """The model could not predict this run: say why, in the folder (the report names it)."""
    (Path(run_dir) / METRICS_FILE).unlink(missing_ok=True)
    write_text_atomic(Path(run_dir) / PREDICTION_FILE, json.dumps({"available": False, "reason": reason}, indent=2))


def read_overlay(run_dir: Path) -> tuple[ModelOverlay | None, str | None]:
    """(overlay, None), or (None, why there is none). A folder without prediction.json was never predicted."""
    path = Path(run_dir) / PREDICTION_FILE
    if not path.is_file():
        return None, None
    if path.stat().st_size > _BYTES_MAX:
        raise UsageError(f"{path}: larger than {_BYTES_MAX} bytes; not a prediction this harness wrote")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not document.get("available"):
            return None, str(document.get("reason") or "the capacity model did not predict this run")
        metrics = conform(pd.read_csv(Path(run_dir) / METRICS_FILE), METRICS_COLUMNS, "prediction metrics")
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise UsageError(f"{path}: not a readable prediction ({type(exc).__name__}: {exc})") from None
    latency = {
        q: {
            side: _finite((document.get("latency_ms") or {}).get(q, {}).get(side)) for side in ("measured", "predicted")
        }
        for q in QUANTILES
    }
    overlay = ModelOverlay(
        line=str(document.get("line", "")),
        metrics=metrics,
        latency=latency,
        figures=document.get("figures") or {},
        errors=document.get("errors") or {},
    )
    return overlay, None
