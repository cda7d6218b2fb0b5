"""The PostgreSQL schema of the ledger, created idempotently on start, and the replay function.

Why an advisory lock: the API and N consumers start at the same moment and all
run this; CREATE ... IF NOT EXISTS alone still races on catalog rows, the
transaction-scoped advisory lock makes the starts take turns.
"""

from __future__ import annotations

import asyncpg

from reference_system.settings import Variant

__all__ = ["ensure_schema", "replay_balances", "SCHEMA_LOCK_ID"]

SCHEMA_LOCK_ID = 7_305_501  # any constant shared by all processes of this system

_JOURNAL = """
CREATE TABLE IF NOT EXISTS journal (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    key text NOT NULL,
    debit_account text NOT NULL,
    credit_account text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency text NOT NULL,
    partition int NOT NULL,
    consumer text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
    {unique}
)
"""

_REST = [
    # Without the UNIQUE constraint (no_idempotency) GET /v1/events still needs a lookup path.
    "CREATE INDEX IF NOT EXISTS journal_event_id_idx ON journal (event_id)",
    """
    CREATE TABLE IF NOT EXISTS journal_lines (
        event_id uuid NOT NULL,
        account text NOT NULL,
        currency text NOT NULL,
        amount_minor bigint NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS balances (
        account text NOT NULL,
        currency text NOT NULL,
        balance_minor bigint NOT NULL,
        PRIMARY KEY (account, currency)
    )
    """,
    # Fencing token per partition: a batch commits only if its lease epoch is the newest seen,
    # so a paused ex-owner that wakes up after its lease expired cannot commit behind the new owner.
    """
    CREATE TABLE IF NOT EXISTS partition_fence (
        partition int PRIMARY KEY,
        epoch bigint NOT NULL,
        consumer text NOT NULL
    )
    """,
    # Replay: balances recomputed from the journal lines (the source of truth).
    """
    CREATE OR REPLACE FUNCTION ledger_replay_balances()
    RETURNS TABLE (account text, currency text, balance_minor bigint)
    LANGUAGE sql STABLE AS $$
        SELECT l.account, l.currency, sum(l.amount_minor)::bigint
        FROM journal_lines l GROUP BY l.account, l.currency
    $$
    """,
    # Rows where the projection differs from the replay (empty when they agree).
    """
    CREATE OR REPLACE FUNCTION ledger_projection_drift()
    RETURNS TABLE (account text, currency text, projected_minor bigint, replayed_minor bigint)
    LANGUAGE sql STABLE AS $$
        SELECT coalesce(b.account, r.account), coalesce(b.currency, r.currency),
               b.balance_minor, r.balance_minor
        FROM balances b FULL OUTER JOIN ledger_replay_balances() r
          ON b.account = r.account AND b.currency = r.currency
        WHERE coalesce(b.balance_minor, 0) <> coalesce(r.balance_minor, 0)
    $$
    """,
    # Rebuild the projection from the journal, in one transaction (operator repair).
    """
    CREATE OR REPLACE FUNCTION ledger_rebuild_balances()
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE n bigint;
    BEGIN
        LOCK TABLE balances IN EXCLUSIVE MODE;
        DELETE FROM balances;
        INSERT INTO balances (account, currency, balance_minor)
            SELECT r.account, r.currency, r.balance_minor FROM ledger_replay_balances() r;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END
    $$
    """,
]


async def ensure_schema(conn: asyncpg.Connection, variant: Variant, timeout_s: float | None) -> None:
    """Create tables and functions if absent; safe when many processes call it at once."""
    unique = "" if variant is Variant.NO_IDEMPOTENCY else ", CONSTRAINT journal_event_id_key UNIQUE (event_id)"
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_ID})", timeout=timeout_s)
        await conn.execute(_JOURNAL.format(unique=unique), timeout=timeout_s)
        for statement in _REST:
            await conn.execute(statement, timeout=timeout_s)


async def replay_balances(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """Balances rebuilt from journal_lines, as {(account, currency): balance_minor}."""
    rows = await conn.fetch("SELECT account, currency, balance_minor FROM ledger_replay_balances()")
    return {(r["account"], r["currency"]): int(r["balance_minor"]) for r in rows}
