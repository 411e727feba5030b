"""Every referral and introduction rule (docs/architecture.md, "Domains"), each broken once.

A refusal is checked twice: the exact error (HTTP status and ``error.code`` through the API, or the
typed error through the service), and that nothing changed: the same number of rows in every table,
the same rows in ``problems``, ``referrals`` and ``introductions``, and no mail sent.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from marketplace.db import utcnow
from marketplace.errors import MarketplaceError
from marketplace.ledger.models import Share
from marketplace.models import metadata
from marketplace.referrals import chains, introductions
from marketplace.referrals.chains import ReferralError, compute_chain_hash
from marketplace.referrals.models import Introduction, Referral
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow
from tests import builders as build

WATCHED_TABLES = ("problems", "referrals", "introductions")


def snapshot(session) -> tuple[dict, dict]:
    """Row counts of every table, and every row of the tables the referral rules protect.

    Reads with Core (not the identity map) and ends its transaction, so the next HTTP request does
    not wait for SQLite's write lock.
    """
    counts = {table.name: session.scalar(select(func.count()).select_from(table)) for table in metadata.sorted_tables}
    rows = {
        name: session.execute(select(metadata.tables[name]).order_by(metadata.tables[name].c.id)).all()
        for name in WATCHED_TABLES
    }
    session.commit()
    return counts, rows


@dataclass
class Refusals:
    session: object
    sent_mail: list

    def api(self, request, status: int, code: str):
        """``request()`` must answer ``status`` with ``error.code == code`` and change nothing."""
        before, mails = snapshot(self.session), len(self.sent_mail)
        response = request()
        body = response.get_json()
        assert (response.status_code, body["error"]["code"]) == (status, code), body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        self._unchanged(before, mails)
        return body["error"]

    def service(self, call, error: type[MarketplaceError], code: str) -> MarketplaceError:
        """``call()`` must raise ``error`` with ``code``; after the caller's rollback nothing changed."""
        before, mails = snapshot(self.session), len(self.sent_mail)
        with pytest.raises(error) as raised:
            call()
        assert raised.value.code == code, raised.value.message
        self._unchanged(before, mails)
        return raised.value

    def _unchanged(self, before, mails: int) -> None:
        self.session.rollback()  # what the request's error handler does; a no-op after an HTTP refusal
        assert snapshot(self.session) == before
        assert len(self.sent_mail) == mails


@pytest.fixture
def refused(session, sent_mail):
    return Refusals(session, sent_mail)


# Building chains through the service (fast, and each step committed so requests never wait) -------


def pick(session, user, problem) -> Referral:
    referral = chains.pick_from_board(session, user, problem.id)
    session.commit()
    return referral


def forward(session, sender, problem, **recipient) -> Referral:
    referral = chains.forward(session, sender, problem.id, **recipient)
    session.commit()
    return referral


def claim(session, user, referral) -> Referral:
    referral = chains.claim(session, user, referral.token)
    session.commit()
    return referral


def introduce(session, introducer, problem, **candidate) -> Introduction:
    candidate.setdefault("message", "I worked with them on exactly this kind of problem.")
    introduction = introductions.introduce(session, introducer, problem.id, **candidate)
    session.commit()
    return introduction


def accept_self_introduction(session, world, problem, member) -> Introduction:
    """``member`` puts themselves forward and the owner accepts: the problem moves to in_guarantee."""
    introduction = introduce(session, member, problem, candidate_user_id=member.id)
    settlement_workflow.accept_introduction(session, world.owner, introduction.id)
    session.commit()
    return introduction


def status_of(session, table: str, row_id: int) -> str:
    """A row's status as stored now; read with Core so the test's objects stay loaded and unexpired."""
    rows = metadata.tables[table]
    status = session.execute(select(rows.c.status).where(rows.c.id == row_id)).scalar_one()
    session.commit()
    return status


# Referrals only while the problem is open ---------------------------------------------------------


