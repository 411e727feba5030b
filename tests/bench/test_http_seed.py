"""The HTTP benchmark (``bench/http.py``) measures pages over data it writes in bulk, beside the
services; these tests hold that data to the same checks as data the services wrote, so that the
pages it measures are the pages a real database would show."""

import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.http import MEMBER_PLACES, Sizes, seed
from marketplace.accounts.models import User
from marketplace.db import make_engine
from marketplace.ledger.verify import verify_ledger
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import attribution, chains
from marketplace.referrals.models import Referral, ReferralStatus

SMALL = Sizes(members=300, problems=30, referrals=300, connections=600)


def test_the_bulk_seed_passes_the_chain_record_and_ledger_checks(app, database_url):
    """Chain hashes, claim records and the funded escrows verify as if each row had been
    written by ``referrals.chains``, ``referrals.attribution`` and ``workflows.funding``."""
    engine = make_engine(database_url)
    with app.app_context():
        seed(engine, SMALL, random.Random(1))
    with Session(engine) as session:
        assert chains.verify_chains(session) == []
        broken, _ = attribution.verify_records(session)
        assert broken == []
        assert verify_ledger(session) == []
        assert session.query(Referral).count() == SMALL.referrals
        assert {p.status for p in session.scalars(select(Problem))} == {ProblemStatus.OPEN}
    engine.dispose()


def test_the_measured_member_holds_places_and_the_landing_link_is_unclaimed(app, database_url):
    """The logged-in pages are measured as a chain member (their problem page shows their
    place), and the landing page as a visitor following a link nobody has claimed yet."""
    engine = make_engine(database_url)
    with app.app_context():
        fixture = seed(engine, SMALL, random.Random(2))
    with Session(engine) as session:
        member = session.scalars(select(User).where(User.email == fixture.member_email)).one()
        assert chains.place_of(session, member, fixture.problem_id) is not None
        held = session.scalars(select(Referral.problem_id).where(Referral.holder_id == member.id)).all()
        assert len(held) >= MEMBER_PLACES
        link = chains.referral_by_token(session, fixture.landing_token)
        assert (link.problem_id, link.status) == (fixture.problem_id, ReferralStatus.SENT)
    engine.dispose()
