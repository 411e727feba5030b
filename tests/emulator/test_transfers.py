"""Transfers to connected accounts: limits, balances on both sides, reversals."""

import pytest
import stripe


def _amounts(balance):
    return {
        "available": {f.currency: f.amount for f in balance.available},
        "pending": {f.currency: f.amount for f in balance.pending},
    }


def test_transfer_funded_by_a_charge(client, charge, ready_account, transfer):
    acct = ready_account()
    _, ch = charge(amount=10000, transfer_group="intro-3")
    made = transfer(
        acct.id,
        6000,
        ch.id,
        transfer_group="intro-3",
        description="Bounty share",
        metadata={"introduction_id": "3"},
    )
    assert made.id.startswith("tr_")
    assert (made.amount, made.amount_reversed, made.reversed) == (6000, 0, False)
    assert (made.destination, made.source_transaction) == (acct.id, ch.id)
    assert made.destination_payment.startswith("py_")
    assert made.reversals.data == []
    assert client.v1.transfers.retrieve(made.id).metadata.introduction_id == "3"

    platform_txn = client.v1.balance_transactions.retrieve(made.balance_transaction)
    assert (platform_txn.type, platform_txn.amount, platform_txn.source) == ("transfer", -6000, made.id)
    connected = client.v1.balance_transactions.list(options={"stripe_account": acct.id}).data
    assert [(t.type, t.amount, t.source) for t in connected] == [("payment", 6000, made.destination_payment)]
    # funds follow the source charge: pending on both sides until it settles
    assert _amounts(client.v1.balance.retrieve()) == {
        "available": {"usd": 0},
        "pending": {"usd": 10000 - 320 - 6000},
    }
    assert _amounts(client.v1.balance.retrieve(options={"stripe_account": acct.id})) == {
        "available": {"usd": 0},
        "pending": {"usd": 6000},
    }
    assert client.v1.events.list().data[0].type == "transfer.created"


def test_destination_must_exist_and_be_ready(client, charge, account, onboard, transfer):
    _, ch = charge()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        transfer("acct_nope", 1000, ch.id)
    assert (raised.value.code, raised.value.param) == ("resource_missing", "destination")

    for outcome in (None, "fail_verification", "pending_verification"):
        acct = account()
        if outcome:
            onboard(acct.id, outcome=outcome)
        with pytest.raises(stripe.InvalidRequestError) as raised:
            transfer(acct.id, 1000, ch.id)
        assert raised.value.code == "insufficient_capabilities_for_transfer"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd"})
    assert (raised.value.code, raised.value.param) == ("parameter_missing", "destination")
    assert client.v1.transfers.list().data == []


