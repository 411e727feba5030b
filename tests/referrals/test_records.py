"""Track records and giving records people can see (marketplace/referrals/records.py)."""

import pytest

from marketplace.ledger import donations
from marketplace.referrals import chains, introductions, records
from marketplace.workflows import disputes
from marketplace.workflows import settlement as settlement_workflow


def introduce_dev(session, world, problem, *, consent=True):
    chains.pick_from_board(session, world.cleo, problem.id)
    introduction = introductions.introduce(
        session, world.cleo, problem.id, candidate_user_id=world.dev.id, message="Dev rebuilt replication twice."
    )
    if consent:
        introductions.consent(session, introduction, world.dev, accept=True)
    session.commit()
    return introduction


@pytest.fixture
def cleos_history(session, world, open_problem):
    """Four introductions by Cleo: one accepted that passed its guarantee, one accepted then
    disputed, one declined, one the candidate never answered."""
    passed = introduce_dev(session, world, open_problem(guarantee_days=0))
    settlement_workflow.accept_introduction(session, world.owner, passed.id)
    disputed = introduce_dev(session, world, open_problem())
    settlement_workflow.accept_introduction(session, world.owner, disputed.id)
    session.commit()
    disputes.open_dispute(session, world.owner, disputed.problem_id, reason="The expert never started the work.")
    declined = introduce_dev(session, world, open_problem())
    introductions.decline(session, world.owner, declined.id)
    introduce_dev(session, world, open_problem(), consent=False)
    session.commit()
    return passed


def test_a_record_counts_each_outcome_and_rates_success_with_the_stated_prior(session, world, cleos_history):
    record = records.track_records(session, [world.cleo.id, world.bob.id])
    assert record[world.cleo.id] == records.TrackRecord(
        made=4, consented=3, decided=3, accepted=2, passed_guarantee=1, disputed=1
    )
    # One success (the disputed one does not count) out of three decided, plus the prior 1 of 3.
    assert record[world.cleo.id].success_rate == pytest.approx((1 + 1) / (3 + 3))
    # A newcomer is shown the prior, not zero.
    assert record[world.bob.id] == records.TrackRecord()
    assert record[world.bob.id].success_rate == pytest.approx(1 / 3)


def test_the_company_sees_the_introducers_record_beside_each_introduction(
    session, world, open_problem, cleos_history, browser
):
    problem = open_problem()
    introduce_dev(session, world, problem)
    owner = browser()
    owner.login(world.owner.email)

    page = owner.get(f"/problems/{problem.id}").text

    assert "5 introductions · 4 consented · 2 accepted · 1 passed the guarantee · 1 disputed" in page
    assert "success rate 33%" in page  # (1 + 1) / (3 + 3)
    assert f'href="/members/{world.cleo.id}"' in page  # Cleo shows her name: her record is a link


def test_the_member_page_and_the_api_show_the_giving_beside_the_taking(
    session, world, open_problem, cleos_history, browser, api
):
    problem = open_problem()
    chains.pick_from_board(session, world.cleo, problem.id)
    chains.forward(session, world.cleo, problem.id, to_email="friend@elsewhere.example")
    session.commit()
    donations.donate(session, world.cleo, to_user_id=world.ann.id, amount=10_000, currency="usd", key="thanks-ann")
    session.commit()
    viewer = browser()
    viewer.login(world.outsider.email)

    page = viewer.get(f"/members/{world.cleo.id}").text

    assert "Forwarded 1 problem" in page and "Introduced 4 experts other than themselves" in page
    assert 'Earned <span class="money">$1,800.00</span> from chains and passed on' in page
    assert "$100.00</span> to other members" in page
    body = api(world.outsider).get(f"/members/{world.cleo.id}/record").get_json()
    assert body["forwards"] == 1 and body["introductions_for_others"] == 4
    assert body["money"] == [{"currency": "usd", "earned": 180_000, "passed_on": 10_000, "received": 0}]
    assert body["track_record"]["made"] == 4 and body["track_record"]["success_rate"] == pytest.approx(1 / 3)
    assert api(world.outsider).get("/members/999999/record").status_code == 404
