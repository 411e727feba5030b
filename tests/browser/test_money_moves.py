"""Money moves only after a page has said how much: "Accept and settle" and "Cancel problem" lead
to a confirmation stating the amounts, and the whole loop (post, fund through the emulator's
hosted Checkout, forward, consent, accept) clicked through in the browser."""

from playwright.sync_api import expect
from sqlalchemy import select

from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction
from tests.browser.conftest import log_in, publish_problem
from tests.builders import PASSWORD
from tests.payments.test_payments import emulator, live  # noqa: F401 (fixtures)


def status_of(session, problem_id):
    session.rollback()
    status = session.get(Problem, problem_id).status
    session.rollback()
    return status


def test_accepting_shows_who_is_paid_how_much_before_it_settles(chromium, served, demo_world, session):
    context = chromium.new_context(viewport={"width": 390, "height": 800})
    log_in(context, served, "olivia@acme.example.com")
    page = context.new_page()
    page.goto(f"{served}/problems/{demo_world.deciding_problem_id}")

    page.get_by_role("link", name="Accept and settle…").click()

    amounts = page.locator("[data-confirm=accept]")
    # Bob keeps his name off chains: the company sees a neutral avatar and no name, not his initials.
    expect(amounts).to_contain_text("Link 1: Anonymous member")
    expect(amounts.locator(".avatar-anonymous")).to_have_count(1)
    expect(amounts).not_to_contain_text("BM")
    expect(amounts).to_contain_text("$2,250.00")
    expect(amounts).to_contain_text("Platform fee")
    expect(amounts).to_contain_text("$250.00")  # 10 % of the $2,500.00 bounty
    assert status_of(session, demo_world.deciding_problem_id) == ProblemStatus.OPEN, "nothing moved yet"
    page.get_by_role("button", name="Accept and pay $2,500.00").click()
    expect(page.locator(".alert-success")).to_contain_text("Accepted.")
    assert status_of(session, demo_world.deciding_problem_id) == ProblemStatus.IN_GUARANTEE
    context.close()


def test_cancelling_states_the_refund_before_it_happens(chromium, served, demo_world, session):
    context = chromium.new_context(viewport={"width": 360, "height": 800})
    log_in(context, served, "olivia@acme.example.com")
    page = context.new_page()
    page.goto(f"{served}/problems/{demo_world.deciding_problem_id}")

    page.get_by_role("link", name="Cancel problem…").click()

    confirmation = page.locator("[data-confirm=cancel]")
    expect(confirmation).to_contain_text("The whole bounty, $2,500.00, is refunded")
    expect(confirmation).to_contain_text("1 person holds a place in its chains")
    assert status_of(session, demo_world.deciding_problem_id) == ProblemStatus.OPEN, "nothing moved yet"
    page.get_by_role("link", name="Keep it open").click()
    assert status_of(session, demo_world.deciding_problem_id) == ProblemStatus.OPEN
    page.get_by_role("link", name="Cancel problem…").click()
    page.get_by_role("button", name="Cancel and refund $2,500.00").click()
    expect(page.locator(".alert-info")).to_contain_text("The bounty is on its way back to your card.")
    assert status_of(session, demo_world.deciding_problem_id) == ProblemStatus.CANCELLED
    context.close()


def test_the_split_rule_fields_follow_the_chosen_rule(chromium, served, demo_world):
    """With JavaScript the form shows only the chosen rule's own field; each names its rule."""
    context = chromium.new_context()
    log_in(context, served, "olivia@acme.example.com")
    page = context.new_page()
    page.goto(f"{served}/companies/{demo_world.company_id}/problems/new")

    hop_fee, finder = page.locator("input[name=hop_fee_percent]"), page.locator("input[name=finder_percent]")
    page.select_option("select[name=split_rule]", "flat_fee_finder_rest")
    expect(hop_fee).to_be_visible()
    expect(finder).to_be_hidden()
    page.select_option("select[name=split_rule]", "finder_and_first")
    expect(finder).to_be_visible()
    expect(hop_fee).to_be_hidden()
    context.close()


def test_the_whole_loop_clicked_through(chromium, live, emulator, world, session):  # noqa: F811
    owner_context, ann_context = chromium.new_context(), chromium.new_context()
    dev_context = chromium.new_context(viewport={"width": 390, "height": 800})
    log_in(owner_context, live, world.owner.email, PASSWORD)
    log_in(ann_context, live, world.ann.email, PASSWORD)
    owner = owner_context.new_page()

    # The company posts a problem and goes to the hosted Checkout page; it turns back first.
    owner.goto(f"{live}/companies/{world.company.id}/problems/new")
    problem_id = publish_problem(owner)
    owner.get_by_role("button", name="Fund the bounty").click()
    expect(owner.locator("h1")).to_have_text("Pay")
    owner.locator("#cancel").click()
    expect(owner.locator("[data-payment=cancelled]")).to_contain_text("nothing was charged")
    owner.get_by_role("button", name="Fund the bounty").click()
    owner.fill("input[name=card_number]", "4242424242424242")
    owner.get_by_role("button", name="Pay 2000.00 USD").click()
    expect(owner.locator(".alert-success")).to_contain_text("Payment received")
    assert status_of(session, problem_id) == ProblemStatus.OPEN

    # A member picks it up and introduces the expert, who agrees from the e-mailed link.
    ann = ann_context.new_page()
    ann.goto(f"{live}/problems/{problem_id}")
    ann.get_by_role("button", name="Pick up this problem").click()
    ann.fill("input[name=candidate_email]", "dev@example.com")
    ann.fill("input[name=candidate_name]", "Dev Sharma")
    ann.fill("textarea[name=message]", "Dev rebuilt replication for a 5 TB cluster.")
    ann.get_by_role("button", name="Ask them to agree").click()
    expect(ann.locator(".alert-success")).to_contain_text("We asked them to agree")
    session.rollback()
    token = session.scalars(select(Introduction.consent_token)).one()
    session.rollback()
    dev = dev_context.new_page()
    dev.goto(f"{live}/i/{token}")
    dev.get_by_role("button", name="Yes, introduce me").click()
    expect(dev.locator("[data-introduction-state=proposed]")).to_be_visible()

    # The company accepts, after the page says who gets what.
    owner.goto(f"{live}/problems/{problem_id}")
    owner.get_by_role("link", name="Accept and settle…").click()
    expect(owner.locator("[data-confirm=accept]")).to_contain_text("Link 1: Ann Li")
    expect(owner.locator("[data-confirm=accept]")).to_contain_text("Platform fee")
    owner.get_by_role("button", name="Accept and pay $2,000.00").click()
    expect(owner.locator(".alert-success")).to_contain_text("Accepted.")
    assert status_of(session, problem_id) == ProblemStatus.SETTLED
    for context in (owner_context, ann_context, dev_context):
        context.close()
