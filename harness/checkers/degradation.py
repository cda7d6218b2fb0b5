"""The graceful-degradation checker: explicit, bounded answers inside fault windows, and measured recovery after.

Why: a system under a fault may refuse work, but it must say so quickly
(429/503 with Retry-After) instead of hanging or answering 500, and it must
come back once the fault is gone. The recovery time per fault is the figure an
SRE asks for first.

Fault windows come from the nemesis ops: the earliest `fault_start` and the
latest `fault_stop` of each fault_id (a fault never stopped lasts to the end of
the history). A start recorded as `info` (the fault may not have applied) still
opens a window: an API that is healthy meets the bound anyway. A client op (submit or status) is judged when its span (invoke
to completion, open-ended when it never completed) overlaps a window
[start, stop + grace_s]. It must:
- complete: no completion (once the bound has passed before the history ends)
  or an `info` with error `timeout` is a hang; an op the harness itself cut
  short (error `client_stopped`: the load ended with it in flight) is not judged;
- complete within api_latency_ms_max;
- when it does not succeed, fail explicitly: a 429 or 503 carrying Retry-After.
  Other 5xx (500, 502, 504), a 429/503 without Retry-After, and transport errors
  (connection_reset...) violate, unless the error is in degradation_errors_allowed.
  Other 4xx (409, 422) are business answers and are fine.

Recovery, per fault, after its stop: throughput of `ok` submits (by completion
time) over a sliding window of recovery_window_s must reach recovery_share of
the baseline within recovery_s_max. The baseline is the `baseline` phase of
meta.phases, else the span from the end of the `warmup` phase (or the first
client invoke) to the first fault.
- Open model (invokes carry intended_time_s): the offered rate may itself
  change (a ramp down, a burst), so the target follows it: a window recovers
  when ok >= recovery_share * (baseline ok per offered arrival) * arrivals
  offered in that window (first attempts, by intended time). A window with no
  offered arrival says nothing and is skipped.
- Closed model (no intended times): offered load falls with the system's speed,
  so it cannot be the yardstick; a window recovers when
  ok >= recovery_share * baseline ok rate * window length.
The recovery time is the start of the first recovered window minus the stop.
A fault that has not recovered when the next fault starts (a kill loop) is not
judged on its own: the recovery after the last fault of the cluster covers it;
nor is a fault stopping while another is still active. A last fault whose
observation span (to the load's last invoke) is shorter than recovery_s_max +
recovery_window_s and that has not recovered in it is UNKNOWN, not a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.checkers.common import evidence_for, needs_ops, not_judged, unknown
from harness.checkers.config import CheckConfig
from harness.checkers.facts import DONE_FAIL, DONE_INFO, DONE_NONE, DONE_OK, Facts
from harness.checkers.verdict import EVIDENCE_MAX, Evidence, Validity, Verdict
from harness.history.schema import NEMESIS, History, OpF

__all__ = ["graceful_degradation", "FaultWindow", "fault_windows"]

NAME = "graceful_degradation"
_STEPS_PER_WINDOW = 8  # sliding-window resolution: recovery time is measured to window/8
# Errors the harness causes itself (the load stopped with the request in flight): not the API's answer.
HARNESS_ERRORS = ("client_stopped",)


@dataclass(frozen=True)
class FaultWindow:
    fault_id: int
    start_s: float
    stop_s: float
    stopped: bool  # False: no fault_stop op; stop_s is the history's end
    fault: str


def fault_windows(history: History) -> list[FaultWindow]:
    """The history's fault windows, by start time."""
    ops = history.ops
    mask = ((ops["process"] == NEMESIS) & ops["fault_id"].notna()).to_numpy(dtype=bool, na_value=False)
    nem = ops.loc[mask, ["f", "fault_id", "time_s", "fault"]]
    if nem.empty:
        return []
    end_s = float(ops["time_s"].max())
    starts = (
        nem.loc[nem["f"] == OpF.FAULT_START.value]
        .groupby("fault_id")
        .agg(start_s=("time_s", "min"), fault=("fault", "first"))
    )
    stops = nem.loc[nem["f"] == OpF.FAULT_STOP.value].groupby("fault_id")["time_s"].max()
    windows = []
    for fault_id, start_s, fault in zip(starts.index.to_numpy(), starts["start_s"], starts["fault"]):
        stop = stops.get(fault_id)
        stopped = stop is not None and not pd.isna(stop) and stop >= start_s
        description = fault if isinstance(fault, str) else f"fault {fault_id}"
        stop_s = float(stop) if stop is not None and stopped else end_s
        windows.append(FaultWindow(int(fault_id), float(start_s), stop_s, bool(stopped), description))
    return sorted(windows, key=lambda w: (w.start_s, w.fault_id))


