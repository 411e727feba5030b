"""Every page and API list runs a fixed, small number of SQL statements, however many items it
shows (docs/performance.md, "Statements per page"): each is rendered with 10 items and again
with 200, and both counts must be equal and at most ``MOST``. ``Prepared`` statements count too.
"""

import pytest

from marketplace.accounts import service as accounts
from marketplace.ledger import donations
from marketplace.referrals import chains, introductions
from marketplace.webhooks import service as webhooks
from marketplace.webhooks.models import WebhookAttempt
from marketplace.workflows import settlement as settlement_workflow
from tests import builders as build
from tests.statements import statements

MOST = 10
FEW, MANY = 10, 200


def count(app, request) -> tuple[int, str]:
    """Statements run by ``request()``, which must succeed; the second call is measured so that
    per-process caches (the reach index, compiled statements) are warm, as in production."""
    response = request()
    assert response.status_code == 200, response.status_code
    with statements(app) as log:
        response = request()
    assert response.status_code == 200, response.status_code
    return len(log), str(log)


def assert_flat(app, request, grow) -> None:
    """The page runs as many statements with FEW items as with MANY, and at most MOST."""
    grow(FEW)
    few, few_log = count(app, request)
    grow(MANY - FEW)
    many, many_log = count(app, request)
    assert few == many, f"{few} statements with {FEW} items, {many} with {MANY}:\n{many_log}"
    assert many <= MOST, f"{many} statements:\n{many_log}"


@pytest.fixture
def logged_in(browser):
    def make(user):
        person = browser()
        person.login(user.email)
        return person

    return make


@pytest.fixture
def add_problems(session, world):
    def add(n: int) -> None:
        for i in range(n):
            build.problem(session, world.owner, world.company.id, "open", title=f"Problem number {i} needs an expert")

    return add


def test_the_board(app, client, add_problems):
    assert_flat(app, lambda: client.get("/problems"), add_problems)


def test_the_board_logged_in(app, world, logged_in, add_problems):
    ann = logged_in(world.ann)
    assert_flat(app, lambda: ann.get("/problems"), add_problems)


def test_the_api_list_of_problems(app, world, api, add_problems):
    ann = api(world.ann)
    assert_flat(app, lambda: ann.get("/problems"), add_problems)


def test_the_home_page(app, client, add_problems):
    assert_flat(app, lambda: client.get("/"), add_problems)


@pytest.fixture
def members(session, make_user):
    made = []

    def more(n: int) -> list:
        start = len(made)
        made.extend(make_user(f"Member {start + i}", f"member{start + i}@example.com") for i in range(n))
        return made[start:]

    return more


def introduce_from_the_board(session, member, problem) -> None:
    """The member picks the problem from the board and introduces an expert of their own."""
    chains.pick_from_board(session, member, problem.id)
    introductions.introduce(
        session, member, problem.id, candidate_email=f"expert-of-{member.id}@elsewhere.example",
        message="An expert I worked with on exactly this.",
    )  # fmt: skip


def introductions_grow(session, problem, members):
    """``grow(n)``: n more members each pick the problem from the board and introduce an expert."""

    def grow(n: int) -> None:
        for member in members(n):
            introduce_from_the_board(session, member, problem)
        session.commit()

    return grow


def test_the_problem_page_for_the_company(app, session, world, open_problem, logged_in, members):
    problem = open_problem()
    owner = logged_in(world.owner)

    grow = introductions_grow(session, problem, members)
    assert_flat(app, lambda: owner.get(f"/problems/{problem.id}"), grow)


@pytest.mark.parametrize("listing", ["introductions", "tree"])
def test_the_api_lists_of_a_problem(listing, app, session, world, open_problem, api, members):
    problem = open_problem()
    owner = api(world.owner)

    grow = introductions_grow(session, problem, members)
    assert_flat(app, lambda: owner.get(f"/problems/{problem.id}/{listing}"), grow)


def test_the_inbox_page_and_api(app, session, world, open_problem, logged_in, api, members):
    ann_page, ann_api = logged_in(world.ann), api(world.ann)

    def grow(n: int) -> None:
        for member in members(n):
            problem = open_problem()
            chains.pick_from_board(session, member, problem.id)
            chains.forward(session, member, problem.id, to_user_id=world.ann.id)
        session.commit()

    assert_flat(app, lambda: ann_page.get("/notifications"), grow)
    assert_flat(app, lambda: ann_api.get("/me/notifications"), grow)


def test_the_problem_page_for_a_chain_member(app, session, world, open_problem, logged_in, members):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    session.commit()
    ann = logged_in(world.ann)

    def grow(n: int) -> None:
        for member in members(n):
            referral = chains.forward(session, world.ann, problem.id, to_user_id=member.id)
            chains.claim(session, member, referral.token)
        session.commit()

    assert_flat(app, lambda: ann.get(f"/problems/{problem.id}"), grow)


