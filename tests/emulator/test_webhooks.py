"""Events, webhook endpoints, signed delivery, retries and ordering."""

import json
import time

import pytest
import stripe


def _event(request):
    return json.loads(request[2])


def test_delivered_events_verify_with_the_sdk(emulator, client, receiver):
    secret = emulator.add_webhook_endpoint(receiver.url)
    assert secret.startswith("whsec_")
    customer = client.v1.customers.create(
        params={"email": "ada@example.test"}, options={"idempotency_key": "create-ada"}
    )
    [attempt] = emulator.deliver_pending()
    assert attempt["delivered"] and attempt["status"] == 200

    status, headers, body = receiver.next()
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert event.id.startswith("evt_") and event.object == "event"
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    assert event.api_version == stripe.api_version
    assert event.livemode is False and event.pending_webhooks == 1
    assert event.request.id == customer.last_response.request_id
    assert event.request.idempotency_key == "create-ada"
    assert isinstance(event.created, int)
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_wrong")


def test_failed_deliveries_are_retried_with_exponential_backoff(delivering_emulator, receiver):
    emu = delivering_emulator
    secret = emu.add_webhook_endpoint(receiver.url, enabled_events=["customer.created"])
    receiver.statuses = [500, 503]
    stripe.StripeClient("sk_test_x", base_addresses={"api": emu.url}).v1.customers.create()
    attempts, stamps = [], []
    for _ in range(3):
        attempts.append(receiver.next())
        stamps.append(time.monotonic())
    assert [status for status, _, _ in attempts] == [500, 503, 200]
    assert len({_event(attempt)["id"] for attempt in attempts}) == 1
    assert stamps[1] - stamps[0] >= 0.09 and stamps[2] - stamps[1] >= 0.19
    _, headers, body = attempts[2]
    stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    deadline = time.monotonic() + 2
    while emu.pending_webhooks() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.pending_webhooks() == []


def test_deliver_pending_retries_once_per_call(emulator, client, receiver):
    emulator.add_webhook_endpoint(receiver.url)
    receiver.statuses = [500]
    client.v1.customers.create()
    [first] = emulator.deliver_pending()
    assert (first["delivered"], first["status"], first["attempt"]) == (False, 500, 1)
    [pending] = emulator.pending_webhooks()
    assert (pending["type"], pending["attempts"], pending["last_status"]) == (
        "customer.created",
        1,
        500,
    )
    [second] = emulator.deliver_pending()
    assert second["delivered"] and emulator.pending_webhooks() == []


def test_connection_errors_are_retried(emulator, client, receiver):
    emulator.add_webhook_endpoint("http://127.0.0.1:9/nothing-listens-here")
    client.v1.customers.create()
    [attempt] = emulator.deliver_pending()
    assert attempt["status"] is None and attempt["error"]
    assert emulator.pending_webhooks()[0]["attempts"] == 1


def test_events_of_one_object_are_delivered_in_order(emulator, client, receiver):
    emulator.add_webhook_endpoint(receiver.url)
    receiver.statuses = [500]
    ada = client.v1.customers.create(params={"name": "Ada"})
    client.v1.customers.update(ada.id, params={"name": "Ada L."})
    grace = client.v1.customers.create(params={"name": "Grace"})

    first_pass = emulator.deliver_pending()
    assert [(a["event"], a["delivered"]) for a in first_pass] == [
        (first_pass[0]["event"], False),  # ada's customer.created: 500
        (first_pass[1]["event"], True),  # grace's: independent of ada's queue
    ]
    emulator.deliver_pending()
    received = [_event(receiver.next()) for _ in range(4)]
    ada_events = [e["type"] for e in received if e["data"]["object"]["id"] == ada.id]
    assert ada_events == ["customer.created", "customer.created", "customer.updated"]
    assert any(e["data"]["object"]["id"] == grace.id for e in received)


def test_enabled_events_filter(emulator, client, charge, receiver):
    emulator.add_webhook_endpoint(receiver.url, enabled_events=["charge.succeeded"])
    client.v1.customers.create()
    charge()
    emulator.deliver_pending()
    assert receiver.events() == ["charge.succeeded"]


def test_connect_endpoints_get_connected_account_events(emulator, account, onboard, make_receiver):
    platform, connect = make_receiver(), make_receiver()
    emulator.add_webhook_endpoint(platform.url)
    secret = emulator.add_webhook_endpoint(connect.url, connect=True)
    acct = account()
    onboard(acct.id)
    emulator.deliver_pending()
    _, headers, body = connect.next()
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert (event.type, event.account) == ("account.updated", acct.id)
    assert platform.events() == []


def test_webhook_endpoint_api(client, receiver):
    created = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["charge.refunded", "transfer.created"]}
    )
    assert created.id.startswith("we_") and created.secret.startswith("whsec_")
    assert created.status == "enabled"
    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [created.id]
    disabled = client.v1.webhook_endpoints.update(created.id, params={"disabled": True})
    assert disabled.status == "disabled"
    deleted = client.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    assert client.v1.webhook_endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.webhook_endpoints.create(params={"url": receiver.url})
    assert raised.value.param == "enabled_events"


def test_events_api_filters(emulator, client, charge):
    start = emulator.now()
    charge()
    emulator.advance_time(100)
    client.v1.customers.create()
    charge_events = client.v1.events.list(params={"type": "charge.*"}).data
    assert [e.type for e in charge_events] == ["charge.succeeded"]
    early = client.v1.events.list(params={"created": {"lte": start + 50}}).data
    assert "customer.created" not in {e.type for e in early}
    late = client.v1.events.list(params={"created": {"gte": start + 100}}).data
    assert [e.type for e in late] == ["customer.created"]
    both = client.v1.events.list(params={"types": ["customer.created", "payment_intent.succeeded"]}).data
    assert {e.type for e in both} == {"customer.created", "payment_intent.succeeded"}
    assert client.v1.events.retrieve(late[0].id).type == "customer.created"
