"""Every checker is seen failing: each known-bad variant of the reference system makes the harness
report the right invariant violated (exit 1), and the correct system passes the same scenario (exit 0).

These are the shortened forms that run in CI; the scenario files in scenarios/variants/ are the same
runs a person can replay with `ledgerchaos run scenarios/variants/<name>.yaml [--variant correct]`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkers import Validity
from harness.run.engine import RunOptions, run_scenario
from harness.scenario import load_scenario, with_overrides

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VARIANTS = Path(__file__).resolve().parents[2] / "scenarios" / "variants"

# variant -> the checker that must report it
EXPECTED = {
    "ack_before_commit": "no_lost_ack",
    "no_idempotency": "no_double_posting",
    "no_lease": "ordering",
    "no_backpressure": "backlog_bounded",
    "no_timeouts": "graceful_degradation",
    "projection_outside_txn": "replay_equals_projection",
}


def _run(scenario, tmp_path: Path, run_id: str):
    outcome = run_scenario(scenario, RunOptions(reports_dir=tmp_path, run_id=run_id))
    return outcome, {v.name: v for v in outcome.verdicts}


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_variant_is_caught_and_correct_passes(variant, tmp_path):
    scenario = load_scenario(VARIANTS / f"{variant}.yaml")
    assert scenario.system.variant == variant

    outcome, verdicts = _run(scenario, tmp_path, "bad")
    checker = EXPECTED[variant]
    assert outcome.exit_code == 1, (outcome.notes, {n: v.summary for n, v in verdicts.items()})
    assert verdicts[checker].validity is Validity.INVALID, verdicts[checker].summary
    assert verdicts[checker].evidence, "a violation must carry evidence"

    correct = with_overrides(scenario, variant="correct")
    outcome, verdicts = _run(correct, tmp_path, "correct")
    # What a replay of this run reads is the scenario that ran (the override included), not the file's.
    assert load_scenario(outcome.run_dir / "scenario.resolved.yaml") == correct
    failing = {n: v.summary for n, v in verdicts.items() if v.validity is not Validity.VALID}
    assert outcome.exit_code == 0, (outcome.notes, failing)
