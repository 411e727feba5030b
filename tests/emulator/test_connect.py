"""Express accounts, account links and the hosted onboarding page."""

import pytest
import stripe

from devtools.stripe_emulator.pages import default_account_number


def test_new_express_account_is_not_ready(client, account):
    acct = account(metadata={"user_id": "7"})
    assert acct.id.startswith("acct_") and acct.type == "express"
    assert (acct.charges_enabled, acct.payouts_enabled, acct.details_submitted) == (
        False,
        False,
        False,
    )
    assert acct.capabilities.transfers == "inactive"
    assert "external_account" in acct.requirements.currently_due
    assert acct.requirements.disabled_reason == "requirements.past_due"
    assert acct.external_accounts.data == []
    assert client.v1.accounts.retrieve(acct.id).metadata.to_dict() == {"user_id": "7"}
    assert [a.id for a in client.v1.accounts.list().data] == [acct.id]


def test_account_type_is_required_and_checked(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.accounts.create(params={"email": "x@example.test"})
    assert (raised.value.code, raised.value.param) == ("parameter_missing", "type")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.create(params={"type": "premium"})


def test_onboarding_through_the_hosted_page(client, account, account_link, browse):
    acct = account()
    link = account_link(acct.id)
    assert link.object == "account_link" and link.expires_at > link.created
    status, _, page = browse(link.url)
    assert status == 200 and 'value="fail_verification"' in page

    status, headers, _ = browse(link.url, {"outcome": "complete"})
    assert (status, headers["Location"]) == (303, "https://app.test/return")
    ready = client.v1.accounts.retrieve(acct.id)
    assert (ready.charges_enabled, ready.payouts_enabled, ready.details_submitted) == (
        True,
        True,
        True,
    )
    assert ready.capabilities.transfers == "active"
    assert ready.requirements.currently_due == [] and ready.requirements.disabled_reason is None
    bank = ready.external_accounts.data[0]
    assert bank.id.startswith("ba_") and bank.fingerprint and bank.last4 == default_account_number(acct.id)[-4:]

    event = client.v1.events.list(params={"type": "account.updated"}, options={"stripe_account": acct.id}).data[0]
    assert event.account == acct.id
    assert event.data.object.capabilities.transfers == "active"
    assert event.data.previous_attributes.capabilities.transfers == "inactive"

    # links are single use: a second visit goes to refresh_url
    status, headers, _ = browse(link.url)
    assert (status, headers["Location"]) == (303, "https://app.test/refresh")


def test_failed_verification_leaves_requirements_due(client, account, onboard):
    acct = account()
    onboard(acct.id, outcome="fail_verification")
    failed = client.v1.accounts.retrieve(acct.id)
    assert failed.details_submitted is True
    assert failed.charges_enabled is False and failed.payouts_enabled is False
    assert failed.capabilities.transfers == "inactive"
    assert failed.requirements.currently_due == ["individual.verification.document"]
    assert failed.requirements.disabled_reason == "requirements.past_due"
    assert failed.requirements.errors[0].requirement == "individual.verification.document"

    onboard(acct.id)  # a new link, and this time it passes
    assert client.v1.accounts.retrieve(acct.id).capabilities.transfers == "active"


def test_pending_verification(client, account, onboard):
    acct = account()
    onboard(acct.id, outcome="pending_verification")
    pending = client.v1.accounts.retrieve(acct.id)
    assert pending.capabilities.transfers == "pending"
    assert pending.requirements.disabled_reason == "requirements.pending_verification"


def test_same_bank_account_gives_the_same_fingerprint(client, account, onboard):
    first, second = account(), account()
    onboard(first.id, account_number="000111222333")
    onboard(second.id, account_number="000111222333")
    prints = {client.v1.accounts.retrieve(a.id).external_accounts.data[0].fingerprint for a in (first, second)}
    assert len(prints) == 1


def test_each_account_onboarded_with_the_prefilled_form_has_its_own_bank(client, account, onboard):
    """Shared fingerprints are a fraud signal (docs/fraud.md), so the emulator's default bank
    account differs per connected account: only a typed-in shared number makes two match."""
    first, second = account(), account()
    onboard(first.id)
    onboard(second.id)
    prints = {client.v1.accounts.retrieve(a.id).external_accounts.data[0].fingerprint for a in (first, second)}
    assert len(prints) == 2


def test_expired_links_redirect_to_refresh_url(emulator, account, account_link, browse):
    link = account_link(account().id)
    emulator.advance_time(301)
    assert browse(link.url)[1]["Location"] == "https://app.test/refresh"


def test_account_update_emits_account_updated(client, account):
    acct = account()
    client.v1.accounts.update(acct.id, params={"metadata": {"tier": "gold"}})
    events = client.v1.events.list(options={"stripe_account": acct.id}).data
    assert [e.type for e in events] == ["account.updated"]
    assert client.v1.events.list().data == []  # a Connect event, not the platform's


def test_account_links_need_an_existing_account(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.account_links.create(params={"account": "acct_nope", "type": "account_onboarding"})
    assert (raised.value.code, raised.value.param) == ("resource_missing", "account")
