"""``marketplace.db.Prepared`` runs SQLAlchemy-compiled statements straight on the driver (the
settlement's hot path, docs/performance.md). It relies on parts of SQLAlchemy's compiled form
that are not a promise of its public API; these tests pin them, so an upgrade that changes them
fails here rather than in the ledger."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, bindparam, delete, func, insert, inspect, select, union_all, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased

from marketplace.accounts.models import User
from marketplace.db import InstanceLoader, Prepared, PreparedGet, connection_of, in_ids, insert_of
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger.models import LedgerAccount
from tests.statements import statements


def test_the_compiled_form_has_what_prepared_reads(session):
    dialect = connection_of(session).dialect
    statement = select(func.coalesce(func.max(Job.id), 0)).where(Job.kind == bindparam("kind"))
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled.string, str)
    assert hasattr(compiled, "positiontup")  # the order of positional parameters (None when named)
    required = {name for name, bind in compiled.binds.items() if bind.required}
    fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    assert required == {"kind"} and set(fixed.values()) == {0}
    for bind in compiled.binds.values():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        assert processor is None or callable(processor)


def job_row(key: str, moment: datetime, **values) -> dict:
    """Every column of a new job, as the ORM would write one."""
    return {
        "kind": f"test.{key.split(':')[0]}",
        "idempotency_key": key,
        "payload": {},
        "status": JobStatus.PENDING,
        "attempts": 0,
        "max_attempts": 3,
        "run_after": moment,
        "last_error": "",
        "created_at": moment,
    } | values


def test_what_a_statement_returns_is_known_from_the_statement(session):
    """``Prepared`` fetches by what the statement is (its compiled form says whether it returns
    rows), not by asking the cursor, which costs an object per column on psycopg."""
    moment = datetime(2026, 12, 6, tzinfo=UTC)
    new_job = job_row("kinds:1", moment)
    add = Prepared(insert(Job.__table__).values({name: bindparam(name) for name in new_job}).returning(Job.id))
    (added,) = add.fetchall(connection_of(session), new_job)
    rename = Prepared(update(Job.__table__).where(Job.id == bindparam("job_id")).values(kind=bindparam("kind")))
    remove = Prepared(delete(Job.__table__).where(Job.id == bindparam("job_id")))
    kinds = Prepared(select(Job.kind).where(Job.id == bindparam("job_id")))

    assert rename.fetchall(connection_of(session), {"job_id": added[0], "kind": "test.renamed"}) == []
    assert kinds.fetchall(connection_of(session), {"job_id": added[0]}) == [("test.renamed",)]
    assert remove.execute(connection_of(session), {"job_id": added[0]}) == 1
    assert kinds.fetchall(connection_of(session), {"job_id": added[0]}) == []


def test_values_go_through_the_column_types_and_come_back_as_driver_rows(session):
    """Enums by value, JSON serialised, aware datetimes in UTC: what the ORM would have written."""
    insert = insert_of(
        Job.__table__,
        *("kind", "idempotency_key", "payload", "status", "attempts", "max_attempts", "run_after", "last_error"),
        "created_at",
    )
    moment = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    connection = connection_of(session)
    row = job_row("pinned:1", moment, payload={"n": 1, "text": "é"})
    assert insert.execute(connection, row) == 1
    session.expire_all()
    job = session.scalars(select(Job).where(Job.idempotency_key == "pinned:1")).one()
    assert (job.status, job.payload, job.run_after, job.max_attempts) == (JobStatus.PENDING, row["payload"], moment, 3)
    count = Prepared(select(func.count()).select_from(Job).where(Job.status == bindparam("status")))
    assert count.fetchall(connection_of(session), {"status": JobStatus.PENDING}) == [(1,)]


def test_executemany_and_a_driver_error_surface_as_sqlalchemy_errors(session):
    insert = insert_of(LedgerAccount.__table__, "code", "created_at")
    now = datetime.now(UTC)
    insert.executemany(
        connection_of(session),
        [{"code": "platform:fees", "created_at": now}, {"code": "stripe:balance", "created_at": now}],
    )
    with pytest.raises(DBAPIError):
        insert.execute(connection_of(session), {"code": "platform:fees", "created_at": now})  # unique


def test_first_converts_each_value_as_the_orm_reads_it(session):
    """The version stamps of cached pages are read this way: an aware UTC datetime on both
    engines (SQLite returns text), an enum from its value, and None for no row."""
    moment = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)
    session.add(Job(kind="test.first", idempotency_key="first:1", payload={}, run_after=moment, created_at=moment))
    session.flush()
    newest = Prepared(
        select(func.max(Job.created_at), Job.status).where(Job.kind == bindparam("kind")).group_by(Job.status)
    )

    assert newest.first(connection_of(session), {"kind": "test.first"}) == (moment, JobStatus.PENDING)
    assert newest.first(connection_of(session), {"kind": "none of these"}) is None


def test_all_gives_named_rows_converted_as_the_orm_reads_them(session):
    """The dashboard's lists and the navigation are read this way: each row a named tuple whose
    values went through their column's type, as ``Session.execute`` would give them."""
    moment = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    for number in (1, 2):
        session.add(
            Job(kind="test.all", idempotency_key=f"all:{number}", payload={}, run_after=moment, created_at=moment)
        )
    session.flush()
    jobs = Prepared(
        select(Job.idempotency_key, Job.status, Job.created_at.label("since"))
        .where(Job.kind == bindparam("kind"))
        .order_by(Job.idempotency_key)
    )

    rows = jobs.all(connection_of(session), {"kind": "test.all"})

    assert [(row.idempotency_key, row.status, row.since) for row in rows] == [
        ("all:1", JobStatus.PENDING, moment),
        ("all:2", JobStatus.PENDING, moment),
    ]
    assert jobs.all(connection_of(session), {"kind": "nothing"}) == []


