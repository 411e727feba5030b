"""The whole loop through pages only, as the people in it live it: a company owner signs up and
confirms their address from the e-mailed link, sets up the company, invites an employee, posts a
problem and funds it on the emulator's hosted Checkout (a declined card first); the employee
forwards it by e-mail, each member claims from their e-mailed link and forwards on, the last
introduces an expert who consents from the e-mailed link; the company accepts after the page that
states the amounts; the paid members onboard on the hosted page and see their payouts arrive.
Mail and jobs run for real (the outbox through the worker; Stripe's webhooks from the emulator).

Every page of the loop, at 390×844 and 1280×800, is checked with axe-core (no "serious" or
"critical" violation), must not be wider than the window, and is saved as a full-page screenshot
in ``test-artifacts/screenshots/<step>-<person>-<width>.png`` (the CI artifact folder).

Along the way, what people must not do is refused with a clear message and changes nothing:
opening a used claim link again, forwarding to oneself, and a manager of another company
accepting this company's introduction."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral
from tests import builders as build
from tests.browser.conftest import log_in, publish_problem
from tests.builders import PASSWORD
from tests.payments.test_payments import deliver, emulator, live, run_jobs  # noqa: F401 (fixtures)

AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = ({"width": 390, "height": 844}, {"width": 1280, "height": 800})
BLOCKING_IMPACTS = ("serious", "critical")
CARD_DECLINED, CARD_OK = "4000000000000002", "4242424242424242"


class PageCheck:
    """Looks at each page of the loop at both sizes: axe-core's serious and critical findings,
    horizontal overflow, and a full-page screenshot. Failures are gathered so one run lists them
    all; the test fails on them at the end."""

    def __init__(self, base: str):
        self.base = base
        self.failures: list[str] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, step: str, person: str) -> None:
        page.wait_for_load_state("load")  # a click returns once the next page starts, not when it is laid out
        ours = page.url.startswith(self.base)  # the emulator's hosted pages are not ours to fix
        where = f"{step} ({person}, {page.url.removeprefix(self.base)})"
        for size in SIZES:
            page.set_viewport_size(size)
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                self.failures.append(f"{where} at {size['width']}px is {scroll}px wide")
            page.screenshot(path=SCREENSHOTS / f"{step}-{person}-{size['width']}.png", full_page=True)
            if ours:
                self.failures.extend(f"{where} at {size['width']}px: {v}" for v in axe_violations(page))
        page.set_viewport_size(SIZES[0])


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page: rule, impact and the elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=AXE_SCRIPT)
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(str(n['target']) for n in v['nodes'])}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]


def link_in_mail(sent_mail, to: str, path: str) -> str:
    """The newest link to ``path`` in the mail the outbox delivered to ``to`` (the worker runs first)."""
    for message in reversed(sent_mail.to(to)):
        found = re.search(
            r"https?://[^/\s]+(" + re.escape(path) + r"[^\s\"<>]*)", message.get_body(("plain",)).get_content()
        )
        if found:
            return found.group(1)
    raise AssertionError(f"no mail to {to} links to {path}")


def fresh(session, query):
    """Read committed state without holding the database for the requests that follow."""
    session.rollback()
    value = session.scalar(query)
    session.rollback()
    return value


@pytest.fixture
def people(session, make_user):
    """The members and the expert already have accounts; so does a manager of another company."""
    other_owner = make_user("Olivia Other", "olivia@acme.example.com")
    build.company(session, other_owner, name="Acme Data")
    made = {
        "employee": make_user("Ethan Employee", "ethan@northwind.example.com"),
        "ann": make_user("Ann Li"),
        "bob": make_user("Bob Martins"),
        "dev": make_user("Dev Sharma", skills="postgres"),
        "other": other_owner,
    }
    session.commit()
    return made


def test_the_whole_loop_through_pages_only(chromium, live, emulator, app, session, sent_mail, people):  # noqa: F811
    check = PageCheck(live)
    # Playwright injects axe-core as an inline script, which the app's Content-Security-Policy
    # (script-src 'self') rightly blocks; these test contexts alone are told to bypass it.
    contexts = {
        name: chromium.new_context(viewport=SIZES[0], bypass_csp=True)
        for name in ("owner", "employee", "ann", "bob", "dev", "other")
    }
    for name in ("employee", "ann", "bob", "other"):
        log_in(contexts[name], live, people[name].email, PASSWORD)
    pages = {name: context.new_page() for name, context in contexts.items()}
    owner, employee, ann, bob, dev, other = (pages[n] for n in ("owner", "employee", "ann", "bob", "dev", "other"))

    # The owner signs up and confirms the address from the e-mailed link.
    owner.goto(live + "/signup")
    check(owner, "01-signup", "owner")
    owner.fill("input[name=name]", "Nora North")
    owner.fill("input[name=email]", "nora@northwind.example.com")
    owner.fill("input[name=password]", PASSWORD)
    owner.get_by_role("button", name="Create my account").click()
    expect(owner.locator(".alert-success")).to_contain_text("Welcome, Nora North!")
    check(owner, "02-profile", "owner")
    owner.goto(live + link_in_mail(sent_mail, "nora@northwind.example.com", "/verify-email/"))
    check(owner, "03-confirm-address", "owner")
    owner.get_by_role("button", name="Confirm my address").click()
    expect(owner.locator(".alert-success")).to_contain_text("nora@northwind.example.com is confirmed")

    # The company, and an employee invited through the page who joins from the e-mailed link.
    owner.goto(live + "/companies/new")
    check(owner, "04-new-company", "owner")
    owner.fill("input[name=name]", "Northwind Data")
    owner.get_by_role("button", name="Create company").click()
    expect(owner.locator(".alert-success")).to_contain_text("Northwind Data is set up")
    company_id = int(re.search(r"/companies/(\d+)", owner.url).group(1))
    owner.fill("form[action$='/invitations'] input[name=email]", people["employee"].email)
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.locator(".alert-success")).to_contain_text(f"Invitation sent to {people['employee'].email}")
    check(owner, "05-company", "owner")
    employee.goto(live + link_in_mail(sent_mail, people["employee"].email, "/invitations/"))
    check(employee, "06-invitation", "employee")
    employee.get_by_role("button", name="Join Northwind Data").click()
    expect(employee.locator(".alert-success")).to_contain_text("You joined Northwind Data.")

    # The owner posts a problem and funds it: a declined card first, then a good one.
    owner.goto(f"{live}/companies/{company_id}/problems/new")
    check(owner, "07-new-problem", "owner")
    problem_id = publish_problem(owner)
    check(owner, "08-problem-awaiting-payment", "owner")
    owner.get_by_role("button", name="Fund the bounty").click()
    check(owner, "09-checkout", "owner")
    owner.fill("input[name=card_number]", CARD_DECLINED)
    owner.get_by_role("button", name="Pay 2000.00 USD").click()
    expect(owner.locator("body")).to_contain_text("declined")
    check(owner, "10-checkout-declined", "owner")
    deliver(emulator, app)
    status = select(Problem.status).where(Problem.id == problem_id)
    assert fresh(session, status) == ProblemStatus.AWAITING_PAYMENT
    owner.fill("input[name=card_number]", CARD_OK)
    owner.get_by_role("button", name="Pay 2000.00 USD").click()
    expect(owner.locator(".alert-success")).to_contain_text("Payment received")
    deliver(emulator, app)
    owner.reload()
    expect(owner.locator("main")).to_contain_text("Northwind Data · open ·")
    check(owner, "11-problem-open", "owner")
    assert fresh(session, status) == ProblemStatus.OPEN

    # The employee forwards it to Ann by e-mail; Ann claims from the link in her mail.
    employee.goto(f"{live}/problems/{problem_id}")
    check(employee, "12-problem", "employee")
    employee.fill("input[name=to_email]", "ann@example.com")
    employee.fill("textarea[name=note]", "Ann, you know the database people.")
    employee.get_by_role("button", name="Forward").click()
    expect(employee.locator(".alert-success")).to_contain_text("Forwarded.")
    claim_link = link_in_mail(sent_mail, "ann@example.com", "/r/")
    ann.goto(live + claim_link)
    check(ann, "13-referral-landing", "ann")
    ann.get_by_role("button", name="Join the chain").click()
    expect(ann.locator(".alert-success")).to_contain_text("You joined the chain.")
    check(ann, "14-problem-in-chain", "ann")
    referrals = select(func.count()).select_from(Referral).where(Referral.problem_id == problem_id)
    held = fresh(session, referrals)

    # Not allowed: the used claim link again, and forwarding to oneself. Nothing changes.
    ann.goto(live + claim_link)
    expect(ann.locator(".alert-info")).to_contain_text("This link has been used — by you.")
    expect(ann.get_by_role("button", name="Join the chain")).to_have_count(0)
    check(ann, "15-used-claim-link", "ann")
    ann.goto(f"{live}/problems/{problem_id}")
    ann.fill("input[name=to_email]", "ann@example.com")
    ann.get_by_role("button", name="Forward").click()
    expect(ann.locator("main")).to_contain_text("You cannot refer a problem to yourself.")
    check(ann, "16-forward-to-oneself", "ann")
    assert fresh(session, referrals) == held

    # Ann forwards on to Bob; Bob claims and introduces Dev, who consents from the mailed link.
    ann.fill("input[name=to_email]", "bob@example.com")
    ann.get_by_role("button", name="Forward").click()
    expect(ann.locator(".alert-success")).to_contain_text("Forwarded.")
    bob.goto(live + link_in_mail(sent_mail, "bob@example.com", "/r/"))
    bob.get_by_role("button", name="Join the chain").click()
    expect(bob.locator(".alert-success")).to_contain_text("You joined the chain.")
    bob.fill("input[name=candidate_email]", "dev@example.com")
    bob.fill("input[name=candidate_name]", "Dev Sharma")
    bob.fill("textarea[name=message]", "Dev rebuilt replication for a 5 TB cluster.")
    check(bob, "17-introduce", "bob")
    bob.get_by_role("button", name="Ask them to agree").click()
    expect(bob.locator(".alert-success")).to_contain_text("We asked them to agree")
    dev.goto(live + link_in_mail(sent_mail, "dev@example.com", "/i/"))
    check(dev, "18-consent", "dev")
    dev.get_by_role("button", name="Yes, introduce me").click()
    expect(dev.locator("[data-introduction-state=proposed]")).to_be_visible()
    check(dev, "19-consented", "dev")
    introduction_id = fresh(session, select(Introduction.id).where(Introduction.problem_id == problem_id))
    intro_status = select(Introduction.status).where(Introduction.id == introduction_id)

    # Not allowed: a manager of another company opens and posts to this introduction's accept URL.
    refused = other.goto(f"{live}/introductions/{introduction_id}/accept")
    assert refused.status == 404
    expect(other.locator("main")).to_contain_text("No such introduction.")
    check(other, "20-accept-refused", "other")
    other.goto(live + "/dashboard")  # any page of theirs: its form carries their CSRF token
    with other.expect_navigation() as posted:
        other.evaluate(
            """(url) => {
                const form = document.querySelector("form[method=post]");
                form.action = url;
                form.submit();
            }""",
            f"/introductions/{introduction_id}/accept",
        )
    expect(other.locator("main")).to_contain_text("No such introduction.")
    assert posted.value.status == 404
    check(other, "21-accept-post-refused", "other")
    assert fresh(session, intro_status) == IntroductionStatus.PROPOSED
    assert fresh(session, status) == ProblemStatus.OPEN

    # The company accepts after the page that states who is paid how much.
    owner.goto(f"{live}/problems/{problem_id}")
    check(owner, "22-problem-deciding", "owner")
    owner.get_by_role("link", name="Accept and settle…").click()
    amounts = owner.locator("[data-confirm=accept]")
    expect(amounts).to_contain_text("Link 1: Ann Li")
    expect(amounts).to_contain_text("Link 2: Bob Martins")
    expect(amounts).to_contain_text("$90.00")  # Ann's hop fee; Bob, the finder, keeps the rest
    expect(amounts).to_contain_text("$1,710.00")
    expect(amounts).to_contain_text("Platform fee")
    expect(amounts).to_contain_text("$200.00")  # 10 % of the $2,000.00 bounty
    check(owner, "23-confirm-accept", "owner")
    owner.get_by_role("button", name="Accept and pay $2,000.00").click()
    expect(owner.locator(".alert-success")).to_contain_text("Accepted.")
    expect(owner.locator("main")).to_contain_text("Northwind Data · paid out ·")
    check(owner, "24-problem-settled", "owner")
    assert fresh(session, status) == ProblemStatus.SETTLED
    run_jobs(app)

    # Each person in the chain sees the problem paid out; the paid members see their share waiting.
    shares = {"ann": (ann, "$90.00"), "bob": (bob, "$1,710.00")}
    employee.goto(f"{live}/problems/{problem_id}")
    expect(employee.locator("main")).to_contain_text("Northwind Data · paid out ·")
    for name, (page, share) in shares.items():
        page.goto(f"{live}/problems/{problem_id}")
        expect(page.locator("main")).to_contain_text("Northwind Data · paid out ·")
        check(page, "25-problem-paid-out", name)
        page.goto(live + "/me/earnings")
        expect(page.locator("[data-figure=available]")).to_have_text(share)
        expect(page.locator("[data-figure=paid]")).to_have_text("$0.00")
        check(page, "26-earnings-before-onboarding", name)

    # They set up payouts on the hosted onboarding page; the worker sends their transfers.
    for name, (page, _) in shares.items():
        page.get_by_role("button", name="Set up payouts").click()
        check(page, "27-onboarding", name)
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(page.locator(".alert-info")).to_contain_text("Stripe is checking your details")
    deliver(emulator, app)  # account.updated: ready, so the worker transfers each share
    run_jobs(app)
    deliver(emulator, app)
    for name, (page, share) in shares.items():
        page.goto(live + "/me/earnings")
        expect(page.locator("[data-figure=paid]")).to_have_text(share)
        expect(page.locator("[data-figure=available]")).to_have_text("$0.00")
        expect(page.locator("main")).to_contain_text("Payout to your bank")
        check(page, "28-earnings-paid", name)

    for context in contexts.values():
        context.close()
    assert not check.failures, "\n".join(check.failures)
