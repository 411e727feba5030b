"""The whole workflow through the pages, as people would click it, with CSRF protection on:
a company posts and funds a problem, three members pass it along, the expert agrees, the
company accepts."""

import re

from sqlalchemy import select

from marketplace.problems.models import Problem
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction, Referral


def _link(message, path_prefix: str) -> str:
    match = re.search(
        r"http://localhost(" + re.escape(path_prefix) + r"[^\s]+)", message.get_body(("plain",)).get_content()
    )
    assert match, message.get_body(("plain",)).get_content()
    return match.group(1)


def test_problem_travels_a_chain_of_three_to_an_accepted_introduction(browser, session, sent_mail):
    owner, ann, bob, cleo, dev = (browser() for _ in range(5))

    owner.signup("Olivia Owner", "olivia@acme.example.com")
    page = owner.submit("/companies/new", {"name": "Acme Data", "description": "Analytics"})
    assert "Acme Data is set up" in page.text
    company_id = int(re.search(r"/companies/(\d+)/problems/new", page.text).group(1))

    page = owner.submit(
        f"/companies/{company_id}/problems/new",
        {
            "title": "Fix our Postgres replication lag",
            "description": "Replicas fall **minutes** behind at peak hours. <script>alert(1)</script>",
            "skills": "Postgres, replication",
            "bounty": "3,000",
            "currency": "usd",
            "split_rule": "flat_fee_finder_rest",
            "hop_fee_percent": "5",
            "max_depth": "6",
            "guarantee_days": "30",
            "candidate_share_percent": "0",
            "visibility": "public",
            "expires_on": "2099-01-01",
            "publish": "Publish",
        },
    )
    assert "Published" in page.text
    assert "<strong>minutes</strong>" in page.text and "<script>alert" not in page.text
    problem = session.scalars(select(Problem)).one()
    assert problem.bounty_amount == 300_000 and problem.status.value == "awaiting_payment"
    session.commit()

    page = owner.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/fund")
    assert "open to referrals" in page.text

    ann.signup("Ann Li", "ann@example.com")
    page = ann.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/pick")
    assert "first place of a new chain" in page.text
    page = ann.submit(
        f"/problems/{problem.id}",
        {"to_email": "bob@example.com", "note": "You know DBAs"},
        action=f"/problems/{problem.id}/forward",
    )
    assert "Forwarded" in page.text
    bob_link = _link(sent_mail.to("bob@example.com")[-1], "/r/")

    # Bob is new: the landing page shows who sent it and lets him sign up, confirm his address
    # (the link sent to an address is claimed only by an account that proved it reads its mail),
    # then claim.
    landing = bob.get(bob_link)
    assert "Ann Li thinks you can help" in landing.text and "You know DBAs" in landing.text
    bob.signup("Bob Martins", "bob@example.com")
    page = bob.submit(bob_link, action=bob_link + "/claim")
    assert "Confirm your e-mail address before you claim a referral" in page.text
    bob.submit(_link(sent_mail.to("bob@example.com")[-1], "/verify-email/"))
    page = bob.submit(bob_link, action=bob_link + "/claim")
    assert "You joined the chain" in page.text
    page = bob.submit(
        f"/problems/{problem.id}",
        {"to_email": "cleo@example.com", "note": ""},
        action=f"/problems/{problem.id}/forward",
    )
    cleo_link = _link(sent_mail.to("cleo@example.com")[-1], "/r/")

    cleo.signup("Cleo Duarte", "cleo@example.com")
    cleo.submit(_link(sent_mail.to("cleo@example.com")[-1], "/verify-email/"))
    page = cleo.submit(cleo_link, action=cleo_link + "/claim")
    assert "Your place: link 3" in page.text
    page = cleo.submit(
        f"/problems/{problem.id}",
        {
            "candidate_email": "dev@example.com",
            "candidate_name": "Dev Sharma",
            "message": "Dev rebuilt replication for a 5 TB cluster.",
        },
        action=f"/problems/{problem.id}/introductions",
    )
    assert "We asked them to agree" in page.text
    consent_link = _link(sent_mail.to("dev@example.com")[-1], "/i/")

    # Before consent the company does not see who the candidate is.
    page = owner.get(f"/problems/{problem.id}")
    assert "waiting for their consent" in page.text and "dev@example.com" not in page.text

    # Dev answers from the e-mailed link, without an account.
    page = dev.submit(consent_link, {"answer": "accept", "note": "Happy to help"})
    assert "The company now sees your introduction" in page.text

    page = owner.get(f"/problems/{problem.id}")
    assert "dev@example.com" in page.text and "Accept and settle" in page.text
    introduction = session.scalars(select(Introduction)).one()
    session.commit()
    page = owner.submit(f"/problems/{problem.id}", action=f"/introductions/{introduction.id}/accept")
    assert "Accepted" in page.text

    session.expire_all()
    assert session.get(Problem, problem.id).status.value == "in_guarantee"
    assert session.get(Introduction, introduction.id).status.value == "accepted"
    holders = [r.holder.name for r in session.scalars(select(Referral).order_by(Referral.depth))]
    assert holders == ["Ann Li", "Bob Martins", "Cleo Duarte"]

    # Each member sees the chain on their dashboard.
    assert "Fix our Postgres replication lag" in cleo.get("/dashboard").text


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(browser, session, world, open_problem):
    problem = open_problem()
    ann = browser()
    ann.login("ann@example.com")
    response = ann.client.post(f"/problems/{problem.id}/pick", data={})
    assert response.status_code in (302, 400)
    session.expire_all()
    assert session.scalars(select(Referral)).all() == []


def test_introducer_withdraws_from_the_dashboard(browser, session, world, open_problem):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    introduction = introductions.introduce(
        session, world.ann, problem.id, candidate_email="dev@example.com", message="Dev knows replication well."
    )
    session.commit()
    ann = browser()
    ann.login("ann@example.com")
    page = ann.submit("/dashboard", action=f"/introductions/{introduction.id}/withdraw")
    assert "Withdrawn." in page.text
    session.expire_all()
    assert session.get(Introduction, introduction.id).status.value == "withdrawn"


def test_the_dashboard_lists_a_joined_referral_once_with_who_sent_it(browser, session, world, open_problem):
    """A referral the member joined is their place in a chain: it shows under "Chains I am in",
    with who forwarded it, and not a second time among the referrals still waiting for them."""
    joined, waiting = open_problem(title="Fix our Postgres replication"), open_problem(title="Tune our Kafka cluster")
    chains.pick_from_board(session, world.ann, joined.id)
    chains.pick_from_board(session, world.ann, waiting.id)
    to_bob = chains.forward(session, world.ann, joined.id, to_user_id=world.bob.id)
    chains.forward(session, world.ann, waiting.id, to_user_id=world.bob.id)
    chains.claim(session, world.bob, to_bob.token)
    session.commit()
    bob = browser()
    bob.login("bob@example.com")

    page = bob.get("/dashboard").text
    places, rest = page.split("Chains I am in", 1)[1].split("Referrals I have not joined", 1)
    not_joined = re.sub(r"<[^>]+>", "", rest.split("Referrals I sent", 1)[0])  # its words, as read
    assert "Fix our Postgres replication" in places and "from Ann Li" in places
    assert "Tune our Kafka cluster" not in places
    assert "Fix our Postgres replication" not in not_joined
    assert "Tune our Kafka cluster" in not_joined and "from Ann Li" in not_joined

    ann = browser()
    ann.login("ann@example.com")
    places = ann.get("/dashboard").text.split("Chains I am in", 1)[1].split("Referrals I have not joined", 1)[0]
    assert places.count("picked up from the board") == 2
