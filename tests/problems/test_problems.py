"""Problems through the pages (CSRF on) and the API: posting, validation, split rules and their
preview, safe Markdown, the lifecycle and its time-based jobs, the board and the OpenAPI document."""

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select, update

from marketplace.accounts import service as accounts
from marketplace.db import utcnow
from marketplace.money import format_money
from marketplace.problems import service as problems
from marketplace.problems import splits
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral, ReferralStatus
from marketplace.workflows import funding
from tests.builders import logged_in
from tests.conftest import problem_input


def count_problems(session) -> int:
    value = session.scalar(select(func.count()).select_from(Problem))
    session.commit()
    return value


def reload(session, problem_id: int) -> Problem:
    session.expire_all()
    problem = session.get(Problem, problem_id)
    session.commit()
    return problem


def page_form(**overrides) -> dict:
    """Every field of ProblemForm, filled in as a person would."""
    values = {
        "title": "Fix our Postgres replication lag",
        "description": "Replicas fall minutes behind at peak hours; we need someone who fixed it.",
        "skills": "Postgres, replication",
        "bounty": "1,500.50",
        "currency": "usd",
        "split_rule": "flat_fee_finder_rest",
        "hop_fee_percent": "4",
        "finder_percent": "75",
        "max_depth": "6",
        "guarantee_days": "45",
        "candidate_share_percent": "5",
        "visibility": "public",
        "expires_on": (date.today() + timedelta(days=20)).isoformat(),
        "save_draft": "Save as draft",
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def new_problem_url(world) -> str:
    return f"/companies/{world.company.id}/problems/new"


def ids(response) -> list[int]:
    return [item["id"] for item in response.json["items"]]


def card_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'problem-card" href="/problems/(\d+)"', html)]


# Posting through the page ----------------------------------------------------------------------


def test_owner_posts_draft_through_page_edits_it_then_publishes(browser, world, session):
    olivia = logged_in(browser, world.owner)
    expires_on = date.today() + timedelta(days=20)

    saved = olivia.submit(new_problem_url(world), page_form(expires_on=expires_on.isoformat()))
    assert saved.status_code == 200 and "Saved as a draft." in saved.text
    problem = session.scalar(select(Problem))
    skills = [s.slug for s in problem.skills]
    session.commit()
    assert problem.status == ProblemStatus.DRAFT and problem.published_at is None
    assert problem.title == "Fix our Postgres replication lag"
    assert (problem.bounty_amount, problem.currency) == (150050, "usd")
    assert skills == ["postgresql", "replication"]
    assert problem.split_rule == "flat_fee_finder_rest"
    assert problem.split_params == {"f_bps": 400, "H": 5}
    assert (problem.max_depth, problem.guarantee_days, problem.candidate_share_bps) == (6, 45, 500)
    assert problem.visibility.value == "public"
    assert problem.expires_at == datetime.combine(expires_on, time(23, 59, 59), tzinfo=UTC)
    assert problem.created_by_id == world.owner.id and problem.company_id == world.company.id
    assert problem.platform_fee_bps == 1000

    edit_url = f"/problems/{problem.id}/edit"
    form_page = olivia.get(edit_url).text
    assert 'value="1500.50"' in form_page and "Edit draft" in form_page
    edited = olivia.submit(
        edit_url,
        page_form(
            title="Fix our replication lag for good",
            bounty="2000",
            split_rule="finder_and_first",
            finder_percent="70",
            visibility="private",
        ),
    )
    assert "Saved." in edited.text
    problem = reload(session, problem.id)
    assert problem.status == ProblemStatus.DRAFT
    assert (problem.title, problem.bounty_amount) == ("Fix our replication lag for good", 200000)
    assert (problem.split_rule, problem.split_params) == ("finder_and_first", {"s_bps": 7000})
    assert problem.visibility.value == "private"

    published = olivia.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/publish")
    assert "Published. Fund the bounty" in published.text
    problem = reload(session, problem.id)
    assert problem.status == ProblemStatus.AWAITING_PAYMENT and problem.published_at is not None
    assert count_problems(session) == 1