@pytest.mark.parametrize(
    ("through", "path"),
    [
        ("page", "/dashboard"),
        ("page", "/dashboard/received"),
        ("api", "/me/referrals?list=received&limit=100"),
        ("api", "/me/introductions?list=received&limit=100"),
    ],
    ids=["dashboard", "a-list-on-its-own-page", "the-api-referrals", "the-api-introductions"],
)
def test_the_dashboard(app, session, world, open_problem, logged_in, api, members, through, path):
    """The dashboard and the member's lists, on their pages and over the API."""
    ann = logged_in(world.ann) if through == "page" else api(world.ann)

    def grow(n: int) -> None:
        for member in members(n):
            problem = open_problem()
            chains.pick_from_board(session, member, problem.id)
            chains.forward(session, member, problem.id, to_user_id=world.ann.id)
            introductions.introduce(session, member, problem.id, candidate_user_id=world.ann.id, message="Ann knows.")
        session.commit()

    assert_flat(app, lambda: ann.get(path), grow)


def test_the_earnings_page(app, session, world, open_problem, logged_in, members):
    cleo = logged_in(world.cleo)

    def grow(n: int) -> None:
        for member in members(n):
            problem = open_problem(guarantee_days=0)
            chains.pick_from_board(session, world.cleo, problem.id)
            introduction = introductions.introduce(
                session, world.cleo, problem.id, candidate_user_id=world.cleo.id, message="I can fix this myself."
            )
            settlement_workflow.accept_introduction(session, world.owner, introduction.id)
            session.commit()
            donations.donate(
                session, world.cleo, to_user_id=member.id, amount=100, currency="usd", key=f"gift-{member.id}"
            )
        session.commit()

    assert_flat(app, lambda: cleo.get("/me/earnings"), grow)


def test_the_company_page(app, session, world, logged_in, members):
    owner = logged_in(world.owner)

    def grow(n: int) -> None:
        for member in members(n):
            _, token = accounts.invite(session, world.owner, world.company.id, email=member.email, role="employee")
            accounts.accept_invitation(session, member, token)
            accounts.invite(session, world.owner, world.company.id, email=f"x{member.email}", role="employee")
        session.commit()

    assert_flat(app, lambda: owner.get(f"/companies/{world.company.id}"), grow)


@pytest.mark.parametrize("listing", ["page", "api"])
def test_the_webhook_delivery_log(listing, app, session, world, logged_in, api):
    """The log shows the newest messages with every attempt: two statements for any number."""
    endpoint, _ = webhooks.create_endpoint(
        session, world.owner, world.company.id, url="http://127.0.0.1:9/hooks", event_types=["problem.funded"]
    )
    session.commit()

    def grow(n: int) -> None:
        for _ in range(n):
            delivery = webhooks.ping(session, world.owner, world.company.id, endpoint.id)
            for status in (500, 200):
                session.add(
                    WebhookAttempt(
                        delivery_id=delivery.id, request_headers={"webhook-id": delivery.webhook_id},
                        request_body="{}", response_status=status, succeeded=status == 200,
                    )
                )  # fmt: skip
        session.commit()

    url = f"/companies/{world.company.id}/webhooks/{endpoint.id}"
    reader = logged_in(world.owner) if listing == "page" else api(world.owner)
    requests = {"page": lambda: reader.get(url), "api": lambda: reader.get(url + "/deliveries")}
    assert_flat(app, requests[listing], grow)


def test_the_company_figures_page(app, session, world, open_problem, logged_in, members):
    """Problems, chains, introductions and payments with their receipts grow; the charts'
    aggregate queries do not."""
    owner = logged_in(world.owner)

    def grow(n: int) -> None:
        for member in members(n):
            problem = open_problem(title=f"A problem for {member.name}")
            build.paid_at_stripe(session, problem)
            introduce_from_the_board(session, member, problem)
        session.commit()

    assert_flat(app, lambda: owner.get(f"/companies/{world.company.id}/figures"), grow)


def test_the_company_page_with_introductions_waiting(app, session, world, open_problem, logged_in, members):
    """The company page's problems (with their skills) and the introductions waiting for its
    decision grow; its statements do not."""
    owner = logged_in(world.owner)

    def grow(n: int) -> None:
        for member in members(n):
            problem = open_problem(title=f"A problem for {member.name}")
            chains.pick_from_board(session, member, problem.id)
            introductions.introduce(
                session, member, problem.id, candidate_user_id=member.id, message="I rebuilt exactly this last year."
            )
        session.commit()

    assert_flat(app, lambda: owner.get(f"/companies/{world.company.id}"), grow)


@pytest.mark.parametrize("viewer", ["company", "chain member"])
def test_a_settled_problem_page(viewer, app, session, world, open_problem, logged_in, members):
    """After the accept the page adds the settlement, its shares, refunds, the dispute and the
    history: still flat, whether the paid chain is short or long and the tree small or large."""

    def settled_with(links: int, others: int):
        problem = open_problem(guarantee_days=30)
        chain = members(links)
        for member in members(others):  # the rest of the tree: members who picked it and stopped
            chains.pick_from_board(session, member, problem.id)
        build.accepted(session, world.owner, problem, chain, world.dev)
        return problem, chain[0]

    counts = []
    for links, others in ((2, FEW), (6, MANY)):
        problem, first_link = settled_with(links, others)
        person = logged_in(world.owner if viewer == "company" else first_link)
        counts.append(count(app, lambda person=person, url=f"/problems/{problem.id}": person.get(url)))
    (few, _), (many, many_log) = counts
    assert few == many, f"{few} statements with a short chain, {many} with a long one:\n{many_log}"
    assert many <= MOST, f"{many} statements:\n{many_log}"
