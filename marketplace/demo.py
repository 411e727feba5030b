"""The demo: a company with two employees, members who know each other, and chains in progress.

It goes through the same services as the product, so the demo is also a smoke test of them.
"""

from datetime import timedelta

from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.db import utcnow
from marketplace.network import service as network
from marketplace.problems import service as problems
from marketplace.problems.service import ProblemInput
from marketplace.referrals import chains, introductions
from marketplace.workflows import funding

PASSWORD = "demo-password"
LOGINS = [
    ("olivia@acme.example.com", "owner of Acme Data"),
    ("ethan@acme.example.com", "employee of Acme Data"),
    ("ann@example.com", "member: picked up the Postgres problem"),
    ("bob@example.com", "member: forwarded by Ann"),
    ("cleo@example.com", "member: forwarded by Bob, knows Dev"),
    ("dev@example.com", "member: the Postgres expert"),
    ("erin@example.com", "member: Kubernetes"),
]

PEOPLE = {
    "olivia": ("Olivia Owens", "CTO at Acme Data", ""),
    "ethan": ("Ethan Park", "Data engineer at Acme Data", "python"),
    "ann": ("Ann Li", "Engineering manager, well connected", "management"),
    "bob": ("Bob Martins", "Site reliability engineer", "linux, kubernetes"),
    "cleo": ("Cleo Duarte", "Database consultant", "mysql"),
    "dev": ("Dev Sharma", "PostgreSQL replication specialist", "postgres, replication, linux"),
    "erin": ("Erin Walsh", "Platform engineer", "k8s, go"),
}

# Who knows whom (confirmed connections), with how they know each other.
CONNECTIONS = [
    ("ann", "bob", "We worked together at Northwind"),
    ("bob", "cleo", "Same database meetup for years"),
    ("cleo", "dev", "Consulted together on two migrations"),
    ("ann", "erin", "University friends"),
    ("ethan", "bob", "Former teammates"),
]


def seed(session: Session) -> bool:
    """Create the demo once; returns False when it is already there."""
    if accounts.user_by_email(session, LOGINS[0][0]) is not None:
        return False
    users = {}
    for key, (name, headline, skills) in PEOPLE.items():
        email = next(e for e, _ in LOGINS if e.startswith(key + "@"))
        user = accounts.register(session, email=email, password=PASSWORD, name=name)
        accounts.mark_email_verified(session, user)  # The demo's addresses are made up: taken as confirmed.
        # Bob keeps his name off chains, and is paid all the same.
        shown = key != "bob"
        accounts.update_profile(session, user, name=name, headline=headline, skills=skills, show_name_on_chains=shown)
        users[key] = user
    for a, b, note in CONNECTIONS:
        request = network.request_connection(session, users[a], user_id=users[b].id, note=note)
        network.answer_request(session, users[b], request.id, "confirm")
    network.request_connection(session, users["erin"], user_id=users["dev"].id, note="Met at KubeCon")
    network.create_card(
        session,
        users["ann"],
        network.CardData(
            name="Dev Sharma",
            email=users["dev"].email,
            position="PostgreSQL consultant",
            tags=["postgresql", "met at pgconf"],
            notes="Cleo's friend; rebuilt a 5 TB replication setup.",
        ),
    )

    company = accounts.create_company(session, users["olivia"], name="Acme Data", description="Analytics for shops.")
    _, token = accounts.invite(session, users["olivia"], company.id, email=users["ethan"].email, role="employee")
    accounts.accept_invitation(session, users["ethan"], token)

    def post(title, description, skills, amount, **extra) -> problems.Problem:
        data = ProblemInput(
            title=title,
            description=description,
            skills=skills,
            bounty_amount=amount,
            expires_at=utcnow() + timedelta(days=45),
            **extra,
        )
        return problems.create_problem(session, users["olivia"], company.id, data, publish=True, platform_fee_bps=1000)

    replication = post(
        "Fix our PostgreSQL replication lag",
        "Our read replicas fall **minutes** behind the primary at peak hours.\n\n"
        "- PostgreSQL 16, streaming replication, 2 TB\n- We tried `wal_compression` and bigger `wal_buffers`\n\n"
        "We need someone who has tuned replication at this size before.",
        "postgres, replication",
        500_000,
    )
    funding.fund_problem(session, replication.id)
    ann_place = chains.pick_from_board(session, users["ann"], replication.id)
    to_bob = chains.forward(
        session,
        users["ann"],
        replication.id,
        to_user_id=users["bob"].id,
        note="Bob, you ran Postgres at your last job: who fixed your replicas?",
    )
    chains.claim(session, users["bob"], to_bob.token)
    to_cleo = chains.forward(
        session,
        users["bob"],
        replication.id,
        to_email=users["cleo"].email,
        note="Cleo knows every database person in town.",
    )
    chains.claim(session, users["cleo"], to_cleo.token)
    introductions.introduce(
        session,
        users["cleo"],
        replication.id,
        candidate_user_id=users["dev"].id,
        message="Dev rebuilt the replication setup of a 5 TB cluster last year. Highly recommended.",
    )
    chains.forward(
        session, users["ann"], replication.id, to_email="frank@example.com", note="Frank, any idea who could help here?"
    )
    assert ann_place.depth == 1

    autoscaling = post(
        "Kubernetes autoscaling keeps flapping",
        "Our HPA scales the API deployment up and down every few minutes. We want a calm, cheap cluster.",
        "kubernetes",
        250_000,
        split_rule="finder_and_first",
        visibility="public",
    )
    funding.fund_problem(session, autoscaling.id)
    chains.pick_from_board(session, users["bob"], autoscaling.id)

    post(
        "Design a data retention policy for GDPR",
        "We keep everything forever. Help us decide what to delete, when, and how to prove it.",
        "gdpr, data-governance",
        300_000,
        visibility="private",
    )
    session.flush()
    return True