def test_publish_button_on_the_new_problem_page_publishes_at_once(browser, world, session):
    olivia = logged_in(browser, world.owner)
    form = page_form(save_draft=None, publish="Publish", split_rule="equal")

    response = olivia.submit(new_problem_url(world), form)

    assert "Published. Fund the bounty to open it to referrals." in response.text
    problem = session.scalar(select(Problem))
    session.commit()
    assert problem.status == ProblemStatus.AWAITING_PAYMENT
    assert (problem.split_rule, problem.split_params) == ("equal", {})


PAST = (date.today() - timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": "Fix"}, "between 5 and 200 characters"),
        ({"bounty": "100.505"}, "USD amounts have at most 2 decimal places."),
        ({"bounty": "abc"}, "Write the amount as a number"),
        ({"bounty": "9.99"}, "Bounty amount must be a whole number from 1000"),
        ({"currency": "xyz"}, "Not a valid choice"),
        ({"expires_on": PAST}, "Pick a date in the future."),
        ({"hop_fee_percent": "20"}, "f_bps * H must be at most 5000"),
        ({"split_rule": "finder_and_first", "finder_percent": "40"}, "between 50 and 100"),
        ({"split_rule": "no-such-rule"}, "Not a valid choice"),
        ({"skills": ""}, "This field is required."),
        ({"skills": " , ,"}, "Name at least one skill the expert needs."),
        ({"max_depth": "0"}, "A chain has from 1 to 12 links."),
        ({"max_depth": ""}, "This field is required."),
        ({"guarantee_days": "-1"}, "From 0 (paid at once) to 365 days."),
    ],
    ids=[
        "title-too-short",
        "bounty-3-decimals",
        "bounty-not-a-number",
        "bounty-below-minimum",
        "unknown-currency",
        "past-expiry",
        "hop-fee-times-hops-too-big",
        "finder-share-too-low",
        "unknown-split-rule",
        "no-skills",
        "only-blank-skills",
        "chain-of-no-links-is-out-of-range-not-missing",
        "no-longest-chain",
        "negative-guarantee",
    ],
)
def test_invalid_problem_form_rerenders_with_message_and_creates_nothing(browser, world, session, overrides, message):
    olivia = logged_in(browser, world.owner)

    response = olivia.submit(new_problem_url(world), page_form(**overrides))

    assert response.status_code == 200
    assert "Post a problem" in response.text
    assert message in response.text
    assert count_problems(session) == 0


def test_a_guarantee_of_zero_days_is_a_value_not_a_missing_field(browser, world, session):
    """0 days is typed data: the problem is saved with no guarantee period."""
    olivia = logged_in(browser, world.owner)

    response = olivia.submit(new_problem_url(world), page_form(guarantee_days="0"))

    assert response.status_code == 200 and "Saved as a draft." in response.text
    assert session.scalars(select(Problem.guarantee_days)).one() == 0
    assert "There is no guarantee period" in response.text


def test_problem_form_of_a_company_one_is_not_in_says_why(browser, world, session):
    """A non-member is told they are not a member (403) and how to get in, not "No such company"."""
    other = accounts.create_company(session, world.outsider, name="Other Corp")
    session.commit()
    olivia = logged_in(browser, world.owner)

    refused = olivia.get(f"/companies/{other.id}/problems/new")
    assert refused.status_code == 403
    assert "You are not a member of this company" in refused.text and "invite you" in refused.text
    assert olivia.get(f"/companies/{other.id + 100}/problems/new").status_code == 404
    assert olivia.get(new_problem_url(world)).status_code == 200
    assert browser().get(new_problem_url(world)).status_code == 302  # To the log-in page.


# Posting through the API -----------------------------------------------------------------------


def api_body(world, **overrides) -> dict:
    body = {
        "company_id": world.company.id,
        "title": "Speed up our Kubernetes deploys",
        "description": "Deploys take forty minutes; we want them under five without losing safety.",
        "skills": ["K8s", "ci"],
        "bounty": {"amount": 250_000, "currency": "eur"},
        "split_rule": "halving",
        "max_depth": 4,
        "guarantee_days": 14,
        "candidate_share_bps": 250,
        "visibility": "private",
        "expires_at": (utcnow() + timedelta(days=10)).isoformat(),
        "publish": False,
    }
    body.update(overrides)
    return body


