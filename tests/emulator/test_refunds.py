"""Refunds: full and partial, by charge or payment intent, never more than what is left."""

import threading

import pytest
import stripe


def test_partial_then_full_refund(client, charge):
    intent, ch = charge(amount=10000)
    partial = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 3000, "reason": "requested_by_customer"}
    )
    assert partial.id.startswith("re_")
    assert (partial.amount, partial.charge, partial.status) == (3000, ch.id, "succeeded")
    assert partial.reason == "requested_by_customer"
    after = client.v1.charges.retrieve(ch.id)
    assert (after.amount_refunded, after.refunded) == (3000, False)

    rest = client.v1.refunds.create(params={"charge": ch.id})
    assert rest.amount == 7000
    after = client.v1.charges.retrieve(ch.id, params={"expand": ["refunds"]})
    assert (after.amount_refunded, after.refunded) == (10000, True)
    assert {r.id for r in after.refunds.data} == {partial.id, rest.id}

    txns = client.v1.balance_transactions.list(params={"type": "refund"}).data
    assert sorted((t.source, t.amount) for t in txns) == sorted([(partial.id, -3000), (rest.id, -7000)])
    types = [e.type for e in client.v1.events.list().data]
    assert types[:2] == ["charge.refunded", "refund.created"]


def test_refunding_more_than_is_left_is_refused(client, charge):
    _, ch = charge(amount=5000)
    client.v1.refunds.create(params={"charge": ch.id, "amount": 4000})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": ch.id, "amount": 1001})
    assert (raised.value.code, raised.value.param) == ("amount_too_large", "amount")
    client.v1.refunds.create(params={"charge": ch.id})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": ch.id})
    assert raised.value.code == "charge_already_refunded"


def test_refund_needs_a_charge_or_payment_intent(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"amount": 100})
    assert raised.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": "ch_nope"})
    assert raised.value.code == "resource_missing"


def test_refund_retrieve_and_list(client, charge):
    intent, ch = charge()
    refund = client.v1.refunds.create(params={"charge": ch.id, "metadata": {"why": "test"}})
    assert client.v1.refunds.retrieve(refund.id).metadata.why == "test"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [refund.id]


def test_concurrent_refunds_never_exceed_the_charge(client, charge):
    _, ch = charge(amount=10000)
    outcomes = []

    def refund():
        try:
            client.v1.refunds.create(params={"charge": ch.id, "amount": 3000})
            outcomes.append("refunded")
        except stripe.InvalidRequestError:
            outcomes.append("refused")

    threads = [threading.Thread(target=refund) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refunded"] * 3 + ["refused"] * 3
    assert client.v1.charges.retrieve(ch.id).amount_refunded == 9000
