"""A hypothesis state machine over the whole money flow.

Companies post, fund, accept (sometimes twice, sometimes a stale introduction), cancel; time
passes and the expiry and release jobs run; companies dispute and admins uphold or reject;
Stripe confirms refunds and transfers, or fails them; members pass money on; and anything
already posted is posted again, unchanged (a replay) or changed (a conflict). After every step:

- ``flask ledger verify`` finds nothing: every transaction sums to zero per currency, no account
  that must not go negative does, each problem's escrow is what its state says, shares agree
  with the ledger and none is paid twice, every refund and transfer has its outbox job;
- each problem is in the state this model expects;
- a replay returned the transaction first posted and moved no money; a conflict moved none.

Each example gets a fresh database and starts from three problems: one with an introduction to
accept, one accepted (held or released), one disputed. ``make test`` runs 50 examples of up to
30 steps on SQLite: about 1,100 steps in all, each followed by the full verification, in some
15 seconds; CI runs the same on PostgreSQL. ``LEDGER_STATE_MACHINE_EXAMPLES`` and
``LEDGER_STATE_MACHINE_STEPS`` ask for more (400 examples of 50 steps pass too).
"""

import itertools
import os
import shutil
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.db import make_engine, utcnow
from marketplace.errors import MarketplaceError
from marketplace.ledger import donations as ledger_donations
from marketplace.ledger import payouts as ledger_payouts
from marketplace.ledger import posting as ledger_posting
from marketplace.ledger import settlement
from marketplace.ledger.accounts import member_account
from marketplace.ledger.models import Dispute, DisputeStatus, LedgerTransaction, Share, ShareStatus
from marketplace.ledger.posting import Entry, IdempotencyConflict, balance
from marketplace.ledger.verify import balances, verify_ledger
from marketplace.models import metadata
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction, IntroductionStatus
from marketplace.workflows import disputes as dispute_workflow
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow
from tests.conftest import problem_input

EXAMPLES = int(os.environ.get("LEDGER_STATE_MACHINE_EXAMPLES", 50))
STEPS = int(os.environ.get("LEDGER_STATE_MACHINE_STEPS", 30))
MEMBERS = 5
RULES = ["flat_fee_finder_rest", "equal", "halving", "uniform_halving", "finder_and_first"]
S = ProblemStatus


