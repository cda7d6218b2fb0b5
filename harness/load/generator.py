"""Ledger postings for the load: a pure, seeded stream of request bodies with their intent.

Why pure and seeded: the same seed must give the same postings in a local run,
in every worker of a distributed run (each walks the whole stream and sends its
own share), and in a replay of a failing run. The generator marks what it meant
to do (duplicate, conflict, invalid body) so that checkers can judge answers
afterwards; nothing is judged here.

Shape of the stream:
- hot accounts: the debit account is drawn from a Zipf-like law over N accounts
  (rank r has weight 1 / r**s), so a few ordering keys carry most of the load,
  as real ledgers do (clearing accounts, a big merchant);
- duplicates: a share of events resubmit an earlier valid event, same id and
  same body (the API must answer as it did the first time);
- conflicts: a share resubmit an earlier id with another body (expect 409);
- invalid bodies: a share carry one deliberate defect (expect a 4xx naming the field).
"""

from __future__ import annotations

import bisect
import enum
import itertools
import random
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GeneratorConfig", "Posting", "Intent", "InvalidKind", "generate_postings", "ACCOUNTS_MAX"]

# Cumulative weights are kept in memory: a million accounts is 8 MB, enough for any
# hot-key study, and a typo of 10**12 fails here instead of eating the machine.
ACCOUNTS_MAX = 1_000_000
_RECENT_MAX = 100_000

_FIELDS = ("event_id", "key", "debit_account", "credit_account", "amount_minor", "currency")


class Intent(str, enum.Enum):
    """What the generator meant a posting to be; the answer a correct API gives follows from it."""

    NEW = "new"  # a fresh event: expect 202
    DUPLICATE = "duplicate"  # same id, same body as an earlier event: expect 202 again, nothing twice
    CONFLICT = "conflict"  # same id, other body than an earlier event: expect 409
    INVALID = "invalid"  # a deliberate defect: expect a 4xx naming the field


class InvalidKind(str, enum.Enum):
    """The deliberate defects an invalid body carries (one per body)."""

    MISSING_FIELD = "missing_field"
    NEGATIVE_AMOUNT = "negative_amount"
    ZERO_AMOUNT = "zero_amount"
    BAD_CURRENCY = "bad_currency"
    BAD_EVENT_ID = "bad_event_id"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class GeneratorConfig:
    """How the postings look. Shares are probabilities per event, drawn independently in this order:
    invalid, then conflict, then duplicate; the rest are new events."""

    accounts: int = 1000
    # s in 1 / rank**s; 0 is uniform; 1.1 over 1000 accounts puts 18% of debits on the top one, 48% on the top 10
    zipf_exponent: float = 1.1
    currencies: tuple = ("EUR", "USD", "GBP")
    amount_minor_min: int = 1
    amount_minor_max: int = 1_000_000
    duplicate_share: float = 0.0
    conflict_share: float = 0.0
    invalid_share: float = 0.0
    invalid_kinds: tuple = tuple(k.value for k in InvalidKind)
    recent_events_max: int = 10_000  # duplicates and conflicts pick an earlier event among the last N new ones

    def __post_init__(self) -> None:
        _require(
            isinstance(self.accounts, int) and 2 <= self.accounts <= ACCOUNTS_MAX,
            f'"accounts" must be a whole number in [2, {ACCOUNTS_MAX}] (a posting needs two accounts), '
            f"got {self.accounts!r}",
        )
        _require(0 <= self.zipf_exponent <= 10, f'"zipf_exponent" must be in [0, 10], got {self.zipf_exponent!r}')
        object.__setattr__(self, "currencies", tuple(self.currencies))
        _require(len(self.currencies) > 0, '"currencies" must name at least one ISO 4217 code, e.g. ["EUR"]')
        for code in self.currencies:
            _require(
                isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper(),
                f'"currencies": {code!r} is not an ISO 4217 code; use three capital letters such as "EUR"',
            )
        _require(
            isinstance(self.amount_minor_min, int) and self.amount_minor_min >= 1,
            f'"amount_minor_min" must be a whole number >= 1, got {self.amount_minor_min!r}',
        )
        _require(
            isinstance(self.amount_minor_max, int) and self.amount_minor_max >= self.amount_minor_min,
            f'"amount_minor_max" must be a whole number >= amount_minor_min ({self.amount_minor_min}), '
            f"got {self.amount_minor_max!r}",
        )
        for name in ("duplicate_share", "conflict_share", "invalid_share"):
            value = getattr(self, name)
            _require(0.0 <= value <= 1.0, f'"{name}" must be within [0, 1], got {value!r}')
        _require(
            self.duplicate_share + self.conflict_share + self.invalid_share <= 1.0,
            '"duplicate_share" + "conflict_share" + "invalid_share" must be <= 1',
        )
        object.__setattr__(self, "invalid_kinds", tuple(self.invalid_kinds))
        known = {k.value for k in InvalidKind}
        for kind in self.invalid_kinds:
            _require(kind in known, f'"invalid_kinds": {kind!r} is unknown; use some of {sorted(known)}')
        _require(
            self.invalid_share == 0 or len(self.invalid_kinds) > 0,
            '"invalid_kinds" must name at least one kind when "invalid_share" > 0',
        )
        _require(
            isinstance(self.recent_events_max, int) and 1 <= self.recent_events_max <= _RECENT_MAX,
            f'"recent_events_max" must be a whole number in [1, {_RECENT_MAX}], got {self.recent_events_max!r}',
        )

    def to_dict(self) -> dict:
        return {
            name: (list(getattr(self, name)) if isinstance(getattr(self, name), tuple) else getattr(self, name))
            for name in self.__dataclass_fields__
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "generator") -> GeneratorConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: not a generator setting; use one of {', '.join(cls.__dataclass_fields__)}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Posting:
    """One request body and what it was meant to be.

    `body` is exactly what is sent (a field may be absent or wrong on purpose);
    the attributes repeat the body's fields for recording, None where absent.
    `of_index` is the index of the earlier posting a duplicate or conflict repeats.
    """

    index: int
    body: Mapping[str, Any]
    intent: Intent
    invalid_kind: InvalidKind | None = None
    of_index: int | None = None

    @property
    def event_id(self) -> str | None:
        return self.body.get("event_id")

    @property
    def duplicate(self) -> bool:
        return self.intent is Intent.DUPLICATE

    @property
    def valid_body(self) -> bool:
        return self.intent is not Intent.INVALID

    @property
    def label(self) -> str | None:
        """A short text of the intent for the history ("conflict", "invalid:bad_currency"); None for new events."""
        if self.intent is Intent.INVALID:
            return f"invalid:{self.invalid_kind.value}"
        if self.intent is Intent.NEW:
            return None
        return self.intent.value


