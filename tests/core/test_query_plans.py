"""The lists read their rows from indexes, on both engines (docs/performance.md, "Indexes and
rendering"): a board page in its sort order, a worker's claim, each list of a member's dashboard,
a member's ledger accounts, a problem's own skills, and on PostgreSQL the board's text search. Without them each would
read, and often sort, a whole table on every request."""

import re

import pytest
from sqlalchemy import select, text

from marketplace.db import db, utcnow
from marketplace.jobs import service as jobs
from marketplace.ledger import accounts as ledger_accounts
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import PAGE_SIZE, SORTS, BoardQuery, _board_select, public_filter
from marketplace.referrals import read_models, visibility
from tests import builders as build


def plan_of(query, *, sequential_scans: bool = False) -> str:
    """The engine's plan for ``query`` on one line: SQLite's ``EXPLAIN QUERY PLAN`` details, or
    PostgreSQL's ``EXPLAIN``, by default with sequential scans off, since a test's small tables
    would be read whole whatever their indexes."""
    engine = db.engine
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return " | ".join(row[-1] for row in connection.execute(text("EXPLAIN QUERY PLAN " + sql)))
        if not sequential_scans:
            connection.execute(text("SET enable_seqscan = off"))
        return " | ".join(row[0] for row in connection.execute(text("EXPLAIN " + sql)))


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_each_board_sort_reads_its_index_without_sorting(sort, app, session, world):
    """The board's page query as an anonymous visitor runs it (``problems.service.board``)."""
    for n in range(30):
        build.problem(session, world.owner, world.company.id, "open", title=f"Problem {n} needs an expert")
    query = (
        select(Problem.id)
        .where(public_filter(), Problem.status == ProblemStatus.OPEN)
        .order_by(*SORTS[sort])
        .limit(PAGE_SIZE)
    )
    plan = plan_of(query)
    if db.is_sqlite:
        assert f"INDEX ix_problems_board_{sort}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert f"ix_problems_board_{sort}" in plan, plan
        assert "Sort" not in plan, plan


def test_a_worker_claims_a_job_from_the_index_whatever_the_backlog(app, session):
    """Each claim reads ``ix_jobs_due``: the pending job due first in index order, the expired
    leases among the running jobs only (as many as there are workers). A claim that scanned and
    sorted the backlog made a queue of N jobs cost N² (docs/deployment.md, "Workers")."""
    for number in range(300):
        jobs.enqueue(session, "email.send", f"backlog:{number}")
    session.commit()
    if not db.is_sqlite:
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE jobs"))  # the planner must know the backlog's size
    expired, pending = jobs.claim_queries(utcnow(), postgres=not db.is_sqlite)
    for query in (expired, pending):
        plan = plan_of(query)
        if db.is_sqlite:
            assert "USING INDEX ix_jobs_due" in plan, plan
        else:
            assert "ix_jobs_due" in plan and "Bitmap" not in plan, plan
            if query is pending:  # Read in run_after order; only equal times are sorted by id.
                assert not re.search(r"->\s+Sort\s", plan), plan


def test_each_list_of_the_dashboard_reads_an_index_not_the_whole_table(app, session, world):
    """A confirmed member's dashboard also lists what was sent or introduced to their address:
    without an index on those addresses, each visit read every referral and every introduction
    (4.2–4.9 ms at 20,000 referrals on PostgreSQL, and growing with the marketplace)."""
    member = world.ann
    parameters = {"member_id": member.id, "address": member.email, "limit": 6, "offset": 0}
    lists = {
        "ix_referrals_recipient_email": read_models._LISTS["received"][True],
        "ix_referrals_sender_newest": read_models._LISTS["sent"][True],
        "ix_referrals_holder_newest": read_models._LISTS["places"][True],
        "ix_introductions_introducer_newest": read_models._LISTS["introductions-made"][True],
        "ix_introductions_candidate_email": read_models._LISTS["introductions-received"][True],
    }
    for index, statement in lists.items():
        plan = plan_of(statement.statement.params(**parameters))
        assert index in plan, plan
        assert not re.search(r"\bSCAN (referrals|introductions)\b", plan), plan
    # The dashboard reads the same five lists in one statement, each list still from its index.
    plan = plan_of(read_models._DASHBOARD[True].statement.params(**parameters))
    for index in lists:
        assert index in plan, plan
    assert not re.search(r"\bSCAN (referrals|introductions)\b", plan), plan


