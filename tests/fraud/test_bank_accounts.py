"""One bank account behind two members of a paid chain is a fraud signal, whether Stripe reported
it before the chain settled or only when the members set up payouts afterwards (docs/fraud.md)."""

import pytest
import requests
from sqlalchemy import select

from marketplace.fraud.models import FraudFlag
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments.models import PayoutAccount
from marketplace.problems.models import Problem, ProblemStatus
from tests.fraud.test_review import settle
from tests.payments.test_payments import deliver

SHARED_ACCOUNT = "000555444333"


def onboard_with_bank(api_client, account_number: str) -> None:
    url = api_client.post("/me/payout-account").json["onboarding_url"]
    submitted = requests.post(
        url, data={"outcome": "complete", "account_number": account_number}, allow_redirects=False, timeout=10
    )
    assert submitted.status_code == 303


def flag_signals(session) -> list[str]:
    session.rollback()
    return [e["signal"] for flag in session.scalars(select(FraudFlag)) for e in flag.evidence]


def test_a_bank_account_known_at_settlement_flags_the_chain(session, world, open_problem):
    for member in (world.ann, world.cleo):
        session.add(PayoutAccount(user_id=member.id, creation_key=f"key-{member.id}", bank_fingerprints=["fp-shared"]))
    session.add(PayoutAccount(user_id=world.bob.id, creation_key="key-bob", bank_fingerprints=["fp-bob"]))
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev)
    assert flag_signals(session) == ["shared_bank_account"]
    assert problem.status == ProblemStatus.DISPUTED


@pytest.mark.parametrize("same_bank", [True, False], ids=["one bank", "two banks"])
def test_a_bank_account_added_after_settlement_holds_the_shares(
    same_bank, live, emulator, app, api, session, world, open_problem
):
    """Members set up payouts once they are paid: the chain is screened again when Stripe shows
    a bank account, and the shares still held stay held for review; two banks raise nothing."""
    problem = open_problem(guarantee_days=7)
    settle(session, world, problem, [world.ann, world.bob, world.cleo], world.dev)
    assert flag_signals(session) == []

    onboard_with_bank(api(world.ann), SHARED_ACCOUNT)
    onboard_with_bank(api(world.cleo), SHARED_ACCOUNT if same_bank else "000999888777")
    deliver(emulator, app)

    session.rollback()
    prints = dict(session.execute(select(PayoutAccount.user_id, PayoutAccount.bank_fingerprints)).all())
    assert all(len(prints[m.id]) == 1 for m in (world.ann, world.cleo))
    assert (prints[world.ann.id] == prints[world.cleo.id]) is same_bank
    assert flag_signals(session) == (["shared_bank_account"] if same_bank else [])
    status = session.get(Problem, problem.id).status
    assert status == (ProblemStatus.DISPUTED if same_bank else ProblemStatus.IN_GUARANTEE)
    assert set(session.scalars(select(Share.status).where(Share.problem_id == problem.id))) == {ShareStatus.HELD}
