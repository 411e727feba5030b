"""Injected faults (500s, delays, dropped responses), the control endpoints, disputes."""

import json
import time
import urllib.request

import pytest
import stripe


@pytest.fixture
def fast_sdk_retries(monkeypatch):
    """The SDK sleeps at least 0.5 s between retries; tests need not."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.01)


def _wait_for(predicate, seconds=3):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_fail_next_answers_500_without_running(emulator, client):
    emulator.fail_next("/v1/customers", times=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as raised:
            client.v1.customers.create()
        assert raised.value.http_status == 500
    client.v1.customers.create()
    assert len(client.v1.customers.list().data) == 1


def test_fail_next_can_target_one_method(emulator, client):
    emulator.fail_next("/v1/customers", method="GET", status=503)
    client.v1.customers.create()
    with pytest.raises(stripe.APIError) as raised:
        client.v1.customers.list()
    assert raised.value.http_status == 503


def test_sdk_retries_through_a_500(emulator, client_factory, fast_sdk_retries):
    emulator.fail_next("/v1/payment_intents")
    retrying = client_factory(max_network_retries=2)
    intent = retrying.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    assert [i.id for i in retrying.v1.payment_intents.list().data] == [intent.id]


def test_delay_past_the_client_timeout_still_performs_the_call(emulator, client, client_factory):
    impatient = client_factory(http_client=stripe.RequestsClient(timeout=0.2))
    emulator.delay_next("/v1/customers", 0.6)
    options = {"idempotency_key": "delayed"}
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.customers.create(params={"name": "Slow"}, options=options)
    _wait_for(lambda: client.v1.customers.list().data)
    [created] = client.v1.customers.list().data
    again = client.v1.customers.create(params={"name": "Slow"}, options=options)
    assert again.id == created.id


def test_dropped_response_the_object_exists_and_a_retry_replays_it(emulator, client):
    emulator.drop_next("/v1/customers", method="POST")
    options = {"idempotency_key": "dropped"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={"name": "Lost"}, options=options)
    [created] = client.v1.customers.list().data
    again = client.v1.customers.create(params={"name": "Lost"}, options=options)
    assert again.id == created.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"


def test_sdk_retry_after_a_dropped_response_creates_one_object(emulator, client_factory, fast_sdk_retries):
    emulator.drop_next("/v1/customers")
    retrying = client_factory(max_network_retries=1)
    created = retrying.v1.customers.create()  # the SDK's own idempotency key is reused
    assert [c.id for c in retrying.v1.customers.list().data] == [created.id]


def test_trigger_dispute(emulator, client, charge):
    _, ch = charge(amount=5000)
    dispute = emulator.trigger_dispute(ch.id)
    assert dispute["id"].startswith("dp_") and dispute["status"] == "needs_response"
    fetched = client.v1.disputes.retrieve(dispute["id"])
    assert (fetched.charge, fetched.amount) == (ch.id, 5000)
    assert client.v1.charges.retrieve(ch.id).disputed is True
    event = client.v1.events.list().data[0]
    assert (event.type, event.data.object.id) == ("charge.dispute.created", dispute["id"])
    [txn] = client.v1.balance_transactions.list(params={"source": dispute["id"]}).data
    assert (txn.amount, txn.fee, txn.net) == (-5000, 1500, -6500)


def _control(emulator, operation, body=None, method="POST"):
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(f"{emulator.url}/_emulator/{operation}", data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_control_endpoints(emulator, client, charge, receiver):
    start = _control(emulator, "time", method="GET")[1]["result"]
    assert _control(emulator, "advance_time", {"seconds": 60})[1]["result"] >= start + 60

    _control(emulator, "fail_next", {"path": "/v1/balance", "times": 1})
    with pytest.raises(stripe.APIError):
        client.v1.balance.retrieve()

    _, ch = charge()
    status, body = _control(emulator, "disputes", {"charge_id": ch.id})
    assert status == 200 and body["result"]["charge"] == ch.id
    assert _control(emulator, "disputes", {"charge_id": "ch_nope"})[0] == 404

    emulator.add_webhook_endpoint(receiver.url, enabled_events=["customer.created"])
    client.v1.customers.create()
    pending = _control(emulator, "webhooks", method="GET")[1]["result"]
    assert [p["type"] for p in pending] == ["customer.created"]
    delivered = _control(emulator, "webhooks/deliver")[1]["result"]
    assert [d["delivered"] for d in delivered] == [True]

    assert _control(emulator, "fail_next", {"route": "/v1"})[0] == 400
    assert _control(emulator, "unknown")[0] == 404
    assert _control(emulator, "reset")[0] == 200
    assert client.v1.customers.list().data == []