class MoneyFlow(RuleBasedStateMachine):
    def __init__(self, new_session):
        super().__init__()
        self.session: Session = new_session()
        self.now = utcnow()
        session = self.session
        self.owner = self._user("owner")
        self.admin = self._user("admin", is_platform_admin=True)
        self.members = [self._user(f"member{n}") for n in range(MEMBERS)]
        self.expert = self._user("expert")
        self.company = accounts.create_company(session, self.owner, name="Acme Data")
        session.commit()
        self.expected: dict[int, ProblemStatus] = {}
        self.in_chain: dict[int, set[int]] = {}
        self.refunds: dict[int, dict[str, bool]] = {}
        self.introductions: dict[int, int] = {}  # introduction id -> problem id
        self.accepted: set[int] = set()  # problems with a settlement, hence shares
        self.donation_keys: list[tuple[int, dict, int]] = []

    def _user(self, name: str, **extra) -> User:
        user = User(
            email=f"{name}@example.com", name=name.title(), password_hash="!", email_verified_at=self.now, **extra
        )
        self.session.add(user)
        self.session.flush()
        return user

    def teardown(self):
        engine = self.session.get_bind()
        self.session.close()
        if engine.dialect.name == "sqlite":  # Each example has its own file.
            engine.dispose()

    # Helpers -----------------------------------------------------------------------------------

    def attempt(self, action, allowed: bool):
        """Run ``action``; it must succeed exactly when the model says it is allowed."""
        try:
            result = action()
        except MarketplaceError as error:
            self.session.rollback()
            assert not allowed, f"refused although allowed: {error.message}"
            assert error.status in (403, 404, 409, 422), error
            return None
        assert allowed, "allowed although the model refuses it"
        self.session.commit()
        return result

    def problem(self, data, *likely: ProblemStatus) -> Problem:
        """A problem, most often one in a ``likely`` state (where the action applies), sometimes
        any (where it must be refused)."""
        fitting = sorted(p for p, status in self.expected.items() if status in likely)
        choices = fitting if fitting and data.draw(st.integers(0, 4), label="fitting") else sorted(self.expected)
        return self.session.get(Problem, data.draw(st.sampled_from(choices)), populate_existing=True)

    def in_state(self, *statuses: ProblemStatus) -> bool:
        return any(status in statuses for status in self.expected.values())

    def closed_unmatched(self, problem: Problem, status: ProblemStatus) -> None:
        self.expected[problem.id] = status
        if problem.funded_at is not None:
            self.refunds.setdefault(problem.id, {})[settlement.refund_key(problem.id)] = False

    def money(self) -> dict:
        return balances(self.session)

    # Companies ---------------------------------------------------------------------------------

    def _post(self, bounty, rule_name, guarantee_days, candidate_share_bps, expires_in_days, funded) -> Problem:
        data = problem_input(
            bounty_amount=bounty,
            split_rule=rule_name,
            guarantee_days=guarantee_days,
            candidate_share_bps=candidate_share_bps,
            expires_at=self.now + timedelta(days=expires_in_days),
        )
        problem = problems.create_problem(
            self.session, self.owner, self.company.id, data, publish=True, platform_fee_bps=1000
        )
        self.expected[problem.id] = S.AWAITING_PAYMENT
        self.in_chain[problem.id] = set()
        if funded:
            funding.fund_problem(self.session, problem.id, reference=f"pi_{problem.id}")
            self.expected[problem.id] = S.OPEN
        self.session.commit()
        return problem

    def _introduce(self, problem: Problem, chain: list[User], expert: bool) -> Introduction:
        """``chain`` passes the problem along; its finder introduces the expert or themselves."""
        chains.pick_from_board(self.session, chain[0], problem.id)
        for sender, recipient in zip(chain, chain[1:], strict=False):
            sent = chains.forward(self.session, sender, problem.id, to_user_id=recipient.id)
            chains.claim(self.session, recipient, sent.token)
        candidate = self.expert if expert else chain[-1]
        introduction = introductions.introduce(
            self.session, chain[-1], problem.id, candidate_user_id=candidate.id, message="Knows this problem well."
        )
        if introduction.status == IntroductionStatus.AWAITING_CANDIDATE:
            introductions.consent(self.session, introduction, candidate, accept=True)
        self.session.commit()
        self.in_chain[problem.id].update(m.id for m in chain)
        self.introductions[introduction.id] = problem.id
        return introduction

    def _accept(self, introduction: Introduction) -> None:
        """Accept any introduction; only a proposed one of an open problem may settle, exactly."""
        problem = self.session.get(Problem, introduction.problem_id)
        allowed = self.expected[problem.id] == S.OPEN and introduction.status == IntroductionStatus.PROPOSED
        result = self.attempt(
            lambda: settlement_workflow.accept_introduction(self.session, self.owner, introduction.id), allowed
        )
        if result is None:
            return
        answered = result.settlement.as_dict()
        paid = sum(s["amount"] for s in answered["shares"]) + answered["platform_fee"] + answered["candidate_share"]
        assert paid + answered["remainder"] == problem.bounty_amount
        # The page reads the same numbers back from the ledger (links paid nothing have no share).
        stored = settlement.settlement_of(self.session, problem).as_dict()
        assert stored == answered | {"shares": [s for s in answered["shares"] if s["amount"]]}
        self.expected[problem.id] = S.SETTLED if problem.guarantee_days == 0 else S.IN_GUARANTEE
        self.accepted.add(problem.id)
        if answered["remainder"]:
            self.refunds.setdefault(problem.id, {})[settlement.remainder_key(problem.id)] = False

    def _dispute(self, problem: Problem) -> None:
        ends = settlement.guarantee_ends(problem)
        allowed = self.expected[problem.id] == S.IN_GUARANTEE and self.now < ends
        opened = self.attempt(
            lambda: dispute_workflow.open_dispute(
                self.session, self.owner, problem.id, reason="The expert never showed up.", now=self.now
            ),
            allowed,
        )
        if opened:
            self.expected[problem.id] = S.DISPUTED

    # Every example starts where money moves: a problem to accept, one accepted, one disputed.

    @initialize(
        bounty=st.integers(min_value=1_000, max_value=10**9),
        rule_name=st.sampled_from(RULES),
        guarantee_days=st.sampled_from([0, 2, 7]),
        candidate_share_bps=st.sampled_from([0, 500]),
        chain=st.permutations(range(MEMBERS)).map(lambda order: order[:3]),
        expert=st.booleans(),
    )
    def a_problem_with_an_introduction(self, bounty, rule_name, guarantee_days, candidate_share_bps, chain, expert):
        problem = self._post(bounty, rule_name, guarantee_days, candidate_share_bps, 30, funded=True)
        self._introduce(problem, [self.members[n] for n in chain], expert)

    @initialize(
        bounty=st.integers(min_value=1_000, max_value=10**9),
        rule_name=st.sampled_from(RULES),
        guarantee_days=st.sampled_from([0, 2, 7]),
        length=st.integers(min_value=1, max_value=MEMBERS),
    )
    def an_accepted_problem(self, bounty, rule_name, guarantee_days, length):
        problem = self._post(bounty, rule_name, guarantee_days, 500, 30, funded=True)
        self._accept(self._introduce(problem, self.members[:length], expert=True))

    @initialize(
        bounty=st.integers(min_value=1_000, max_value=10**9), length=st.integers(min_value=1, max_value=MEMBERS)
    )
    def a_disputed_problem(self, bounty, length):
        problem = self._post(bounty, "flat_fee_finder_rest", 7, 0, 30, funded=True)
        self._accept(self._introduce(problem, self.members[-length:], expert=False))
        self._dispute(problem)

    # Companies' actions ------------------------------------------------------------------------

    @rule(
        bounty=st.integers(min_value=1_000, max_value=10**9),
        rule_name=st.sampled_from(RULES),
        guarantee_days=st.sampled_from([0, 2, 7]),
        candidate_share_bps=st.sampled_from([0, 500]),
        expires_in_days=st.integers(min_value=1, max_value=30),
        funded=st.booleans(),
    )
    def post_problem(self, bounty, rule_name, guarantee_days, candidate_share_bps, expires_in_days, funded):
        """Post a problem, and (usually, as Checkout would) fund it."""
        self._post(bounty, rule_name, guarantee_days, candidate_share_bps, expires_in_days, funded)

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def fund(self, data):
        problem = self.problem(data, S.AWAITING_PAYMENT)
        allowed = self.expected[problem.id] == S.AWAITING_PAYMENT
        if self.attempt(lambda: funding.fund_problem(self.session, problem.id, reference=f"pi_{problem.id}"), allowed):
            self.expected[problem.id] = S.OPEN

    @precondition(lambda self: self.in_state(S.OPEN))
    @rule(data=st.data(), length=st.integers(min_value=1, max_value=3), expert=st.booleans())
    def introduce(self, data, length, expert):
        """A chain of members new to the problem."""
        problem = self.problem(data, S.OPEN)
        free = [m for m in self.members if m.id not in self.in_chain[problem.id]]
        if self.expected[problem.id] == S.OPEN and free:
            self._introduce(problem, data.draw(st.permutations(free))[:length], expert)

    @precondition(lambda self: self.introductions)
    @rule(data=st.data())
    def accept(self, data):
        """Mostly an introduction of an open problem; sometimes any (accepted, stale, closed)."""
        live = sorted(i for i, p in self.introductions.items() if self.expected[p] == S.OPEN)
        choices = live if live and data.draw(st.integers(0, 3), label="live") else sorted(self.introductions)
        self._accept(self.session.get(Introduction, data.draw(st.sampled_from(choices)), populate_existing=True))

    @precondition(lambda self: self.in_state(S.AWAITING_PAYMENT, S.OPEN))
    @rule(data=st.data())
    def cancel(self, data):
        problem = self.problem(data, S.AWAITING_PAYMENT, S.OPEN)
        allowed = self.expected[problem.id] in (S.AWAITING_PAYMENT, S.OPEN)
        if self.attempt(lambda: funding.cancel_problem(self.session, self.owner, problem.id), allowed):
            self.closed_unmatched(problem, S.CANCELLED)

    # Time and the periodic jobs ----------------------------------------------------------------

    @precondition(lambda self: self.expected)
    @rule(days=st.integers(min_value=0, max_value=8))
    def time_passes(self, days):
        self.now += timedelta(days=days)

    @precondition(lambda self: self.in_state(S.AWAITING_PAYMENT, S.OPEN, S.IN_GUARANTEE))
    @rule(expiry_first=st.booleans())
    def periodic_jobs(self, expiry_first):
        """A worker round: the expiry job and the release job, in either order."""
        jobs = [self.expiry_job, self.release_job]
        for job in jobs if expiry_first else jobs[::-1]:
            job()

    def expiry_job(self):
        expired = set(funding.expire_due(self.session, now=self.now))
        self.session.commit()
        for problem_id, status in self.expected.items():
            problem = self.session.get(Problem, problem_id)
            due = status in (S.AWAITING_PAYMENT, S.OPEN) and problem.expires_at <= self.now
            assert (problem_id in expired) == due
            if due:
                self.closed_unmatched(problem, S.EXPIRED)

    def release_job(self):
        released = set(settlement_workflow.release_due(self.session, now=self.now))
        self.session.commit()
        for problem_id, status in self.expected.items():
            problem = self.session.get(Problem, problem_id)
            due = status == S.IN_GUARANTEE and settlement.guarantee_ends(problem) <= self.now
            assert (problem_id in released) == due
            if due:
                self.expected[problem_id] = S.SETTLED

    # Disputes ----------------------------------------------------------------------------------

    @precondition(lambda self: self.accepted)
    @rule(data=st.data())
    def dispute(self, data):
        self._dispute(self.problem(data, S.IN_GUARANTEE))

    @precondition(lambda self: self.in_state(S.DISPUTED))
    @rule(data=st.data(), upheld=st.booleans())
    def decide(self, data, upheld):
        cases = self.session.scalars(
            select(Dispute).order_by(Dispute.id), execution_options={"populate_existing": True}
        )
        cases = cases.all()
        if not cases:
            return
        dispute = data.draw(st.sampled_from(cases))
        allowed = dispute.status == DisputeStatus.OPEN
        decision = "uphold" if upheld else "reject"
        if self.attempt(lambda: dispute_workflow.decide(self.session, self.admin, dispute.id, decision), allowed):
            problem_id = dispute.problem_id
            if upheld:
                self.refunds.setdefault(problem_id, {})[settlement.refund_key(problem_id)] = False
            else:
                self.expected[problem_id] = S.SETTLED

    # Stripe's answers --------------------------------------------------------------------------

    @precondition(lambda self: not all(done for keys in self.refunds.values() for done in keys.values()))
    @rule(data=st.data())
    def refund_returned(self, data):
        """Stripe confirms a refund, sometimes twice: the second is a replay."""
        problem_id, key = data.draw(st.sampled_from(sorted((p, k) for p, keys in self.refunds.items() for k in keys)))
        before = self.money()
        posted = funding.complete_refund(self.session, key, reference=f"re_{key}")
        self.session.commit()
        assert posted.created != self.refunds[problem_id][key]
        if not posted.created:
            assert self.money() == before
        self.refunds[problem_id][key] = True
        main = settlement.refund_key(problem_id)
        closing = self.expected[problem_id] in (S.CANCELLED, S.EXPIRED, S.DISPUTED)
        if closing and main in self.refunds[problem_id] and all(self.refunds[problem_id].values()):
            self.expected[problem_id] = S.REFUNDED

    @precondition(lambda self: self.in_state(S.SETTLED))
    @rule(data=st.data(), outcome=st.sampled_from(["start", "paid", "failed", "paid again", "cleared"]))
    def payout(self, data, outcome):
        shares = self.session.scalars(select(Share).order_by(Share.id), execution_options={"populate_existing": True})
        shares = shares.all()
        wanted = {"start": ShareStatus.AVAILABLE, "failed": ShareStatus.PAYING, "paid": ShareStatus.PAYING}
        wanted["cleared"] = ShareStatus.AVAILABLE
        fitting = [s for s in shares if s.status == wanted.get(outcome, ShareStatus.PAID)]
        share = data.draw(st.sampled_from(fitting if fitting and data.draw(st.integers(0, 3)) else shares))
        if outcome == "start":
            self.attempt(
                lambda: ledger_payouts.start_payout(self.session, share),
                share.status == ShareStatus.AVAILABLE and share.payable > 0 and share.payout_refusal is None,
            )
        elif outcome == "cleared":  # A change (a ready account, an admin's retry) lets a refused share go again.
            self.attempt(
                lambda: ledger_payouts.clear_refusals(self.session, member_id=share.member_id, share_id=share.id), True
            )
        elif outcome == "failed":
            self.attempt(
                lambda: ledger_payouts.fail_payout(self.session, share, reason="declined"), share.status == "paying"
            )
        else:
            transfer = f"tr_{share.id}_{share.payout_attempts}"
            allowed = share.status == ShareStatus.PAYING or (
                share.status == ShareStatus.PAID and share.transfer_reference == transfer
            )
            self.attempt(lambda: ledger_payouts.complete_payout(self.session, share, transfer_id=transfer), allowed)

    # Members -----------------------------------------------------------------------------------

    @precondition(lambda self: self.in_state(S.SETTLED))
    @rule(
        data=st.data(),
        recipient=st.integers(min_value=0, max_value=MEMBERS),
        share_of_available=st.fractions(min_value=0, max_value=2),
    )
    def donate(self, data, recipient, share_of_available):
        """Part, all or more than all of what a member has available (the last is refused)."""
        people = self.members + [self.expert]
        funds = {p.id: balance(self.session, member_account(p.id, "available"), "usd") for p in people}
        givers = [p for p in people if funds[p.id]]
        giver = data.draw(st.sampled_from(givers if givers and data.draw(st.integers(0, 3)) else people))
        recipient = people[recipient]
        available = funds[giver.id]
        amount = int(available * share_of_available)
        arguments = {"to_user_id": recipient.id, "amount": amount, "currency": "usd"}
        key = f"gift-{len(self.donation_keys)}"
        allowed = recipient.id != giver.id and 0 < amount <= available
        posted = self.attempt(lambda: ledger_donations.donate(self.session, giver, key=key, **arguments), allowed)
        if posted is not None:
            self.donation_keys.append((giver.id, {"key": key, **arguments}, posted.transaction_id))

    @precondition(lambda self: self.donation_keys)
    @rule(data=st.data())
    def donate_again(self, data):
        """A resubmitted gift: a replay gives the same transaction and moves no money."""
        giver_id, arguments, transaction_id = data.draw(st.sampled_from(self.donation_keys))
        before = self.money()
        posted = ledger_donations.donate(self.session, self.session.get(User, giver_id), **arguments)
        self.session.commit()
        assert posted == (transaction_id, False)
        assert self.money() == before

    # Replays of anything -----------------------------------------------------------------------

    @precondition(lambda self: self.in_state(*(s for s in S if s != S.AWAITING_PAYMENT)))
    @rule(data=st.data(), change=st.booleans())
    def repost(self, data, change):
        """Post an existing transaction again from its stored content: the same content replays
        it; moving one unit between two of its entries conflicts. Neither moves money."""
        transactions = self.session.scalars(select(LedgerTransaction).order_by(LedgerTransaction.id)).all()
        if not transactions:
            return
        transaction = data.draw(st.sampled_from(transactions))
        stored = [Entry(e.account.code, e.amount, e.currency) for e in transaction.entries]
        entries = list(stored)
        if change:
            step = 2 if entries[0].amount == -1 else 1  # Never leave a zero entry behind.
            entries[0] = entries[0]._replace(amount=entries[0].amount + step)
            entries[1] = entries[1]._replace(amount=entries[1].amount - step)
            entries = [e for e in entries if e.amount]
            change = sorted(entries) != sorted(stored)  # Two entries on one account may just swap.
        before = (self.money(), self.session.scalar(select(func.count()).select_from(LedgerTransaction)))

        def again():
            return ledger_posting.post(
                self.session,
                transaction.kind,
                transaction.idempotency_key,
                entries,
                problem_id=transaction.problem_id,
                introduction_id=transaction.introduction_id,
                reference=transaction.reference,
            )

        if change:
            with pytest.raises(IdempotencyConflict):
                again()
            self.session.rollback()
        else:
            assert again() == (transaction.id, False)
            self.session.commit()
        assert (self.money(), self.session.scalar(select(func.count()).select_from(LedgerTransaction))) == before
        self.session.commit()

    # After every step --------------------------------------------------------------------------

    @invariant()
    def ledger_verifies(self):
        broken = verify_ledger(self.session)
        assert not broken, "\n".join(broken)

    @invariant()
    def problems_are_where_the_model_says(self):
        stored = dict(self.session.execute(select(Problem.id, Problem.status)).all())
        self.session.commit()
        assert stored == self.expected


@pytest.fixture
def new_session(tmp_path, postgres_engine):
    """A session on an empty database: a new SQLite file, or the PostgreSQL test database emptied."""
    if postgres_engine is None:  # One schema, copied for each example: faster than creating it.
        template = make_engine(f"sqlite:///{tmp_path / 'template.db'}")
        metadata.create_all(template)
        template.dispose()
    examples = itertools.count()

    def make() -> Session:
        if postgres_engine is None:
            path = tmp_path / f"machine-{next(examples)}.db"
            shutil.copyfile(tmp_path / "template.db", path)
            return Session(bind=make_engine(f"sqlite:///{path}"), expire_on_commit=False)
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        with postgres_engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return Session(bind=postgres_engine, expire_on_commit=False)

    return make


def test_the_money_flow_keeps_every_invariant(new_session):
    run_state_machine_as_test(
        lambda: MoneyFlow(new_session),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
