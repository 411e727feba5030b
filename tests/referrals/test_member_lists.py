"""The member's lists: the dashboard shows the newest few of each and links to the rest; each
list has its own page, newest first, a page at a time, so nothing a member did drops out of
sight (the dashboard once stopped at a hundred rows without saying so)."""

import re
from datetime import UTC, datetime

from sqlalchemy import update

from marketplace.referrals import chains
from marketplace.referrals.models import Referral
from marketplace.referrals.read_models import DASHBOARD_PREVIEW, LIST_PAGE_SIZE


def _sent(page_text: str) -> list[str]:
    """The addresses in the rows of the "Referrals I sent" list on a page, top to bottom."""
    return re.findall(r"(friend\d+@example\.com)", page_text)


def _forward_to_friends(session, world, problem, count: int) -> list[str]:
    chains.pick_from_board(session, world.ann, problem.id)
    addresses = [f"friend{i}@example.com" for i in range(count)]
    for address in addresses:
        chains.forward(session, world.ann, problem.id, to_email=address)
    session.commit()
    return addresses


def test_the_dashboard_shows_the_newest_of_a_list_and_links_to_the_whole_list(browser, session, world, open_problem):
    addresses = _forward_to_friends(session, world, open_problem(), DASHBOARD_PREVIEW + 2)
    ann = browser()
    ann.login("ann@example.com")

    page = ann.get("/dashboard").text
    sent = page.split("Referrals I sent", 1)[1].split("Introductions I made", 1)[0]
    assert _sent(sent) == addresses[::-1][:DASHBOARD_PREVIEW]
    assert '<a href="/dashboard/sent">See all referrals I sent</a>' in sent
    # Ann holds one place: that list is whole on the dashboard and has no link.
    assert 'href="/dashboard/places"' not in page

    whole = ann.get("/dashboard/sent")
    assert whole.status_code == 200
    assert _sent(whole.text) == addresses[::-1]
    assert 'aria-label="Pages"' not in whole.text  # one page holds them all


def test_a_list_page_shows_every_row_once_a_page_at_a_time_even_when_times_tie(browser, session, world, open_problem):
    """Rows that share a time (imported, or made in one transaction) keep one order from page to
    page, the later made first: sorted by time alone, a page could repeat a row and the next skip
    one."""
    addresses = _forward_to_friends(session, world, open_problem(), LIST_PAGE_SIZE + 3)
    session.execute(update(Referral).values(created_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC)))
    session.commit()
    ann = browser()
    ann.login("ann@example.com")

    first, second = ann.get("/dashboard/sent"), ann.get("/dashboard/sent?page=2")
    assert first.status_code == second.status_code == 200
    assert len(_sent(first.text)) == LIST_PAGE_SIZE and len(_sent(second.text)) == 3
    assert _sent(first.text) + _sent(second.text) == addresses[::-1]  # the later made first
    assert 'href="/dashboard/sent?page=2">Older</a>' in first.text and "Newer" not in first.text
    assert 'href="/dashboard/sent?page=1">Newer</a>' in second.text and "Older" not in second.text

    past_the_end = ann.get("/dashboard/sent?page=3")
    assert past_the_end.status_code == 200 and not _sent(past_the_end.text)
    assert "This list ends on an earlier page." in past_the_end.text


def test_a_member_sees_only_their_own_lists(browser, session, world, open_problem):
    _forward_to_friends(session, world, open_problem(), 2)
    bob = browser()
    bob.login("bob@example.com")
    page = bob.get("/dashboard/sent")
    assert page.status_code == 200 and not _sent(page.text)
    assert "You have not forwarded a problem yet." in page.text


def test_a_list_page_refuses_what_it_cannot_read_and_asks_a_visitor_to_log_in(browser, world):
    visitor = browser()
    assert visitor.get("/dashboard/sent").status_code == 302

    ann = browser()
    ann.login("ann@example.com")
    assert ann.get("/dashboard/everything").status_code == 404
    for page in ("two", "²", "-1", "99999999999999999999999"):
        answer = ann.get(f"/dashboard/sent?page={page}")
        assert answer.status_code in (400, 422), (page, answer.status_code)
