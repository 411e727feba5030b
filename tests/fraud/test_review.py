"""A settled chain that raises fraud signals is held, and a platform admin clears or upholds it."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.audit.models import AuditEntry
from marketplace.db import utcnow
from marketplace.errors import Forbidden
from marketplace.fraud import service as fraud
from marketplace.fraud.models import FraudFlag, FraudFlagStatus
from marketplace.ledger.models import LedgerTransaction, Share, ShareStatus, TransactionKind
from marketplace.notifications.models import Notification
from marketplace.problems.models import ProblemStatus
from marketplace.referrals.models import Referral
from marketplace.workflows.disputes import freeze_for_chargeback
from marketplace.workflows.settlement import accept_introduction, release_due
from tests import builders as build


@pytest.fixture
def platform_admin(session, make_user):
    admin = make_user("Pat Platform", "pat@marketplace.example")
    admin.is_platform_admin = True
    session.commit()
    return admin


def look_ordinary(session, problem, members):
    """Accounts made days apart and links passed on an hour after each claim: no signal."""
    for days, member in enumerate(members, start=1):
        session.execute(update(User).where(User.id == member.id).values(created_at=utcnow() - timedelta(days=days)))
    for referral in session.scalars(select(Referral).where(Referral.problem_id == problem.id)):
        if referral.claimed_at is not None:
            referral.claimed_at -= timedelta(hours=1)
    session.commit()


def settle(session, world, problem, links, candidate, *, ordinary: bool = True):
    introduction = build.introduction(session, problem, links, candidate)
    if ordinary:
        look_ordinary(session, problem, [*links, candidate])
    accept_introduction(session, world.owner, introduction.id)
    session.commit()
    return introduction


def share_statuses(session, problem) -> set[ShareStatus]:
    return set(session.scalars(select(Share.status).where(Share.problem_id == problem.id)))


def actions(session, problem) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action).where(AuditEntry.problem_id == problem.id, AuditEntry.action.like("fraud.%"))
        )
    )


def test_an_ordinary_chain_is_not_flagged(session, world, open_problem):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev)
    assert session.scalars(select(FraudFlag)).all() == []
    assert problem.status == ProblemStatus.IN_GUARANTEE


def test_accounts_made_together_and_scripted_forwards_are_flagged_and_held(
    session, world, open_problem, platform_admin
):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    flag = session.scalars(select(FraudFlag)).one()
    assert {e["signal"] for e in flag.evidence} == {"account_run", "quick_forwards"}
    assert (flag.status, problem.status) == (FraudFlagStatus.OPEN, ProblemStatus.DISPUTED)
    assert release_due(session, now=utcnow() + timedelta(days=30)) == []
    assert share_statuses(session, problem) == {ShareStatus.HELD}
    assert actions(session, problem) == ["fraud.flag_raised"]
    alert = session.scalars(select(Notification).where(Notification.user_id == platform_admin.id)).one()
    assert alert.link == "/admin/fraud" and f"problem {problem.id}" in alert.body


def test_one_mailbox_twice_on_a_chain_is_flagged(session, world, open_problem, make_user):
    ann_again = make_user("Annie Other", "ann.li+work@gmail.com")
    ann_gmail = make_user("Ann Gmail", "annli@googlemail.com")
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [ann_gmail, world.bob, ann_again], world.dev)
    flag = session.scalars(select(FraudFlag)).one()
    assert [e["signal"] for e in flag.evidence] == ["shared_mailbox"]


def test_cleared_after_the_guarantee_the_shares_are_released(session, world, open_problem, platform_admin):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    flag = session.scalars(select(FraudFlag)).one()
    fraud.clear(session, platform_admin, flag.id, note="Colleagues, checked.", now=utcnow() + timedelta(days=8))
    session.commit()
    assert (flag.status, flag.decided_by_id, flag.note) == (
        FraudFlagStatus.CLEARED,
        platform_admin.id,
        "Colleagues, checked.",
    )
    assert problem.status == ProblemStatus.SETTLED
    assert share_statuses(session, problem) == {ShareStatus.AVAILABLE}
    assert actions(session, problem) == ["fraud.flag_raised", "fraud.flag_cleared"]


def test_cleared_within_the_guarantee_the_release_job_releases_later(session, world, open_problem, platform_admin):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    fraud.clear(session, platform_admin, session.scalars(select(FraudFlag.id)).one())
    session.commit()
    assert problem.status == ProblemStatus.IN_GUARANTEE
    assert share_statuses(session, problem) == {ShareStatus.HELD}
    assert release_due(session, now=utcnow() + timedelta(days=8)) == [problem.id]
    assert share_statuses(session, problem) == {ShareStatus.AVAILABLE}


def test_upheld_the_shares_are_clawed_back_and_the_company_refunded(
    session, world, open_problem, platform_admin, runner
):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    fraud.uphold(session, platform_admin, session.scalars(select(FraudFlag.id)).one(), note="One person.")
    session.commit()
    assert share_statuses(session, problem) == {ShareStatus.CLAWED_BACK}
    kinds = set(session.scalars(select(LedgerTransaction.kind).where(LedgerTransaction.problem_id == problem.id)))
    assert {TransactionKind.CLAWBACK, TransactionKind.REFUND} <= kinds
    assert actions(session, problem) == ["fraud.flag_raised", "fraud.flag_upheld"]
    assert runner.invoke(args=["ledger", "verify"]).output == "the ledger verifies\n"


def test_only_a_platform_admin_reviews(session, world, open_problem, browser):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    flag_id = session.scalars(select(FraudFlag.id)).one()
    with pytest.raises(Forbidden):
        fraud.uphold(session, world.owner, flag_id)
    session.rollback()
    with pytest.raises(Forbidden):
        fraud.flags_for_admin(session, world.owner)
    owner = build.logged_in(browser, world.owner)
    assert owner.get("/admin/fraud").status_code == 403
    refused = owner.submit("/problems", {"note": "Mine."}, action=f"/admin/fraud/{flag_id}/clear", follow=False)
    assert refused.status_code == 403


def test_the_review_page_lists_the_evidence_and_clears(session, world, open_problem, platform_admin, browser):
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    flag_id = session.scalars(select(FraudFlag.id)).one()
    admin = build.logged_in(browser, platform_admin)
    page = admin.get("/admin/fraud")
    assert page.status_code == 200 and "account_run" in page.text and "quick_forwards" in page.text
    done = admin.submit("/admin/fraud", {"note": "Checked by phone."}, action=f"/admin/fraud/{flag_id}/clear")
    assert done.status_code == 200 and "Cleared" in done.text
    session.expire_all()
    assert session.get(FraudFlag, flag_id).status == FraudFlagStatus.CLEARED


def test_members_who_signed_up_from_one_address_are_flagged(session, world, open_problem, browser):
    """The sign-up address comes from the audit log, as the web layer recorded it."""
    for name, email in (("Sam Signup", "sam@example.net"), ("Sue Signup", "sue@example.net")):
        assert browser().signup(name, email).status_code == 200
    sam, sue = (
        session.scalars(select(User).where(User.email == e)).one() for e in ("sam@example.net", "sue@example.net")
    )
    for member in (sam, sue):
        accounts.mark_email_verified(session, member)
    session.commit()
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [sam, world.bob, sue], world.dev)
    flag = session.scalars(select(FraudFlag)).one()
    assert [e["signal"] for e in flag.evidence] == ["same_signup_ip"]


def test_a_chargeback_during_the_review_keeps_the_money_held_after_a_clear(
    session, world, open_problem, platform_admin
):
    """The bank's dispute is recorded beside the review: clearing the review releases nothing
    while it is open, and upholding the review waits for it to be decided."""
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev, ordinary=False)
    assert freeze_for_chargeback(session, problem, stripe_dispute_id="dp_1", reason="fraudulent") == "frozen"
    session.commit()
    flag_id = session.scalars(select(FraudFlag.id)).one()

    with pytest.raises(fraud.FraudReviewError, match="decide it on the disputes page"):
        fraud.uphold(session, platform_admin, flag_id)
    session.rollback()
    fraud.clear(session, platform_admin, flag_id, now=utcnow() + timedelta(days=8))
    session.commit()

    assert problem.status == ProblemStatus.DISPUTED
    assert share_statuses(session, problem) == {ShareStatus.HELD}
    assert release_due(session, now=utcnow() + timedelta(days=8)) == []