def test_api_posts_draft_with_every_field_and_updates_it(api, world, session):
    owner = api(world.owner)

    created = owner.post("/problems", api_body(world))
    assert created.status_code == 201, created.json
    body = created.json
    assert body["status"] == "draft" and body["visibility"] == "private"
    assert sorted(body["skills"]) == ["ci", "kubernetes"]
    assert body["bounty"] == {"amount": 250_000, "currency": "eur"}
    assert (body["split_rule"], body["split_params"]) == ("halving", {})
    assert (body["max_depth"], body["guarantee_days"], body["candidate_share_bps"]) == (4, 14, 250)
    assert len(body["payout_preview"]) == 4, "a preview row for each chain length up to max_depth"

    updated = owner.put(
        f"/problems/{body['id']}",
        api_body(world, split_rule="flat_fee_finder_rest", split_params={"f_bps": 1000, "H": 3}),
    )
    assert updated.status_code == 200, updated.json
    assert updated.json["split_params"] == {"f_bps": 1000, "H": 3}
    problem = reload(session, body["id"])
    assert problem.split_rule == "flat_fee_finder_rest" and problem.status == ProblemStatus.DRAFT


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": "Fix"},
        {"bounty": {"amount": 999, "currency": "usd"}},
        {"bounty": {"amount": 100_000, "currency": "xyz"}},
        {"bounty": {"amount": 1000.5, "currency": "usd"}},
        {"expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        {"split_rule": "flat_fee_finder_rest", "split_params": {"f_bps": 2000, "H": 3}},
        {"split_rule": "flat_fee_finder_rest", "split_params": {"f_bps": 100, "H": 9}},
        {"split_rule": "equal", "split_params": {"f_bps": 100}},
        {"split_rule": "nope"},
        {"skills": []},
        {"visibility": "secret"},
    ],
    ids=[
        "title-too-short",
        "bounty-below-minimum",
        "unknown-currency",
        "fractional-amount",
        "past-expiry",
        "f-times-h-too-big",
        "h-beyond-max-depth",
        "params-of-another-rule",
        "unknown-rule",
        "no-skills",
        "bad-visibility",
    ],
)
def test_api_refuses_invalid_problem_with_422_and_creates_nothing(api, world, session, overrides):
    response = api(world.owner).post("/problems", api_body(world, **overrides))

    assert response.status_code == 422, response.json
    assert set(response.json["error"]) == {"code", "message"}
    assert count_problems(session) == 0


def test_api_posting_needs_a_token_and_membership(api, world, session):
    assert api().post("/problems", api_body(world)).status_code == 401
    assert api(world.outsider).post("/problems", api_body(world)).status_code == 404
    assert count_problems(session) == 0


# Split rules and the payout preview ------------------------------------------------------------


