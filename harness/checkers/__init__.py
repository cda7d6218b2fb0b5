"""Checkers: pure functions from a History to a Verdict (valid / invalid / unknown, with counts and evidence).

Public surface:
- Validity, Evidence, Verdict, exit_code: what a checker says and what the gate makes of it;
- CheckConfig, CHECKER_NAMES: every threshold, with a JSON form (check_config.json);
- one function per invariant, each (history, config) -> Verdict: no_double_posting,
  no_lost_ack, no_phantom, ordering, conservation, replay_equals_projection,
  dead_letters_accounted, graceful_degradation, backlog_bounded, slo;
- check_all(history, config) -> tuple of verdicts (a crash becomes UNKNOWN);
- check_run(run_dir, config=None, out=sys.stdout) -> exit code (`ledgerchaos check RUN_DIR`).
Test support: harness.checkers.timeline (a tiny history notation) and
harness.checkers.synthetic (large correct histories for benchmarks).
"""

from harness.checkers.backlog import backlog_bounded
from harness.checkers.config import CHECKER_NAMES, CheckConfig
from harness.checkers.console import check_run, read_check_config, render_verdicts, write_check_config
from harness.checkers.degradation import graceful_degradation
from harness.checkers.ledger import dead_letters_accounted, no_double_posting, no_lost_ack, no_phantom
from harness.checkers.money import conservation, replay_equals_projection
from harness.checkers.ordering import ordering
from harness.checkers.slo import slo
from harness.checkers.suite import CHECKERS, check_all
from harness.checkers.verdict import Evidence, Validity, Verdict, exit_code

__all__ = [
    "CHECKER_NAMES",
    "backlog_bounded",
    "CHECKERS",
    "CheckConfig",
    "Evidence",
    "Validity",
    "Verdict",
    "check_all",
    "check_run",
    "conservation",
    "dead_letters_accounted",
    "exit_code",
    "graceful_degradation",
    "no_double_posting",
    "no_lost_ack",
    "no_phantom",
    "ordering",
    "read_check_config",
    "render_verdicts",
    "replay_equals_projection",
    "slo",
    "write_check_config",
]