def test_a_list_of_ids_is_one_parameter_with_one_text_for_every_length(session):
    """``in_ids`` lets a statement filter on a list of ids and still be ``Prepared``: the same
    SQL for one id, three or none, and the same rows the ORM's expanding ``IN`` finds."""
    connection = connection_of(session)
    for code in ("a", "b", "c", "d"):
        insert_of(LedgerAccount.__table__, "code", "created_at").execute(
            connection, {"code": code, "created_at": datetime(2026, 12, 5, tzinfo=UTC)}
        )
    ids = dict(session.execute(select(LedgerAccount.code, LedgerAccount.id)).all())
    statement = select(LedgerAccount.code).where(in_ids(LedgerAccount.id, "ids")).order_by(LedgerAccount.code)
    texts = set()
    for wanted in (["b"], ["a", "c", "d"], []):
        given = [ids[code] for code in wanted] + [10**12]  # an id that is nobody's matches nothing
        assert Prepared(statement).fetchall(connection, {"ids": given}) == [(code,) for code in wanted]
        assert session.scalars(statement, {"ids": given}).all() == wanted
        texts.add(statement.compile(dialect=connection.dialect).string)
    assert len(texts) == 1


def test_a_prepared_get_gives_the_orms_own_instance_as_session_get_would(session, make_user):
    """Every logged-in request loads its member this way (``accounts.service.user_for_session``):
    the instance must be one the ORM could have loaded, the same values, persistent in the
    session, its relationships loading when read and its changes flushed like any other."""
    ann = make_user("Ann Example", "ann@example.com", skills="postgres")
    session.commit()
    expected = {attribute.key: getattr(ann, attribute.key) for attribute in User.__mapper__.column_attrs}
    session.close()
    get_user = PreparedGet(User)

    loaded = get_user(session, ann.id)

    assert loaded is not None and inspect(loaded).persistent and not session.dirty
    assert {key: getattr(loaded, key) for key in expected} == expected
    assert get_user(session, ann.id) is loaded, "the session's own instance, as Session.get gives it"
    assert [skill.slug for skill in loaded.skills] == ["postgresql"]
    loaded.headline = "Replication, mostly"
    session.commit()
    session.close()
    assert session.get(User, ann.id).headline == "Replication, mostly"
    assert get_user(session, ann.id + 1000) is None


def test_an_instance_read_in_part_loads_the_rest_in_one_statement_when_first_read(app, session, make_user):
    """The problem page reads each link's holder and recipient in its referrals' statement
    (``referrals.read_models.chains_of``): the members' table twice, a few of its columns. What
    was not read loads when first read, all of it in one statement, as after ``load_only``; the
    row an outer join did not find is no instance."""
    ann = make_user("Ann Example", "ann@example.com")
    bob = make_user("Bob Example", "bob@example.com")
    ann.headline = "Replication, mostly"
    session.commit()
    session.close()
    people = InstanceLoader(User, only=(User.id, User.name))
    first, second = aliased(User), aliased(User)
    pair = Prepared(
        select(*people.columns_of(first), *people.columns_of(second))
        .select_from(first)
        .outerjoin(second, second.id == bindparam("other", type_=Integer))
        .where(first.id == bindparam("id", type_=Integer))
    )

    row = pair.first(connection_of(session), {"id": ann.id, "other": bob.id})
    assert row is not None
    loaded_ann, loaded_bob = people.instance(session, row[:2]), people.instance_if_any(session, row[2:])

    assert loaded_bob is not None and (loaded_ann.name, loaded_bob.name) == ("Ann Example", "Bob Example")
    assert inspect(loaded_ann).persistent and not session.dirty
    with statements(app) as log:
        assert (loaded_ann.email, loaded_ann.headline) == ("ann@example.com", "Replication, mostly")
        assert loaded_ann.email_verified_at is not None and loaded_ann.created_at is not None
    assert len(log) == 1, log
    row = pair.first(connection_of(session), {"id": ann.id, "other": bob.id + 1000})
    assert row is not None
    assert people.instance(session, row[:2]) is loaded_ann, "the session's own instance"
    assert people.instance_if_any(session, row[2:]) is None


def test_a_row_another_statement_read_is_converted_as_its_own_statement_converts_it(session, make_user):
    """The dashboard reads five lists' rows under one ``UNION ALL`` and converts each list's
    columns by that list's own statement (``referrals.read_models.dashboard``): the row must be
    the one the list's own ``all`` gives, an aware ``datetime`` where SQLite stores text."""
    ann = make_user("Ann Example", "ann@example.com")
    session.commit()
    own = Prepared(select(User.id, User.name, User.created_at).where(User.id == bindparam("id", type_=Integer)))
    connection = connection_of(session)
    (raw,) = Prepared(union_all(own.statement)).fetchall(connection, {"id": ann.id})

    row = own.row_of(connection.dialect, raw)

    assert row == own.all(connection, {"id": ann.id})[0]
    assert (row.id, row.name, row.created_at.utcoffset()) == (ann.id, "Ann Example", timedelta(0))
