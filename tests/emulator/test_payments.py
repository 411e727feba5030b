"""Payment intents, charges and their balance transactions."""

import pytest
import stripe


def test_confirmed_intent_charges_and_books_the_fee(client, charge):
    intent, ch = charge(amount=10000, transfer_group="intro-1", metadata={"k": "v"})
    assert intent.id.startswith("pi_") and ch.id.startswith("ch_")
    assert (intent.status, intent.amount_received) == ("succeeded", 10000)
    assert (ch.status, ch.captured, ch.paid) == ("succeeded", True, True)
    assert ch.transfer_group == "intro-1" and ch.metadata.to_dict() == {"k": "v"}
    assert client.v1.payment_intents.retrieve(intent.id).latest_charge == ch.id

    full = client.v1.charges.retrieve(ch.id, params={"expand": ["balance_transaction"]})
    txn = full.balance_transaction
    assert txn.id.startswith("txn_")
    assert (txn.type, txn.source, txn.amount) == ("charge", ch.id, 10000)
    assert txn.fee == 320  # 2.9% + 30
    assert txn.net == 9680
    assert txn.status == "pending"
    assert txn.available_on > txn.created


@pytest.mark.parametrize(("amount", "fee"), [(1000, 59), (1017, 59), (1035, 60), (50, 31)])
def test_fee_rounds_to_the_nearest_minor_unit(client, charge, amount, fee):
    _, ch = charge(amount=amount)
    assert client.v1.balance_transactions.retrieve(ch.balance_transaction).fee == fee


def test_create_then_confirm(client):
    intent = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert confirmed.payment_method.startswith("pm_")
    assert client.v1.payment_methods.retrieve(confirmed.payment_method).card.last4 == "4242"


def test_declined_card_is_a_402_card_error(client):
    with pytest.raises(stripe.CardError) as raised:
        client.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
            }
        )
    error = raised.value
    assert error.http_status == 402
    assert (error.code, error.error.decline_code) == ("card_declined", "generic_decline")
    intent = error.error.payment_intent
    assert intent.status == "requires_payment_method"
    failed = client.v1.charges.retrieve(error.error.charge)
    assert (failed.status, failed.failure_code) == ("failed", "card_declined")
    types = [e.type for e in client.v1.events.list().data]
    assert types[:2] == ["payment_intent.payment_failed", "charge.failed"]
    assert failed.receipt_url is None


def test_a_paid_charge_links_a_hosted_receipt_that_shows_its_refunds(emulator, client, charge, browse):
    intent, ch = charge(amount=12345, description="Bounty: a hard problem")
    assert ch.receipt_url.startswith(f"{emulator.url}/pages/receipts/{ch.id}/")
    status, headers, page = browse(ch.receipt_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "123.45 USD" in page and "Bounty: a hard problem" in page and ch.id in page
    assert "Visa ending in 4242" in page and 'id="refunds"' not in page

    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 2345})
    _, _, page = browse(ch.receipt_url)
    assert 'id="refunds"' in page and refund.id in page and "−23.45 USD" in page


def test_a_receipt_address_nobody_was_given_is_not_found(client, charge, browse):
    _, ch = charge()
    assert browse(ch.receipt_url.rsplit("/", 1)[0] + "/guessed")[0] == 404
    assert browse(ch.receipt_url.replace(ch.id, "ch_unknown"))[0] == 404


def test_manual_capture(client):
    intent = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert (intent.status, intent.amount_capturable) == ("requires_capture", 5000)
    assert client.v1.charges.retrieve(intent.latest_charge).balance_transaction is None
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 4000})
    assert (captured.status, captured.amount_received) == ("succeeded", 4000)
    ch = client.v1.charges.retrieve(intent.latest_charge)
    assert (ch.captured, ch.amount_captured) == (True, 4000)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.capture(intent.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_cancel(client):
    intent = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd"})
    canceled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})


def test_amount_minimum_and_unknown_payment_method(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert raised.value.code == "amount_too_small"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "payment_method": "pm_nope"})
    assert (raised.value.code, raised.value.param) == ("resource_missing", "payment_method")
    assert client.v1.payment_intents.list().data == []


def test_charges_list_by_payment_intent_and_update(client, charge):
    intent, ch = charge()
    charge()
    listed = client.v1.charges.list(params={"payment_intent": intent.id})
    assert [c.id for c in listed.data] == [ch.id]
    updated = client.v1.charges.update(ch.id, params={"metadata": {"note": "x"}})
    assert updated.metadata.note == "x"


def test_expanding_a_non_expandable_field_is_refused(client, charge):
    _, ch = charge()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.charges.retrieve(ch.id, params={"expand": ["amount"]})
    assert "cannot be expanded" in raised.value.user_message
