"""Applying a batch of postings to the PostgreSQL ledger: journal, lines and projection in one statement.

Why one statement inside an explicit transaction: the fence check, the
idempotent journal insert, the double-entry lines and the balance projection
are data-modifying CTEs of one statement, so they commit together or not at
all, with one statement round trip per batch (plus BEGIN and COMMIT).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from reference_system.posting import Posting
from reference_system.settings import Variant

__all__ = ["ErrorKind", "classify", "apply_batch", "ApplyResult", "FencedOut"]

_FENCE = """
fence AS (
    INSERT INTO partition_fence (partition, epoch, consumer) VALUES ($1, $2, $3)
    ON CONFLICT (partition) DO UPDATE SET epoch = excluded.epoch, consumer = excluded.consumer
    WHERE partition_fence.epoch <= excluded.epoch
    RETURNING epoch
)"""
_NO_FENCE = "fence AS (SELECT $1::int AS p, $2::bigint AS e, $3::text AS c)"

_BATCH = """
batch AS (
    SELECT * FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
        WITH ORDINALITY AS b (event_id, key, debit_account, credit_account, amount_minor, currency, ord)
    WHERE EXISTS (SELECT 1 FROM fence)
),
ins AS (
    INSERT INTO journal (event_id, key, debit_account, credit_account, amount_minor, currency,
                         partition, consumer, applied_at)
    SELECT event_id, key, debit_account, credit_account, amount_minor, currency, $1, $3, now()
    FROM batch ORDER BY ord
    {on_conflict}
    RETURNING event_id, debit_account, credit_account, amount_minor, currency
),
lines AS (
    INSERT INTO journal_lines (event_id, account, currency, amount_minor)
    SELECT event_id, debit_account, currency, -amount_minor FROM ins
    UNION ALL
    SELECT event_id, credit_account, currency, amount_minor FROM ins
    RETURNING account, currency, amount_minor
)"""

_PROJECTION = """,
proj AS (
    INSERT INTO balances (account, currency, balance_minor)
    SELECT account, currency, sum(amount_minor)::bigint FROM lines
    GROUP BY account, currency ORDER BY account, currency
    ON CONFLICT (account, currency) DO UPDATE SET balance_minor = balances.balance_minor + excluded.balance_minor
    RETURNING 1
)
SELECT (SELECT count(*) FROM fence) AS fence_ok, (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM proj) AS touched, NULL::text[] AS lines"""

# projection_outside_txn: the journal statement returns its lines, the caller updates balances after.
_RETURN_LINES = """
SELECT (SELECT count(*) FROM fence) AS fence_ok, (SELECT count(*) FROM ins) AS inserted, 0 AS touched,
       (SELECT array_agg(account || chr(31) || currency || chr(31) || amount_minor::text) FROM lines) AS lines"""


def _sql(variant: Variant) -> str:
    fence = _NO_FENCE if variant is Variant.NO_LEASE else _FENCE
    on_conflict = "" if variant is Variant.NO_IDEMPOTENCY else "ON CONFLICT (event_id) DO NOTHING"
    tail = _RETURN_LINES if variant is Variant.PROJECTION_OUTSIDE_TXN else _PROJECTION
    return "WITH " + fence + "," + _BATCH.format(on_conflict=on_conflict) + tail


_UPSERT_ONE = """
INSERT INTO balances (account, currency, balance_minor) VALUES ($1, $2, $3)
ON CONFLICT (account, currency) DO UPDATE SET balance_minor = balances.balance_minor + excluded.balance_minor
"""


class ErrorKind(enum.Enum):
    UNAVAILABLE = "unavailable"  # the database is down or slow: wait, do not count against events
    TRANSIENT = "transient"  # deadlock, serialization: retry, counted, bounded
    POISON = "poison"  # the data itself is refused: dead-letter the culprit


def classify(exc: BaseException) -> ErrorKind:
    """Map an exception from asyncpg (or the network) to what the consumer should do."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        if state[:2] in ("08", "53", "57", "58"):
            return ErrorKind.UNAVAILABLE
        if state[:2] in ("22", "23", "42"):
            return ErrorKind.POISON
        return ErrorKind.TRANSIENT
    return ErrorKind.UNAVAILABLE  # timeouts, OSError, InterfaceError: the connection is suspect


class FencedOut(Exception):
    """A newer lease epoch has committed on this partition: this consumer no longer owns it."""


@dataclass(frozen=True)
class ApplyResult:
    inserted: int


async def apply_batch(
    conn: asyncpg.Connection,
    variant: Variant,
    partition: int,
    epoch: int,
    consumer: str,
    postings: Sequence[Posting],
    timeout_s: float | None,
) -> ApplyResult:
    """Apply postings in order; raise FencedOut when the lease epoch is stale."""
    async with conn.transaction():
        row = await _apply_statement(conn, variant, partition, epoch, consumer, postings, timeout_s)
    if not row["fence_ok"]:
        raise FencedOut(f"partition {partition}: epoch {epoch} is stale")
    if variant is Variant.PROJECTION_OUTSIDE_TXN and row["lines"]:
        # The defect: the journal has committed; the projection follows line by line, outside
        # that transaction. A crash in between leaves balances behind the journal for good,
        # because the redelivered batch inserts nothing and so projects nothing.
        for line in row["lines"]:
            account, currency, amount = line.split("\x1f")
            await conn.execute(_UPSERT_ONE, account, currency, int(amount), timeout=timeout_s)
    return ApplyResult(inserted=int(row["inserted"]))


async def _apply_statement(
    conn: asyncpg.Connection,
    variant: Variant,
    partition: int,
    epoch: int,
    consumer: str,
    postings: Sequence[Posting],
    timeout_s: float | None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        _sql(variant),
        partition,
        epoch,
        consumer,
        [p.event_id for p in postings],
        [p.key for p in postings],
        [p.debit_account for p in postings],
        [p.credit_account for p in postings],
        [p.amount_minor for p in postings],
        [p.currency for p in postings],
        timeout=timeout_s,
    )
