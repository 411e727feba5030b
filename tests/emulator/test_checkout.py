"""Checkout Sessions through the API and the hosted payment page."""

import pytest
import stripe

from devtools.stripe_emulator.errors import StripeError

PAID_URL = "https://app.test/paid?session={CHECKOUT_SESSION_ID}"


def test_create_and_retrieve(client, checkout_session):
    session = checkout_session(
        customer_email="ada@example.test",
        client_reference_id="intro-7",
        metadata={"introduction_id": "7"},
        payment_intent_data={"transfer_group": "intro-7", "metadata": {"introduction_id": "7"}},
    )
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.amount_total == 5000 and session.currency == "usd"
    assert session.payment_intent is None  # created when the customer pays
    assert session.url.endswith(f"/pages/checkout/{session.id}")
    assert session.expires_at == session.created + 24 * 3600
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.client_reference_id == "intro-7"
    assert fetched.metadata.to_dict() == {"introduction_id": "7"}


def test_line_items_by_expansion_and_listing(client, checkout_session):
    session = checkout_session()
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    item = expanded.line_items.data[0]
    assert (item.object, item.description, item.quantity) == ("item", "Introduction to Ada", 2)
    assert item.price.unit_amount == 2500 and item.amount_total == 5000
    listed = client.v1.checkout.sessions.line_items.list(session.id)
    assert [i.id for i in listed.data] == [item.id]


def test_line_items_are_validated(client, checkout_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        checkout_session(line_items=[{"price_data": {"currency": "usd", "unit_amount": 100}}])
    assert raised.value.code == "parameter_missing"
    assert raised.value.param == "line_items[0][price_data][product_data]"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        checkout_session(line_items=[{"price": "price_unknown", "quantity": 1}])
    assert raised.value.code == "resource_missing"


def test_expires_at_must_be_within_half_an_hour_and_a_day(emulator, checkout_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        checkout_session(expires_at=emulator.now() + 60)
    assert raised.value.param == "expires_at"


def test_the_hosted_page_names_its_icon_so_no_browser_asks_for_one(checkout_session, browse):
    """A page without an icon makes the browser fetch /favicon.ico, which needs an API key here."""
    status, _, page = browse(checkout_session(success_url=PAID_URL).url)
    assert status == 200 and '<link rel="icon" href="data:image/svg+xml,' in page


def test_paying_on_the_hosted_page(client, checkout_session, browse):
    session = checkout_session(
        success_url=PAID_URL,
        payment_intent_data={"transfer_group": "intro-9", "metadata": {"introduction_id": "9"}},
    )
    status, _, page = browse(session.url)
    assert status == 200 and 'name="card_number"' in page and "50.00 USD" in page

    status, headers, _ = browse(session.url, {"card_number": "4242424242424242"})
    assert status == 303
    assert headers["Location"] == f"https://app.test/paid?session={session.id}"

    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent.latest_charge"]})
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    intent = paid.payment_intent
    assert (intent.status, intent.amount_received) == ("succeeded", 5000)
    assert intent.transfer_group == "intro-9"
    assert intent.metadata.to_dict() == {"introduction_id": "9"}
    assert intent.latest_charge.status == "succeeded"
    assert intent.latest_charge.transfer_group == "intro-9"
    status, _, receipt = browse(intent.latest_charge.receipt_url)
    assert status == 200 and "Introduction to Ada" in receipt and "50.00 USD" in receipt
    types = [e.type for e in client.v1.events.list().data]
    assert types[0] == "checkout.session.completed"
    assert {"charge.succeeded", "payment_intent.succeeded"} <= set(types)
    listed = client.v1.checkout.sessions.list(params={"payment_intent": intent.id, "expand": ["data.payment_intent"]})
    assert [(s.id, s.payment_intent.status) for s in listed.data] == [(session.id, "succeeded")]


def test_declined_card_keeps_the_session_open(client, checkout_session, browse):
    session = checkout_session()
    status, _, page = browse(session.url, {"card_number": "4000000000000002"})
    assert status == 200
    assert "Your card was declined." in page
    still = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert still.status == "open"
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.decline_code == "generic_decline"
    failed = client.v1.events.list(params={"type": "payment_intent.payment_failed"}).data
    assert [e.data.object.id for e in failed] == [still.payment_intent.id]

    # the customer tries another card on the same page
    status, _, _ = browse(session.url, {"card_number": "4242424242424242"})
    assert status == 303
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_unknown_card_numbers_are_refused_without_side_effects(client, checkout_session, browse):
    session = checkout_session()
    _, _, page = browse(session.url, {"card_number": "1234"})
    assert "Your card number is incorrect." in page
    assert client.v1.payment_intents.list().data == []


def test_cancel_link_goes_to_cancel_url(checkout_session, browse):
    _, _, page = browse(checkout_session().url)
    assert 'href="https://app.test/cancelled"' in page


def test_expire_through_the_api(client, checkout_session, browse):
    session = checkout_session()
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert client.v1.events.list().data[0].type == "checkout.session.expired"
    assert browse(session.url)[0] == 410
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_sessions_expire_when_time_passes(emulator, client, checkout_session):
    session = checkout_session(expires_at=emulator.now() + 3600)
    # The emulator's clock is the wall clock moved forward: a minute's margin either side, so
    # the seconds the test itself takes on a busy machine never decide it.
    emulator.advance_time(3540)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    emulator.advance_time(120)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    events = client.v1.events.list(params={"type": "checkout.session.expired"}).data
    assert [e.data.object.id for e in events] == [session.id]


def test_customer_and_customer_email_are_exclusive(client, checkout_session):
    customer = client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        checkout_session(customer=customer.id, customer_email="x@example.test")
    assert raised.value.code == "parameters_exclusive"


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 50}).data)]


@pytest.mark.parametrize("succeed", [True, False])
def test_delayed_payment_method_completes_unpaid_then_settles(emulator, client, checkout_session, browse, succeed):
    session = checkout_session()
    status, headers, _ = browse(session.url, {"payment_method_type": "us_bank_account", "email": "a@x.test"})
    assert status == 303
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert (completed.status, completed.payment_status) == ("complete", "unpaid")
    assert client.v1.payment_intents.retrieve(completed.payment_intent).status == "processing"
    assert _types(client)[-1] == "checkout.session.completed"

    settled = emulator.settle_checkout(session.id, succeed=succeed)
    intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    if succeed:
        assert (settled["payment_status"], intent.status) == ("paid", "succeeded")
        paid = client.v1.charges.retrieve(intent.latest_charge)
        assert paid.receipt_url.startswith(emulator.url) and browse(paid.receipt_url)[0] == 200
        assert _types(client)[-1] == "checkout.session.async_payment_succeeded"
    else:
        assert (settled["payment_status"], intent.status) == ("unpaid", "requires_payment_method")
        assert _types(client)[-2:] == ["payment_intent.payment_failed", "checkout.session.async_payment_failed"]
    with pytest.raises(StripeError):
        emulator.settle_checkout(session.id)
