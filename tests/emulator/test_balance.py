"""Balances and balance transactions, for the platform and connected accounts."""

import pytest
import stripe


def test_empty_balance(client):
    balance = client.v1.balance.retrieve()
    assert balance.object == "balance" and balance.livemode is False
    assert [(f.amount, f.currency) for f in balance.available] == [(0, "usd")]
    assert [(f.amount, f.currency) for f in balance.pending] == [(0, "usd")]


def test_pending_funds_become_available_with_time(emulator, client, charge):
    _, ch = charge(amount=10000)
    txn = client.v1.balance_transactions.retrieve(ch.balance_transaction)
    assert client.v1.balance.retrieve().pending[0].amount == 9680
    emulator.advance_time(txn.available_on - emulator.now())
    balance = client.v1.balance.retrieve()
    assert (balance.available[0].amount, balance.pending[0].amount) == (9680, 0)
    assert client.v1.balance_transactions.retrieve(txn.id).status == "available"


def test_balance_transaction_filters(client, charge):
    _, first = charge(amount=1000)
    _, second = charge(amount=2000)
    client.v1.refunds.create(params={"charge": first.id})
    charges = client.v1.balance_transactions.list(params={"type": "charge"}).data
    assert [t.source for t in charges] == [second.id, first.id]
    by_source = client.v1.balance_transactions.list(params={"source": second.id}).data
    assert [t.amount for t in by_source] == [2000]
    assert len(client.v1.balance_transactions.list().data) == 3


def test_connected_accounts_see_only_their_own(client, charge, account):
    charge()
    acct = account()
    options = {"stripe_account": acct.id}
    assert client.v1.balance_transactions.list(options=options).data == []
    txn = client.v1.balance_transactions.list().data[0]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.balance_transactions.retrieve(txn.id, options=options)
    assert raised.value.http_status == 404
