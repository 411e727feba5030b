"""Every response and event of a realistic run conforms to the pinned stripe-python's types."""

import json

import pytest

from devtools.stripe_emulator.web import Response

from .sdk_types import check_object


@pytest.fixture
def responses(monkeypatch):
    """JSON bodies of every successful API response (control endpoints excluded)."""
    captured = []
    original = Response.json.__func__

    def recording(cls, status, data, headers=None):
        if status == 200 and isinstance(data, dict) and "object" in data:
            captured.append(json.loads(json.dumps(data)))
        return original(cls, status, data, headers)

    monkeypatch.setattr(Response, "json", classmethod(recording))
    return captured


def _realistic_run(emulator, client, checkout_session, browse, charge, ready_account, transfer):
    customer = client.v1.customers.create(params={"email": "ada@example.test", "name": "Ada"})
    session = checkout_session(customer=customer.id, payment_intent_data={"transfer_group": "intro-1"})
    browse(session.url, {"card_number": "4242424242424242"})
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    client.v1.checkout.sessions.line_items.list(session.id)
    intent = client.v1.payment_intents.retrieve(paid.payment_intent)
    client.v1.payment_intents.update(intent.id, params={"metadata": {"k": "v"}})
    ch = client.v1.charges.retrieve(intent.latest_charge, params={"expand": ["balance_transaction"]})
    client.v1.refunds.create(params={"charge": ch.id, "amount": 500})
    client.v1.refunds.list()

    late = checkout_session()
    browse(late.url, {"payment_method_type": "us_bank_account"})
    emulator.settle_checkout(late.id)
    failing = checkout_session()
    browse(failing.url, {"payment_method_type": "us_bank_account"})
    emulator.settle_checkout(failing.id, succeed=False)
    expired = checkout_session()
    client.v1.checkout.sessions.expire(expired.id)

    acct = ready_account()
    client.v1.accounts.retrieve(acct.id)
    client.v1.accounts.list()
    made = transfer(acct.id, 3000, ch.id)
    client.v1.transfers.reversals.create(made.id, params={"amount": 1000})
    client.v1.transfers.retrieve(made.id)
    client.v1.transfers.reversals.list(made.id)
    client.v1.balance.retrieve()
    client.v1.balance.retrieve(options={"stripe_account": acct.id})
    client.v1.balance_transactions.list()

    _, disputed = charge(amount=2000)
    emulator.trigger_dispute(disputed.id)
    client.v1.disputes.list()
    client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}
    )
    emulator.advance_time(3 * 86400)
    client.v1.balance.retrieve()
    client.v1.events.list(params={"limit": 100})
    client.v1.events.list(params={"limit": 100}, options={"stripe_account": acct.id})


def test_responses_and_events_match_the_sdk_types(
    emulator, client, responses, checkout_session, browse, charge, ready_account, transfer
):
    _realistic_run(emulator, client, checkout_session, browse, charge, ready_account, transfer)
    assert len(responses) > 25
    problems = [p for body in responses for p in check_object(body)]
    events = [obj for obj in emulator.store.objects.values() if obj["object"] == "event"]
    assert len(events) > 20
    for event in events:
        problems += check_object(event, f"event {event['type']}")
        problems += check_object(event["data"]["object"], f"event {event['type']} data.object")
    assert sorted(set(problems)) == []


def test_the_checker_catches_what_it_should():
    assert check_object({"object": "refund", "id": "re_1"})  # required fields missing
    event = {"object": "event", "type": "payment_intent.updated"}
    assert any("payment_intent.updated" in p for p in check_object(event))
