"""A Hypothesis state machine of the consumer's delivery logic against a simple in-memory ledger model.

The real parts: Redis Streams (XADD, XREADGROUP, XACK, XAUTOCLAIM) and the
reference system's own `apply_batch` on PostgreSQL. The model is a set of
committed event ids and a dict of balances. Rules deliver, redeliver,
duplicate, crash between commit and ack, crash before commit, and claim
pending entries; after every step the ledger must equal the model, and at the
end every submitted event must be posted exactly once.

Run against the `no_idempotency` variant, the same machine finds a double
posting: the model is strict enough to fail.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from reference_system.ledger import apply_batch
from reference_system.posting import Posting
from reference_system.schema import ensure_schema
from reference_system.settings import Variant

pytestmark = pytest.mark.integration

STREAM = "sm:p:0"
GROUP = "sm"
ACCOUNTS = ("acct-a", "acct-b", "acct-c")
CONSUMERS = ("c1", "c2")


class LedgerMachine(RuleBasedStateMachine):
    redis_url = ""
    postgres_url = ""
    variant = Variant.CORRECT

    events = Bundle("events")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = None
        self.pg = None
        self.submitted: dict = {}  # event_id -> Posting
        self.committed: set = set()  # event ids the model says are posted
        self.balances: dict = {}

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout=10))

    @initialize()
    def reset(self) -> None:
        async def go():
            self.redis = aioredis.Redis.from_url(self.redis_url, socket_timeout=5)
            self.pg = await asyncpg.connect(self.postgres_url, timeout=5)
            await self.pg.execute("DROP TABLE IF EXISTS journal_lines, balances, partition_fence, journal CASCADE")
            await ensure_schema(self.pg, self.variant, 5)
            await self.redis.delete(STREAM)
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)

        self.run(go())

    def teardown(self) -> None:
        async def go():
            if self.pg is not None:
                await self.pg.close(timeout=5)
            if self.redis is not None:
                await self.redis.aclose()

        try:
            self.run(go())
        finally:
            self.loop.close()

    # -- the model -------------------------------------------------------------------------

    def _commit_model(self, postings) -> None:
        for posting in postings:
            if posting.event_id in self.committed:
                continue  # idempotent: a redelivered event changes nothing
            self.committed.add(posting.event_id)
            for account, amount in (
                (posting.debit_account, -posting.amount_minor),
                (posting.credit_account, posting.amount_minor),
            ):
                key = (account, posting.currency)
                self.balances[key] = self.balances.get(key, 0) + amount

    def _postings(self, entries):
        return [self.submitted[fields[b"event_id"].decode()] for _id, fields in entries]

    async def _apply(self, consumer: str, entries) -> None:
        postings = self._postings(entries)
        if postings:
            await apply_batch(self.pg, self.variant, 0, 1, consumer, postings, 5)

    # -- rules -----------------------------------------------------------------------------

    @rule(target=events, debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=st.integers(1, 1000))
    def submit(self, debit, credit, amount):
        if debit == credit:
            credit = ACCOUNTS[(ACCOUNTS.index(debit) + 1) % len(ACCOUNTS)]
        posting = Posting(str(uuid.uuid4()), debit, debit, credit, amount, "EUR")
        self.submitted[posting.event_id] = posting
        self.run(self.redis.xadd(STREAM, {"event_id": posting.event_id}))
        return posting.event_id

    @rule(event_id=events)
    def broker_duplicate(self, event_id):
        """At-least-once: the same event enters the stream again (a producer retry past idempotency)."""
        self.run(self.redis.xadd(STREAM, {"event_id": event_id}))

    def _read(self, consumer: str, count: int):
        reply = self.run(self.redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count))
        return reply[0][1] if reply else []

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 5))
    def deliver(self, consumer, count):
        entries = self._read(consumer, count)
        self.run(self._apply(consumer, entries))
        self._commit_model(self._postings(entries))
        if entries:
            self.run(self.redis.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries]))

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 5))
    def crash_between_commit_and_ack(self, consumer, count):
        entries = self._read(consumer, count)
        self.run(self._apply(consumer, entries))
        self._commit_model(self._postings(entries))  # committed, never acknowledged: stays pending

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 5))
    def crash_before_commit(self, consumer, count):
        self._read(consumer, count)  # read and lost with the process: pending, nothing committed

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 10))
    def claim_pending(self, consumer, count):
        """A new owner claims what a dead consumer left pending, applies it again, acknowledges."""
        reply = self.run(self.redis.xautoclaim(STREAM, GROUP, consumer, min_idle_time=0, start_id="0-0", count=count))
        entries = [e for e in reply[1] if e and e[1]]
        self.run(self._apply(consumer, entries))
        self._commit_model(self._postings(entries))
        if entries:
            self.run(self.redis.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries]))

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def ledger_equals_model(self) -> None:
        if self.pg is None:
            return

        async def read():
            journal = await self.pg.fetch("SELECT event_id::text AS id FROM journal", timeout=5)
            balances = await self.pg.fetch("SELECT account, currency, balance_minor FROM balances", timeout=5)
            return journal, balances

        journal, balances = self.run(read())
        ids = [row["id"] for row in journal]
        assert len(ids) == len(set(ids)), "an event is in the journal twice"
        assert set(ids) == self.committed
        got = {(r["account"], r["currency"]): r["balance_minor"] for r in balances if r["balance_minor"]}
        want = {k: v for k, v in self.balances.items() if v}
        assert got == want

    @precondition(lambda self: self.pg is not None)
    @rule()
    def drain_all(self) -> None:
        """Claim and read everything: afterwards every submitted event is posted."""
        for _ in range(100):
            before = len(self.committed)
            self.claim_pending("c1", 10)
            self.deliver("c2", 10)
            pending = self.run(self.redis.xpending(STREAM, GROUP))
            if pending["pending"] == 0 and len(self.committed) == before:
                break
        assert self.committed == set(self.submitted)


STATEFUL_SETTINGS = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture()
def machine_class(stack_services):
    LedgerMachine.redis_url = stack_services.redis_url
    LedgerMachine.postgres_url = stack_services.postgres_url
    LedgerMachine.variant = Variant.CORRECT
    yield LedgerMachine


def test_consumer_logic_is_exactly_once_under_redelivery(machine_class):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine_class, settings=STATEFUL_SETTINGS)


def test_the_machine_catches_the_no_idempotency_variant(machine_class):
    from hypothesis.stateful import run_state_machine_as_test

    machine_class.variant = Variant.NO_IDEMPOTENCY
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine_class, settings=STATEFUL_SETTINGS)
