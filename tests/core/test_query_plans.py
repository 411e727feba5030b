"""The board reads a page from an index in its sort order, on both engines (docs/performance.md):
without it every open problem would be read and sorted for each page."""

import pytest
from sqlalchemy import select, text

from marketplace.db import db
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import PAGE_SIZE, SORTS, public_filter
from tests import builders as build


def board_page_sql(sort: str, dialect) -> str:
    """The board's page query as an anonymous visitor runs it (``problems.service.board``)."""
    query = (
        select(Problem.id)
        .where(public_filter(), Problem.status == ProblemStatus.OPEN)
        .order_by(*SORTS[sort])
        .limit(PAGE_SIZE)
    )
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_each_board_sort_reads_its_index_without_sorting(sort, app, session, world):
    for n in range(30):
        build.problem(session, world.owner, world.company.id, "open", title=f"Problem {n} needs an expert")
    engine = db.engine
    sql = board_page_sql(sort, engine.dialect)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " | ".join(row[-1] for row in connection.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert f"INDEX ix_problems_board_{sort}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))  # a 30-row table would be read whole
            plan = " | ".join(row[0] for row in connection.execute(text("EXPLAIN " + sql)))
            assert f"ix_problems_board_{sort}" in plan, plan
            assert "Sort" not in plan, plan
