"""Each ledger checker seen passing and failing on small hand-written histories (harness.checkers.timeline)."""

from __future__ import annotations

import pytest

from harness.checkers import (
    CheckConfig,
    Validity,
    check_all,
    conservation,
    dead_letters_accounted,
    no_double_posting,
    no_lost_ack,
    no_phantom,
    ordering,
    replay_equals_projection,
    slo,
)
from harness.checkers.timeline import Timeline

CONFIG = CheckConfig()
LEDGER = (
    no_double_posting,
    no_lost_ack,
    no_phantom,
    ordering,
    conservation,
    replay_equals_projection,
    dead_letters_accounted,
)


def judge(check, timeline: Timeline, **build):
    return check(timeline.build(**build), CONFIG)


def evidence_ids(verdict):
    return [e.event_id for e in verdict.evidence]


def healthy() -> Timeline:
    """Retries, a duplicate, a conflict, an invalid body, an indeterminate op: all handled correctly."""
    t = Timeline()
    t.fail("e1", at=0.0, status=429, retry_after_s=0.5)
    t.ok("e1", at=0.6, key="A")  # the retry: attempt 2
    t.ok("e2", at=0.7, key="A")
    t.ok("e2", at=0.9, duplicate=True)  # deliberate duplicate: same id and body, ok again
    t.fail("e2", at=1.0, status=409, amount_minor=101)  # conflict: another body under e2
    t.fail("bad-1", at=1.1, status=422, valid_body=False, currency="EURO")
    t.info("e3", at=1.2, key="B", took=2.0)  # indeterminate, in the end posted once
    t.info("e4", at=1.3, key="B", took=2.0)  # indeterminate, never posted
    t.ok("e5", at=1.4, key="C")
    t.dead_letter("e5", reason="poison: amount over limit")
    t.post("e1")
    t.post("e2")
    t.post("e3")
    return t


@pytest.mark.parametrize("check", LEDGER, ids=lambda c: c.__name__)
def test_a_healthy_history_passes_every_ledger_checker(check):
    verdict = judge(check, healthy())
    assert verdict.validity is Validity.VALID, verdict.summary


@pytest.mark.parametrize("check", LEDGER, ids=lambda c: c.__name__)
def test_without_an_observation_the_ledger_checkers_are_unknown_not_valid(check):
    verdict = judge(check, healthy(), observed=False)
    assert verdict.validity is Validity.UNKNOWN
    assert "not observed" in verdict.summary


# -- no_double_posting -------------------------------------------------------------------------


