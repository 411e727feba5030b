"""Dashboards with charts (docs/dashboards.md): the company's figures page and a member's
earnings draw each figure as an SVG chart with its numbers in a table beside it, and the
company page lists introductions waiting for its decision first."""

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from marketplace.web.charts import PLOT_HEIGHT, PLOT_TOP, WIDTH, Series, columns, count, rows
from marketplace.workflows import funding
from tests import builders as build


def charts_in(html: str) -> dict[str, str]:
    """Each chart on a page by its title, with its table."""
    return {
        title: figure
        for figure in re.findall(r'<figure class="chart.*?</figure>', html, re.S)
        for title in re.findall(r'<title id="chart-[^"]+-title">([^<]+)</title>', figure)
    }


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=0, max_size=24),
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=48, max_size=48),
)
def test_columns_stay_inside_the_picture_and_their_labels_never_overlap(categories, values):
    chart = columns(
        "c",
        "Money",
        categories,
        [Series("A", "#000", values[: len(categories)]), Series("B", "#111", values[24 : 24 + len(categories)])],
        count,
    )
    for bar in chart.bars:
        assert bar.x >= 0 and bar.x + bar.width <= WIDTH + 1e-6
        assert bar.y >= PLOT_TOP - 1e-6 and bar.y + bar.height <= PLOT_TOP + PLOT_HEIGHT + 1e-6
    if any(values[: len(categories)] + values[24 : 24 + len(categories)]):
        assert max(bar.height for bar in chart.bars) == PLOT_HEIGHT
    axis = sorted((label for label in chart.labels if label.anchor == "middle"), key=lambda label: label.x)
    for a, b in itertools.pairwise(axis):
        assert b.x - a.x >= (len(a.text) + len(b.text)) / 2 * 6.0
    assert len(chart.table.rows) == len(categories)


def test_rows_are_as_long_as_their_values():
    chart = rows("f", "Funnel", [("Forwards", 8), ("Accepted", 2)], count)
    assert [round(bar.width) for bar in chart.bars] == [round(WIDTH - 1), round((WIDTH - 1) / 4)]
    assert chart.table.rows == (("Forwards", "8"), ("Accepted", "2"))


def test_the_company_sees_its_figures_with_their_numbers(session, world, open_problem, browser):
    problem = open_problem()
    build.accepted(session, world.owner, problem, [world.ann, world.bob])
    build.problem(session, world.owner, world.company.id, "draft", title="A draft for later")
    owner = browser()
    owner.login(world.owner.email)
    html = owner.get(f"/companies/{world.company.id}/figures").text
    charts = charts_in(html)
    assert 'role="img"' in charts["Problems by state"] and '<th scope="row">draft</th>' in charts["Problems by state"]
    assert "Paid and refunded by month (USD)" in charts
    assert "$1,000.00" in charts["Paid and refunded by month (USD)"]
    funnel = charts[f"{problem.title}: from forwards to acceptance"]
    assert "Forwards: 1" in funnel and "Places claimed: 2" in funnel and "Accepted: 1" in funnel
    assert "<details>" in funnel and "<table" in funnel
    assert 'id="payment-records"' in html and "bounty paid" in html


def test_each_payment_record_links_its_receipt_and_a_refund_links_the_payment_s(session, world, open_problem, browser):
    paid = open_problem(title="Paid through Stripe")
    receipt = build.paid_at_stripe(session, paid).receipt_url
    funding.cancel_problem(session, world.owner, paid.id)
    open_problem(title="Funded without Stripe")
    session.commit()
    owner = build.logged_in(browser, world.owner)
    html = owner.get(f"/companies/{world.company.id}/figures").text
    table = re.search(r'<table class="[^"]*table-stack[^"]*" id="payment-records">.*?</table>', html, re.S)
    assert table is not None
    rows = re.findall(r"<tr><td.*?</tr>", table.group(0), re.S)
    link = r'<td data-label="Receipt"[^>]*><a href="([^"]+)" target="_blank" rel="noopener">'
    # Newest first: the problem funded without Stripe, the refund, the payment.
    assert [re.findall(link, row) for row in rows] == [[], [receipt], [receipt]]
    assert "Funded without Stripe" in rows[0] and "refund" in rows[1] and "bounty paid" in rows[2]
    for row in rows:
        labels = re.findall(r'<td data-label="([^"]+)"', row)
        assert labels == ["Date", "Problem", "What", "Amount", "Stripe reference", "Receipt"]


def test_figures_are_for_the_company_s_people_only(world, browser):
    ann = browser()
    ann.login(world.ann.email)
    assert ann.get(f"/companies/{world.company.id}/figures").status_code in (403, 404)


def test_the_company_page_lists_introductions_waiting_for_a_decision_first(session, world, open_problem, browser):
    problem = open_problem()
    build.introduction(session, problem, [world.ann], candidate=world.dev)
    owner = browser()
    owner.login(world.owner.email)
    html = owner.get(f"/companies/{world.company.id}").text
    waiting = html.index("Waiting for your decision (1)")
    assert waiting < html.index('<h2 class="h4">Problems</h2>')
    assert world.dev.name in html[waiting:] or world.dev.email in html[waiting:]


def test_a_member_sees_earnings_over_time_and_their_giving_record(session, world, open_problem, browser):
    problem = open_problem()
    build.accepted(session, world.owner, problem, [world.ann, world.bob])
    ann = browser()
    ann.login(world.ann.email)
    charts = charts_in(ann.get("/me/earnings").text)
    earnings = charts["Your earnings at the end of each month (USD)"]
    assert "Held" in earnings and "Available" in earnings and "Paid" in earnings
    assert "<details>" in earnings
    assert "Problems forwarded: 1" in charts["Your giving record"]
