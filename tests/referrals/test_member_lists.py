"""The member's lists: the dashboard shows the newest few of each and links to the rest; each
list has its own page, newest first, a page at a time, so nothing a member did drops out of
sight (the dashboard once stopped at a hundred rows without saying so). The API gives the same
lists by cursor (``GET /me/referrals``, ``GET /me/introductions``)."""

import re
from datetime import UTC, datetime

from sqlalchemy import update

from marketplace.referrals import chains, introductions
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


def _walk(caller, url: str, limit: int) -> list[dict]:
    """Every item of an API list, following ``next_cursor`` from page to page."""
    items, cursor = [], None
    while True:
        page = caller.get(f"{url}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_the_api_gives_a_list_whole_by_cursor_even_when_times_tie(api, session, world, open_problem):
    problem = open_problem()
    addresses = _forward_to_friends(session, world, problem, 23)
    session.execute(update(Referral).values(created_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC)))
    session.commit()
    ann = api(world.ann)

    sent = _walk(ann, "/me/referrals?list=sent", limit=10)
    assert [item["recipient"] for item in sent] == addresses[::-1]  # the later made first, none twice
    first = sent[0]
    assert first["problem_id"] == problem.id and first["problem_title"] == problem.title
    assert first["bounty"] == {"amount": problem.bounty_amount, "currency": problem.currency}
    assert first["sender"] == "Ann Li" and first["depth"] == 2 and first["status"] == "sent"
    assert first["url"].endswith(f"/r/{first['token']}")

    (place,) = ann.get("/me/referrals").get_json()["items"]  # the default list: her places
    assert place["problem_id"] == problem.id and place["sender"] is None and place["depth"] == 1


def test_the_api_gives_introductions_made_and_of_me(api, session, world, open_problem):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    made = introductions.introduce(
        session, world.ann, problem.id, candidate_user_id=world.dev.id, message="Dev rebuilt our replication."
    )
    session.commit()

    (by_ann,) = api(world.ann).get("/me/introductions").get_json()["items"]  # the default list: made
    (of_dev,) = api(world.dev).get("/me/introductions?list=received").get_json()["items"]
    assert by_ann == of_dev
    assert by_ann["id"] == made.id and by_ann["problem_title"] == problem.title
    assert by_ann["introducer"] == "Ann Li" and by_ann["candidate"] == "Dev Sharma"
    assert by_ann["status"] == "awaiting_candidate" and by_ann["consented_at"] is None
    assert api(world.ann).get("/me/introductions?list=received").get_json()["items"] == []
    # The id is what the candidate answers with.
    assert api(world.dev).post(f"/introductions/{made.id}/consent", {"accept": True}).status_code == 200


def test_the_api_lists_are_the_callers_own_and_refuse_what_they_cannot_read(api, session, world, open_problem):
    _forward_to_friends(session, world, open_problem(), 3)
    assert api(world.bob).get("/me/referrals?list=sent").get_json() == {"items": [], "next_cursor": None}

    ann = api(world.ann)
    cursor = ann.get("/me/referrals?list=sent&limit=1").get_json()["next_cursor"]
    for url, status, code in [
        (f"/me/referrals?list=places&cursor={cursor}", 400, "bad_cursor"),  # a cursor of another list
        (f"/me/introductions?list=made&cursor={cursor}", 400, "bad_cursor"),
        ("/me/referrals?list=everything", 422, "invalid"),
        ("/me/introductions?list=sent", 422, "invalid"),
    ]:
        answer = ann.get(url)
        assert answer.status_code == status, (url, answer.get_json())
        assert answer.get_json()["error"]["code"] == code
    # A cursor only says where a list goes on: on Bob's own list it still reads only his rows.
    assert api(world.bob).get(f"/me/referrals?list=sent&cursor={cursor}").get_json()["items"] == []
