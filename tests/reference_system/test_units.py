"""Unit tests of the pure parts: posting validation, settings, detector, backoff, metrics text."""

from __future__ import annotations

import random
import uuid
import zlib

import orjson
import pytest

from reference_system.backoff import delay_s
from reference_system.detector import Detector, Observation
from reference_system.keys import partition_of
from reference_system.metrics import INGEST_BUCKETS_S, Family, Histogram, render
from reference_system.posting import InvalidPosting, parse_posting
from reference_system.settings import Settings, SettingsError, Variant, parse_settings

CURRENCIES = frozenset({"EUR", "USD"})


def _body(**change) -> bytes:
    body = {
        "event_id": str(uuid.uuid4()),
        "key": "k",
        "debit_account": "a",
        "credit_account": "b",
        "amount_minor": 5,
        "currency": "EUR",
    }
    body.update(change)
    return orjson.dumps(body)


def test_valid_posting_is_canonical_whatever_the_field_order():
    event_id = str(uuid.uuid4())
    one = parse_posting(_body(event_id=event_id.upper()), CURRENCIES, 100)
    reordered = orjson.dumps(dict(reversed(list(orjson.loads(_body(event_id=event_id)).items()))))
    two = parse_posting(reordered, CURRENCIES, 100)
    assert one.event_id == event_id and one.canonical() == two.canonical()


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"[]", "body"),
        (b"{", "body"),
        (_body(amount_minor=True), "amount_minor"),
        (_body(amount_minor=101), "amount_minor"),
        (_body(amount_minor=1.5), "amount_minor"),
        (_body(currency="GBP"), "currency"),
        (_body(key="a\x00b"), "key"),
        (_body(debit_account="x" * 129), "debit_account"),
        (_body(credit_account="a"), "credit_account"),
    ],
)
def test_invalid_postings_name_their_field(raw, field):
    with pytest.raises(InvalidPosting) as caught:
        parse_posting(raw, CURRENCIES, 100)
    assert caught.value.field == field and caught.value.detail


def test_partition_is_stable_and_in_range():
    assert partition_of("alice", 4) == zlib.crc32(b"alice") % 4  # crc32, not the salted hash()
    assert {partition_of(f"k{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_settings_errors_name_the_flag_and_round_trip_through_argv():
    with pytest.raises(SettingsError, match="--batch-size"):
        Settings(batch_size=0).validate()
    with pytest.raises(SettingsError, match="--currencies"):
        Settings(currencies=("eur",)).validate()
    settings = Settings(partitions=8, variant=Variant.NO_LEASE, currencies=("EUR",), breaker_enabled=False)
    assert parse_settings(settings.to_argv()) == settings


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(1)
    delays = [delay_s(n, 10, 200, rng) for n in range(20) for _ in range(50)]
    assert max(delays) <= 0.2 and min(delays) >= 0
    assert max(delay_s(0, 10, 200, rng) for _ in range(200)) <= 0.01


def _trained(rng: random.Random) -> Detector:
    detector = Detector(warmup_events=300, amount_orders=1.5, rate_factor=50, rate_per_s_min=5000)
    detector.learn(
        [Observation(f"acct{rng.randrange(10)}", rng.randint(1, 100_000), 1_000_000 + 10 * i) for i in range(300)]
    )
    assert detector.armed
    return detector


def test_detector_stays_quiet_on_ordinary_traffic():
    rng = random.Random(4)
    detector = _trained(rng)
    for start in range(0, 20_000, 25):
        batch = [
            Observation(f"acct{rng.randrange(10)}", rng.randint(1, 100_000), 2_000_000 + start + i) for i in range(25)
        ]
        assert not detector.judge(batch).trip
        detector.learn(batch)


@pytest.mark.parametrize("factor", [100, 1000, 0.01])
def test_detector_trips_on_amounts_off_by_orders_of_magnitude(factor):
    rng = random.Random(5)
    detector = _trained(rng)
    batch = [
        Observation(f"acct{rng.randrange(10)}", max(1, int(rng.randint(1, 100_000) * factor)), 3_000_000 + i)
        for i in range(16)
    ]
    verdict = detector.judge(batch)
    assert verdict.trip and verdict.reason.startswith("amount")


def test_detector_trips_on_a_rate_explosion_but_not_before_warmup():
    rng = random.Random(6)
    cold = Detector(warmup_events=300, amount_orders=1.5, rate_factor=50, rate_per_s_min=5000)
    flood = [Observation("acct1", rng.randint(1, 100_000), 9_000_000) for _ in range(6000)]
    assert not cold.judge(flood).trip
    verdict = _trained(rng).judge(flood)
    assert verdict.trip and verdict.reason.startswith("rate")


def test_metrics_render_prometheus_text():
    histogram = Histogram(INGEST_BUCKETS_S)
    histogram.observe(0.003)
    histogram.observe(9.0)
    family = Family("x_seconds", "histogram", "help")
    family.samples = histogram.samples("x_seconds")
    text = render([family, Family("c_total", "counter", "c").add(2, outcome='a"b')]).decode()
    assert 'x_seconds_bucket{le="0.005"} 1' in text and 'x_seconds_bucket{le="+Inf"} 2' in text
    assert "x_seconds_count 2" in text and 'c_total{outcome="a\\"b"} 2' in text
    assert text.count("# TYPE") == 2
