"""The stub ingest API keeps the contract the driver's tests rely on (answers, errors naming the field)."""

import uuid

import httpx
import pytest

from harness.load.stub_api import StubBehaviour, start_stub


def body(**overrides):
    data = {
        "event_id": str(uuid.uuid4()),
        "key": "acct-000001",
        "debit_account": "acct-000001",
        "credit_account": "acct-000002",
        "amount_minor": 125,
        "currency": "EUR",
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="module")
def client():
    behaviour = StubBehaviour(reject_status=429, reject_first_attempts=1, retry_after_s=0.25)
    with start_stub(behaviour, duration_s_max=60) as stub, httpx.Client(base_url=stub.url, timeout=5.0) as http:
        yield http


def test_accept_duplicate_conflict_and_status(client):
    event = body()
    first = client.post("/v1/events", json=event)
    assert first.status_code == 429 and first.headers["retry-after"] == "0.25"
    assert client.post("/v1/events", json=event).status_code == 202
    assert client.post("/v1/events", json=event).status_code == 202  # same id, same body
    conflict = client.post("/v1/events", json={**event, "amount_minor": 126})
    assert conflict.status_code == 409 and conflict.json()["field"] == "event_id"
    assert client.get(f"/v1/events/{event['event_id']}").json()["status"] == "queued"
    assert client.get(f"/v1/events/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize(
    "change, field",
    [
        ({"amount_minor": -5}, "amount_minor"),
        ({"amount_minor": 0}, "amount_minor"),
        ({"currency": "EURO"}, "currency"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"key": ""}, "key"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(client, change, field):
    answer = client.post("/v1/events", json=body(**change))
    assert answer.status_code == 422 and answer.json()["field"] == field


def test_a_missing_field_is_named(client):
    data = body()
    del data["currency"]
    answer = client.post("/v1/events", json=data)
    assert answer.status_code == 422 and answer.json()["field"] == "currency"


def test_bad_behaviour_settings_are_refused():
    with pytest.raises(ValueError, match='"reject_status" must be 0, 429 or 503'):
        StubBehaviour(reject_status=500)