@pytest.fixture
def problem_in(session, world, open_problem):
    """A problem in the given state, and Bob's pending referral from Ann if the problem was ever open.

    Cancelled and expired problems close unmatched; in_guarantee is reached by accepting Cleo, who
    put herself forward.
    """

    def make(state: str):
        if state in ("draft", "awaiting_payment"):
            built = "draft" if state == "draft" else "published"
            return build.problem(session, world.owner, world.company.id, built), None
        problem = open_problem()
        pick(session, world.ann, problem)
        to_bob = forward(session, world.ann, problem, to_user_id=world.bob.id)
        if state == "cancelled":
            funding.cancel_problem(session, world.owner, problem.id)
        elif state == "expired":
            assert funding.expire_due(session, now=utcnow() + timedelta(days=31)) == [problem.id]
        else:
            pick(session, world.cleo, problem)
            accept_self_introduction(session, world, problem, world.cleo)
        session.commit()
        assert problem.status.value == state
        return problem, to_bob

    return make


@pytest.mark.parametrize("state", ["draft", "awaiting_payment", "cancelled", "expired", "in_guarantee"])
def test_no_referrals_or_introductions_unless_the_problem_is_open(state, problem_in, world, api, refused):
    problem, to_bob = problem_in(state)
    employee, ann, bob, dev = api(world.employee), api(world.ann), api(world.bob), api(world.dev)
    pid = problem.id

    refused.api(lambda: employee.post(f"/problems/{pid}/referrals", {"to_user_id": world.dev.id}), 409, "referral_rule")
    refused.api(
        lambda: employee.post(
            f"/problems/{pid}/introductions",
            {"candidate_email": "expert@elsewhere.example", "message": "A real expert."},
        ),
        409,
        "referral_rule",
    )
    # A draft is not on the board at all; the other states are, but nobody can start a chain.
    refused.api(
        lambda: dev.post(f"/problems/{pid}/pick"), *((404, "not_found") if state == "draft" else (409, "referral_rule"))
    )
    if to_bob is None:
        return
    refused.api(lambda: ann.post(f"/problems/{pid}/referrals", {"to_user_id": world.dev.id}), 409, "referral_rule")
    # Closing a problem unmatched expires its pending links; an accepted one leaves them refused.
    refused.api(
        lambda: bob.post(f"/referrals/{to_bob.token}/claim"),
        409,
        "referral_rule" if state == "in_guarantee" else "expired",
    )


# First touch -------------------------------------------------------------------------------------


def test_first_touch_a_member_with_a_place_cannot_claim_a_second_referral(session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.cleo, problem)
    to_ann = forward(session, world.cleo, problem, to_user_id=world.ann.id)  # sent before Ann had a place
    pick(session, world.ann, problem)
    ann = api(world.ann)

    refused.api(lambda: ann.post(f"/referrals/{to_ann.token}/claim"), 409, "referral_rule")