@pytest.mark.parametrize("name", ["places", "sent", "introductions-made"])
def test_a_members_own_list_is_read_newest_first_from_its_index_without_sorting(name, app, session, world):
    """A member's places, what they sent and their introductions are indexed by the member and
    then newest first: a page of the list, and the dashboard's newest five, read only the rows
    they show, in order, where they read all of the member's rows and sorted them."""
    member = world.ann
    parameters = {"member_id": member.id, "address": member.email, "limit": 6, "offset": 0}
    plan = plan_of(read_models._LISTS[name][True].statement.params(**parameters))
    assert "_newest" in plan, plan
    if db.is_sqlite:
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert not re.search(r"->\s+Sort\s|^Sort\s", plan), plan


@pytest.mark.parametrize("for_member", [True, False], ids=["member", "visitor"])
def test_every_page_of_a_problem_reads_its_own_skills_not_every_problems(for_member, app, session, world):
    """The statement behind every page of a problem (``referrals.visibility``) loads the problem
    with its skills. Nested as ``joinedload`` writes a many-to-many, SQLite built the join of
    every problem's skills first: 1.6 ms of the problem page at 2,000 problems, and growing with
    them. Joined flat, it reads the problem's own rows of ``problem_skills`` by their key."""
    problem = build.problem(session, world.owner, world.company.id, "open")
    for n in range(30):
        build.problem(session, world.owner, world.company.id, "open", title=f"Problem {n} needs an expert")
    session.commit()
    parameters = {"problem_id": problem.id} | ({"viewer_id": world.ann.id} if for_member else {})
    plan = plan_of(visibility._problem_with_role(for_member).params(**parameters))
    if db.is_sqlite:
        assert "SEARCH problem_skills USING COVERING INDEX" in plan and "(problem_id=?)" in plan, plan
        assert "MATERIALIZE" not in plan and not re.search(r"\bSCAN problem_skills\b", plan), plan
    else:
        assert "pk_problem_skills" in plan, plan
        assert not re.search(r"Seq Scan on problem_skills", plan), plan
    found, role = visibility.visible_with_role(session, world.ann if for_member else None, problem.id)
    assert found.id == problem.id and [s.slug for s in found.skills] == sorted(s.slug for s in problem.skills)


def test_the_earnings_page_finds_the_members_accounts_by_their_codes(app, session, world):
    """The earnings statement reads the member's five accounts through the unique index on their
    codes: a prefix match on the code read every account of the ledger."""
    plan = plan_of(ledger_accounts._member_entries(world.ann.id))
    if db.is_sqlite:  # SQLite names the index of a column's UNIQUE after the table
        assert "SEARCH ledger_accounts USING COVERING INDEX" in plan and "(code=?)" in plan, plan
        assert not re.search(r"\bSCAN ledger_accounts\b", plan), plan
    else:
        assert "uq_ledger_accounts_code" in plan, plan


def test_a_text_search_of_the_board_reads_the_trigram_indexes_on_postgresql(app, session, world):
    """The search matches a substring of a problem's title or description: on PostgreSQL the
    trigram indexes find the matches among 2,000 open problems; without them every problem was
    read (on SQLite it still is)."""
    if db.is_sqlite:
        pytest.skip("SQLite has no trigram index; its board search reads every problem")
    build.problem(session, world.owner, world.company.id, "open", title="Fix our Postgres replication lag")
    session.commit()
    columns = [c.name for c in Problem.__table__.columns if c.name not in ("id", "title", "description")]
    copied = ", ".join(columns)
    with db.engine.begin() as connection:  # 2,000 other open problems, none about replication
        connection.execute(
            text(
                f"INSERT INTO problems (title, description, {copied}) "
                f"SELECT 'Problem ' || n, repeat(md5(n::text), 8), {copied} "
                "FROM problems, generate_series(1, 2000) AS n"
            )
        )
    # What autovacuum does in time: moves the new rows out of the GIN indexes' pending lists.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE problems"))
    # With sequential scans allowed: among 2,000 rows the planner chooses between reading them all
    # and the indexes on its own.
    plan = plan_of(
        _board_select(BoardQuery(q="replication"), public_filter()).with_only_columns(Problem.id),
        sequential_scans=True,
    )
    assert "ix_problems_title_trigrams" in plan and "ix_problems_description_trigrams" in plan, plan
    assert "Seq Scan on problems" not in plan, plan
