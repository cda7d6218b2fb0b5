"""Property-based tests (Hypothesis) against the real API and the real ledger.

1. Any request body: never a 5xx, 202 exactly when the posting is valid, and
   nothing invalid ever reaches a partition stream.
2. Any sequence of batches (with redelivered duplicates): the balance projection
   equals the replay of the journal, and every event's lines sum to zero.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_system.keys import stream_key
from reference_system.ledger import apply_batch
from reference_system.posting import InvalidPosting, Posting, parse_posting, parse_stored
from reference_system.schema import ensure_schema
from reference_system.settings import Settings, Variant

pytestmark = pytest.mark.integration

CURRENCIES = ("EUR", "USD", "GBP")
AMOUNT_MAX = Settings().amount_minor_max
IDS = [str(uuid.UUID(int=i)) for i in range(1, 6)]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(CURRENCIES + ("", "eur", "EURO")),
    st.sampled_from(IDS + ["nope"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def near_valid(draw) -> dict:
    body = {
        "event_id": draw(st.sampled_from(IDS)),
        "key": draw(st.sampled_from(["k1", "k2"])),
        "debit_account": draw(st.sampled_from(["a", "b", "c"])),
        "credit_account": draw(st.sampled_from(["a", "b", "d"])),
        "amount_minor": draw(st.integers(min_value=-5, max_value=AMOUNT_MAX + 5)),
        "currency": draw(st.sampled_from(CURRENCIES + ("XXX",))),
    }
    for field in draw(st.sets(st.sampled_from(sorted(body)), max_size=2)):
        body[field] = draw(json_values)
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(sorted(body))))
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=8))] = draw(json_scalars)
    return body


request_bodies = st.one_of(
    near_valid().map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
)


def test_arbitrary_bodies_never_5xx_and_never_enqueue_invalid(system):
    system.start_api()
    currencies = frozenset(CURRENCIES)
    seen: dict[str, bytes] = {}
    with httpx.Client(base_url=system.url(""), timeout=10) as client:

        @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(raw=request_bodies)
        def check(raw: bytes) -> None:
            response = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
            assert response.status_code < 500, response.text
            try:
                posting = parse_posting(raw, currencies, AMOUNT_MAX)
            except InvalidPosting as exc:
                assert response.status_code == 400 and response.json()["field"] == exc.field
                return
            earlier = seen.setdefault(posting.event_id, posting.canonical())
            expected = 202 if earlier == posting.canonical() else 409
            assert response.status_code == expected, response.text

        check()
    redis = system.redis()
    try:
        for partition in range(4):
            for _, fields in redis.xrange(stream_key(partition)):
                stored = parse_stored(fields[b"b"], currencies, AMOUNT_MAX)  # raises if anything invalid got in
                assert seen[stored.event_id] == stored.canonical()
    finally:
        redis.close()


postings = st.builds(
    Posting,
    event_id=st.sampled_from([str(uuid.UUID(int=i)) for i in range(1, 40)]),
    key=st.sampled_from(["k1", "k2", "k3"]),
    debit_account=st.sampled_from(["a", "b", "c"]),
    credit_account=st.sampled_from(["x", "y"]),
    amount_minor=st.integers(min_value=1, max_value=AMOUNT_MAX),
    currency=st.sampled_from(CURRENCIES),
)


def test_replay_equals_projection_after_any_sequence_of_postings(system):
    async def run(batches: list[list[Posting]]) -> None:
        conn = await asyncpg.connect(system.postgres_url, timeout=5)
        try:
            await ensure_schema(conn, Variant.CORRECT, 10)
            await conn.execute("TRUNCATE journal, journal_lines, balances, partition_fence")
            first_body: dict[str, Posting] = {}
            for epoch, batch in enumerate(batches, start=1):
                await apply_batch(conn, Variant.CORRECT, 0, epoch, "prop", batch, 10)
                for p in batch:
                    first_body.setdefault(p.event_id, p)
            assert await conn.fetch("SELECT * FROM ledger_projection_drift()") == []
            assert (
                await conn.fetch("SELECT event_id FROM journal_lines GROUP BY event_id HAVING sum(amount_minor) <> 0")
                == []
            )
            rows = await conn.fetch("SELECT event_id, amount_minor FROM journal")
            assert {str(r["event_id"]): r["amount_minor"] for r in rows} == {
                i: p.amount_minor for i, p in first_body.items()
            }, "each id is posted once, with the body that came first"
        finally:
            await conn.close()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batches=st.lists(st.lists(postings, min_size=1, max_size=8), max_size=6))
    def check(batches: list[list[Posting]]) -> None:
        asyncio.run(run(batches))

    check()
