"""Rules as Stripe documents them: disputed charges, idempotency keys, event delivery."""

import json
import urllib.request

import pytest
import stripe

from devtools.stripe_emulator.errors import StripeError
from devtools.stripe_emulator.resources.common import Context


def _event(delivery):
    _, _, body = delivery
    return json.loads(body)


def test_a_disputed_charge_cannot_be_refunded(emulator, client, charge):
    _, ch = charge(amount=3000)
    emulator.trigger_dispute(ch.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": ch.id})
    assert (raised.value.code, raised.value.param) == ("charge_disputed", "charge")


def test_idempotency_keys_longer_than_255_characters_are_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.create(options={"idempotency_key": "k" * 256})
    assert raised.value.http_status == 400
    assert client.v1.customers.list().data == []
    assert client.v1.customers.create(options={"idempotency_key": "k" * 255}).id.startswith("cus_")


def test_a_500_from_a_request_that_ran_is_saved_and_replayed(client, monkeypatch):
    def broken(self, obj, **private):
        raise RuntimeError("storage went away")

    monkeypatch.setattr(Context, "insert", broken)
    options = {"idempotency_key": "crashed"}
    with pytest.raises(stripe.APIError) as first:
        client.v1.customers.create(options=options)
    monkeypatch.undo()
    with pytest.raises(stripe.APIError) as again:
        client.v1.customers.create(options=options)
    assert first.value.http_status == again.value.http_status == 500
    assert again.value.json_body == first.value.json_body
    assert again.value.headers["Idempotent-Replayed"] == "true"
    assert client.v1.customers.create(options={"idempotency_key": "fresh"}).id.startswith("cus_")


def test_updating_a_payment_intent_emits_no_undocumented_event(client):
    intent = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    client.v1.payment_intents.update(intent.id, params={"description": "intro"})
    assert [e.type for e in client.v1.events.list().data] == ["payment_intent.created"]


def test_events_list_by_delivery_success(emulator, client, receiver):
    emulator.add_webhook_endpoint(receiver.url)
    receiver.statuses = [500, 500]  # Ada's event fails on both passes
    failing = client.v1.customers.create(params={"name": "Ada"})
    emulator.deliver_pending()
    delivered = client.v1.customers.create(params={"name": "Grace"})
    emulator.deliver_pending()

    def objects(**params):
        return [e.data.object.id for e in client.v1.events.list(params=params).data]

    assert objects(delivery_success=False) == [failing.id]
    assert objects(delivery_success=True) == [delivered.id]


def test_deliveries_can_be_shuffled(emulator, client, receiver):
    assert emulator.configure()["shuffle_deliveries"] is False
    emulator.configure(shuffle_deliveries=True)
    emulator.add_webhook_endpoint(receiver.url)
    customer = client.v1.customers.create(params={"name": "A"})
    for n in range(12):
        client.v1.customers.update(customer.id, params={"name": f"A{n}"})
    created = [e.id for e in reversed(client.v1.events.list(params={"limit": 20}).data)]
    emulator.deliver_pending()
    received = [_event(receiver.next())["id"] for _ in created]
    assert sorted(received) == sorted(created)
    assert received != created  # 13! orders; the chance of the creation order is negligible


def test_settings_control_endpoint(emulator):
    request = urllib.request.Request(
        emulator.url + "/_emulator/settings",
        data=json.dumps({"shuffle_deliveries": True}).encode(),
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        assert json.loads(response.read())["result"]["shuffle_deliveries"] is True


def test_a_refund_beyond_the_available_balance_is_pending_until_settled(emulator, client, charge):
    emulator.configure(refunds_need_available_balance=True)
    _, ch = charge(amount=4000)  # its funds are still pending: the available balance is 0
    refund = client.v1.refunds.create(params={"charge": ch.id, "amount": 1000})
    assert (refund.status, refund.balance_transaction) == ("pending", None)
    assert client.v1.charges.retrieve(ch.id).amount_refunded == 1000

    settled = emulator.settle_refund(refund.id)
    assert settled["status"] == "succeeded" and settled["balance_transaction"].startswith("txn_")
    updated = client.v1.events.list(params={"type": "refund.updated"}).data[0]
    assert updated.data.previous_attributes["status"] == "pending"

    other = client.v1.refunds.create(params={"charge": ch.id, "amount": 500})
    assert other.status == "pending"
    assert emulator.settle_refund(other.id, succeed=False)["status"] == "failed"
    failed = client.v1.events.list(params={"type": "refund.failed"}).data[0]
    assert (failed.data.object.id, failed.data.object.failure_reason) == (other.id, "insufficient_funds")
    assert client.v1.charges.retrieve(ch.id).amount_refunded == 1000
    with pytest.raises(StripeError):
        emulator.settle_refund(other.id)  # only a pending refund can be settled


def test_refunds_within_the_available_balance_succeed_at_once(emulator, client, charge):
    emulator.configure(refunds_need_available_balance=True)
    _, ch = charge(amount=4000, card="pm_card_bypassPending")
    assert client.v1.refunds.create(params={"charge": ch.id, "amount": 1000}).status == "succeeded"
