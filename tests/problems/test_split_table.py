"""The problem page's table of shares ("How the bounty is shared"): rendered once per process for
each bounty's terms and highlighted row (``web.problems.split_table``), so each problem must
still show its own amounts and each viewer their own row."""

import re

from tests import builders as build

HIGHLIGHTED = re.compile(r'<tr class="table-primary">\s*<td data-label="Chain" class="text-nowrap">(\d+) links?</td>')


def platform_fees(page: str) -> set[str]:
    return set(re.findall(r'<td data-label="Platform fee">([^<]+)</td>', page))


def test_each_problem_shows_its_own_shares_and_each_member_their_own_row(browser, session, world, open_problem):
    thousand = open_problem()
    five_hundred = open_problem(title="Tune our Kafka consumers", bounty_amount=50_000)
    build.chain(session, thousand, [world.ann, world.bob])
    build.chain(session, five_hundred, [world.ann])

    bob = build.logged_in(browser, world.bob)
    ann = build.logged_in(browser, world.ann)
    owner = build.logged_in(browser, world.owner)
    for viewer, problem, row, fee in (
        (bob, thousand, "2", "$100.00"),
        (ann, thousand, "1", "$100.00"),
        (owner, thousand, None, "$100.00"),
        (ann, five_hundred, "1", "$50.00"),
        (bob, five_hundred, None, "$50.00"),
    ):
        page = viewer.get(f"/problems/{problem.id}").text
        assert HIGHLIGHTED.findall(page) == ([row] if row else []), (problem.title, row)
        assert platform_fees(page) == {fee}