class Cells(HTMLParser):
    """The text of each table cell of the payout preview, row by row."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def preview_rows(html: str) -> list[list[str]]:
    table = re.search(r'<table class="table table-sm money[^"]*">.*?</table>', html, re.S)
    assert table, "the problem page has a payout preview"
    parser = Cells()
    parser.feed(table.group(0))
    return [row for row in parser.rows if row]


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ("equal", None),
        ("halving", None),
        ("flat_fee_finder_rest", {"f_bps": 400, "H": 3}),
        ("uniform_halving", None),
        ("finder_and_first", {"s_bps": 7000}),
    ],
)
def test_problem_page_shows_exact_payout_preview_for_chains_of_one_to_six(client, open_problem, session, rule, params):
    problem = open_problem(bounty_amount=100_001, split_rule=rule, split_params=params, candidate_share_bps=300)
    stored = reload(session, problem.id)
    assert stored.split_rule == rule
    expected_params = splits.normalize_params(rule, params, max_depth=6)
    assert stored.split_params == expected_params

    rows = preview_rows(client.get(f"/problems/{problem.id}").text)

    expected = splits.preview(
        100_001, rule=rule, params=expected_params, platform_fee_bps=1000, candidate_share_bps=300
    )
    assert len(rows) == len(expected) == 6
    usd = partial(format_money, currency="usd")
    for links, (row, settlement) in enumerate(zip(rows, expected, strict=True), start=1):
        shares = " · ".join(usd(share) for share in settlement.shares)
        thanks = f" + {usd(settlement.candidate_share)} thank-you to the expert"
        assert row == [
            f"{links} link{'' if links == 1 else 's'}",
            shares + thanks,
            usd(settlement.platform_fee),
            usd(settlement.remainder),
        ]


# Markdown --------------------------------------------------------------------------------------


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_description_markdown_is_rendered_and_sanitised(client, open_problem):
    description = (
        "We need **bold** ideas.\n\n"
        "<script>alert(1)</script>\n\n"
        "[click me](javascript:alert(1)) and [JS](JAVASCRIPT:alert(2))\n\n"
        '<img src="x" onerror="alert(1)">\n\n'
        '<a href="https://example.com" onclick="alert(3)">raw link</a>\n\n'
        "[docs](https://example.com/docs)"
    )
    problem = open_problem(description=description)

    html = client.get(f"/problems/{problem.id}").text
    article = re.search(r'<article class="mb-4">(.*?)</article>', html, re.S).group(1)

    assert "<strong>bold</strong>" in article
    parser = Elements()
    parser.feed(article)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "img" not in tags
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not attrs.get("href", "").strip().lower().startswith("javascript"), (tag, attrs)
    links = [attrs for tag, attrs in parser.tags if tag == "a"]
    assert [link["href"] for link in links] == ["https://example.com/docs"]
    assert "noopener" in links[0]["rel"]
    assert "<script>alert" not in html


# Lifecycle -------------------------------------------------------------------------------------


def test_draft_can_be_edited_but_published_problem_cannot(api, browser, world, session):
    owner = api(world.owner)
    draft = owner.post("/problems", api_body(world)).json

    assert owner.put(f"/problems/{draft['id']}", api_body(world, title="A better title")).status_code == 200
    assert owner.post(f"/problems/{draft['id']}/publish").status_code == 200

    refused = owner.put(f"/problems/{draft['id']}", api_body(world, title="Changed after publishing"))
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "problem_state"
    assert owner.post(f"/problems/{draft['id']}/publish").status_code == 409

    olivia = logged_in(browser, world.owner)
    page = olivia.submit(f"/problems/{draft['id']}/edit", page_form(title="Changed on the page"))
    assert "Only a draft can be edited" in page.text
    problem = reload(session, draft["id"])
    assert problem.title == "A better title" and problem.status == ProblemStatus.AWAITING_PAYMENT


@pytest.mark.parametrize("status", ["draft", "awaiting_payment", "open"])
@pytest.mark.parametrize("manager", ["owner", "admin"])
def test_manager_cancels_from_draft_awaiting_or_open_but_employee_cannot(api, world, session, status, manager):
    problem = problems.create_problem(
        session,
        world.owner,
        world.company.id,
        problem_input(),
        publish=status != "draft",
        platform_fee_bps=1000,
    )
    if status == "open":
        funding.fund_problem(session, problem.id)
    session.commit()

    denied = api(world.employee).post(f"/problems/{problem.id}/cancel")
    assert denied.status_code == 403
    assert reload(session, problem.id).status.value == status

    cancelled = api(getattr(world, manager)).post(f"/problems/{problem.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    problem = reload(session, problem.id)
    assert problem.status == ProblemStatus.CANCELLED and problem.closed_at is not None
    assert api(world.owner).post(f"/problems/{problem.id}/cancel").status_code == 409


def test_cancel_from_the_page_expires_pending_referrals(browser, open_problem, world, session):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    pending = chains.forward(session, world.ann, problem.id, to_email="zed@example.com")
    session.commit()

    ethan = logged_in(browser, world.employee)
    denied = ethan.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/cancel")
    assert denied.status_code == 403
    olivia = logged_in(browser, world.owner)
    done = olivia.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/cancel")

    assert "The problem is cancelled." in done.text
    assert reload(session, problem.id).status == ProblemStatus.CANCELLED
    assert session.get(Referral, pending.id).status == ReferralStatus.EXPIRED
    session.commit()


def test_bounty_is_funded_only_from_awaiting_payment(browser, world, session):
    draft = problems.create_problem(
        session, world.owner, world.company.id, problem_input(), publish=False, platform_fee_bps=1000
    )
    session.commit()
    olivia = logged_in(browser, world.owner)
    fund = f"/problems/{draft.id}/fund"

    assert olivia.submit(f"/problems/{draft.id}", action=fund).status_code == 409
    assert reload(session, draft.id).status == ProblemStatus.DRAFT

    olivia.submit(f"/problems/{draft.id}", action=f"/problems/{draft.id}/publish")
    ethan = logged_in(browser, world.employee)
    assert ethan.submit(f"/problems/{draft.id}", action=fund).status_code == 403
    assert reload(session, draft.id).status == ProblemStatus.AWAITING_PAYMENT

    funded = olivia.submit(f"/problems/{draft.id}", action=fund)
    assert "The bounty is funded" in funded.text
    problem = reload(session, draft.id)
    assert problem.status == ProblemStatus.OPEN and problem.funded_at is not None

    assert olivia.submit(f"/problems/{draft.id}", action=fund).status_code == 409
    assert reload(session, draft.id).status == ProblemStatus.OPEN


@pytest.mark.parametrize("command", [["problems", "expire"], ["worker", "--once"]], ids=["problems-expire", "worker"])
def test_expiry_job_closes_overdue_problems_and_their_pending_work(runner, open_problem, world, session, command):
    overdue = open_problem(title="Overdue open problem")
    root = chains.pick_from_board(session, world.ann, overdue.id)
    sent = chains.forward(session, world.ann, overdue.id, to_email="zed@example.com")
    waiting = introductions.introduce(
        session,
        world.ann,
        overdue.id,
        candidate_email="dev@example.com",
        message="Dev has fixed exactly this before.",
    )
    chains.pick_from_board(session, world.bob, overdue.id)
    proposed = introductions.introduce(
        session,
        world.bob,
        overdue.id,
        candidate_user_id=world.bob.id,
        message="I have fixed exactly this before.",
    )
    unpaid = problems.create_problem(
        session,
        world.owner,
        world.company.id,
        problem_input(title="Overdue unpaid problem"),
        publish=True,
        platform_fee_bps=1000,
    )
    draft = problems.create_problem(
        session,
        world.owner,
        world.company.id,
        problem_input(title="Overdue draft"),
        publish=False,
        platform_fee_bps=1000,
    )
    cancelled = open_problem(title="Overdue but cancelled")
    funding.cancel_problem(session, world.owner, cancelled.id)
    current = open_problem(title="Still running")
    chains.pick_from_board(session, world.cleo, current.id)
    current_sent = chains.forward(session, world.cleo, current.id, to_email="yan@example.com")
    session.commit()
    assert proposed.status == IntroductionStatus.PROPOSED
    past = utcnow() - timedelta(minutes=5)
    session.execute(
        update(Problem).where(Problem.id.in_([overdue.id, unpaid.id, draft.id, cancelled.id])).values(expires_at=past)
    )
    session.commit()

    result = runner.invoke(args=command)

    assert result.exit_code == 0, result.output
    assert str(overdue.id) in result.output and str(unpaid.id) in result.output
    session.expire_all()
    status = {p.id: p.status for p in session.scalars(select(Problem))}
    # The worker also performs the refunds that closing a funded problem queued.
    refunded = command == ["worker", "--once"]
    assert status == {
        overdue.id: ProblemStatus.REFUNDED if refunded else ProblemStatus.EXPIRED,
        unpaid.id: ProblemStatus.EXPIRED,
        draft.id: ProblemStatus.DRAFT,
        cancelled.id: ProblemStatus.REFUNDED if refunded else ProblemStatus.CANCELLED,
        current.id: ProblemStatus.OPEN,
    }
    assert session.get(Problem, overdue.id).closed_at is not None
    assert session.get(Referral, sent.id).status == ReferralStatus.EXPIRED
    assert session.get(Referral, root.id).status == ReferralStatus.CLAIMED
    assert session.get(Introduction, waiting.id).status == IntroductionStatus.EXPIRED
    assert session.get(Introduction, proposed.id).status == IntroductionStatus.EXPIRED
    assert session.get(Referral, current_sent.id).status == ReferralStatus.SENT
    session.commit()

    again = runner.invoke(args=command)
    reports = [line for line in again.output.splitlines() if not line.startswith("worker ")]
    assert again.exit_code == 0 and not any(str(overdue.id) in line for line in reports)


# The board -------------------------------------------------------------------------------------


def test_board_text_search_covers_title_and_description_case_insensitively(api, client, open_problem):
    in_title = open_problem(title="Replication lag at peak")
    in_description = open_problem(
        title="Slow reports", description="Our REPLICATION setup makes reports slow at night."
    )
    open_problem(title="Kubernetes upgrade", description="We are stuck on an old cluster version.")

    found = ids(api().get("/problems?q=rEpLiCaTiOn"))
    assert sorted(found) == sorted([in_title.id, in_description.id])
    assert card_ids(client.get("/problems?q=replication").text) == found
    assert ids(api().get("/problems?q=nothing-like-this")) == []


def test_board_search_takes_percent_and_underscore_literally(api, client, open_problem):
    """A "%" or "_" typed in the search is that character, not LIKE's "anything"."""
    percent = open_problem(title="Reach 100% uptime on our API")
    underscore = open_problem(title="Rename every user_id column")
    open_problem(title="Reach 1000 requests a second")
    open_problem(title="Rename every user id in the logs")

    assert ids(api().get("/problems?q=100%25")) == [percent.id]
    assert ids(api().get("/problems?q=user_id")) == [underscore.id]
    assert ids(api().get("/problems?q=%25")) == [percent.id]
    assert ids(api().get("/problems?q=_")) == [underscore.id]
    assert card_ids(client.get("/problems?q=100%25").text) == [percent.id]