def test_amount_limited_by_the_source_charge_less_earlier_transfers(emulator, client, charge, ready_account, transfer):
    acct = ready_account()
    _, ch = charge(amount=10000)  # Stripe's fee (320) is not deducted from what it can fund
    first = transfer(acct.id, 6000, ch.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        transfer(acct.id, 4001, ch.id)
    assert (raised.value.code, raised.value.param) == ("balance_insufficient", "amount")
    assert transfer(acct.id, 3000, ch.id).amount == 3000

    emulator.configure(reversals_need_available_balance=True)
    emulator.advance_time(3 * 86400)  # the connected account's funds become available
    client.v1.transfers.reversals.create(first.id, params={"amount": 1000})
    assert transfer(acct.id, 2000, ch.id).amount == 2000  # 10000 - (6000 - 1000) - 3000


def test_transfer_group_is_inherited_from_the_source_charge(client, charge, ready_account, transfer):
    acct = ready_account()
    _, ch = charge(amount=5000, transfer_group="intro-9")
    assert transfer(acct.id, 1000, ch.id).transfer_group == "intro-9"
    assert transfer(acct.id, 1000, ch.id, transfer_group="other").transfer_group == "other"


def test_reversal_needs_the_connected_accounts_available_balance(emulator, client, charge, ready_account, transfer):
    emulator.configure(reversals_need_available_balance=True)
    acct = ready_account()
    _, ch = charge(amount=5000)
    made = transfer(acct.id, 3000, ch.id)  # pending on the connected account with the charge
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.transfers.reversals.create(made.id, params={"amount": 1000})
    assert (raised.value.code, raised.value.param) == ("balance_insufficient", "amount")
    emulator.advance_time(3 * 86400)
    assert client.v1.transfers.reversals.create(made.id, params={"amount": 1000}).amount == 1000


def test_without_source_transaction_the_available_balance_must_cover_it(
    emulator, client, charge, ready_account, transfer
):
    acct = ready_account()
    charge(amount=10000)  # pending for two days
    with pytest.raises(stripe.InvalidRequestError) as raised:
        transfer(acct.id, 5000)
    assert raised.value.code == "balance_insufficient"

    emulator.advance_time(3 * 86400)
    assert _amounts(client.v1.balance.retrieve())["available"] == {"usd": 9680}
    transfer(acct.id, 5000)
    assert _amounts(client.v1.balance.retrieve())["available"] == {"usd": 4680}
    connected = client.v1.balance.retrieve(options={"stripe_account": acct.id})
    assert _amounts(connected)["available"] == {"usd": 5000}


def test_bypass_pending_card_funds_the_available_balance_at_once(client, charge, ready_account, transfer):
    charge(amount=2000, card="pm_card_bypassPending")
    assert _amounts(client.v1.balance.retrieve())["available"] == {"usd": 2000 - 88}
    assert transfer(ready_account().id, 1500).source_transaction is None


def test_list_filters(client, charge, ready_account, transfer):
    first, second = ready_account(), ready_account()
    _, ch = charge(amount=20000)
    made = {
        (acct.id, group): transfer(acct.id, 1000, ch.id, transfer_group=group).id
        for acct, group in ((first, "g1"), (second, "g1"), (first, "g2"))
    }
    by_destination = client.v1.transfers.list(params={"destination": first.id}).data
    assert {t.id for t in by_destination} == {made[(first.id, "g1")], made[(first.id, "g2")]}
    by_group = client.v1.transfers.list(params={"transfer_group": "g1"}).data
    assert {t.id for t in by_group} == {made[(first.id, "g1")], made[(second.id, "g1")]}


def test_reversals(client, charge, ready_account, transfer):
    acct = ready_account()
    _, ch = charge(amount=10000, card="pm_card_bypassPending")
    made = transfer(acct.id, 3000, ch.id)
    reversal = client.v1.transfers.reversals.create(made.id, params={"amount": 1000})
    assert reversal.id.startswith("trr_")
    assert (reversal.amount, reversal.transfer) == (1000, made.id)
    after = client.v1.transfers.retrieve(made.id)
    assert (after.amount_reversed, after.reversed) == (1000, False)
    assert [r.id for r in after.reversals.data] == [reversal.id]
    assert client.v1.events.list().data[0].type == "transfer.reversed"

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.transfers.reversals.create(made.id, params={"amount": 2001})
    assert raised.value.code == "amount_too_large"
    rest = client.v1.transfers.reversals.create(made.id)
    assert rest.amount == 2000
    assert client.v1.transfers.retrieve(made.id).reversed is True
    listed = client.v1.transfers.reversals.list(made.id).data
    assert [r.id for r in listed] == [rest.id, reversal.id]
    assert client.v1.transfers.reversals.retrieve(made.id, rest.id).amount == 2000

    platform = client.v1.balance_transactions.list(params={"type": "transfer_refund"}).data
    assert sorted(t.amount for t in platform) == [1000, 2000]
    connected = client.v1.balance_transactions.list(
        params={"type": "payment_refund"}, options={"stripe_account": acct.id}
    ).data
    assert sorted(t.amount for t in connected) == [-2000, -1000]
    assert _amounts(client.v1.balance.retrieve(options={"stripe_account": acct.id})) == {
        "available": {"usd": 0},
        "pending": {"usd": 0},
    }
