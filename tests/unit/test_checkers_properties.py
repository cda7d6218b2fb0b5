"""Property-based tests: a generated correct history passes every checker; one planted defect fails exactly one.

Which defects imply which (and how the planting avoids it): a double posting
that also doubled the balance table without lines would break replay too, so
the planted duplicate carries its lines (as a real double apply does); a lost
event is removed with its lines and its share of the projection; an unbalanced
line is followed by the projection (else replay fails too); a projection drift
re-applies a whole event to the balance table (its lines sum to zero, so
conservation holds); a phantom is posted last with balanced lines (so ordering
and conservation hold). Under those rules no defect implies another.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.checkers import CheckConfig, Validity, check_all, graceful_degradation
from harness.checkers.synthetic import DEFECTS, plant, synthetic_history
from harness.checkers.timeline import Timeline

LEDGER_CHECKERS = sorted(DEFECTS)
# The checkers these histories carry data for (ops and observation; no metric samples).
JUDGED = CheckConfig(enabled=LEDGER_CHECKERS + ["graceful_degradation", "slo"])
# Example counts keep the whole file near half a minute on a shared 2-core machine; raise them locally
# (HYPOTHESIS_PROFILE is not used: the numbers are the budget).
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_DEFECT = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KINDS = (
    "ok",
    "retry_ok",
    "timeout_ok",
    "info_posted",
    "info_lost",
    "refused",
    "invalid",
    "dead",
    "rejected",
    "duplicate",
    "conflict",
)
events = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 3),  # key
        st.integers(1, 300),  # gap before the invoke, ms
        st.integers(1, 600),  # latency, ms (often longer than the gaps: concurrent events)
        st.sampled_from(("EUR", "USD")),
    ),
    min_size=0,
    max_size=30,
)


def correct_timeline(spec) -> Timeline:
    """A timeline that a correct system could have produced from this spec."""
    t = Timeline()
    first_invoke = {}
    posted, acked = [], []
    # A fixed prefix so that every defect has a place to go: two sequential events on one key,
    # one refused event, one dead letter.
    t.ok("p1", at=0.0, key="K0", took=0.01)
    t.ok("p2", at=0.05, key="K0", took=0.01)
    t.fail("pf", at=0.06, key="K1", status=429, retry_after_s=1.0)
    t.ok("pd", at=0.07, key="K2")
    t.dead_letter("pd", reason="poison: amount over limit")
    first_invoke.update(p1=0.0, p2=0.05)
    posted += ["p1", "p2"]
    acked += ["p1", "p2"]
    at = 0.1
    for i, (kind, key, gap_ms, latency_ms, currency) in enumerate(spec):
        at += gap_ms / 1000.0
        took = latency_ms / 1000.0
        event = f"e{i}"
        body = {"key": f"K{key}", "currency": currency, "took": took}
        if kind in ("duplicate", "conflict") and acked:
            earlier = acked[(i * 7) % len(acked)]
            if kind == "duplicate":
                t.ok(earlier, at=at, duplicate=True, took=took)
            else:
                t.fail(earlier, at=at, status=409, amount_minor=t.body(earlier)["amount_minor"] + 1, took=took)
            continue
        first_invoke[event] = at
        if kind in ("ok", "duplicate", "conflict"):
            t.ok(event, at=at, **body)
            posted.append(event)
            acked.append(event)
        elif kind == "retry_ok":
            t.fail(event, at=at, status=429, retry_after_s=0.05, **body)
            t.ok(event, at=at + took + 0.05, took=took)
            first_invoke[event] = at + took + 0.05  # the 429 did nothing: the retry is when it was enqueued
            posted.append(event)
            acked.append(event)
        elif kind == "timeout_ok":
            t.info(event, at=at, error="timeout", **{**body, "took": 2.0})
            t.ok(event, at=at + 2.1, took=took)
            posted.append(event)
            acked.append(event)
        elif kind == "info_posted":
            t.info(event, at=at, **body)
            posted.append(event)
        elif kind == "info_lost":
            t.info(event, at=at, **body)
        elif kind == "refused":
            t.fail(event, at=at, status=429, retry_after_s=1.0, **body)
        elif kind == "invalid":
            t.fail(event, at=at, status=422, valid_body=False, **{**body, "currency": "EURO"})
        elif kind == "dead":
            t.ok(event, at=at, **body)
            t.dead_letter(event, reason="exhausted: 5 attempts")
        elif kind == "rejected":
            t.ok(event, at=at, **body)
            t.status(event, at=at + took + 0.5, value="rejected")
    # A correct ledger applies each key's events in an order consistent with real time: the order of
    # each event's first attempt that could take effect is one (a 429 attempt did nothing).
    for event in sorted(posted, key=lambda e: first_invoke[e]):
        t.post(event)
    return t


def failing(verdicts):
    """The checkers that did not pass; one with nothing to judge here (no fault, no SLO bound) is neither."""
    return {v.name for v in verdicts if v.validity in (Validity.INVALID, Validity.UNKNOWN)}


@PROPERTY
@given(events)
def test_a_generated_correct_history_passes_every_checker(spec):
    verdicts = check_all(correct_timeline(spec).build(), JUDGED)
    assert len(verdicts) == 9
    assert failing(verdicts) == set(), [v.summary for v in verdicts if not v.valid]
    assert {v.name for v in verdicts if v.validity is Validity.NOT_JUDGED} <= {"graceful_degradation", "slo"}


@pytest.mark.parametrize("checker", LEDGER_CHECKERS)
@PER_DEFECT
@given(spec=events, seed=st.integers(0, 2**32 - 1))
def test_one_planted_defect_fails_exactly_its_checker(checker, spec, seed):
    history = plant(correct_timeline(spec).build(), checker, np.random.default_rng(seed))
    verdicts = check_all(history, JUDGED)
    assert failing(verdicts) == {checker}, [v.summary for v in verdicts if not v.valid]
    (verdict,) = [v for v in verdicts if v.name == checker]
    assert verdict.validity is Validity.INVALID
    assert verdict.evidence, "a violation always carries evidence"


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_synthetic_benchmark_histories_are_correct_and_each_defect_fails_only_its_checker(seed):
    history = synthetic_history(2000, seed)
    assert failing(check_all(history, JUDGED)) == set()
    rng = np.random.default_rng(seed)
    for checker in LEDGER_CHECKERS:
        assert failing(check_all(plant(history, checker, rng), JUDGED)) == {checker}, checker


# -- graceful degradation ------------------------------------------------------------------------

answers_in_fault = st.lists(
    st.tuples(st.sampled_from(("ok", "503", "429")), st.integers(1, 1999)),  # answer, latency ms (< 2000 ms bound)
    min_size=1,
    max_size=80,
)


def degraded_timeline(start_s: float, duration_s: float, answers) -> Timeline:
    """10 submits/s: all ok before and after the fault; inside it and its grace, explicit bounded answers."""
    t = Timeline()
    stop_s = start_s + duration_s
    end_s = stop_s + 40.0
    at, i = 0.0, 0
    while at < end_s:
        inside = start_s <= at < stop_s + 5.0
        answer, latency_ms = answers[i % len(answers)] if inside else ("ok", 5)
        took = latency_ms / 1000.0
        if answer == "ok":
            t.ok(f"e{i}", at=at, took=took)
        elif answer == "503":
            t.info(f"e{i}", at=at, status=503, error="http_503", retry_after_s=1.0, took=took)
        else:
            t.fail(f"e{i}", at=at, status=429, retry_after_s=0.5, took=took)
        i += 1
        at = round(at + 0.1, 6)
    t.fault(start=start_s, stop=stop_s)
    return t


@PROPERTY
@given(
    start_s=st.floats(5.0, 20.0), duration_s=st.floats(0.5, 10.0), answers=answers_in_fault, spoil=st.integers(0, 10**6)
)
def test_explicit_bounded_answers_pass_and_one_500_fails(start_s, duration_s, answers, spoil):
    t = degraded_timeline(start_s, duration_s, answers)
    verdict = graceful_degradation(t.build(), CheckConfig())
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.figures["fault_0.recovery_s"] <= 30.0
    # Plant one 500 at a time inside the fault window.
    at = start_s + (spoil % max(1, int(duration_s * 100))) / 100.0
    t.info("planted-500", at=at, status=500, error="http_500", took=0.01)
    spoiled = graceful_degradation(t.build(), CheckConfig())
    assert spoiled.validity is Validity.INVALID
    assert spoiled.counts["server_errors"] == 1
    assert spoiled.evidence[0].event_id == "planted-500"
