"""E-mail verification (docs/accounts.md): the single-use, expiring confirmation link, asking for a
new one, a change of address, and what an unconfirmed account may not do. Each takeover that an
unproven address allowed is played out: refused with a clear message before the address is
confirmed, allowed after."""

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from devtools.stripe_emulator import Emulator
from marketplace.accounts import service as accounts
from marketplace.accounts.models import EmailVerification, Invitation, PasswordReset, Role, User
from marketplace.config import override
from marketplace.db import utcnow
from marketplace.errors import EmailUnverified
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments import service as payments
from marketplace.payments.models import PayoutAccount
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import IntroductionStatus, ReferralStatus
from tests import builders as build
from tests.builders import count
from tests.conftest import PASSWORD
from tests.referrals.test_rules import Refusals

BANNER = "Confirm your e-mail address: open the link we sent to"
STRANGER = "Sam Stranger"


@pytest.fixture
def refused(session, sent_mail):
    return Refusals(session, sent_mail)


def confirmation_link(sent_mail, address: str) -> str:
    """The path of the last confirmation link e-mailed to ``address``."""
    links = [
        re.search(r"http://localhost(/verify-email/\S+)", message.get_body(("plain",)).get_content())
        for message in sent_mail.to(address)
    ]
    found = [link.group(1) for link in links if link]
    assert found, f"no confirmation link was sent to {address}"
    return found[-1]


def fresh(session, user) -> User:
    """The user as stored now; ends the read, so requests that follow never wait for it."""
    session.expire_all()
    stored = session.get(User, user.id)
    session.commit()
    return stored


def confirm(browser, link: str):
    """Open a confirmation link and press its button, as a person would (no one logged in)."""
    return browser().submit(link)


def backdate_links(session, user, minutes: int = 2) -> None:
    """Make the user's confirmation links look ``minutes`` old (the resend cooldown is one minute)."""
    session.execute(
        update(EmailVerification)
        .where(EmailVerification.user_id == user.id)
        .values(created_at=utcnow() - timedelta(minutes=minutes))
    )
    session.commit()


# The link --------------------------------------------------------------------------------------


def test_signup_sends_a_single_use_link_that_confirms_the_address(browser, session, sent_mail):
    nora = browser()
    page = nora.signup("Nora Newcomer", "nora@example.com")
    assert BANNER in page.text
    user = session.scalar(select(User).where(User.email == "nora@example.com"))
    session.commit()
    assert user.email_verified_at is None

    [message] = sent_mail.to("nora@example.com")
    assert message["Subject"] == "Confirm your e-mail address"
    assert message.get_body(("html",)).get_content().count("/verify-email/") == 1
    link = confirmation_link(sent_mail, "nora@example.com")
    token = link.rsplit("/", 1)[1]
    stored = session.scalars(select(EmailVerification)).one()
    session.commit()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    assert stored.expires_at - stored.created_at == timedelta(hours=24)

    landing = nora.get(link)
    assert "Confirm that <strong>nora@example.com</strong> is your address." in landing.text
    assert fresh(session, user).email_verified_at is None, "opening the link alone confirms nothing"

    done = nora.submit(link)
    assert done.status_code == 200 and "Your address nora@example.com is confirmed." in done.text
    assert fresh(session, user).email_verified_at is not None
    assert BANNER not in nora.get("/profile").text

    again = nora.submit(link)
    assert "This confirmation link has already been used." in again.text
    assert "there is nothing more to do" in again.text


