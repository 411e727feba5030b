"""Idempotency-Key: replays, conflicts, what is (not) saved, and expiry."""

import threading
import time

import pytest
import stripe


def test_same_key_same_parameters_replays_the_first_response(client):
    options = {"idempotency_key": "key-1"}
    first = client.v1.customers.create(params={"email": "a@example.test"}, options=options)
    again = client.v1.customers.create(params={"email": "a@example.test"}, options=options)
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    assert len(client.v1.customers.list().data) == 1


def test_same_key_other_parameters_is_an_idempotency_error(client):
    options = {"idempotency_key": "key-2"}
    client.v1.customers.create(params={"email": "a@example.test"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as raised:
        client.v1.customers.create(params={"email": "b@example.test"}, options=options)
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


def test_errors_from_a_request_that_ran_are_replayed_too(client):
    params = {
        "amount": 2000,
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclined",
        "confirm": True,
    }
    options = {"idempotency_key": "declined"}
    with pytest.raises(stripe.CardError) as first:
        client.v1.payment_intents.create(params=params, options=options)
    with pytest.raises(stripe.CardError) as again:
        client.v1.payment_intents.create(params=params, options=options)
    assert again.value.json_body == first.value.json_body
    assert again.value.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.charges.list().data) == 1


def test_requests_rejected_before_running_are_not_saved(client):
    options = {"idempotency_key": "typo"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"emial": "a@example.test"}, options=options)
    created = client.v1.customers.create(params={"email": "a@example.test"}, options=options)
    assert "Idempotent-Replayed" not in created.last_response.headers


def test_keys_are_scoped_to_the_account(client, account):
    acct = account()
    mine = client.v1.customers.create(options={"idempotency_key": "shared"})
    theirs = client.v1.customers.create(options={"idempotency_key": "shared", "stripe_account": acct.id})
    assert mine.id != theirs.id


def test_keys_expire_after_24_hours_of_emulator_time(emulator, client):
    options = {"idempotency_key": "old"}
    first = client.v1.customers.create(options=options)
    emulator.advance_time(24 * 3600 - 1)
    assert client.v1.customers.create(options=options).id == first.id
    emulator.advance_time(1)
    assert client.v1.customers.create(options=options).id != first.id


def test_a_retry_while_the_first_attempt_still_runs_gets_409(emulator, client):
    emulator.delay_next("/v1/customers", 0.5)
    options = {"idempotency_key": "slow"}
    slow = threading.Thread(target=lambda: client.v1.customers.create(options=options))
    slow.start()
    try:
        for _ in range(100):  # wait until the first attempt holds the key
            if emulator.store.idempotency:
                break
            time.sleep(0.01)
        with pytest.raises(stripe.APIError) as raised:
            client.v1.customers.create(options=options)
        assert raised.value.http_status == 409
        assert raised.value.json_body["error"]["code"] == "idempotency_key_in_use"
    finally:
        slow.join()
    assert len(client.v1.customers.list().data) == 1
