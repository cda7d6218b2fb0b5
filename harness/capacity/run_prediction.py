"""The predict phase of a run: the capacity model's prediction of the scenario that ran, beside its history.

Why after the record and apart from the report: the prediction is a function of
the run record (the scenario that ran, and the history it is compared with), and
it is written into the run folder like the verdicts, so that rendering only
reads files and a re-render shows the same model panel without the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.capacity.calibrate import prediction_error
from harness.capacity.scenario_bridge import predict_scenario, shifted_metrics
from harness.history.schema import History
from harness.overlay import QUANTILES, ModelOverlay, write_no_overlay, write_overlay

__all__ = ["predict_run"]


def predict_run(run_dir: Path, scenario: Any, history: History) -> tuple[ModelOverlay | None, str | None]:
    """Predict `scenario` (a harness.scenario.Scenario), compare it with `history`, write both files.

    Returns (overlay, None), or (None, the reason the model could not run), written either way.
    """
    try:
        prediction = predict_scenario(scenario)
    except Exception as exc:  # noqa: BLE001 - the model is a guest in the run; its failure is named, not fatal
        reason = f"capacity model prediction unavailable: {type(exc).__name__}: {exc}"
        write_no_overlay(run_dir, reason)
        return None, reason
    try:
        # The model's commit against the journal's stamp, on the same basis (see prediction_error).
        errors: dict = prediction_error(prediction, history)
    except (ValueError, KeyError):  # apply times unknown (no applied_s, no posted counter): backlogs still compare
        errors = {}
    latency = {
        q: {
            "measured": (errors.get(f"latency_ms_{q}") or {}).get("measured"),
            "predicted": (errors.get(f"latency_ms_{q}") or {}).get("predicted", getattr(prediction, f"latency_ms_{q}")),
        }
        for q in QUANTILES
    }
    line = (
        f"backlog peak {prediction.backlog_events_peak:.0f} events, latency p50 {prediction.latency_ms_p50:.1f} ms"
        f" / p99 {prediction.latency_ms_p99:.1f} ms, {prediction.applied_count} of {prediction.arrivals_count}"
        f" arrivals applied, {prediction.shed_count} shed"
    )
    overlay = ModelOverlay(
        line=line,
        metrics=shifted_metrics(prediction, history.meta.load_start_s),
        latency=latency,
        figures=prediction.summary(),
        errors=errors,
    )
    write_overlay(run_dir, overlay)
    return overlay, None