def test_board_skill_filter_understands_aliases(api, client, open_problem):
    postgres = open_problem(skills=["PostgreSQL"])
    open_problem(title="Cluster upgrade", skills=["k8s"])

    for skill in ("postgres", "PostgreSQL", " pg "):
        assert ids(api().get("/problems", query_string={"skill": skill})) == [postgres.id]
    assert card_ids(client.get("/problems?skill=postgres").text) == [postgres.id]
    assert len(ids(api().get("/problems?skill=kubernetes"))) == 1


def test_board_bounty_range_is_major_units_on_page_and_minor_units_in_api(api, client, open_problem):
    small = open_problem(title="Small bounty", bounty_amount=50_000)
    middle = open_problem(title="Middle bounty", bounty_amount=150_050)
    large = open_problem(title="Large bounty", bounty_amount=500_000)

    page = client.get("/problems?min_bounty=1,000&max_bounty=1500.50").text
    assert card_ids(page) == [middle.id]
    assert ids(api().get("/problems?min_bounty=100000&max_bounty=150050")) == [middle.id]
    assert sorted(ids(api().get("/problems?min_bounty=150050"))) == sorted([middle.id, large.id])
    assert ids(api().get("/problems?max_bounty=50000")) == [small.id]
    assert ids(api().get("/problems?min_bounty=99999999999999999999999")) == []


