"""The money as people see it: a member's Earnings page and pay-it-forward form, the company's
settlement and failed-introduction report on the problem page, and the admins' dispute page."""

import re

import pytest
from sqlalchemy import select

from marketplace.ledger import payouts
from marketplace.ledger.accounts import member_account
from marketplace.ledger.models import Dispute, DisputeStatus, Share
from marketplace.ledger.posting import balance
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.workflows import disputes as dispute_workflow
from tests import builders as build
from tests.builders import logged_in
from tests.conftest import csrf_token
from tests.ledger.support import assert_ledger_sound


def figure(html: str, currency: str, bucket: str) -> str:
    section = html[html.index(f'id="earnings-{currency}"') :]
    return re.search(rf'data-figure="{bucket}">([^<]+)<', section).group(1)


@pytest.fixture
def accepted(session, world, open_problem):
    def make(guarantee_days: int):
        problem = open_problem(guarantee_days=guarantee_days)
        build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo])
        return problem

    return make


def test_the_earnings_page_shows_each_figure_and_the_lines_behind_it(browser, world, accepted):
    accepted(guarantee_days=0)
    accepted(guarantee_days=30)
    cleo = logged_in(browser, world.cleo)

    page = cleo.get("/me/earnings")

    assert page.status_code == 200
    assert 'href="/me/earnings">Earnings</a>' in page.text
    assert (figure(page.text, "usd", "held"), figure(page.text, "usd", "available")) == ("$810.00", "$810.00")
    assert (figure(page.text, "usd", "payout_pending"), figure(page.text, "usd", "paid")) == ("$0.00", "$0.00")
    assert page.text.count("Your share of an accepted introduction: <a") == 2
    assert page.text.count("Guarantee period over: yours to use: <a") == 1
    assert "from Held to Available" in page.text and "-$" not in page.text
    assert logged_in(browser, world.outsider).get("/me/earnings").text.count("Nothing yet.") == 3


def test_paying_it_forward_from_the_page_gives_once_even_if_sent_twice(browser, world, accepted, session):
    accepted(guarantee_days=0)
    cleo = logged_in(browser, world.cleo)
    page = cleo.get("/me/earnings")
    form = {
        "csrf_token": csrf_token(page.text),
        "key": re.search(r'name="key" type="hidden" value="([^"]+)"', page.text).group(1),
        "to_email": world.ann.email,
        "amount": "100.50",
        "currency": "usd",
        "note": "Thanks for starting the chain",
    }

    first = cleo.client.post("/me/earnings/give", data=form, follow_redirects=True)
    second = cleo.client.post("/me/earnings/give", data=form, follow_redirects=True)

    assert "you passed your share on to Ann Li" in first.text
    assert "you passed your share on to Ann Li" in second.text
    assert balance(session, member_account(world.cleo.id, "available"), "usd") == 81_000 - 10_050
    assert balance(session, member_account(world.ann.id, "available"), "usd") == 4_500 + 10_050
    assert "$100.50</span> to Ann Li" in second.text
    ann_page = logged_in(browser, world.ann).get("/me/earnings").text
    assert "$100.50</span> from Cleo Duarte" in ann_page
    assert 'data-kind="gift_received"' in ann_page and "A gift from another member" in ann_page
    assert "You passed it on" not in ann_page, "the recipient of a gift did not pass anything on"
    assert "You passed it on" in second.text
    assert cleo.client.post("/me/earnings/give", data={**form, "csrf_token": ""}).status_code == 400
    too_much = cleo.submit("/me/earnings", {**form, "amount": "5000", "key": "other"}, action="/me/earnings/give")
    assert "You can give at most what is available to you: $709.50." in too_much.text
    assert_ledger_sound(session)


def test_a_payout_is_one_line_with_a_positive_amount_and_where_it_went(browser, world, accepted, session):
    """Started and completed, a payout is two ledger transactions; the member sees one line,
    its amount positive, saying it went from Available to their bank and that it is paid."""
    problem = accepted(guarantee_days=0)
    share = session.scalars(select(Share).where(Share.problem_id == problem.id, Share.member_id == world.cleo.id)).one()
    payouts.start_payout(session, share)
    payouts.complete_payout(session, share, transfer_id="tr_test_1")
    session.commit()

    page = logged_in(browser, world.cleo).get("/me/earnings").text

    assert page.count('data-kind="payout"') == 1
    row = page[page.index('data-kind="payout"') :].split("</tr>")[0]
    assert "Payout to your bank" in row and "$810.00" in row and "-$" not in row
    assert "from Available to your bank: paid" in row
    assert figure(page, "usd", "paid") == "$810.00"


def test_the_company_sees_the_settlement_and_reports_a_failed_introduction(browser, world, accepted, session):
    problem = accepted(guarantee_days=30)
    employee = logged_in(browser, world.employee)
    assert "Did the introduction fail?" not in employee.get(f"/problems/{problem.id}").text  # Managers only.
    olivia = logged_in(browser, world.owner)
    page = olivia.get(f"/problems/{problem.id}")
    assert re.search(r"Link 3: Cleo Duarte</td><td[^>]*>\$810.00<", page.text)
    assert re.search(r"Platform fee</td><td[^>]*>\$100.00<", page.text)
    assert "Did the introduction fail?" in page.text

    too_short = olivia.submit(f"/problems/{problem.id}", {"reason": "Bad"}, action=f"/problems/{problem.id}/disputes")
    assert "The report was not sent" in too_short.text
    reported = olivia.submit(
        f"/problems/{problem.id}",
        {"reason": "Dev stopped answering after one call."},
        action=f"/problems/{problem.id}/disputes",
    )

    assert "Nobody is paid until a platform admin has looked at it." in reported.text
    assert "Dev stopped answering after one call." in reported.text
    assert "Did the introduction fail?" not in reported.text
    assert session.scalar(select(Problem.status).where(Problem.id == problem.id)) == ProblemStatus.DISPUTED
    session.commit()


@pytest.mark.parametrize("decision", ["uphold", "reject"])
def test_a_platform_admin_decides_a_dispute_on_the_admin_page(browser, world, accepted, session, make_user, decision):
    problem = accepted(guarantee_days=30)

    dispute = dispute_workflow.open_dispute(
        session, world.owner, problem.id, reason="The expert was not who we needed."
    )
    admin = make_user("Pat Platform", "pat@marketplace.example")
    admin.is_platform_admin = True
    session.commit()
    assert logged_in(browser, world.owner).get("/admin/disputes").status_code == 403
    pat = logged_in(browser, admin)
    listed = pat.get("/admin/disputes")
    assert "The expert was not who we needed." in listed.text and "Uphold and refund" in listed.text

    decided = pat.submit(
        "/admin/disputes", {"note": "Checked with both sides."}, action=f"/admin/disputes/{dispute.id}/{decision}"
    )

    assert ("Upheld" if decision == "uphold" else "Rejected") in decided.text
    assert "Checked with both sides." in decided.text
    stored = session.get(Dispute, dispute.id, populate_existing=True)
    assert stored.status == (DisputeStatus.UPHELD if decision == "uphold" else DisputeStatus.REJECTED)
    page = logged_in(browser, world.owner).get(f"/problems/{problem.id}").text
    if decision == "uphold":
        assert "every share and the platform fee are refunded to you" in page
        assert "$1,000.00</span> · on its way to your card" in page
    else:
        assert "the shares were released to the chain" in page
    assert_ledger_sound(session)
