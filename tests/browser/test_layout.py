"""Every page people reach fits a phone: no page is wider than the screen at 360, 390 and 414 px
(nor at 1280 px), no badge is stretched out of shape, no request answers 404 (the favicon
included) and the console stays clean."""

import pytest

from tests.browser.conftest import log_in

WIDTHS = (360, 390, 414, 1280)


def visitor_pages(world):
    return [
        "/",
        "/problems",
        f"/problems/{world.deciding_problem_id}",
        f"/r/{world.landing_token}",
        f"/i/{world.consent_token}",
        "/login",
        "/signup",
        "/password/forgot",
    ]


def member_pages(world):
    return [
        "/dashboard",
        "/dashboard/places",
        "/dashboard/introductions-made",
        "/problems",
        f"/problems/{world.settled_problem_id}",
        f"/problems/{world.deciding_problem_id}",
        "/me/earnings",
        "/network",
        "/network/cards",
        f"/network/cards/{world.card_id}/edit",
        "/notifications",
        "/notifications/settings",
        "/companies/new",
        "/profile",
        f"/members/{world.ids['bob']}",
        f"/members/{world.ids['ann']}",
    ]


def owner_pages(world):
    return [
        "/dashboard",
        f"/companies/{world.company_id}",
        f"/companies/{world.company_id}/figures",
        f"/companies/{world.company_id}/problems/new",
        f"/companies/{world.company_id}/webhooks",
        f"/companies/{world.company_id}/webhooks/{world.webhook_endpoint_id}",
        f"/problems/{world.settled_problem_id}",
        f"/problems/{world.deciding_problem_id}",
        f"/problems/{world.private_problem_id}",
        f"/introductions/{world.proposed_introduction_id}/accept",
        f"/problems/{world.deciding_problem_id}/cancel",
        "/me/earnings",
        "/network",
        "/notifications",
        "/profile",
    ]


STRETCHED_BADGES = """[...document.querySelectorAll('.badge')]
    .filter(badge => badge.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(badge).fontSize) + 8)
    .map(badge => badge.textContent.trim())"""


class PageWatch:
    """What went wrong while a page loaded: 404s and console errors."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("response", lambda r: r.status == 404 and self.problems.append(f"404 {r.url}"))
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))


def walk(context, base, paths):
    """Visit each page at each width; return what overflowed or failed, page by page."""
    page = context.new_page()
    watch = PageWatch(page)
    failures = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        for path in paths:
            page.goto(base + path)
            page.wait_for_load_state("load")
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                failures.append(f"{path} at {width}px is {scroll}px wide")
            # A badge is one line of small text; a flex row that squeezes its neighbour stretched
            # one into a tall block beside a title broken into one word a line.
            for badge in page.evaluate(STRETCHED_BADGES):
                failures.append(f"{path} at {width}px: the badge {badge!r} is stretched")
    # The browser asks for /favicon.ico on its own at most once per session; ask as it does.
    favicon = page.goto(base + "/favicon.ico")
    assert favicon is not None and favicon.status == 200
    page.close()
    return failures + watch.problems


@pytest.mark.parametrize(
    "who, pages",
    [(None, visitor_pages), ("ann@example.com", member_pages), ("olivia@acme.example.com", owner_pages)],
    ids=["visitor", "member", "company-owner"],
)
def test_no_page_is_wider_than_a_phone_and_nothing_is_missing(chromium, served, demo_world, who, pages):
    context = chromium.new_context()
    if who:
        log_in(context, served, who)
    failures = walk(context, served, pages(demo_world))
    context.close()
    assert not failures, "\n".join(failures)


def test_a_stacked_row_names_each_column_once(chromium, served, demo_world):
    """On a phone each cell of the dashboard shows its column's name above it (``To``), so the
    "to" that reads the row on a wide screen is not said a second time."""
    context = chromium.new_context()
    log_in(context, served, "ann@example.com")
    page = context.new_page()
    seen = {}
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(served + "/dashboard")
        seen[width] = page.locator('td[data-label="To"]').first.inner_text().strip()
    context.close()
    assert seen[1280].startswith("to ") and seen[390] == seen[1280].removeprefix("to "), seen


def test_the_webhook_events_are_a_group_of_labelled_checkboxes(chromium, served, demo_world):
    """The endpoint form's events are a fieldset named "Events", one labelled checkbox each: drawn
    as a bulleted list inside an input box, a phone put the bullets outside the box."""
    context = chromium.new_context(viewport={"width": 390, "height": 800})
    log_in(context, served, "olivia@acme.example.com")
    page = context.new_page()
    page.goto(f"{served}/companies/{demo_world.company_id}/webhooks")
    group = page.locator("fieldset", has=page.locator("legend", has_text="Events"))
    markers = group.evaluate(
        "g => [...g.querySelectorAll('li')].filter(li => getComputedStyle(li).display === 'list-item').length"
    )
    boxes = group.get_by_role("checkbox")
    count = boxes.count()
    group.get_by_text("problem.cancelled:").click()
    checked = group.get_by_role("checkbox", name="problem.cancelled", exact=False).is_checked()
    context.close()
    assert markers == 0 and count > 5 and checked


def test_an_amount_never_breaks_across_lines_on_a_phone(chromium, served, demo_world):
    """Long words may break anywhere in the page (a pasted address must not widen it), but an
    amount stays whole: the board's cards at 360 px put "$2,500" on one line and ".00" on the next."""
    context = chromium.new_context(viewport={"width": 360, "height": 800})
    log_in(context, served, "bob@example.com")
    page = context.new_page()
    broken = []
    for path in ("/problems", f"/problems/{demo_world.deciding_problem_id}", "/me/earnings", "/dashboard"):
        page.goto(served + path)
        broken += page.evaluate(
            """() => [...document.querySelectorAll('span.money, strong.money, div.money, td.money')]
                .filter(el => { const r = document.createRange(); r.selectNodeContents(el);
                                return r.getClientRects().length > 1; })
                .map(el => location.pathname + ': ' + el.textContent.trim())"""
        )
    context.close()
    assert not broken, broken