def test_an_event_posted_twice_is_double_posting_with_its_seqs_and_ops_as_evidence():
    t = healthy()
    t.post("e2")
    verdict = judge(no_double_posting, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["events_posted_twice_or_more"] == 1
    assert verdict.counts["extra_rows"] == 1
    (evidence,) = verdict.evidence
    assert evidence.event_id == "e2"
    assert "posted 2 times (journal seq 2, 4)" in evidence.problem
    assert [op["type"] for op in evidence.ops][:2] == ["invoke", "ok"]
    assert all(op["event_id"] == "e2" for op in evidence.ops)


def test_an_indeterminate_event_posted_twice_is_double_posting():
    t = healthy()
    t.post("e3")
    assert evidence_ids(judge(no_double_posting, t)) == ["e3"]


# -- no_lost_ack ---------------------------------------------------------------------------------


def test_an_acknowledged_event_missing_from_journal_and_dead_letters_is_lost():
    t = healthy()
    t.ok("e6", at=2.0, key="D")
    verdict = judge(no_lost_ack, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["lost"] == 1
    assert evidence_ids(verdict) == ["e6"]
    assert "neither posted, dead-lettered nor rejected" in verdict.evidence[0].problem


def test_a_lost_ack_is_unknown_when_the_drain_did_not_complete():
    t = healthy()
    t.ok("e6", at=2.0, key="D")
    verdict = judge(no_lost_ack, t, drain_completed=False, backlog_left=7)
    assert verdict.validity is Validity.UNKNOWN
    assert "backlog_left=7" in verdict.summary


def test_an_event_rejected_by_a_business_rule_is_accounted_for():
    t = healthy()
    t.ok("e6", at=2.0, key="D")
    t.status("e6", at=3.0, value="rejected")
    assert judge(no_lost_ack, t).validity is Validity.VALID


def test_an_acknowledged_conflicting_body_is_lost_when_the_other_body_was_posted():
    t = Timeline()
    t.ok("e1", at=0.0)
    t.ok("e1", at=0.1, amount_minor=555)  # the API said yes to a conflict (no idempotency check)
    t.post("e1")
    verdict = judge(no_lost_ack, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["lost_posted_with_other_body"] == 1
    assert "posted with another body" in verdict.evidence[0].problem


def test_only_failed_or_indeterminate_events_may_be_missing():
    t = Timeline()
    t.fail("e1", at=0.0, status=429, retry_after_s=1.0)
    t.info("e2", at=0.1)
    t.pending("e3", at=0.2)
    assert judge(no_lost_ack, t).validity is Validity.VALID


# -- no_phantom ----------------------------------------------------------------------------------


def test_a_failed_event_that_is_posted_is_a_phantom():
    t = healthy()
    t.fail("e7", at=2.0, status=429, retry_after_s=1.0)
    t.post("e7")
    verdict = judge(no_phantom, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["posted_after_fail"] == 1
    assert evidence_ids(verdict) == ["e7"]


def test_the_conflicting_body_answered_409_must_not_be_posted():
    t = Timeline()
    t.ok("e1", at=0.0)
    t.fail("e1", at=0.1, status=409, amount_minor=101)
    t.post("e1", amount_minor=101)
    verdict = judge(no_phantom, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["posted_after_fail"] == 1


def test_a_journal_row_never_submitted_or_with_another_body_is_a_phantom():
    t = healthy()
    t.post("ghost")
    t.post("e5", amount_minor=999)  # e5 was submitted, but never with this amount
    verdict = judge(no_phantom, t)
    assert verdict.counts["never_submitted"] == 1
    assert verdict.counts["body_never_submitted"] == 1
    assert set(evidence_ids(verdict)) == {"ghost", "e5"}


def test_an_invalid_body_must_be_refused_and_never_posted():
    t = Timeline()
    t.ok("bad-1", at=0.0, valid_body=False, amount_minor=-5)
    t.post("bad-1")
    verdict = judge(no_phantom, t)
    assert verdict.counts["invalid_body_acknowledged"] == 1
    assert verdict.counts["posted_invalid_body"] == 1


def test_an_indeterminate_event_may_be_posted_once():
    t = Timeline()
    t.info("e1", at=0.0)
    t.post("e1")
    assert judge(no_phantom, t).validity is Validity.VALID


# -- ordering ------------------------------------------------------------------------------------


def test_an_event_acknowledged_before_another_was_invoked_must_apply_first():
    t = Timeline()
    t.ok("a", at=0.0, key="K", took=0.1)  # acknowledged at 0.1
    t.ok("b", at=0.2, key="K")  # invoked after a's acknowledgement
    t.post("b")
    t.post("a")
    verdict = judge(ordering, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["events_applied_too_early"] == 1
    assert evidence_ids(verdict) == ["b", "a"]
    assert "before a (seq 2)" in verdict.evidence[0].problem


def test_overlapping_events_may_apply_in_either_order():
    t = Timeline()
    t.ok("a", at=0.0, key="K", took=0.5)
    t.ok("b", at=0.2, key="K", took=0.5)  # invoked before a was acknowledged
    t.post("b")
    t.post("a")
    assert judge(ordering, t).validity is Validity.VALID


def test_ordering_is_per_key_and_uses_the_first_invoke_of_a_retried_event():
    t = Timeline()
    t.ok("a", at=0.0, key="K", took=0.1)
    t.ok("x", at=0.2, key="OTHER")  # another key: free to apply first
    t.info("b", at=0.05, key="K", took=1.0)  # b first invoked before a's ack...
    t.ok("b", at=1.1)  # ...and retried after it: still concurrent with a
    t.post("x")
    t.post("b")
    t.post("a")
    assert judge(ordering, t).validity is Validity.VALID


def test_a_retry_after_a_definite_failure_is_ordered_from_the_retry():
    """B's first attempt got 429 (it did nothing); A was acknowledged; B's retry came after: A first."""
    t = Timeline()
    t.fail("b", at=0.0, key="K", status=429, retry_after_s=0.5)
    t.ok("a", at=0.05, key="K", took=0.05)  # acknowledged at 0.1
    t.ok("b", at=0.6)  # the retry, after a's acknowledgement
    t.post("b")
    t.post("a")
    verdict = judge(ordering, t)
    assert verdict.validity is Validity.INVALID, verdict.summary
    assert evidence_ids(verdict) == ["b", "a"] and "invoked at 0.600000 s" in verdict.evidence[0].problem


def test_a_retry_after_an_indeterminate_attempt_stays_concurrent():
    """B's first attempt timed out (it may have been enqueued before A's acknowledgement): either order."""
    t = Timeline()
    t.info("b", at=0.0, key="K", took=0.5)
    t.ok("a", at=0.05, key="K", took=0.05)
    t.ok("b", at=0.6)
    t.post("b")
    t.post("a")
    assert judge(ordering, t).validity is Validity.VALID


def test_ordering_ignores_events_that_never_posted():
    t = Timeline()
    t.ok("a", at=0.0, key="K", took=0.1)
    t.ok("b", at=0.2, key="K")
    t.post("b")
    assert judge(ordering, t).validity is Validity.VALID


# -- conservation and replay ---------------------------------------------------------------------


def test_unbalanced_lines_break_conservation_but_not_replay():
    t = healthy()
    t.post("e4", lines=False)
    t.line("e4", "B", -100)
    t.line("e4", "bank", 99)  # one minor unit vanished; the projection follows the lines
    history = t.build()
    verdict = conservation(history, CONFIG)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["events_unbalanced"] == 1
    assert verdict.evidence[0].event_id == "e4"
    assert "sum to -1" in verdict.evidence[0].problem
    assert any("balances in EUR sum to -1" in e.problem for e in verdict.evidence)
    assert replay_equals_projection(history, CONFIG).validity is Validity.VALID


def test_a_projection_drift_breaks_replay_but_not_conservation():
    t = healthy()
    t.drift("A", -100)  # e1's lines applied twice to the projection
    t.drift("bank", +100)
    history = t.build()
    verdict = replay_equals_projection(history, CONFIG)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["balance_cells_drifted"] == 2
    assert any("A EUR" in e.problem and "drift -100" in e.problem for e in verdict.evidence)
    assert conservation(history, CONFIG).validity is Validity.VALID


def test_lines_must_belong_to_journal_events_and_events_must_have_lines():
    t = healthy()
    t.line("stray", "A", -5)
    t.line("stray", "bank", 5)
    t.post("e4", lines=False)
    verdict = judge(replay_equals_projection, t)
    assert verdict.counts["lines_without_journal_event"] == 2
    assert verdict.counts["journal_events_without_lines"] == 1


def test_currencies_are_summed_apart():
    t = Timeline()
    t.ok("e1", at=0.0)
    t.post("e1", lines=False)
    t.line("e1", "A", -100, "EUR")
    t.line("e1", "bank", 100, "USD")
    verdict = judge(conservation, t)
    assert verdict.counts["events_unbalanced"] == 1
    assert verdict.counts["currencies_unbalanced"] == 2


# -- dead letters ----------------------------------------------------------------------------------


def test_dead_letters_need_a_reason_and_an_accepted_event():
    t = healthy()
    t.ok("e8", at=2.0)
    t.dead_letter("e8", reason=" ")
    t.dead_letter("nobody")
    t.fail("e9", at=2.1, status=429, retry_after_s=1.0)
    t.dead_letter("e9")
    t.dead_letter("e1")  # also posted
    verdict = judge(dead_letters_accounted, t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts == {
        "dead_letters": 5,
        "without_reason": 1,
        "never_submitted": 1,
        "never_accepted": 1,
        "also_posted": 1,
    }
    assert evidence_ids(verdict) == ["e8", "nobody", "e9", "e1"]


def test_an_indeterminate_event_may_be_dead_lettered():
    t = Timeline()
    t.info("e1", at=0.0)
    t.dead_letter("e1", reason="exhausted: 5 attempts")
    assert judge(dead_letters_accounted, t).validity is Validity.VALID


# -- slo -----------------------------------------------------------------------------------------


def slo_history() -> Timeline:
    t = Timeline()
    for i in range(100):
        t.ok(f"e{i}", at=i * 0.1, took=0.001 * (i + 1))  # latencies 1..100 ms
    t.fail("x", at=9.0, status=429, took=0.5)  # refusals do not count
    return t


def test_slo_judges_latency_percentiles_of_ok_submits_and_throughput():
    history = slo_history().build()
    verdict = slo(history, CheckConfig(latency_ms_p50_max=60, latency_ms_p99_max=100, throughput_per_s_min=10))
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.figures["latency_ms_p50"] == pytest.approx(50.5)
    assert verdict.figures["latency_ms_p99"] == pytest.approx(99.01)
    assert verdict.figures["throughput_per_s"] == pytest.approx(
        100 / 10.0
    )  # first invoke 0.0 s, last completion 9.9 + 0.1 s
    breached = slo(history, CheckConfig(latency_ms_p95_max=90, throughput_per_s_min=20))
    assert breached.validity is Validity.INVALID
    assert "latency_ms_p95 = 95.0 ms > 90 ms" in breached.summary
    assert "throughput_per_s" in breached.summary


def test_slo_without_ok_submits_is_unknown_for_latency():
    t = Timeline()
    t.fail("x", at=0.0, status=429)
    verdict = slo(t.build(), CheckConfig(latency_ms_p99_max=100))
    assert verdict.validity is Validity.UNKNOWN


# -- check_all -----------------------------------------------------------------------------------


def test_check_all_runs_the_enabled_checkers_in_order():
    verdicts = check_all(healthy().build(), CheckConfig(enabled=["ordering", "no_phantom"]))
    assert [v.name for v in verdicts] == ["no_phantom", "ordering"]


def test_a_crashing_checker_is_unknown_with_the_exception_text():
    history = healthy().build()
    broken = history.observation.journal.drop(columns=["seq"])
    from dataclasses import replace

    history = replace(history, observation=replace(history.observation, journal=broken))
    verdicts = {v.name: v for v in check_all(history, CheckConfig())}
    assert verdicts["no_double_posting"].validity is Validity.UNKNOWN
    assert "crashed: KeyError" in verdicts["no_double_posting"].summary
    assert verdicts["conservation"].validity is Validity.VALID  # does not need seq


def test_an_empty_history_is_unknown_not_valid():
    verdicts = check_all(Timeline().build(), CheckConfig(enabled=[c.__name__ for c in LEDGER] + ["slo"]))
    assert {v.validity for v in verdicts} == {Validity.UNKNOWN}
    assert all("no client op" in v.summary for v in verdicts)


def test_a_history_whose_ops_never_completed_is_judged_without_crashing():
    t = Timeline()
    t.pending("e1", at=0.0)
    t.pending("e2", at=0.1, key="B")
    t.post("e1")  # an unanswered op is indeterminate: it may be posted
    verdicts = check_all(t.build(), CheckConfig())
    assert not [v.summary for v in verdicts if "crashed" in v.summary]
    assert all(v.validity in (Validity.VALID, Validity.NOT_JUDGED) for v in verdicts)


def test_event_codes_are_shared_across_columns_chunks_and_empty_columns():
    import pandas as pd

    from harness.checkers.facts import event_codes

    chunked = pd.concat(
        [pd.Series(["a", "b"], dtype="string"), pd.Series(["c", None], dtype="string")], ignore_index=True
    )  # two Arrow chunks
    empty = pd.Series([], dtype="string")
    plain = pd.Series(["c", "a", "z"], dtype=object)  # not Arrow-backed
    codes = event_codes([chunked, empty, plain])
    assert [len(c) for c in codes] == [4, 0, 3]
    first, _, last = codes
    assert first[3] == -1  # NA
    assert last[0] == first[2] and last[1] == first[0]  # "c" and "a" have one code everywhere
    assert len({*first[:3].tolist(), last[2]}) == 4


# -- lines against their journal row -----------------------------------------------------------------


@pytest.mark.parametrize(
    "account, amount, currency, what",
    [
        ("wrong-account", 100, "EUR", "money booked to the wrong account"),
        ("bank", 90, "EUR", "a line amount unlike the journal's"),
        ("bank", 100, "USD", "a line in another currency"),
    ],
)
def test_lines_that_differ_from_their_journal_row_are_caught_even_when_they_balance(account, amount, currency, what):
    t = Timeline()
    t.ok("e1", at=0.0, debit_account="alice", credit_account="bank", amount_minor=100, currency="EUR")
    t.post("e1", lines=False)
    t.line("e1", "alice", -amount, currency)  # balanced lines: sums alone see nothing
    t.line("e1", account, amount, currency)
    verdict = judge(conservation, t)
    assert verdict.validity is Validity.INVALID, what
    assert verdict.counts["events_lines_unlike_journal"] == 1 and verdict.counts["events_unbalanced"] == 0
    (evidence,) = verdict.evidence
    assert "row alice -> bank 100 EUR" in evidence.problem and f"{account} +{amount} {currency}" in evidence.problem


def test_lines_equal_to_their_rows_hold_also_for_an_event_posted_twice():
    t = Timeline()
    t.ok("e1", at=0.0)
    t.post("e1")
    t.post("e1")  # no_double_posting's business; its two pairs of lines match its two rows
    assert judge(conservation, t).validity is Validity.VALID