def graceful_degradation(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Explicit, bounded answers inside every fault window and its grace; recovery after each (see module doc)."""
    facts = facts if facts is not None else Facts(history)
    lacking = needs_ops(NAME, facts)
    if lacking:
        return lacking
    windows = fault_windows(history)
    counts = {"fault_windows": len(windows), "faults_never_stopped": sum(not w.stopped for w in windows)}
    if not windows:
        if config.fault_windows_min > 0:
            return unknown(
                NAME,
                f"cannot judge: the history holds no fault window, and {config.fault_windows_min} "
                "were expected (fault_windows_min); were the nemesis ops recorded?",
                counts,
            )
        return not_judged(NAME, "no fault window in the history, nothing to degrade", counts)
    attempts = facts.attempts
    answers = _judge_answers(attempts, windows, config, facts.history_end_s, facts.event_id_at)
    counts.update(answers.counts)
    recovery = _judge_recovery(attempts, windows, history, config)
    counts.update(recovery.counts)
    figures = dict(recovery.figures)
    # Every unrecovered fault is shown; bad answers fill the rest of the evidence.
    failures = [Evidence(None, p) for p in recovery.failures][:EVIDENCE_MAX]
    evidence = list(evidence_for(facts, answers.items))[: EVIDENCE_MAX - len(failures)] + failures
    problems = []
    if answers.violations:
        problems.append(
            f"{answers.violations} client ops hung, were too slow or failed without an explicit "
            f"429/503 + Retry-After inside fault windows"
        )
    if recovery.failures:
        problems.append(f"{len(recovery.failures)} faults not recovered from within {config.recovery_s_max:g} s")
    unknowns = list(recovery.unknowns)
    if len(windows) < config.fault_windows_min:
        unknowns.append(f"{len(windows)} fault windows in the history, {config.fault_windows_min} expected")
    judged = (
        f"{counts['client_ops_in_windows']} client ops in {len(windows)} fault windows "
        f"(+{config.grace_s:g} s grace) judged against {config.api_latency_ms_max:g} ms"
    )
    if problems:
        tail = f" (also unknown: {'; '.join(unknowns)})" if unknowns else ""
        return Verdict(
            NAME, Validity.INVALID, f"violated: {'; '.join(problems)}; {judged}{tail}", counts, figures, tuple(evidence)
        )
    if unknowns:
        return Verdict(
            NAME, Validity.UNKNOWN, f"cannot judge: {'; '.join(unknowns)}; {judged}", counts, figures, tuple(evidence)
        )
    recovered = recovery.counts["faults_recovered"]
    return Verdict(
        NAME, Validity.VALID, f"holds: {judged}; recovery measured for {recovered} faults", counts, figures, ()
    )


# -- answers inside windows ----------------------------------------------------------------


@dataclass
class _Answers:
    violations: int
    counts: dict
    items: list


def _judge_answers(
    attempts: pd.DataFrame, windows: list[FaultWindow], config: CheckConfig, history_end_s: float, event_id_at
) -> _Answers:
    spans = sorted((w.start_s, w.stop_s + config.grace_s) for w in windows)
    merged: list = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = np.array([m[0] for m in merged])
    ends = np.array([m[1] for m in merged])
    invoke_s = attempts["invoke_s"].to_numpy()
    done = attempts["done"].to_numpy()
    done_s = attempts["done_s"].to_numpy()
    finish_s = np.where(done == DONE_NONE, np.inf, done_s)
    slot = np.searchsorted(ends, invoke_s, side="left")
    inside = slot < len(ends)
    inside[inside] = starts[slot[inside]] <= finish_s[inside]

    bound_ms = config.api_latency_ms_max
    status = attempts["status_code"].to_numpy()
    error = attempts["error"]
    latency = attempts["latency_ms"].to_numpy()
    retry_after = attempts["retry_after_s"].to_numpy()
    stopped = error.isin(HARNESS_ERRORS).to_numpy(dtype=bool, na_value=False)
    unanswered = (done == DONE_NONE) | stopped
    overdue = (done == DONE_NONE) & ((history_end_s - invoke_s) * 1000.0 > bound_ms)
    unfinished = unanswered & ~overdue
    timed_out = (done == DONE_INFO) & (error == "timeout").to_numpy(dtype=bool, na_value=False)
    hang = inside & (overdue | timed_out)
    slow = inside & ~hang & ~unanswered & (latency > bound_ms)
    server_error = inside & (status >= 500) & (status != 503)
    throttled = (status == 429) | (status == 503)
    no_retry_after = inside & throttled & np.isnan(retry_after)
    allowed = error.isin(sorted(config.degradation_errors_allowed)).to_numpy(dtype=bool, na_value=False)
    transport = (
        inside & ((done == DONE_FAIL) | (done == DONE_INFO)) & np.isnan(status) & ~timed_out & ~allowed & ~stopped
    )
    bad = hang | slow | server_error | no_retry_after | transport

    problems = np.full(len(attempts), "", dtype=object)
    for mask, text in (
        (slow, "answered after {lat:.0f} ms, over the {bound:g} ms bound"),
        (transport, "failed without an answer ({err})"),
        (no_retry_after, "answered {status} without Retry-After"),
        (server_error, "answered {status} (a 5xx other than 503)"),
        (inside & timed_out, "hung: timed out ({lat:.0f} ms)"),
        (inside & overdue, "hung: never answered"),
    ):
        problems[mask] = text
    items = []
    for i in np.flatnonzero(bad)[:EVIDENCE_MAX]:
        window = next(
            (w for w in windows if w.start_s <= finish_s[i] and invoke_s[i] <= w.stop_s + config.grace_s), windows[0]
        )
        kind = "submit" if attempts["submit"].iloc[i] else "status"
        err = error.iloc[i]
        detail = problems[i].format(
            lat=latency[i],
            bound=bound_ms,
            err="no error name" if pd.isna(err) else err,
            status=int(status[i]) if not math.isnan(status[i]) else "?",
        )
        (event_id,) = event_id_at([attempts["row"].iloc[i]])
        items.append(
            (
                event_id,
                f"fault {window.fault_id} ({window.fault}): {kind} op {attempts['op_id'].iloc[i]} invoked at "
                f"{invoke_s[i]:.3f} s {detail}",
            )
        )
    counts = {
        "client_ops_in_windows": int(inside.sum()),
        "hangs": int(hang.sum()),
        "slow": int(slow.sum()),
        "server_errors": int(server_error.sum()),
        "throttled_without_retry_after": int(no_retry_after.sum()),
        "transport_errors": int(transport.sum()),
        "unfinished_at_history_end": int((inside & unfinished).sum()),
        "explicit_refusals": int((inside & throttled & ~np.isnan(retry_after)).sum()),
    }
    return _Answers(int(bad.sum()), counts, items)


# -- recovery after each fault -------------------------------------------------------------


@dataclass
class _Recovery:
    counts: dict
    figures: dict
    failures: list
    unknowns: list


def _baseline_span(history: History, windows: list[FaultWindow], first_invoke_s: float) -> tuple | None:
    phases = {p.name: p for p in history.meta.phases}
    if "baseline" in phases:
        return phases["baseline"].start_s, phases["baseline"].end_s
    start = first_invoke_s
    if "warmup" in phases:
        start = max(start, phases["warmup"].end_s)
    return start, windows[0].start_s


def _judge_recovery(
    attempts: pd.DataFrame, windows: list[FaultWindow], history: History, config: CheckConfig
) -> _Recovery:
    counts = {
        "faults_recovered": 0,
        "faults_not_recovered": 0,
        "faults_recovery_unknown": 0,
        "faults_recovery_covered_by_later_fault": 0,
    }
    figures: dict = {}
    failures: list = []
    unknowns: list = []
    submits = attempts.loc[attempts["submit"].to_numpy()]
    done = submits["done"].to_numpy()
    ok_s = np.sort(submits["done_s"].to_numpy()[done == DONE_OK])
    attempt = submits["attempt"].to_numpy()
    intended = submits["intended_s"].to_numpy()
    first = np.isnan(attempt) | (attempt <= 1)
    offered_s = np.sort(intended[first & ~np.isnan(intended)])
    open_model = len(offered_s) > 0
    if len(submits) == 0:
        unknowns.append("recovery: no submit ops in the history")
        counts["faults_recovery_unknown"] = len(windows)
        return _Recovery(counts, figures, failures, unknowns)
    load_end_s = float(submits["invoke_s"].max())
    base = _baseline_span(history, windows, float(submits["invoke_s"].min()))
    window_s = config.recovery_window_s
    base_ok_per_s = base_ratio = None
    if base is not None and base[1] - base[0] >= window_s:
        span = base[1] - base[0]
        ok_base = _count(ok_s, base[0], base[1])
        base_ok_per_s = ok_base / span
        figures["baseline_ok_per_s"] = base_ok_per_s
        if open_model:
            offered_base = _count(offered_s, base[0], base[1])
            figures["baseline_offered_per_s"] = offered_base / span
            base_ratio = ok_base / offered_base if offered_base else None
        if ok_base == 0:
            base_ok_per_s = None
    if base_ok_per_s is None or (open_model and base_ratio is None):
        where = "no baseline phase and no span before the first fault"
        if base is not None:
            where = (
                f"the baseline [{base[0]:.3f}, {base[1]:.3f}) s is shorter than recovery_window_s or has no ok submit"
            )
        unknowns.append(f"recovery: {where}")
        counts["faults_recovery_unknown"] = len(windows)
        return _Recovery(counts, figures, failures, unknowns)
    if open_model:
        figures["baseline_ok_per_offered"] = base_ratio

    step_s = window_s / _STEPS_PER_WINDOW
    recovery_times = []
    for w in windows:
        if not w.stopped:
            counts["faults_recovery_unknown"] += 1
            unknowns.append(f"fault {w.fault_id} ({w.fault}) never stopped in the history; recovery not observable")
            continue
        if any(o.fault_id != w.fault_id and o.start_s <= w.stop_s < o.stop_s for o in windows):
            counts["faults_recovery_covered_by_later_fault"] += 1
            continue
        later = [o.start_s for o in windows if o.start_s > w.stop_s]
        observe_end_s = min([load_end_s] + later)
        last_start_s = min(observe_end_s - window_s, w.stop_s + config.recovery_s_max)
        steps = int(math.floor((last_start_s - w.stop_s) / step_s + 1e-9))
        t = w.stop_s + step_s * np.arange(max(steps + 1, 0))
        ok = np.searchsorted(ok_s, t + window_s, side="left") - np.searchsorted(ok_s, t, side="left")
        if open_model:
            offered = np.searchsorted(offered_s, t + window_s, side="left") - np.searchsorted(offered_s, t, side="left")
            assert base_ratio is not None  # the early return above leaves no open model without a baseline ratio
            target = config.recovery_share * base_ratio * offered
            judged = offered > 0
        else:
            target = np.full(len(t), config.recovery_share * base_ok_per_s * window_s)
            judged = np.ones(len(t), dtype=bool)
        good = judged & (ok >= target)
        if good.any():
            recovery_s = float(t[np.argmax(good)] - w.stop_s)
            figures[f"fault_{w.fault_id}.recovery_s"] = recovery_s
            recovery_times.append(recovery_s)
            counts["faults_recovered"] += 1
            continue
        best = float(np.max(np.where(judged, ok / np.maximum(target, 1e-12), 0.0))) if len(t) else 0.0
        observed_s = observe_end_s - w.stop_s
        if observed_s >= config.recovery_s_max + window_s:
            counts["faults_not_recovered"] += 1
            figures[f"fault_{w.fault_id}.recovery_s"] = math.inf
            failures.append(
                f"fault {w.fault_id} ({w.fault}) stopped at {w.stop_s:.3f} s: ok throughput never reached "
                f"{config.recovery_share:g} of the baseline within {config.recovery_s_max:g} s "
                f"(best window reached {best * config.recovery_share:.2f} of the baseline)"
            )
        elif later and min(later) < load_end_s:
            # The next fault began before this one's recovery could be seen (a kill loop): recovery is judged
            # after the last fault of such a cluster, which covers this one.
            counts["faults_recovery_covered_by_later_fault"] += 1
        else:
            counts["faults_recovery_unknown"] += 1
            ends = "the load ended"
            unknowns.append(
                f"fault {w.fault_id} ({w.fault}): {ends} {observed_s:.1f} s after its stop, before recovery was seen; "
                f"recovery needs {config.recovery_s_max + window_s:g} s of observation"
            )
    if recovery_times:
        figures["recovery_s_max"] = max(recovery_times)
    return _Recovery(counts, figures, failures, unknowns)


def _count(sorted_times: np.ndarray, start_s: float, end_s: float) -> int:
    return int(np.searchsorted(sorted_times, end_s, side="left") - np.searchsorted(sorted_times, start_s, side="left"))