def _cumulative_weights(accounts: int, exponent: float) -> list:
    total = 0.0
    out = []
    for rank in range(1, accounts + 1):
        total += 1.0 / rank**exponent
        out.append(total)
    return out


def account_name(number: int) -> str:
    return f"acct-{number:06d}"


def generate_postings(config: GeneratorConfig, rng: random.Random, count_max: int | None = None) -> Iterator[Posting]:
    """Yield postings forever (or count_max of them), every draw from rng.

    Account rank 1 is the hottest; account names are "acct-000001".. so that the
    hot keys are easy to spot in a report.
    """
    cumulative = _cumulative_weights(config.accounts, config.zipf_exponent)
    total = cumulative[-1]
    recent: deque = deque(maxlen=config.recent_events_max)  # (index, body) of earlier new events
    counter = itertools.count() if count_max is None else range(count_max)

    def pick_debit() -> int:
        return bisect.bisect_left(cumulative, rng.random() * total) + 1

    def fresh_body() -> dict:
        debit = pick_debit()
        credit = rng.randrange(1, config.accounts)  # any account but the debit one
        if credit >= debit:
            credit += 1
        debit_name = account_name(debit)
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "key": debit_name,
            "debit_account": debit_name,
            "credit_account": account_name(credit),
            "amount_minor": rng.randint(config.amount_minor_min, config.amount_minor_max),
            "currency": config.currencies[rng.randrange(len(config.currencies))],
        }

    for index in counter:
        draw = rng.random()
        if draw < config.invalid_share:
            kind = InvalidKind(config.invalid_kinds[rng.randrange(len(config.invalid_kinds))])
            yield Posting(index, _spoil(fresh_body(), kind, rng), Intent.INVALID, invalid_kind=kind)
            continue
        draw -= config.invalid_share
        if recent and draw < config.conflict_share:
            of_index, earlier = recent[rng.randrange(len(recent))]
            body = dict(earlier)
            # Another amount is the conflict a real client makes (a corrected resubmission).
            amount = earlier["amount_minor"]
            body["amount_minor"] = amount - 1 if amount > config.amount_minor_min else amount + 1
            yield Posting(index, body, Intent.CONFLICT, of_index=of_index)
            continue
        draw -= config.conflict_share
        if recent and draw < config.duplicate_share:
            of_index, earlier = recent[rng.randrange(len(recent))]
            yield Posting(index, dict(earlier), Intent.DUPLICATE, of_index=of_index)
            continue
        body = fresh_body()
        recent.append((index, body))
        yield Posting(index, body, Intent.NEW)


def _spoil(body: dict, kind: InvalidKind, rng: random.Random) -> dict:
    if kind is InvalidKind.MISSING_FIELD:
        # Never the event_id: without it the history could not tie the answer to the request.
        del body[_FIELDS[1 + rng.randrange(len(_FIELDS) - 1)]]
    elif kind is InvalidKind.NEGATIVE_AMOUNT:
        body["amount_minor"] = -body["amount_minor"]
    elif kind is InvalidKind.ZERO_AMOUNT:
        body["amount_minor"] = 0
    elif kind is InvalidKind.BAD_CURRENCY:
        body["currency"] = ("EURO", "eu", "E1R", "")[rng.randrange(4)]
    elif kind is InvalidKind.BAD_EVENT_ID:
        body["event_id"] = f"not-a-uuid-{rng.getrandbits(32):08x}"
    return body
