"""Tests for harness.load.generator: seeded, skewed, and honest about what each posting means."""

import itertools
import random
import uuid
from collections import Counter

import pytest

from harness.load.generator import GeneratorConfig, Intent, InvalidKind, generate_postings


def take(config, seed, n):
    return list(itertools.islice(generate_postings(config, random.Random(seed)), n))


def test_same_seed_same_stream_other_seed_other_stream():
    config = GeneratorConfig(duplicate_share=0.1, invalid_share=0.1, conflict_share=0.05)
    assert take(config, 7, 500) == take(config, 7, 500)
    assert take(config, 7, 500) != take(config, 8, 500)


def test_new_postings_are_well_formed():
    config = GeneratorConfig(accounts=50, currencies=("EUR", "CHF"), amount_minor_min=5, amount_minor_max=9)
    for p in take(config, 1, 2000):
        assert p.intent is Intent.NEW and p.valid_body and not p.duplicate
        body = p.body
        assert uuid.UUID(body["event_id"]).version == 4
        assert body["key"] == body["debit_account"] != body["credit_account"]
        assert 5 <= body["amount_minor"] <= 9
        assert body["currency"] in ("EUR", "CHF")


def test_event_ids_of_new_postings_are_unique():
    ids = [p.event_id for p in take(GeneratorConfig(), 3, 20_000)]
    assert len(set(ids)) == len(ids)


def test_hot_account_skew_follows_the_exponent():
    n = 40_000
    skewed = Counter(p.body["debit_account"] for p in take(GeneratorConfig(accounts=1000, zipf_exponent=1.1), 5, n))
    uniform = Counter(p.body["debit_account"] for p in take(GeneratorConfig(accounts=1000, zipf_exponent=0.0), 5, n))
    # rank 1 carries 1/H(1000, 1.1) = 17.9% of the debits; uniform gives 0.1%.
    assert skewed.most_common(1)[0][0] == "acct-000001"
    assert 0.165 < skewed["acct-000001"] / n < 0.195
    assert uniform.most_common(1)[0][1] / n < 0.004


def test_shares_are_honoured_and_marked():
    config = GeneratorConfig(duplicate_share=0.2, conflict_share=0.1, invalid_share=0.15)
    postings = take(config, 11, 20_000)
    intents = Counter(p.intent for p in postings)
    n = len(postings)
    assert abs(intents[Intent.DUPLICATE] / n - 0.2) < 0.015
    assert abs(intents[Intent.CONFLICT] / n - 0.1) < 0.015
    assert abs(intents[Intent.INVALID] / n - 0.15) < 0.015
    by_index = {p.index: p for p in postings}
    for p in postings:
        if p.intent is Intent.DUPLICATE:
            earlier = by_index[p.of_index]
            assert p.duplicate and p.valid_body and earlier.intent is Intent.NEW
            assert p.body == earlier.body and p.of_index < p.index
        elif p.intent is Intent.CONFLICT:
            earlier = by_index[p.of_index]
            assert not p.duplicate and p.label == "conflict"
            assert p.event_id == earlier.event_id and p.body != earlier.body
        elif p.intent is Intent.INVALID:
            assert not p.valid_body and p.label.startswith("invalid:")


@pytest.mark.parametrize("kind", list(InvalidKind))
def test_each_invalid_kind_really_is_invalid(kind):
    config = GeneratorConfig(invalid_share=1.0, invalid_kinds=(kind.value,))
    for p in take(config, 2, 200):
        body = p.body
        assert p.invalid_kind is kind and not p.valid_body
        assert "event_id" in body  # the answer must stay traceable to the request
        if kind is InvalidKind.MISSING_FIELD:
            assert len(body) == 5
        elif kind is InvalidKind.NEGATIVE_AMOUNT:
            assert body["amount_minor"] < 0
        elif kind is InvalidKind.ZERO_AMOUNT:
            assert body["amount_minor"] == 0
        elif kind is InvalidKind.BAD_CURRENCY:
            code = body["currency"]
            assert not (len(code) == 3 and code.isalpha() and code.isupper())
        elif kind is InvalidKind.BAD_EVENT_ID:
            with pytest.raises(ValueError):
                uuid.UUID(body["event_id"])


def test_count_max_bounds_the_stream():
    assert len(list(generate_postings(GeneratorConfig(), random.Random(0), count_max=17))) == 17


def test_config_round_trips_through_a_dict():
    config = GeneratorConfig(accounts=10, duplicate_share=0.5, currencies=("EUR",))
    assert GeneratorConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"accounts": 1}, '"accounts" must be'),
        ({"zipf_exponent": -1}, '"zipf_exponent"'),
        ({"currencies": ("euro",)}, "'euro' is not an ISO 4217 code"),
        ({"currencies": ()}, '"currencies" must name'),
        ({"amount_minor_min": 0}, '"amount_minor_min"'),
        ({"amount_minor_min": 10, "amount_minor_max": 5}, '"amount_minor_max"'),
        ({"duplicate_share": 1.5}, '"duplicate_share" must be within [0, 1]'),
        ({"duplicate_share": 0.6, "invalid_share": 0.6}, "must be <= 1"),
        ({"invalid_kinds": ("typo",)}, "'typo' is unknown"),
    ],
)
def test_bad_settings_name_the_field(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        GeneratorConfig(**kwargs)
    assert fragment in str(info.value)


def test_from_dict_names_unknown_settings():
    with pytest.raises(ValueError, match=r"^load\.generator\.acounts: not a generator setting"):
        GeneratorConfig.from_dict({"acounts": 5}, where="load.generator")
