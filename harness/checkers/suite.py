"""check_all: run every enabled checker on one history, a crash becoming UNKNOWN with the exception's text.

Why one place: Jepsen's rule, a checker that crashes yields unknown and never
a pass, is enforced here for all of them; and the costly shared facts
(pairing, hashing) are computed once for the whole suite.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from harness.checkers.backlog import backlog_bounded
from harness.checkers.config import CHECKER_NAMES, CheckConfig
from harness.checkers.degradation import graceful_degradation
from harness.checkers.facts import Facts
from harness.checkers.ledger import dead_letters_accounted, no_double_posting, no_lost_ack, no_phantom
from harness.checkers.money import conservation, replay_equals_projection
from harness.checkers.ordering import ordering
from harness.checkers.slo import slo
from harness.checkers.verdict import Validity, Verdict
from harness.history.schema import History

__all__ = ["CHECKERS", "check_all", "run_checker"]

# name -> pure function (history, config, facts=None) -> Verdict, in report order.
CHECKERS: dict[str, Callable[..., Verdict]] = {
    "no_double_posting": no_double_posting,
    "no_lost_ack": no_lost_ack,
    "no_phantom": no_phantom,
    "ordering": ordering,
    "conservation": conservation,
    "replay_equals_projection": replay_equals_projection,
    "dead_letters_accounted": dead_letters_accounted,
    "graceful_degradation": graceful_degradation,
    "backlog_bounded": backlog_bounded,
    "slo": slo,
}
assert tuple(CHECKERS) == CHECKER_NAMES, "CHECKERS and CHECKER_NAMES must list the same checkers in the same order"


def run_checker(name: str, history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """One checker by name; any exception becomes an UNKNOWN verdict naming it."""
    try:
        result = CHECKERS[name](history, config, facts)
        if not isinstance(result, Verdict):  # a programming error, reported rather than trusted
            raise TypeError(f"checker returned {type(result).__name__}, not a Verdict")
        return result
    except Exception as exc:  # noqa: BLE001 - the whole point: a crash is unknown, never a pass
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
        return Verdict(
            name,
            Validity.UNKNOWN,
            f"cannot judge: the checker crashed: {type(exc).__name__}: {exc}{place}",
            {"crashed": 1},
            {},
            (),
        )


def check_all(history: History, config: CheckConfig | None = None) -> tuple[Verdict, ...]:
    """Every enabled checker, in CHECKER_NAMES order; a required checker that judged nothing is UNKNOWN."""
    config = config if config is not None else CheckConfig()
    facts = Facts(history)
    verdicts = [run_checker(name, history, config, facts) for name in CHECKER_NAMES if name in config.enabled]
    return tuple(_required(v) if v.name in config.require else v for v in verdicts)


def _required(verdict: Verdict) -> Verdict:
    if verdict.validity is not Validity.NOT_JUDGED:
        return verdict
    reason = verdict.summary.removeprefix("not judged: ")
    return Verdict(
        verdict.name,
        Validity.UNKNOWN,
        f"cannot judge: required (invariants.require) but nothing was judged: {reason}",
        verdict.counts,
        verdict.figures,
        (),
    )