def test_first_touch_a_member_with_a_place_cannot_pick_from_the_board_again(session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    to_bob = forward(session, world.ann, problem, to_user_id=world.bob.id)
    claim(session, world.bob, to_bob)
    ann, bob = api(world.ann), api(world.bob)

    refused.api(lambda: ann.post(f"/problems/{problem.id}/pick"), 409, "referral_rule")
    refused.api(lambda: bob.post(f"/problems/{problem.id}/pick"), 409, "referral_rule")


@pytest.mark.parametrize("by", ["to_user_id", "to_email"])
def test_first_touch_nobody_can_forward_to_a_member_who_already_holds_a_place(
    by, session, world, open_problem, api, refused
):
    problem = open_problem()
    pick(session, world.ann, problem)
    pick(session, world.bob, problem)
    ann = api(world.ann)
    recipient = {"to_user_id": world.bob.id} if by == "to_user_id" else {"to_email": "bob@example.com"}

    refused.api(lambda: ann.post(f"/problems/{problem.id}/referrals", recipient), 409, "already_in_chain")


# No cycles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["to_user_id", "to_email"])
def test_no_cycles_nobody_can_forward_to_someone_above_them(by, session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    claim(session, world.bob, forward(session, world.ann, problem, to_user_id=world.bob.id))
    bob = api(world.bob)
    recipient = {"to_user_id": world.ann.id} if by == "to_user_id" else {"to_email": "Ann@Example.com"}

    refused.api(lambda: bob.post(f"/problems/{problem.id}/referrals", recipient), 409, "cycle")


def test_no_cycles_nobody_can_claim_a_referral_whose_chain_contains_them(session, world, open_problem, refused):
    """Bob sends Ann's unknown second address a link below himself; Ann, the root, cannot take it.

    The first-touch check runs before the cycle check, so the rule answers with its code.
    """
    problem = open_problem()
    pick(session, world.ann, problem)
    claim(session, world.bob, forward(session, world.ann, problem, to_user_id=world.bob.id))
    back_to_ann = forward(session, world.bob, problem, to_email="ann.private@elsewhere.example")

    refused.service(lambda: chains.claim(session, world.ann, back_to_ann.token), ReferralError, "referral_rule")


# No self-referral --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "recipient",
    [{"to_email": "ann@example.com"}, {"to_email": "  ANN@example.COM "}, "own user id"],
    ids=["own-email", "own-email-other-case", "own-user-id"],
)
def test_nobody_can_refer_a_problem_to_themselves(recipient, session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    ann = api(world.ann)
    body = {"to_user_id": world.ann.id} if recipient == "own user id" else recipient

    refused.api(lambda: ann.post(f"/problems/{problem.id}/referrals", body), 409, "self_referral")


def test_nobody_can_claim_a_referral_they_sent(session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    link = forward(session, world.ann, problem, to_email="newcomer@elsewhere.example")
    ann = api(world.ann)

    refused.api(lambda: ann.post(f"/referrals/{link.token}/claim"), 409, "self_referral")


# Maximum depth -----------------------------------------------------------------------------------


def test_max_depth_two_the_second_link_cannot_forward(session, world, open_problem, refused):
    problem = open_problem(max_depth=2)
    pick(session, world.ann, problem)
    claim(session, world.bob, forward(session, world.ann, problem, to_user_id=world.bob.id))

    error = refused.service(
        lambda: chains.forward(session, world.bob, problem.id, to_user_id=world.cleo.id), ReferralError, "max_depth"
    )
    assert error.status == 409


# Single-use links, and links addressed to a member --------------------------------------------


def test_an_email_link_is_single_use(session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    link = forward(session, world.ann, problem, to_email="newcomer@elsewhere.example")
    bob, cleo = api(world.bob), api(world.cleo)

    assert bob.post(f"/referrals/{link.token}/claim").status_code == 200
    refused.api(lambda: cleo.post(f"/referrals/{link.token}/claim"), 409, "already_claimed")
    refused.api(lambda: bob.post(f"/referrals/{link.token}/claim"), 409, "already_claimed")
    assert status_of(refused.session, "referrals", link.id) == "claimed"


@pytest.mark.parametrize("by", ["to_user_id", "to_email"])
def test_a_referral_addressed_to_a_member_cannot_be_claimed_by_someone_else(
    by, session, world, open_problem, api, refused
):
    """A link to a registered member's address is bound to that member, like one sent to their id."""
    problem = open_problem()
    pick(session, world.ann, problem)
    recipient = {"to_user_id": world.bob.id} if by == "to_user_id" else {"to_email": "bob@example.com"}
    link = forward(session, world.ann, problem, **recipient)
    assert link.recipient_user_id == world.bob.id
    cleo = api(world.cleo)

    refused.api(lambda: cleo.post(f"/referrals/{link.token}/claim"), 403, "forbidden")


def test_an_unknown_referral_token_is_not_found(world, api, refused):
    cleo = api(world.cleo)
    refused.api(lambda: cleo.post("/referrals/not-a-real-token/claim"), 404, "not_found")


# The company's own people are not links ---------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "employee"])
def test_company_members_cannot_be_links(role, session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    link = forward(session, world.ann, problem, to_email="newcomer@elsewhere.example")
    member = getattr(world, role)
    insider, ann = api(member), api(world.ann)
    pid = problem.id

    refused.api(lambda: insider.post(f"/problems/{pid}/pick"), 409, "referral_rule")
    refused.api(lambda: insider.post(f"/referrals/{link.token}/claim"), 409, "referral_rule")
    refused.api(lambda: ann.post(f"/problems/{pid}/referrals", {"to_user_id": member.id}), 409, "referral_rule")
    refused.api(lambda: ann.post(f"/problems/{pid}/referrals", {"to_email": member.email}), 409, "referral_rule")


# Forwarding needs a place -------------------------------------------------------------------------


def test_a_member_without_a_place_cannot_forward(session, world, open_problem, api, refused):
    """Neither a stranger to the problem nor someone holding an unclaimed referral may pass it on."""
    problem = open_problem()
    pick(session, world.ann, problem)
    forward(session, world.ann, problem, to_user_id=world.bob.id)  # sent, not claimed
    bob, dev = api(world.bob), api(world.dev)

    refused.api(lambda: bob.post(f"/problems/{problem.id}/referrals", {"to_user_id": world.cleo.id}), 403, "forbidden")
    refused.api(lambda: dev.post(f"/problems/{problem.id}/referrals", {"to_user_id": world.cleo.id}), 403, "forbidden")


# Introductions -------------------------------------------------------------------------------------

MESSAGE = "Dev rebuilt replication for a 5 TB cluster."


@pytest.fixture
def chain(session, world, open_problem):
    """An open problem where Ann and Cleo each picked a chain; Bob and the outsider hold no place."""
    problem = open_problem()
    pick(session, world.ann, problem)
    pick(session, world.cleo, problem)
    return problem


def test_only_chain_or_company_members_can_introduce(chain, world, api, refused):
    bob, outsider = api(world.bob), api(world.outsider)
    body = {"candidate_email": "dev@example.com", "message": MESSAGE}

    refused.api(lambda: bob.post(f"/problems/{chain.id}/introductions", body), 403, "forbidden")
    refused.api(lambda: outsider.post(f"/problems/{chain.id}/introductions", body), 403, "forbidden")


@pytest.mark.parametrize("by", ["candidate_email", "candidate_user_id"])
def test_a_candidate_from_the_company_itself_is_refused(by, chain, world, api, refused):
    ann = api(world.ann)
    candidate = (
        {"candidate_email": "ETHAN@acme.example.com"}
        if by == "candidate_email"
        else {"candidate_user_id": world.employee.id}
    )

    refused.api(
        lambda: ann.post(f"/problems/{chain.id}/introductions", {**candidate, "message": MESSAGE}),
        422,
        "candidate_in_company",
    )


@pytest.mark.parametrize("message", ["", "Hi", "  123456789  ", "x" * 5001], ids=["empty", "short", "nine", "too-long"])
def test_an_introduction_needs_a_message_of_10_to_5000_characters(message, chain, world, api, refused):
    ann = api(world.ann)
    body = {"candidate_email": "dev@example.com", "message": message}

    refused.api(lambda: ann.post(f"/problems/{chain.id}/introductions", body), 422, "invalid_message")


def test_the_first_introduction_owns_the_candidate_later_ones_are_duplicates(
    session, chain, world, api, refused, sent_mail
):
    ann, cleo, owner, dev = api(world.ann), api(world.cleo), api(world.owner), api(world.dev)
    first = ann.post(f"/problems/{chain.id}/introductions", {"candidate_email": "dev@example.com", "message": MESSAGE})
    assert first.status_code == 201 and first.json["status"] == "awaiting_candidate"
    mails = len(sent_mail)

    second = cleo.post(
        f"/problems/{chain.id}/introductions", {"candidate_email": "DEV@example.com", "message": MESSAGE}
    )
    assert second.status_code == 201 and second.json["status"] == "duplicate"
    assert len(sent_mail) == mails, "a duplicate must not ask the candidate again"
    # The duplicate is not a second path to the candidate: no consent, and the company's list leaves it out.
    refused.api(
        lambda: dev.post(f"/introductions/{second.json['id']}/consent", {"accept": True}), 409, "introduction_state"
    )
    assert [i["id"] for i in owner.get(f"/problems/{chain.id}/introductions").json] == [first.json["id"]]

    assert ann.post(f"/introductions/{first.json['id']}/withdraw").json["status"] == "withdrawn"
    # Withdrawing the owner frees the candidate; the old duplicate stays a duplicate.
    assert status_of(session, "introductions", second.json["id"]) == "duplicate"
    third = cleo.post(f"/problems/{chain.id}/introductions", {"candidate_user_id": world.dev.id, "message": MESSAGE})
    assert third.status_code == 201 and third.json["status"] == "awaiting_candidate"


@pytest.mark.parametrize("by", ["candidate_user_id", "candidate_email"])
def test_putting_yourself_forward_is_consent_and_goes_straight_to_proposed(by, chain, world, api, sent_mail):
    ann = api(world.ann)
    candidate = (
        {"candidate_user_id": world.ann.id} if by == "candidate_user_id" else {"candidate_email": "ann@example.com"}
    )
    asked_before = len(sent_mail.to("ann@example.com"))

    response = ann.post(f"/problems/{chain.id}/introductions", {**candidate, "message": MESSAGE})

    assert response.status_code == 201 and response.json["status"] == "proposed"
    assert response.json["candidate"]["user_id"] == world.ann.id  # consent given: the company sees who it is
    assert len(sent_mail.to("ann@example.com")) == asked_before  # nobody asks Ann to agree to herself
    assert [m["Subject"] for m in sent_mail.to(world.owner.email)][-1].startswith("Ann Li agreed to be introduced")


def test_a_member_who_puts_themselves_forward_is_paid_one_share_not_two(session, world, open_problem):
    """One share per person: Cleo, the finder and the candidate, keeps the finder's share; the
    candidate's thank-you goes back to the company with the remainder (docs/split-rules.md)."""
    problem = open_problem(candidate_share_bps=500)
    pick(session, world.cleo, problem)

    accept_self_introduction(session, world, problem, world.cleo)

    shares = session.execute(select(Share.role, Share.member_id, Share.amount).where(Share.problem_id == problem.id))
    assert [(role.value, member, amount) for role, member, amount in shares] == [("link", world.cleo.id, 85_000)]


def test_a_link_of_the_introducers_chain_cannot_be_their_candidate(session, world, open_problem, api, refused):
    problem = open_problem()
    pick(session, world.ann, problem)
    claim(session, world.bob, forward(session, world.ann, problem, to_user_id=world.bob.id))
    bob = api(world.bob)

    error = refused.api(
        lambda: bob.post(
            f"/problems/{problem.id}/introductions", {"candidate_user_id": world.ann.id, "message": MESSAGE}
        ),
        422,
        "candidate_in_chain",
    )
    assert "put themselves forward" in error["message"]


@pytest.mark.parametrize("by", ["to_user_id", "to_email"])
def test_a_problem_already_sent_to_someone_cannot_be_sent_to_them_again(by, session, world, open_problem, api, refused):
    """The first sender's referral stands: a second would race it for the same place."""
    problem = open_problem()
    pick(session, world.ann, problem)
    pick(session, world.cleo, problem)
    forward(session, world.ann, problem, to_user_id=world.dev.id)
    recipient = {"to_user_id": world.dev.id} if by == "to_user_id" else {"to_email": "dev@example.com"}

    for sender in (api(world.ann), api(world.cleo)):
        error = refused.api(
            lambda sender=sender: sender.post(f"/problems/{problem.id}/referrals", recipient), 409, "already_sent"
        )
        assert "already been sent this problem" in error["message"]


@pytest.fixture
def awaiting(session, chain, world):
    """Ann's introduction of Dev, waiting for Dev's consent."""
    return introduce(session, world.ann, chain, candidate_email="dev@example.com")


@pytest.fixture
def proposed(session, awaiting, world):
    """Ann's introduction of Dev, consented: the company can decide."""
    introductions.consent(session, awaiting, world.dev, accept=True)
    session.commit()
    return awaiting


def test_only_the_candidate_can_consent(awaiting, world, api, refused):
    """The introducer and the company are refused; anyone else does not even see the introduction."""
    ann, owner, bob = api(world.ann), api(world.owner), api(world.bob)
    url = f"/introductions/{awaiting.id}/consent"

    refused.api(lambda: ann.post(url, {"accept": True}), 403, "forbidden")
    refused.api(lambda: owner.post(url, {"accept": True}), 403, "forbidden")
    refused.api(lambda: bob.post(url, {"accept": True}), 404, "not_found")


def test_the_expert_is_heard_and_hears_back(session, awaiting, world, api, browser, sent_mail):
    """Dev's note to the company is on the company's page; Dev is told the company's answer."""
    dev, owner = api(world.dev), api(world.owner)
    note = "I can start on Monday; evenings work best."
    assert dev.post(f"/introductions/{awaiting.id}/consent", {"accept": True, "note": note}).status_code == 200

    page = browser()
    page.login(world.owner.email)
    assert "I can start on Monday; evenings work best." in page.get(f"/problems/{awaiting.problem_id}").text

    assert owner.post(f"/introductions/{awaiting.id}/decline", {"note": "We hired in-house."}).status_code == 200
    [answer] = [m for m in sent_mail.to("dev@example.com") if "went another way" in m["Subject"]]
    assert "nothing more is shared about you" in answer.get_body(("plain",)).get_content()


@pytest.mark.parametrize("second_answer", [True, False], ids=["agree-again", "then-decline"])
def test_the_candidate_answers_only_once(second_answer, session, awaiting, world, api, refused):
    dev = api(world.dev)
    assert dev.post(f"/introductions/{awaiting.id}/consent", {"accept": True}).json["status"] == "proposed"

    refused.api(
        lambda: dev.post(f"/introductions/{awaiting.id}/consent", {"accept": second_answer}), 409, "introduction_state"
    )
    assert status_of(session, "introductions", awaiting.id) == "proposed"


def test_only_the_owner_or_an_admin_can_accept(proposed, world, api, refused):
    """An employee and a member of the chain (who may see the introduction) are told who decides;
    someone who may not see it is told nothing exists."""
    employee, ann, otto = api(world.employee), api(world.ann), api(world.outsider)

    refused.api(lambda: employee.post(f"/introductions/{proposed.id}/accept"), 403, "forbidden")
    refused.api(lambda: ann.post(f"/introductions/{proposed.id}/accept"), 403, "forbidden")
    refused.api(lambda: otto.post(f"/introductions/{proposed.id}/accept"), 404, "not_found")


def test_an_introduction_awaiting_the_candidate_cannot_be_accepted(awaiting, world, api, refused):
    owner = api(world.owner)
    refused.api(lambda: owner.post(f"/introductions/{awaiting.id}/accept"), 409, "introduction_state")


def test_an_introduction_is_accepted_only_once(session, proposed, world, api, refused):
    owner, admin = api(world.owner), api(world.admin)
    assert owner.post(f"/introductions/{proposed.id}/accept").status_code == 200

    refused.api(lambda: admin.post(f"/introductions/{proposed.id}/accept"), 409, "introduction_state")
    assert status_of(session, "introductions", proposed.id) == "accepted"


def test_a_declined_introduction_cannot_be_accepted(session, proposed, world, api, refused):
    owner = api(world.owner)
    assert owner.post(f"/introductions/{proposed.id}/decline", {"note": "Not the right fit"}).status_code == 200

    refused.api(lambda: owner.post(f"/introductions/{proposed.id}/accept"), 409, "introduction_state")
    assert status_of(session, "introductions", proposed.id) == "declined"


def test_only_the_introducer_can_withdraw(proposed, world, api, refused):
    dev, owner = api(world.dev), api(world.owner)

    refused.api(lambda: dev.post(f"/introductions/{proposed.id}/withdraw"), 403, "forbidden")
    refused.api(lambda: owner.post(f"/introductions/{proposed.id}/withdraw"), 403, "forbidden")


def test_an_accepted_introduction_cannot_be_withdrawn(session, proposed, world, refused):
    settlement_workflow.accept_introduction(session, world.owner, proposed.id)
    session.commit()
    refused.service(
        lambda: introductions.withdraw(session, world.ann, proposed.id),
        introductions.IntroductionError,
        "introduction_state",
    )
    assert status_of(session, "introductions", proposed.id) == "accepted"


def test_after_an_acceptance_the_problem_takes_no_more_referrals_or_introductions(
    session, chain, world, api, refused, awaiting
):
    """Ann's introduction is accepted; Cleo's pending one, new links and new introductions are all closed."""
    cleo_intro = introduce(session, world.cleo, chain, candidate_user_id=world.cleo.id)  # proposed
    accept_self_introduction(session, world, chain, world.ann)
    assert status_of(session, "problems", chain.id) == "in_guarantee"
    ann, cleo, bob, dev, owner = (api(u) for u in (world.ann, world.cleo, world.bob, world.dev, world.owner))
    pid = chain.id

    body = {"candidate_email": "expert@elsewhere.example", "message": MESSAGE}
    refused.api(lambda: cleo.post(f"/problems/{pid}/introductions", body), 409, "referral_rule")
    refused.api(lambda: ann.post(f"/problems/{pid}/referrals", {"to_user_id": world.bob.id}), 409, "referral_rule")
    refused.api(lambda: bob.post(f"/problems/{pid}/pick"), 409, "referral_rule")
    refused.api(lambda: dev.post(f"/introductions/{awaiting.id}/consent", {"accept": True}), 409, "referral_rule")
    # Exactly one introduction per problem is accepted.
    refused.api(lambda: owner.post(f"/introductions/{cleo_intro.id}/accept"), 409, "problem_state")


# Chain hashes and `flask referrals verify` -----------------------------------------------------


@pytest.fixture
def three_links(session, world, open_problem):
    """Ann (root) → Bob → Cleo, all claimed, and a pending e-mail link from Cleo."""
    problem = open_problem()
    root = pick(session, world.ann, problem)
    to_bob = claim(session, world.bob, forward(session, world.ann, problem, to_user_id=world.bob.id))
    to_cleo = claim(session, world.cleo, forward(session, world.bob, problem, to_email="cleo@example.com"))
    pending = forward(session, world.cleo, problem, to_email="newcomer@elsewhere.example")
    return [root, to_bob, to_cleo, pending]


def test_each_chain_hash_covers_the_parents_hash(session, three_links):
    root, *below = three_links
    assert root.chain_hash == compute_chain_hash(root, "")
    for parent, child in zip(three_links, below, strict=False):
        assert child.parent_id == parent.id
        assert child.chain_hash == compute_chain_hash(child, parent.chain_hash)
        assert child.chain_hash != compute_chain_hash(child, "0" * 64), "the parent's hash must change the child's"
    assert chains.verify_chains(session) == []


def test_verify_passes_on_untouched_chains(three_links, runner):
    result = runner.invoke(args=["referrals", "verify"])
    assert result.exit_code == 0, result.output
    assert "all referral chains verify" in result.output


@pytest.mark.parametrize("column", ["recipient_email", "sender_id"])
def test_verify_exits_1_and_names_a_referral_rewritten_behind_its_back(column, session, world, three_links, runner):
    """Redirect the pending e-mail link to another address, or re-attribute Ann's referral to Bob."""
    victim, value = {
        "recipient_email": (three_links[3], "mallory@elsewhere.example"),
        "sender_id": (three_links[1], world.outsider.id),
    }[column]
    referral_id, problem_id = victim.id, victim.problem_id
    session.execute(text(f"UPDATE referrals SET {column} = :value WHERE id = :id"), {"value": value, "id": referral_id})
    session.commit()

    result = runner.invoke(args=["referrals", "verify"])

    assert result.exit_code == 1, result.output
    named = [line for line in result.output.splitlines() if line.startswith("referral ")]
    assert f"referral {referral_id} (problem {problem_id}): chain hash does not match its fields" in named
    assert all(line.startswith(f"referral {referral_id} (problem {problem_id}): ") for line in named)