def test_an_expired_link_confirms_nothing_and_offers_a_new_one(browser, make_user, session, sent_mail):
    nora = make_user("Nora Newcomer", "nora@example.com", verified=False)
    link = confirmation_link(sent_mail, "nora@example.com")
    session.execute(update(EmailVerification).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    person = build.logged_in(browser, nora)

    landing = person.get(link)
    assert "This confirmation link has expired; ask for a new one." in landing.text
    assert "Send me a new link" in landing.text
    pressed = person.submit(link)
    assert "This confirmation link has expired" in pressed.text
    anonymous = browser().get(link)
    assert "This confirmation link has expired" in anonymous.text and "Log in to see whether" in anonymous.text
    assert fresh(session, nora).email_verified_at is None
    garbage = browser().get("/verify-email/not-a-token")
    assert "This confirmation link is not valid." in garbage.text


def test_a_new_link_is_sent_on_request_at_most_once_a_minute_and_voids_none_until_used(
    browser, make_user, session, sent_mail
):
    nora = make_user("Nora Newcomer", "nora@example.com", verified=False)
    first = confirmation_link(sent_mail, "nora@example.com")
    person = build.logged_in(browser, nora)

    too_soon = person.submit("/verify-email")
    assert "less than a minute ago" in too_soon.text
    assert len(sent_mail.to("nora@example.com")) == 1

    backdate_links(session, nora)
    sent = person.submit("/verify-email")
    assert "A new link is on its way to nora@example.com" in sent.text
    second = confirmation_link(sent_mail, "nora@example.com")
    assert second != first

    assert "is confirmed" in confirm(browser, second).text
    assert "already been used" in browser().get(first).text, "using one link voids the others"
    assert fresh(session, nora).email_verified_at is not None


def test_the_api_resends_a_link_with_the_same_rules(api, make_user, session, sent_mail, browser):
    nora = make_user("Nora Newcomer", "nora@example.com", verified=False)
    client = api(nora)
    assert client.get("/me").json["email_verified"] is False

    too_soon = client.post("/me/email-verification")
    assert too_soon.status_code == 429 and too_soon.json["error"]["code"] == "verification_recently_sent"
    backdate_links(session, nora)
    sent = client.post("/me/email-verification")
    assert sent.status_code == 202 and sent.json == {"sent_to": "nora@example.com"}
    assert len(sent_mail.to("nora@example.com")) == 2

    confirm(browser, confirmation_link(sent_mail, "nora@example.com"))
    assert client.get("/me").json["email_verified"] is True
    done = client.post("/me/email-verification")
    assert done.status_code == 409 and done.json["error"]["code"] == "already_verified"


def test_changing_the_address_makes_the_account_unverified_until_the_new_one_is_confirmed(
    browser, make_user, session, sent_mail
):
    ann = make_user("Ann Li", "ann@example.com")
    make_user("Bob Martins", "bob@example.com")
    accounts.request_password_reset(session, "ann@example.com")
    session.commit()
    person = build.logged_in(browser, ann)

    wrong = person.submit("/profile", {"email": "ann@new.example", "password": "not-it"}, "/profile/email")
    assert "Your current password is not that." in wrong.text
    taken = person.submit("/profile", {"email": "bob@example.com", "password": PASSWORD}, "/profile/email")
    assert "An account with this e-mail already exists." in taken.text
    assert fresh(session, ann).email == "ann@example.com" and fresh(session, ann).email_verified_at is not None

    changed = person.submit("/profile", {"email": "Ann@New.example", "password": PASSWORD}, "/profile/email")
    assert "Your address is now ann@new.example." in changed.text and BANNER in changed.text
    stored = fresh(session, ann)
    assert (stored.email, stored.email_verified_at) == ("ann@new.example", None)
    assert session.scalars(select(PasswordReset.used_at)).one() is not None, "a reset link to the old address is void"
    session.commit()

    confirm(browser, confirmation_link(sent_mail, "ann@new.example"))
    assert fresh(session, ann).email_verified_at is not None
    assert BANNER not in person.get("/profile").text


# Takeovers an unproven address allowed ---------------------------------------------------------


def test_signing_up_with_an_invited_address_joins_only_once_the_address_is_confirmed(
    browser, api, session, world, open_problem, sent_mail
):
    private = open_problem(visibility="private")
    _, token = accounts.invite(session, world.owner, world.company.id, email="ivy@example.com", role="admin")
    session.commit()
    stranger = browser()
    stranger.signup(STRANGER, "ivy@example.com")
    ivy = session.scalar(select(User).where(User.email == "ivy@example.com"))
    session.commit()
    assert accounts.role_in(session, ivy, world.company.id) is None, "signing up alone joins nothing"
    session.commit()
    assert stranger.get(f"/problems/{private.id}").status_code == 404

    page = stranger.submit(f"/invitations/{token}")
    assert "Confirm your e-mail address before you join a company" in page.text
    over_api = api(ivy).post(f"/invitations/{token}/accept")
    assert over_api.status_code == 403 and over_api.json["error"]["code"] == "email_unverified"
    assert accounts.role_in(session, ivy, world.company.id) is None
    assert session.scalar(select(Invitation.accepted_at).where(Invitation.email == "ivy@example.com")) is None
    session.commit()

    confirm(browser, confirmation_link(sent_mail, "ivy@example.com"))
    assert accounts.role_in(session, ivy, world.company.id) == Role.ADMIN, "confirming joins the invited company"
    session.commit()
    assert stranger.get(f"/problems/{private.id}").status_code == 200


def test_an_unconfirmed_account_cannot_claim_a_referral_sent_to_its_address(
    browser, api, session, world, open_problem, sent_mail, refused
):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    referral = chains.forward(session, world.ann, problem.id, to_email="newcomer@elsewhere.example")
    to_bob = chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    session.commit()
    sam = build.user(session, STRANGER, "newcomer@elsewhere.example", verified=False)
    person = build.logged_in(browser, sam)
    dashboard = person.get("/dashboard").text
    assert f"/r/{referral.token}" not in dashboard and f"/r/{to_bob.token}" not in dashboard

    client = api(sam)
    error = refused.api(lambda: client.post(f"/referrals/{referral.token}/claim"), 403, "email_unverified")
    assert "Confirm your e-mail address before you claim a referral" in error["message"]

    confirm(browser, confirmation_link(sent_mail, "newcomer@elsewhere.example"))
    dashboard = person.get("/dashboard").text
    assert f"/r/{referral.token}" in dashboard and f"/r/{to_bob.token}" not in dashboard
    claimed = client.post(f"/referrals/{referral.token}/claim")
    assert claimed.status_code == 200 and claimed.json["referral"]["status"] == ReferralStatus.CLAIMED.value


def test_a_referral_forwarded_to_an_unconfirmed_account_stays_addressed_to_the_address(session, world, open_problem):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    sam = build.user(session, STRANGER, "newcomer@elsewhere.example", verified=False)

    referral = chains.forward(session, world.ann, problem.id, to_email="newcomer@elsewhere.example")

    assert (referral.recipient_user_id, referral.recipient_email) == (None, "newcomer@elsewhere.example")
    with pytest.raises(EmailUnverified):
        chains.claim(session, sam, referral.token)


def test_an_unconfirmed_account_cannot_answer_an_introduction_to_its_address(
    browser, api, session, world, open_problem, sent_mail, refused
):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    introduction = introductions.introduce(
        session, world.ann, problem.id, candidate_email="expert@elsewhere.example", message="She fixed this before."
    )
    session.commit()
    sam = build.user(session, STRANGER, "expert@elsewhere.example", verified=False)

    client = api(sam)
    error = refused.api(
        lambda: client.post(f"/introductions/{introduction.id}/consent", {"accept": True}), 403, "email_unverified"
    )
    assert "Confirm your e-mail address before you answer an introduction" in error["message"]
    page = build.logged_in(browser, sam).submit(f"/i/{introduction.consent_token}", {"answer": "accept"})
    assert "Confirm your e-mail address before you answer an introduction" in page.text
    session.expire_all()
    assert (introduction.status, introduction.candidate_user_id) == (IntroductionStatus.AWAITING_CANDIDATE, None)
    session.commit()

    confirm(browser, confirmation_link(sent_mail, "expert@elsewhere.example"))
    agreed = client.post(f"/introductions/{introduction.id}/consent", {"accept": True})
    assert agreed.status_code == 200 and agreed.json["status"] == "proposed"
    session.expire_all()
    assert introduction.candidate_user_id == sam.id
    session.commit()


def test_the_emailed_consent_link_cannot_answer_for_an_unconfirmed_account(browser, session, world, open_problem):
    """An introduction naming an unconfirmed account is not answered through its link either: the
    account it names would become the candidate the company sees and pays."""
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    sam = build.user(session, STRANGER, "sam@elsewhere.example", verified=False)
    introduction = introductions.introduce(
        session, world.ann, problem.id, candidate_user_id=sam.id, message="Sam says he fixed this."
    )
    session.commit()

    page = browser().submit(f"/i/{introduction.consent_token}", {"answer": "accept"})

    assert "Confirm your e-mail address before you answer an introduction" in page.text
    session.expire_all()
    assert introduction.status == IntroductionStatus.AWAITING_CANDIDATE
    session.commit()


# Payouts ---------------------------------------------------------------------------------------


@pytest.fixture
def stripe(app):
    """The app's Stripe calls go to a local emulator."""
    emulator = Emulator(auto_deliver=False).start(port=0)
    override(app, stripe_secret_key="sk_test_marketplace", stripe_api_base=emulator.url)
    app.extensions.pop("stripe_client", None)
    yield emulator
    emulator.stop()


def test_an_unconfirmed_account_cannot_start_payout_onboarding(api, browser, make_user, session, sent_mail, stripe):
    nora = make_user("Nora Newcomer", "nora@example.com", verified=False)

    refused = api(nora).post("/me/payout-account")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "email_unverified"
    page = build.logged_in(browser, nora).submit("/me/earnings", action="/me/payout-account")
    assert "Confirm your e-mail address before you set up payouts" in page.text
    assert count(session, PayoutAccount) == 0

    confirm(browser, confirmation_link(sent_mail, "nora@example.com"))
    allowed = api(nora).post("/me/payout-account")
    assert allowed.status_code == 200 and allowed.json["onboarding_url"].startswith(stripe.url)
    assert count(session, PayoutAccount) == 1


def test_payouts_wait_while_the_address_is_unconfirmed_and_start_once_it_is(session, world, open_problem, sent_mail):
    problem = open_problem(guarantee_days=0)
    build.accepted(session, world.owner, problem, [world.ann, world.bob, world.dev])
    share = session.scalar(select(Share).where(Share.member_id == world.ann.id, Share.amount > 0))
    assert share.status == ShareStatus.AVAILABLE
    session.add(
        PayoutAccount(
            user_id=world.ann.id,
            stripe_id="acct_ann",
            creation_key="account:ann",
            details_submitted=True,
            transfers_active=True,
        )  # fmt: skip
    )
    accounts.change_email(session, world.ann.id, email="ann@new.example", current_password=PASSWORD)

    assert payments.start_payouts(session) == 0, "Ann's address is not confirmed: her share waits"
    session.refresh(share)
    assert share.status == ShareStatus.AVAILABLE
    session.commit()

    accounts.verify_email(session, confirmation_link(sent_mail, "ann@new.example").rsplit("/", 1)[1])
    session.refresh(share)
    assert share.status == ShareStatus.PAYING
