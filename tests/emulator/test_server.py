"""Authentication, routing, parameter validation and the error envelope."""

import base64
import json
import time
import urllib.request

import pytest
import stripe

from devtools.stripe_emulator import Emulator


def test_starts_on_a_free_port_well_under_a_second():
    started = time.monotonic()
    emu = Emulator().start(port=0)
    try:
        assert time.monotonic() - started < 1
        assert emu.url.startswith("http://127.0.0.1:")
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.url})
        assert client.v1.balance.retrieve().object == "balance"
    finally:
        emu.stop()


def test_live_or_malformed_keys_are_refused_with_401(emulator):
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": emulator.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as raised:
        bad.v1.customers.list()
    assert raised.value.http_status == 401
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key" in raised.value.json_body["error"]["message"]


def test_a_missing_key_is_refused_with_401(emulator):
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{emulator.url}/v1/customers", timeout=5)
    assert raised.value.code == 401
    assert json.loads(raised.value.read())["error"]["type"] == "invalid_request_error"


def test_basic_auth_is_accepted_like_curl_u(emulator):
    token = base64.b64encode(b"sk_test_curl:").decode()
    request = urllib.request.Request(f"{emulator.url}/v1/balance", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["object"] == "balance"


def test_unknown_parameters_are_rejected_with_their_path(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.create(params={"emial": "typo@example.test"})
    assert raised.value.code == "parameter_unknown"
    assert raised.value.param == "emial"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params={"mode": "payment", "line_items": [{"quantity": 1, "colour": "red"}]})
    assert raised.value.param == "line_items[0][colour]"


def test_missing_required_parameters(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"currency": "usd"})
    assert raised.value.http_status == 400
    assert raised.value.code == "parameter_missing"
    assert raised.value.param == "amount"


def test_invalid_values_name_the_parameter(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params={"amount": "ten", "currency": "usd"})
    assert raised.value.code == "parameter_invalid_integer"
    assert raised.value.param == "amount"


def test_unknown_ids_are_404_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.retrieve("cus_nope")
    error = raised.value
    assert error.http_status == 404
    assert error.json_body["error"] == {
        "type": "invalid_request_error",
        "message": "No such customer: 'cus_nope'",
        "code": "resource_missing",
        "param": "id",
    }


def test_unknown_urls_are_404(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.raw_request("get", "/v1/unicorns")
    assert raised.value.http_status == 404
    assert "Unrecognized request URL" in raised.value.user_message


def test_stripe_account_must_be_a_connected_account_of_the_platform(client):
    with pytest.raises(stripe.PermissionError) as raised:
        client.v1.balance.retrieve(options={"stripe_account": "acct_unknown"})
    assert raised.value.http_status == 403
    assert raised.value.json_body["error"]["code"] == "account_invalid"


def test_platform_only_endpoints_refuse_a_connected_account(client, account):
    acct = account()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.create(params={"type": "express"}, options={"stripe_account": acct.id})


def test_own_account_is_the_platform_or_the_connected_account(client, account):
    platform = client.v1.accounts.retrieve_current()
    assert platform.id.startswith("acct_") and platform.charges_enabled
    acct = account()
    own = client.v1.accounts.retrieve_current(options={"stripe_account": acct.id})
    assert own.id == acct.id


def test_responses_carry_request_id_and_stripe_version(client):
    customer = client.v1.customers.create()
    assert customer.last_response.request_id.startswith("req_")
    assert customer.last_response.headers["Stripe-Version"] == stripe.api_version
