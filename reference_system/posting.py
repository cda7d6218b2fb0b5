"""Posting validation: raw JSON bytes in, a frozen Posting (or a field-naming error) out.

Why strict here: the API validates once, at the edge, so nothing invalid is ever
enqueued; consumers re-check the same rules (`parse_stored`) because a stream
entry may come from somewhere else (a bug, an operator's XADD) and such an
entry must go to the dead-letter queue, not crash the partition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Posting", "InvalidPosting", "parse_posting", "parse_stored", "FIELDS"]

FIELDS = ("event_id", "key", "debit_account", "credit_account", "amount_minor", "currency")
TEXT_CHARS_MAX = 128


class InvalidPosting(ValueError):
    """The body breaks a rule; `field` names the culprit, `detail` the fix."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class Posting:
    """One double-entry transfer: amount_minor moves from debit_account to credit_account."""

    event_id: str
    key: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str

    def canonical(self) -> bytes:
        """The body as stored and compared: same fields, same order, so equal postings are equal bytes."""
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "key": self.key,
                "debit_account": self.debit_account,
                "credit_account": self.credit_account,
                "amount_minor": self.amount_minor,
                "currency": self.currency,
            }
        )


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise InvalidPosting(field, f"must be a string, got {type(value).__name__}")
    if not value or len(value) > TEXT_CHARS_MAX:
        raise InvalidPosting(field, f"must have 1 to {TEXT_CHARS_MAX} characters, got {len(value)}")
    if not value.isprintable():
        raise InvalidPosting(field, "must contain printable characters only (no control characters)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPosting(field, "must be valid Unicode (no lone surrogates)") from None
    return value


def _check(body: Any, currencies: frozenset[str], amount_minor_max: int) -> Posting:
    if not isinstance(body, dict):
        raise InvalidPosting("body", f"must be a JSON object with fields {', '.join(FIELDS)}")
    for field in body:
        if field not in FIELDS:
            raise InvalidPosting(str(field)[:64], f"is not a posting field; allowed: {', '.join(FIELDS)}")
    for field in FIELDS:
        if field not in body:
            raise InvalidPosting(field, "is required")
    raw_id = body["event_id"]
    if not isinstance(raw_id, str):
        raise InvalidPosting("event_id", "must be a UUID string such as 3f2b...-...")
    try:
        event_id = str(uuid.UUID(raw_id))
    except ValueError:
        raise InvalidPosting("event_id", f"{raw_id[:64]!r} is not a UUID") from None
    key = _text(body, "key")
    debit = _text(body, "debit_account")
    credit = _text(body, "credit_account")
    if debit == credit:
        raise InvalidPosting("credit_account", "must differ from debit_account")
    amount = body["amount_minor"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidPosting("amount_minor", f"must be an integer number of minor units, got {type(amount).__name__}")
    if not 0 < amount <= amount_minor_max:
        raise InvalidPosting("amount_minor", f"{amount} is outside [1, {amount_minor_max}]")
    currency = body["currency"]
    if not isinstance(currency, str) or currency not in currencies:
        raise InvalidPosting("currency", f"{str(currency)[:16]!r} is not one of {', '.join(sorted(currencies))}")
    return Posting(event_id, key, debit, credit, amount, currency)


def parse_posting(raw: bytes, currencies: frozenset[str], amount_minor_max: int) -> Posting:
    """Validate a request body; raise InvalidPosting naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPosting("body", f"is not valid JSON ({exc})") from None
    return _check(body, currencies, amount_minor_max)


def parse_stored(raw: bytes, currencies: frozenset[str], amount_minor_max: int) -> Posting:
    """Validate a body read back from the stream (same rules; separate name for the reader)."""
    return parse_posting(raw, currencies, amount_minor_max)
