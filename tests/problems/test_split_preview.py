"""A live payout preview while writing a problem (marketplace/web/problems.py, split_preview):
the posting form shows how the bounty splits for chains of 1 to the longest chain under the
chosen rule, redrawn from a same-origin fragment as the form changes, or by the form's
"Preview the split" button without script; previewing saves nothing."""

import re

from sqlalchemy import func, select

from marketplace.problems.models import Problem
from tests.problems.test_problems import logged_in, new_problem_url, page_form


def rows_of(html: str) -> list[str]:
    return re.findall(r'<td data-label="Chain" class="text-nowrap">(\d+) links?</td>', html)


def test_the_fragment_splits_the_bounty_typed_so_far(browser, world):
    olivia = logged_in(browser, world.owner)
    html = olivia.get(
        "/problems/split-preview?bounty=1000&currency=usd&split_rule=equal&max_depth=3&candidate_share_percent=0"
    ).text
    assert rows_of(html) == ["1", "2", "3"]
    assert "$900.00" in html and "$450.00" in html and "$300.00" in html  # 10% platform fee, then equal shares


def test_the_fragment_says_what_is_missing_instead_of_failing(browser, world):
    olivia = logged_in(browser, world.owner)
    for query, says in [
        ("currency=usd&split_rule=equal", "Give a bounty to see how it splits."),
        ("bounty=lots&currency=usd&split_rule=equal", "Write the amount as a number"),
        ("bounty=100&currency=usd&split_rule=equal&max_depth=x", "Longest chain: give a whole number."),
        ("bounty=100&currency=usd&split_rule=nonsense", "Choose a currency and a split rule."),
    ]:
        response = olivia.get(f"/problems/split-preview?{query}")
        assert response.status_code == 200 and says in response.text, query
        assert rows_of(response.text) == []


def test_the_posting_page_shows_the_preview_and_loads_its_script_from_this_origin(browser, world):
    olivia = logged_in(browser, world.owner)
    html = olivia.get(new_problem_url(world)).text
    assert 'id="split-preview"' in html and 'data-url="/problems/split-preview"' in html
    assert '<script src="/static/split-preview.js" defer></script>' in html
    assert olivia.get("/static/split-preview.js").status_code == 200


def test_without_script_the_preview_button_shows_the_split_and_saves_nothing(browser, world, session):
    olivia = logged_in(browser, world.owner)
    form = page_form(save_draft=None, preview="Preview the split", split_rule="equal", max_depth="4", bounty="2000")
    html = olivia.submit(new_problem_url(world), form).text
    assert rows_of(html) == ["1", "2", "3", "4"]
    assert 'value="Fix our Postgres replication lag"' in html  # the form keeps what was typed
    assert session.scalar(select(func.count()).select_from(Problem)) == 0
