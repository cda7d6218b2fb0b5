"""The final observation: the ledger and the dead-letter queue after the drain, read directly.

Why directly (not through the proxies, not through the API): the judge must see
what the database and the broker hold, whatever state the faults left the
system's own paths in. Every read has a timeout and a row bound.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pandas as pd
import redis

from harness.errors import RunError
from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    Observation,
    conform,
)

__all__ = ["observe", "ROWS_MAX"]

ROWS_MAX = 20_000_000
DLQ_PAGE = 10_000


async def _read_ledger(postgres_url: str, wall_t0_s: float, timeout_s: float):
    conn = await asyncpg.connect(postgres_url, timeout=timeout_s)
    try:
        journal = await conn.fetch(
            "SELECT seq, event_id::text AS event_id, key, debit_account, credit_account, amount_minor, currency, "
            "extract(epoch FROM applied_at)::float8 - $1::float8 AS applied_s "
            f"FROM journal ORDER BY seq LIMIT {ROWS_MAX}",
            wall_t0_s,
            timeout=timeout_s,
        )
        lines = await conn.fetch(
            f"SELECT event_id::text AS event_id, account, currency, amount_minor FROM journal_lines LIMIT {ROWS_MAX}",
            timeout=timeout_s,
        )
        balances = await conn.fetch(
            f"SELECT account, currency, balance_minor FROM balances LIMIT {ROWS_MAX}", timeout=timeout_s
        )
    finally:
        await conn.close(timeout=timeout_s)
    return journal, lines, balances


def _frame(rows, columns, table: str) -> pd.DataFrame:
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(columns))
    return conform(frame, columns, table)


def _dead_letters(redis_url: str, timeout_s: float) -> pd.DataFrame:
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    rows = []
    try:
        start = "-"
        while len(rows) < ROWS_MAX:
            page = client.xrange("ledger:dlq", min=start, max="+", count=DLQ_PAGE)
            if not page:
                break
            for _entry_id, fields in page:
                fields = {k.decode(): v.decode("utf-8", errors="replace") for k, v in fields.items()}
                attempts = fields.get("attempts")
                rows.append(
                    {
                        "event_id": fields.get("event_id") or _event_id_from_body(fields.get("body")),
                        "reason": fields.get("reason"),
                        "attempts": int(attempts) if attempts and attempts.isdigit() else None,
                    }
                )
            last = page[-1][0].decode()
            start = "(" + last
            if len(page) < DLQ_PAGE:
                break
    finally:
        client.close()
    return _frame(rows, DEAD_LETTERS_COLUMNS, "dead_letters")


def _event_id_from_body(body: str | None) -> str | None:
    try:
        return json.loads(body or "{}").get("event_id")
    except (ValueError, AttributeError):
        return None


def observe(postgres_url: str, redis_url: str, wall_t0_s: float, timeout_s: float = 60.0) -> Observation:
    """Read the journal, lines, balances and DLQ. Raises RunError naming what could not be read."""
    try:
        journal, lines, balances = asyncio.run(_read_ledger(postgres_url, wall_t0_s, timeout_s))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise RunError(f"final observation: cannot read the ledger from PostgreSQL: {exc}") from exc
    try:
        dead = _dead_letters(redis_url, min(timeout_s, 10.0))
    except redis.RedisError as exc:
        raise RunError(f"final observation: cannot read the dead-letter queue from Redis: {exc}") from exc
    return Observation(
        journal=_frame(journal, JOURNAL_COLUMNS, "journal"),
        lines=_frame(lines, LINES_COLUMNS, "lines"),
        balances=_frame(balances, BALANCES_COLUMNS, "balances"),
        dead_letters=dead,
    )