def test_board_sorts_by_newest_bounty_and_closing_date(api, client, open_problem):
    now = utcnow()
    first = open_problem(title="First posted", bounty_amount=300_000, expires_at=now + timedelta(days=9))
    second = open_problem(title="Second posted", bounty_amount=100_000, expires_at=now + timedelta(days=3))
    third = open_problem(title="Third posted", bounty_amount=200_000, expires_at=now + timedelta(days=30))

    expected = {
        "newest": [third.id, second.id, first.id],
        "bounty": [first.id, third.id, second.id],
        "closing": [second.id, first.id, third.id],
    }
    for sort, order in expected.items():
        assert ids(api().get(f"/problems?sort={sort}")) == order, sort
        assert card_ids(client.get(f"/problems?sort={sort}").text) == order, sort
    assert ids(api().get("/problems")) == expected["newest"]


def test_board_paginates_twenty_per_page_with_next_links(api, client, world, session):
    for number in range(25):
        problem = problems.create_problem(
            session,
            world.owner,
            world.company.id,
            problem_input(title=f"Problem number {number}"),
            publish=True,
            platform_fee_bps=1000,
        )
        funding.fund_problem(session, problem.id)
    session.commit()

    first, second = api().get("/problems").json, api().get("/problems?page=2").json
    assert (len(first["items"]), first["next_page"], first["total"]) == (20, 2, 25)
    assert (len(second["items"]), second["next_page"]) == (5, None)
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert api().get("/problems?page=3").json["items"] == []

    page_one = client.get("/problems?q=number").text
    assert len(card_ids(page_one)) == 20 and "25 problems" in page_one
    assert 'href="/problems?q=number&amp;page=2">Next' in page_one
    page_two = client.get("/problems?q=number&page=2").text
    assert len(card_ids(page_two)) == 5
    assert ">Next<" not in page_two and 'href="/problems?q=number&amp;page=1">Previous' in page_two


