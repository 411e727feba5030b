"""Rows in one line, for tests that are not about the rules of making them.

Each builder goes through the services (so the rows are the ones the app itself would make) and
commits, so that a request made next never waits on the test's own unit of work. Tests about the
rules of a step (who may pick, forward, introduce...) call the services themselves instead.
"""

from datetime import timedelta

from sqlalchemy import func, select

from marketplace.accounts import service as accounts
from marketplace.db import db, utcnow
from marketplace.network import service as network
from marketplace.network.models import RequestStatus
from marketplace.payments.models import CheckoutSession
from marketplace.problems import service as problems
from marketplace.problems.service import ProblemInput
from marketplace.referrals import chains, introductions
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow

PASSWORD = "correct-horse-battery"
INTRODUCTION_MESSAGE = "Knows exactly this problem."


def user(
    session, name: str, email: str | None = None, skills: str = "", password: str = PASSWORD, verified: bool = True
):
    """A member who confirmed their address (``verified=False``: one just signed up, whose link is
    on its way); the e-mail defaults to ``<first name>@example.com``."""
    member = accounts.register(
        session, email=email or f"{name.lower().split()[0]}@example.com", password=password, name=name
    )
    if verified:
        accounts.mark_email_verified(session, member)
    else:
        accounts.send_verification_link(session, member)
    if skills:
        accounts.update_profile(session, member, name=name, headline="", skills=skills, show_name_on_chains=True)
    session.commit()
    return member


def company(session, owner, name: str = "Acme Data", members: dict | None = None):
    """A company owned by ``owner``; ``members`` maps each other user to a role ("admin",
    "employee"), each invited by the owner and accepting."""
    created = accounts.create_company(session, owner, name=name)
    for member, role in (members or {}).items():
        _, token = accounts.invite(session, owner, created.id, email=member.email, role=role)
        accounts.accept_invitation(session, member, token)
    session.commit()
    return created


def problem_input(**overrides) -> ProblemInput:
    """A valid problem: $1,000 for PostgreSQL replication, expiring in 30 days."""
    values = dict(
        title="Fix our Postgres replication lag",
        description="Our replicas fall minutes behind at peak; we need someone who has fixed this before.",
        skills=["postgres"],
        bounty_amount=100_000,
        currency="usd",
        expires_at=utcnow() + timedelta(days=30),
    )
    values.update(overrides)
    return ProblemInput(**values)


def problem(session, owner, company_id: int, state: str = "open", **overrides):
    """A problem of the company in ``state``: "draft", "published" (awaiting payment) or "open"
    (published and funded, the same funding call the webhook makes)."""
    if state not in ("draft", "published", "open"):
        raise ValueError(f"no builder for a {state} problem")
    made = problems.create_problem(
        session, owner, company_id, problem_input(**overrides), publish=state != "draft", platform_fee_bps=1000
    )
    if state == "open":
        funding.fund_problem(session, made.id)
    session.commit()
    return made


def paid_at_stripe(session, problem) -> CheckoutSession:
    """What paying the problem's bounty through Checkout leaves behind once ``record_charge`` ran:
    the completed attempt with its charge and the charge's receipt at Stripe."""
    checkout = CheckoutSession(
        problem_id=problem.id, attempt=1, stripe_id=f"cs_test_{problem.id}", status="complete",
        payment_intent_id=f"pi_test_{problem.id}", charge_id=f"ch_test_{problem.id}",
        receipt_url=f"https://pay.stripe.com/receipts/payment/test_{problem.id}",
        amount=problem.bounty_amount, currency=problem.currency, completed_at=utcnow(),
    )  # fmt: skip
    session.add(checkout)
    session.commit()
    return checkout


def chain(session, problem, members) -> list:
    """A referral chain of ``len(members)`` links: ``members[0]`` picks the problem from the board
    and each forwards it to the next, who claims it. The referrals, root first."""
    links = [chains.pick_from_board(session, members[0], problem.id)]
    for sender, recipient in zip(members, members[1:], strict=False):
        sent = chains.forward(session, sender, problem.id, to_user_id=recipient.id)
        links.append(chains.claim(session, recipient, sent.token))
    session.commit()
    return links


def introduction(session, problem, members, candidate=None, message: str = INTRODUCTION_MESSAGE):
    """A chain through ``members`` whose last member introduces ``candidate`` (or themselves), with
    the candidate's consent: a proposed introduction the company can accept."""
    chain(session, problem, members)
    finder = members[-1]
    candidate = candidate or finder
    made = introductions.introduce(session, finder, problem.id, candidate_user_id=candidate.id, message=message)
    if candidate is not finder:
        introductions.consent(session, made, candidate, accept=True)
    session.commit()
    return made


def accepted(session, owner, problem, members, candidate=None):
    """``introduction(...)`` accepted by ``owner``: the problem is settled along the chain. The
    settlement result."""
    result = settlement_workflow.accept_introduction(
        session, owner, introduction(session, problem, members, candidate).id
    )
    session.commit()
    return result


def connection(session, a, b, note: str = "We worked together") -> None:
    """A connection made the way members make it: asked, then confirmed."""
    request = network.request_connection(session, a, user_id=b.id, note=note)
    if request.status != RequestStatus.CONFIRMED:
        network.answer_request(session, b, request.id, "confirm")
    session.commit()


def logged_in(browser, user, password: str = PASSWORD):
    """A fresh browser logged in as ``user``."""
    email = user.email
    db.session.commit()  # Reading an expired user opened a transaction; requests need it closed.
    person = browser()
    response = person.login(email, password)
    assert response.status_code == 200 and "Wrong e-mail" not in response.text
    return person


def count(session, model) -> int:
    """How many rows ``model`` has; ends the read, so SQLite's write lock is free."""
    value = session.scalar(select(func.count()).select_from(model))
    session.commit()
    return value
