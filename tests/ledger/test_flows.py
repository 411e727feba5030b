"""A problem's money from funding to the end, line by line: settlement along a chain, the
guarantee period and its release, disputes, refunds on expiry and cancellation, payouts and
paying it forward. Every test ends with ``flask ledger verify``'s checks passing."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from marketplace.db import utcnow
from marketplace.errors import Forbidden
from marketplace.jobs.models import Job
from marketplace.ledger import donations as ledger_donations
from marketplace.ledger import payouts as ledger_payouts
from marketplace.ledger import posting as ledger_posting
from marketplace.ledger.accounts import member_account
from marketplace.ledger.disputes import DisputeError
from marketplace.ledger.models import Share, ShareRole, ShareStatus
from marketplace.ledger.payouts import ShareError
from marketplace.ledger.posting import balance
from marketplace.ledger.settlement import FundingError, record_funding
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import attribution, chains, introductions
from marketplace.workflows import disputes as dispute_workflow
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow
from marketplace.workflows.funding import complete_refund
from marketplace.workflows.settlement import release_due
from tests import builders as build
from tests.ledger.support import assert_ledger_sound, lines_of


def held(session, user, currency="usd"):
    return balance(session, member_account(user.id, "held"), currency)


def available(session, user, currency="usd"):
    return balance(session, member_account(user.id, "available"), currency)


def status_of(session, problem) -> ProblemStatus:
    status = session.scalar(select(Problem.status).where(Problem.id == problem.id))
    session.commit()
    return status


def job(session, key) -> Job | None:
    return session.scalar(select(Job).where(Job.idempotency_key == key))


@pytest.fixture
def settled(session, world, open_problem):
    """A $1,000 problem (5% thank-you to the expert) accepted along Ann → Bob → Cleo, who
    introduced Dev."""

    def make(**overrides):
        problem = open_problem(candidate_share_bps=500, **overrides)
        return problem, build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo], world.dev)

    return make


@pytest.fixture
def platform_admin(session, make_user):
    admin = make_user("Pat Platform", "pat@marketplace.example")
    admin.is_platform_admin = True
    session.commit()
    return admin


# Funding ---------------------------------------------------------------------------------------


def test_funding_puts_exactly_the_bounty_in_escrow(session, open_problem):
    problem = open_problem(bounty_amount=250_000)
    assert lines_of(session, f"fund:problem:{problem.id}") == [
        (f"escrow:problem:{problem.id}", 250_000),
        ("stripe:balance", -250_000),
    ]
    with pytest.raises(FundingError):
        record_funding(session, problem, amount=240_000, currency="usd", reference="pi_other")
    session.rollback()
    assert_ledger_sound(session)


def test_the_webhook_can_fund_with_the_paid_amount_and_its_reference(session, world):
    from tests.conftest import problem_input

    problem = problems.create_problem(
        session, world.owner, world.company.id, problem_input(), publish=True, platform_fee_bps=1000
    )
    session.commit()
    with pytest.raises(FundingError):
        funding.fund_problem(session, problem.id, amount=99_999, currency="usd", reference="pi_short")
    session.rollback()
    funding.fund_problem(session, problem.id, amount=100_000, currency="usd", reference="pi_123")
    session.commit()
    assert ledger_posting.transaction_by_key(session, f"fund:problem:{problem.id}").reference == "pi_123"


# Settlement ------------------------------------------------------------------------------------


def test_a_chain_of_three_is_settled_to_the_cent(session, world, open_problem, api):
    """$1,000, 10% fee, 5% to the expert, flat fee rule (5% of the pool per hop, finder the rest):
    pool $850, Ann and Bob $42.50 each, Cleo $765."""
    problem = open_problem(candidate_share_bps=500)
    introduction = build.introduction(session, problem, [world.ann, world.bob, world.cleo], world.dev)
    owner = api(world.owner)

    accepted = owner.post(f"/introductions/{introduction.id}/accept")

    assert accepted.status_code == 200, accepted.json
    assert accepted.json["status"] == "accepted"
    settled = dict(accepted.json["settlement"])
    assert settled.pop("chain_head") == attribution.head(session, problem.id)  # What the records say was paid.
    assert settled == {
        "currency": "usd",
        "shares": [
            {"user_id": world.ann.id, "position": 1, "amount": 4_250},
            {"user_id": world.bob.id, "position": 2, "amount": 4_250},
            {"user_id": world.cleo.id, "position": 3, "amount": 76_500},
        ],
        "platform_fee": 10_000,
        "candidate_share": 5_000,
        "remainder": 0,
    }
    assert lines_of(session, f"settle:problem:{problem.id}") == sorted(
        [
            (f"escrow:problem:{problem.id}", -100_000),
            (member_account(world.ann.id, "held"), 4_250),
            (member_account(world.bob.id, "held"), 4_250),
            (member_account(world.cleo.id, "held"), 76_500),
            (member_account(world.dev.id, "held"), 5_000),
            ("platform:fees", 10_000),
        ]
    )
    shares = session.scalars(select(Share).where(Share.problem_id == problem.id).order_by(Share.id)).all()
    assert [(s.member_id, s.role, s.position, s.amount, s.status) for s in shares] == [
        (world.ann.id, ShareRole.LINK, 1, 4_250, ShareStatus.HELD),
        (world.bob.id, ShareRole.LINK, 2, 4_250, ShareStatus.HELD),
        (world.cleo.id, ShareRole.LINK, 3, 76_500, ShareStatus.HELD),
        (world.dev.id, ShareRole.CANDIDATE, None, 5_000, ShareStatus.HELD),
    ]
    assert status_of(session, problem) == ProblemStatus.IN_GUARANTEE
    assert ledger_posting.transaction_by_key(session, f"refund:problem:{problem.id}:remainder") is None
    session.commit()

    again = owner.post(f"/introductions/{introduction.id}/accept")
    assert again.status_code == 409
    assert len(session.scalars(select(Share).where(Share.problem_id == problem.id)).all()) == 4
    assert_ledger_sound(session)


def test_what_a_rule_does_not_pay_out_is_refunded_with_a_stripe_refund_job(session, world, open_problem):
    """Halving for a chain of 3 pays P/2 + P/4 + P/8 of the $900 pool; $112.50 goes back."""
    problem = open_problem(split_rule="halving")
    introduction = build.introduction(session, problem, [world.ann, world.bob, world.cleo])
    result = settlement_workflow.accept_introduction(session, world.owner, introduction.id)
    session.commit()

    assert [line.amount for line in result.settlement.shares] == [11_250, 22_500, 45_000]
    assert result.settlement.remainder == 11_250
    key = f"refund:problem:{problem.id}:remainder"
    company = world.company.id
    assert lines_of(session, key) == [
        (f"company:{company}:refund_pending", 11_250),
        (f"escrow:problem:{problem.id}", -11_250),
    ]
    refund_job = job(session, key)
    assert refund_job.kind == "stripe.refund"
    assert refund_job.payload == {
        "problem_id": problem.id, "company_id": company, "amount": 11_250, "currency": "usd",
        "stripe_key": refund_job.payload["stripe_key"],  # Drawn once for this refund (tests/payments).
    }  # fmt: skip
    assert_ledger_sound(session)

    complete_refund(session, key, reference="re_1")
    session.commit()
    assert balance(session, f"company:{company}:refunded", "usd") == 11_250
    assert status_of(session, problem) == ProblemStatus.IN_GUARANTEE  # A partial refund closes nothing.
    assert_ledger_sound(session)


def test_a_thank_you_for_a_candidate_without_an_account_goes_back_to_the_company(session, world, open_problem):
    problem = open_problem(candidate_share_bps=500)
    chains.pick_from_board(session, world.ann, problem.id)
    introduction = introductions.introduce(
        session, world.ann, problem.id, candidate_email="expert@elsewhere.example", message="Knows this well."
    )
    introductions.consent(session, introduction, None, accept=True)
    result = settlement_workflow.accept_introduction(session, world.owner, introduction.id)
    session.commit()
    assert (result.settlement.candidate_share, result.settlement.remainder) == (0, 5_000)
    assert result.settlement.as_dict()["shares"] == [{"user_id": world.ann.id, "position": 1, "amount": 85_000}]
    assert_ledger_sound(session)


# The guarantee period --------------------------------------------------------------------------


def test_with_no_guarantee_period_shares_are_released_at_acceptance(session, world, settled):
    problem, _ = settled(guarantee_days=0)
    assert status_of(session, problem) == ProblemStatus.SETTLED
    assert lines_of(session, f"release:problem:{problem.id}") == sorted(
        [
            (member_account(world.ann.id, "held"), -4_250),
            (member_account(world.ann.id, "available"), 4_250),
            (member_account(world.bob.id, "held"), -4_250),
            (member_account(world.bob.id, "available"), 4_250),
            (member_account(world.cleo.id, "held"), -76_500),
            (member_account(world.cleo.id, "available"), 76_500),
            (member_account(world.dev.id, "held"), -5_000),
            (member_account(world.dev.id, "available"), 5_000),
        ]
    )
    assert (held(session, world.cleo), available(session, world.cleo)) == (0, 76_500)
    assert_ledger_sound(session)


def test_the_release_job_waits_for_the_end_of_the_guarantee_period(session, world, settled):
    problem, _ = settled(guarantee_days=7)
    accepted_at = session.get(Problem, problem.id).closed_at

    assert release_due(session, now=accepted_at + timedelta(days=7) - timedelta(seconds=1)) == []
    assert held(session, world.cleo) == 76_500
    assert release_due(session, now=accepted_at + timedelta(days=7)) == [problem.id]
    session.commit()
    assert status_of(session, problem) == ProblemStatus.SETTLED
    assert (held(session, world.cleo), available(session, world.cleo)) == (0, 76_500)
    assert release_due(session, now=accepted_at + timedelta(days=30)) == []
    assert_ledger_sound(session)


@pytest.mark.parametrize("command", [["ledger", "release"], ["worker", "--once"]], ids=["ledger-release", "worker"])
def test_the_release_command_and_the_worker_release_due_shares(session, world, settled, runner, command):
    due, _ = settled(guarantee_days=7)
    session.execute(update(Problem).where(Problem.id == due.id).values(closed_at=utcnow() - timedelta(days=8)))
    session.commit()

    result = runner.invoke(args=command)

    assert result.exit_code == 0, result.output
    assert status_of(session, due) == ProblemStatus.SETTLED
    assert available(session, world.cleo) == 76_500


# Disputes --------------------------------------------------------------------------------------


def test_an_upheld_dispute_claws_back_every_share_and_refunds_the_company(session, world, settled, api, platform_admin):
    problem, _ = settled(guarantee_days=30)
    company = world.company.id
    reason = {"reason": "Dev never showed up for the kick-off."}
    assert api(world.employee).post(f"/problems/{problem.id}/disputes", reason).status_code == 403
    opened = api(world.admin).post(f"/problems/{problem.id}/disputes", reason)
    assert opened.status_code == 201, opened.json
    assert opened.json["problem_status"] == "disputed"
    assert api(world.owner).post(f"/problems/{problem.id}/disputes", reason).status_code == 409

    # Frozen: the guarantee period ends, and nothing is released.
    assert release_due(session, now=utcnow() + timedelta(days=31)) == []
    assert held(session, world.cleo) == 76_500

    assert api(world.owner).post(f"/disputes/{opened.json['id']}/uphold").status_code == 403
    upheld = api(platform_admin).post(f"/disputes/{opened.json['id']}/uphold", {"note": "No-show confirmed."})
    assert upheld.status_code == 200, upheld.json
    assert upheld.json["status"] == "upheld"

    assert lines_of(session, f"clawback:problem:{problem.id}") == sorted(
        [
            (f"escrow:problem:{problem.id}", 100_000),
            (member_account(world.ann.id, "held"), -4_250),
            (member_account(world.bob.id, "held"), -4_250),
            (member_account(world.cleo.id, "held"), -76_500),
            (member_account(world.dev.id, "held"), -5_000),
            ("platform:fees", -10_000),
        ]
    )
    key = f"refund:problem:{problem.id}"
    assert lines_of(session, key) == [
        (f"company:{company}:refund_pending", 100_000),
        (f"escrow:problem:{problem.id}", -100_000),
    ]
    assert job(session, key).payload["amount"] == 100_000
    shares = session.scalars(select(Share.status).where(Share.problem_id == problem.id)).all()
    assert set(shares) == {ShareStatus.CLAWED_BACK}
    assert status_of(session, problem) == ProblemStatus.DISPUTED
    assert api(platform_admin).post(f"/disputes/{opened.json['id']}/reject").status_code == 409
    assert_ledger_sound(session)

    complete_refund(session, key, reference="re_9")
    session.commit()
    assert status_of(session, problem) == ProblemStatus.REFUNDED
    assert balance(session, f"company:{company}:refunded", "usd") == 100_000
    assert balance(session, "platform:fees", "usd") == 0
    assert_ledger_sound(session)


def test_a_rejected_dispute_releases_the_shares_and_settles(session, world, settled, platform_admin):
    problem, _ = settled(guarantee_days=30)
    dispute = dispute_workflow.open_dispute(
        session, world.owner, problem.id, reason="The expert was not senior enough."
    )
    session.commit()
    with pytest.raises(Forbidden):
        dispute_workflow.decide(session, world.owner, dispute.id, "reject")
    dispute_workflow.decide(session, platform_admin, dispute.id, "reject", note="The introduction was sound.")
    session.commit()
    assert status_of(session, problem) == ProblemStatus.SETTLED
    assert (held(session, world.cleo), available(session, world.cleo)) == (0, 76_500)
    assert balance(session, "platform:fees", "usd") == 10_000
    assert_ledger_sound(session)


def test_no_dispute_after_the_guarantee_period_or_before_acceptance(session, world, settled, open_problem):
    problem, _ = settled(guarantee_days=7)
    late = session.get(Problem, problem.id).closed_at + timedelta(days=7)
    with pytest.raises(DisputeError, match="guarantee period ended"):
        dispute_workflow.open_dispute(session, world.owner, problem.id, reason="It failed after all.", now=late)
    session.rollback()
    with pytest.raises(problems.ProblemError):
        dispute_workflow.open_dispute(
            session, world.owner, open_problem(title="Still open problem").id, reason="Nothing yet."
        )
    session.rollback()


# Refunds when a problem closes unmatched -------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "expire"])
def test_a_funded_problem_that_closes_unmatched_is_refunded_in_full(session, world, open_problem, how, runner):
    problem = open_problem()
    company = world.company.id
    if how == "cancel":
        funding.cancel_problem(session, world.owner, problem.id)
        closed = ProblemStatus.CANCELLED
    else:
        assert funding.expire_due(session, now=utcnow() + timedelta(days=31)) == [problem.id]
        closed = ProblemStatus.EXPIRED
    session.commit()

    key = f"refund:problem:{problem.id}"
    assert lines_of(session, key) == [
        (f"company:{company}:refund_pending", 100_000),
        (f"escrow:problem:{problem.id}", -100_000),
    ]
    refund_job = job(session, key)
    assert (refund_job.kind, refund_job.status.value) == ("stripe.refund", "pending")
    assert refund_job.payload == {
        "problem_id": problem.id, "company_id": company, "amount": 100_000, "currency": "usd",
        "stripe_key": refund_job.payload["stripe_key"],  # Drawn once for this refund (tests/payments).
    }  # fmt: skip
    assert status_of(session, problem) == closed
    assert_ledger_sound(session)

    complete_refund(session, key, reference="re_1")
    complete_refund(session, key, reference="re_1")  # The webhook may come twice.
    session.commit()
    assert status_of(session, problem) == ProblemStatus.REFUNDED
    assert balance(session, f"company:{company}:refund_pending", "usd") == 0
    assert balance(session, f"company:{company}:refunded", "usd") == 100_000
    session.commit()
    assert runner.invoke(args=["ledger", "verify"]).output == "the ledger verifies\n"


def test_an_unfunded_problem_closes_without_a_refund(session, world):
    from tests.conftest import problem_input

    problem = problems.create_problem(
        session, world.owner, world.company.id, problem_input(), publish=True, platform_fee_bps=1000
    )
    funding.cancel_problem(session, world.owner, problem.id)
    session.commit()
    assert ledger_posting.transaction_by_key(session, f"refund:problem:{problem.id}") is None
    assert status_of(session, problem) == ProblemStatus.CANCELLED
    assert_ledger_sound(session)


# Payouts (called by the Stripe work) -----------------------------------------------------------


def test_a_share_is_paid_out_once_and_a_refused_transfer_is_retried_after_a_change_under_a_new_key(
    session, world, settled
):
    settled(guarantee_days=0)
    share = session.scalar(select(Share).where(Share.member_id == world.cleo.id))

    ledger_payouts.start_payout(session, share)
    session.commit()
    first = job(session, f"payout:share:{share.id}:1")
    assert first.kind == "stripe.transfer" and first.payload["amount"] == 76_500
    assert balance(session, member_account(world.cleo.id, "payout_pending"), "usd") == 76_500
    with pytest.raises(ShareError):
        ledger_payouts.start_payout(session, share)
    session.rollback()

    ledger_payouts.fail_payout(session, share, reason="account closed")
    session.commit()
    assert (available(session, world.cleo), share.status) == (76_500, ShareStatus.AVAILABLE)
    with pytest.raises(ShareError):  # A refused share waits for a change before it is sent again.
        ledger_payouts.start_payout(session, share)
    session.rollback()

    assert ledger_payouts.clear_refusals(session, member_id=world.cleo.id) == 1
    ledger_payouts.start_payout(session, share)
    session.commit()
    assert job(session, f"payout:share:{share.id}:2") is not None
    ledger_payouts.complete_payout(session, share, transfer_id="tr_2")
    ledger_payouts.complete_payout(session, share, transfer_id="tr_2")  # A replayed success changes nothing.
    session.commit()
    assert balance(session, member_account(world.cleo.id, "paid"), "usd") == 76_500
    with pytest.raises(ShareError):
        ledger_payouts.complete_payout(session, share, transfer_id="tr_3")
    session.rollback()
    assert_ledger_sound(session)


def test_a_processor_fee_is_borne_by_the_platform(session, settled):
    settled()
    ledger_payouts.record_processor_fee(session, amount=2_930, currency="usd", reference="txn_1")
    ledger_payouts.record_processor_fee(session, amount=2_930, currency="usd", reference="txn_1")
    session.commit()
    assert balance(session, "platform:fees", "usd") == 10_000 - 2_930
    assert balance(session, "processor:fees", "usd") == 2_930
    assert_ledger_sound(session)


# Pay it forward --------------------------------------------------------------------------------


def test_a_member_passes_part_of_an_available_share_on(session, world, settled, api):
    settled(guarantee_days=0)
    cleo = api(world.cleo)
    gift = {"to_user_id": world.ann.id, "amount": 10_000, "currency": "usd", "idempotency_key": "thanks-ann"}

    given = cleo.post("/me/donations", {**gift, "note": "You started the chain"})
    replayed = cleo.post("/me/donations", gift)
    changed = cleo.post("/me/donations", {**gift, "amount": 20_000})
    too_much = cleo.post("/me/donations", {**gift, "amount": 66_501, "idempotency_key": "all-of-it"})

    assert given.status_code == 201, given.json
    assert (replayed.status_code, replayed.json["transaction_id"]) == (200, given.json["transaction_id"])
    assert (changed.status_code, changed.json["error"]["code"]) == (409, "idempotency_conflict")
    assert (too_much.status_code, too_much.json["error"]["code"]) == (422, "insufficient_funds")
    assert available(session, world.cleo) == 66_500
    assert available(session, world.ann) == 14_250
    gave, _ = ledger_donations.giving_record(session, world.cleo.id)
    _, received = ledger_donations.giving_record(session, world.ann.id)
    assert [(g.giver.id, g.recipient.id, g.amount, g.transaction.memo) for g in gave + received] == [
        (world.cleo.id, world.ann.id, 10_000, "You started the chain")
    ] * 2
    # The gift is a share of Ann's, drawn from Cleo's, so it is paid out against the same charge.
    gift_share = session.scalar(select(Share).where(Share.role == ShareRole.GIFT))
    assert (gift_share.member_id, gift_share.amount, gift_share.source_share_id) == (
        world.ann.id,
        10_000,
        session.scalar(select(Share.id).where(Share.member_id == world.cleo.id)),
    )
    assert_ledger_sound(session)

    everything = cleo.post("/me/donations", {**gift, "amount": 66_500, "idempotency_key": "the-rest"})
    assert everything.status_code == 201
    assert session.scalar(select(Share.status).where(Share.member_id == world.cleo.id)) == ShareStatus.GIVEN
    assert_ledger_sound(session)


def test_held_money_cannot_be_given(session, world, settled, api):
    settled(guarantee_days=30)
    refused = api(world.cleo).post("/me/donations", {"to_user_id": world.ann.id, "amount": 1, "currency": "usd"})
    assert (refused.status_code, refused.json["error"]["code"]) == (422, "insufficient_funds")
    assert_ledger_sound(session)


def test_the_balance_api_shows_each_figure_and_the_transactions_behind_it(session, world, settled, api):
    settled(guarantee_days=0)
    ledger_payouts.start_payout(session, session.scalar(select(Share).where(Share.member_id == world.cleo.id)))
    session.commit()

    body = api(world.cleo).get("/me/balance").json

    figures = {"held": 0, "available": 0, "payout_pending": 76_500, "paid": 0}
    assert [{key: row[key] for key in ("currency", *figures)} for row in body["balances"]] == [
        {"currency": "usd", **figures}
    ]
    assert [(t["kind"], t["changes"]) for t in body["transactions"]] == [
        ("payout", {"available": -76_500, "payout_pending": 76_500}),
        ("release", {"held": -76_500, "available": 76_500}),
        ("settle", {"held": 76_500}),
    ]
    for figure in ("held", "available", "payout_pending", "paid"):
        assert sum(t["changes"].get(figure, 0) for t in body["transactions"]) == body["balances"][0][figure]
    assert api(world.outsider).get("/me/balance").json == {"balances": [], "transactions": []}