def test_private_problem_is_never_on_the_board_nor_reachable_by_outsiders(api, browser, client, open_problem, world):
    public = open_problem(title="Public problem")
    private = open_problem(title="Private problem", visibility="private")
    outsider_api = api(world.outsider)
    outsider_page = logged_in(browser, world.outsider)

    for board in (api().get("/problems"), outsider_api.get("/problems")):
        assert ids(board) == [public.id]
    assert ids(outsider_api.get("/problems?q=private")) == []
    assert card_ids(client.get("/problems").text) == [public.id]
    assert card_ids(outsider_page.get("/problems").text) == [public.id]
    assert "Private problem" not in client.get("/").text

    for response in (
        client.get(f"/problems/{private.id}"),
        outsider_page.get(f"/problems/{private.id}"),
        api().get(f"/problems/{private.id}"),
        outsider_api.get(f"/problems/{private.id}"),
    ):
        assert response.status_code == 404
        assert "Private problem" not in response.text
    assert api(world.employee).get(f"/problems/{private.id}").status_code == 200
    assert logged_in(browser, world.employee).get(f"/problems/{private.id}").status_code == 200


def test_draft_is_invisible_to_non_members(api, browser, client, world, session):
    draft = problems.create_problem(
        session,
        world.owner,
        world.company.id,
        problem_input(title="Secret draft"),
        publish=False,
        platform_fee_bps=1000,
    )
    session.commit()
    outsider = logged_in(browser, world.outsider)

    assert client.get(f"/problems/{draft.id}").status_code == 404
    assert outsider.get(f"/problems/{draft.id}").status_code == 404
    assert outsider.get(f"/problems/{draft.id}/edit").status_code == 404
    assert api().get(f"/problems/{draft.id}").status_code == 404
    assert api(world.outsider).get(f"/problems/{draft.id}").status_code == 404
    assert ids(api(world.outsider).get("/problems?status=draft")) == []
    assert ids(api().get("/problems?status=draft")) == []

    assert api(world.employee).get(f"/problems/{draft.id}").status_code == 200
    assert ids(api(world.employee).get("/problems?status=draft")) == [draft.id]


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-1",
        "page=1.5",
        "page=%C2%B2",  # '²': a digit to str.isdigit, not a number to int
        "page=99999999999999999999",
        "sort=nope",
        "min_bounty=abc",
        "max_bounty=1.234",
        "min_bounty=NaN",
        "min_bounty=sNaN",
        "min_bounty=Infinity",
        "min_bounty=1e999999999",
        "min_bounty=99999999999999999999",
    ],
)
def test_invalid_board_query_on_the_page_is_the_board_with_a_message(client, query):
    """A filter that cannot be read answers 400 with the board itself, the mistake named above it
    and every open problem listed, never an error page in its place."""
    response = client.get(f"/problems?{query}")

    assert response.status_code == 400, response.status_code
    assert "Open problems" in response.text and "data-board-message" in response.text
    assert "Showing every open problem instead." in response.text


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=99999999999999999999",
        "sort=nope",
        "min_bounty=abc",
        "min_bounty=1.5",
        "max_bounty=NaN",
        "status=nope",
    ],
)
def test_invalid_board_query_in_the_api_is_4xx_json_not_500(api, query):
    response = api().get(f"/problems?{query}")

    assert 400 <= response.status_code < 500, response.status_code
    assert set(response.json["error"]) == {"code", "message"}


# The OpenAPI document --------------------------------------------------------------------------


def test_openapi_document_lists_problem_paths_and_bearer_security(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.data)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/problems"])
    assert {"get", "put"} <= set(paths["/api/v1/problems/{problem_id}"])
    assert "post" in paths["/api/v1/problems/{problem_id}/cancel"]
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
