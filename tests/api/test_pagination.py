"""Cursor pages on the API's lists: walking a list page by page while rows are added misses none
of the rows that were there and repeats none; a cursor is opaque and bound to its list (anything
else is 400 ``bad_cursor``); ``limit`` is 1 to 100."""

import re
from itertools import count

import pytest

from marketplace.accounts import service as accounts
from marketplace.db import db
from marketplace.network import service as network
from marketplace.notifications.models import Delivery, Notification
from tests import builders as build

serial = count()


def walk(caller, url, add_row, limit=2):
    """Every item id on every page of ``url``, adding a row before each page after the first."""
    seen, pages, next_url = [], 0, f"{url}{'&' if '?' in url else '?'}limit={limit}"
    while next_url:
        if pages:
            add_row()
        response = caller.get(next_url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items = body if isinstance(body, list) else body["items"]
        assert len(items) <= limit
        seen += [item.get("id", item.get("user_id")) for item in items]
        pages += 1
        if isinstance(body, list):
            link = response.headers.get("Link")
            next_url = re.match(r"<http://localhost/api/v1([^>]+)>", link).group(1) if link else None
        else:
            next_url = (
                f"{url}{'&' if '?' in url else '?'}limit={limit}&cursor={body['next_cursor']}"
                if body["next_cursor"]
                else None
            )
    return seen, pages


def notify(user):
    db.session.add(
        Notification(
            user_id=user.id,
            kind="chain_grew",
            event_key=f"test:{next(serial)}",
            title="News",
            delivery=Delivery.IMMEDIATELY,
        )
    )
    db.session.commit()


def token(user):
    accounts.create_api_token(db.session, user, name=f"token {next(serial)}")
    db.session.commit()


def card(user, name=None):
    network.create_card(db.session, user, network.CardData(name=name or f"Card {next(serial):03}"))
    db.session.commit()


LISTS = {
    "notifications": ("/me/notifications", notify),
    "tokens": ("/me/tokens", token),
    "cards": ("/me/cards", card),
}


@pytest.mark.parametrize("name", LISTS)
def test_a_walk_through_pages_misses_nothing_and_repeats_nothing_while_rows_are_added(name, world, api):
    url, add = LISTS[name]
    for _ in range(5):
        add(world.ann)
    ann = api(world.ann)  # a token too, which the token list shows
    before = [
        item.get("id")
        for item in (lambda b: b if isinstance(b, list) else b["items"])(ann.get(url + "?limit=100").get_json())
    ]

    seen, pages = walk(ann, url, lambda: add(world.ann))

    assert pages >= 3
    assert len(seen) == len(set(seen)), "an item came twice"
    assert set(before) <= set(seen), "an item that was there was skipped"


def test_connections_by_name_stay_whole_while_connections_are_made(session, world, make_user, api):
    for person in (world.bob, world.cleo, world.dev):
        build.connection(session, world.ann, person)
    ann = api(world.ann)
    before = {item["user_id"] for item in ann.get("/me/connections").get_json()["items"]}
    newcomers = iter([make_user("Aaron First"), make_user("Zoe Last"), make_user("Mia Middle")])

    def connect_next():
        person = next(newcomers, None)
        if person is not None:
            build.connection(session, world.ann, person)

    seen, _ = walk(ann, "/me/connections", connect_next, limit=1)

    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert {world.bob.id, world.cleo.id, world.dev.id} <= set(seen)


def test_the_board_by_cursor_while_problems_are_posted(world, open_problem, api):
    for _ in range(5):
        open_problem()
    db.session.commit()
    anyone = api()
    before = {item["id"] for item in anyone.get("/problems?limit=100").get_json()["items"]}

    seen, pages = walk(anyone, "/problems", lambda: (open_problem(), db.session.commit()))

    assert pages >= 3 and len(seen) == len(set(seen)) and before <= set(seen)
    for sort in ("bounty", "closing"):
        seen, _ = walk(anyone, f"/problems?sort={sort}", lambda: None)
        assert len(seen) == len(set(seen)) and before <= set(seen), sort


def test_numbered_board_pages_still_work(world, open_problem, api):
    for _ in range(3):
        open_problem()
    db.session.commit()
    page = api().get("/problems?page=1").get_json()
    assert len(page["items"]) == 3 and page["next_page"] is None and page["total"] == 3


@pytest.mark.parametrize(
    ("cursor", "status", "code"),
    [
        ("garbage", 400, "bad_cursor"),
        ("eyJsIjoidG9rZW5zIiwidiI6MSwiaSI6MX0", 400, "bad_cursor"),  # the right shape, unsigned
        ("x" * 1001, 422, "invalid"),
    ],
)
def test_a_cursor_the_list_did_not_give_is_refused(cursor, status, code, world, api):
    response = api(world.ann).get(f"/me/notifications?cursor={cursor}")
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_a_cursor_of_another_list_is_400_bad_cursor(world, api):
    for _ in range(3):
        token(world.ann)
    ann = api(world.ann)
    link = ann.get("/me/tokens?limit=1").headers["Link"]
    cursor = re.search(r"cursor=([^&>]+)", link).group(1)

    response = ann.get(f"/me/notifications?cursor={cursor}")

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_cursor"


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_limit_is_bounded_by_the_server(limit, world, api):
    response = api(world.ann).get(f"/me/notifications?limit={limit}")
    assert response.status_code == 422


def test_the_default_page_is_20(world, api):
    for _ in range(25):
        notify(world.ann)
    body = api(world.ann).get("/me/notifications").get_json()
    assert len(body["items"]) == 20 and body["next_cursor"]
