"""Attribution nobody can rewrite: every claim, introduction, consent and acceptance is an
append-only record in its problem's hash chain, the settlement keeps the head it paid, and
``flask referrals verify`` names every deciding column edited behind the app's back (on the
engine under test), the way someone with the database's keys would edit it."""

from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError

from marketplace.db import append_only_drop_statements, append_only_statements, db, utcnow
from marketplace.ledger.models import LedgerTransaction, Share, ShareRole
from marketplace.models import metadata
from marketplace.referrals import attribution, chains
from marketplace.referrals.models import AttributionKind, AttributionRecord, Referral
from tests import builders as build


@dataclass
class Settled:
    problem_id: int
    referral_ids: list[int]  # Ann's (the root), Bob's, Cleo's
    introduction_id: int
    share_ids: dict[str, int]  # "link 1".."link 3", "candidate"


@pytest.fixture
def settled(session, world, open_problem) -> Settled:
    """Ann → Bob → Cleo, Cleo introduced Dev, Dev agreed, the owner accepted: shares held."""
    problem = open_problem(candidate_share_bps=500)
    accepted = build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo], world.dev)
    referrals = session.scalars(select(Referral.id).where(Referral.problem_id == problem.id).order_by(Referral.id))
    shares = {
        f"link {s.position}" if s.role == ShareRole.LINK else s.role.value: s.id
        for s in session.scalars(select(Share).where(Share.problem_id == problem.id))
    }
    result = Settled(problem.id, list(referrals), accepted.introduction.id, shares)
    session.commit()
    return result


@contextmanager
def raw_connection():
    """A connection that commits what it is given, and gets no favours from the app's session."""
    with db.engine.connect() as connection:
        yield connection
        connection.commit()


def verify(runner):
    result = runner.invoke(args=["referrals", "verify"])
    return result.exit_code, result.output.splitlines()


def test_untouched_records_verify_and_form_one_chain_per_problem(settled, runner, session):
    assert verify(runner) == (0, ["all referral chains verify"])
    records = session.scalars(select(AttributionRecord).order_by(AttributionRecord.seq)).all()
    assert [r.kind for r in records] == [
        AttributionKind.CLAIM,
        AttributionKind.CLAIM,
        AttributionKind.CLAIM,
        AttributionKind.INTRODUCTION,
        AttributionKind.CONSENT,
        AttributionKind.ACCEPTANCE,
    ]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.prev_hash for r in records] == ["", *(r.hash for r in records[:-1])]
    assert all(r.hash == attribution.record_hash(r.prev_hash, r.content) for r in records)
    session.commit()


def test_the_settlement_keeps_the_head_it_paid(settled, session, world):
    """The acceptance record names the paid chain; its hash is the settle transaction's reference."""
    acceptance = session.scalar(select(AttributionRecord).where(AttributionRecord.kind == AttributionKind.ACCEPTANCE))
    settle = session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == f"settle:problem:{settled.problem_id}")
    )
    assert settle.reference == f"chain:{acceptance.hash}"
    assert acceptance.hash == attribution.head(session, settled.problem_id)
    _, accepted = attribution.verify_records(session)
    assert [(a.introduction_id, a.chain, a.candidate_user_id) for a in accepted] == [
        (settled.introduction_id, [world.ann.id, world.bob.id, world.cleo.id], world.dev.id)
    ]
    session.commit()


def _tamper(settled: Settled, world, case: str) -> tuple[str, str, int, object]:
    """(table, column, row id, new value) of each deciding column's edit."""
    root, bob, cleo = settled.referral_ids
    introduction, shares = settled.introduction_id, settled.share_ids
    return {
        "referrals.holder_id": ("referrals", "holder_id", bob, world.outsider.id),
        "referrals.claimed_at": ("referrals", "claimed_at", cleo, utcnow()),
        "referrals.parent_id": ("referrals", "parent_id", cleo, root),
        "referrals.sender_id": ("referrals", "sender_id", bob, world.outsider.id),
        "referrals.status": ("referrals", "status", bob, "sent"),
        "introductions.candidate_user_id": ("introductions", "candidate_user_id", introduction, world.outsider.id),
        "introductions.introducer_id": ("introductions", "introducer_id", introduction, world.ann.id),
        "introductions.referral_id": ("introductions", "referral_id", introduction, root),
        "introductions.status": ("introductions", "status", introduction, "declined"),
        "introductions.consented_at": ("introductions", "consented_at", introduction, utcnow()),
        "shares.member_id (a link)": ("ledger_shares", "member_id", shares["link 2"], world.outsider.id),
        "shares.member_id (the candidate)": ("ledger_shares", "member_id", shares["candidate"], world.ann.id),
    }[case]


LABELS = {"referrals": "referral", "introductions": "introduction", "ledger_shares": "share"}


@pytest.mark.parametrize(
    "case",
    [
        "referrals.holder_id",
        "referrals.claimed_at",
        "referrals.parent_id",
        "referrals.sender_id",
        "referrals.status",
        "introductions.candidate_user_id",
        "introductions.introducer_id",
        "introductions.referral_id",
        "introductions.status",
        "introductions.consented_at",
        "shares.member_id (a link)",
        "shares.member_id (the candidate)",
    ],
)
def test_verify_names_every_deciding_column_edited_in_raw_sql(settled, world, runner, case):
    table, column, row_id, value = _tamper(settled, world, case)
    typed = bindparam("value", type_=metadata.tables[table].c[column].type)
    with raw_connection() as connection:
        connection.execute(text(f"UPDATE {table} SET {column} = :value WHERE id = :id").bindparams(typed), {
            "value": value, "id": row_id,
        })  # fmt: skip

    code, lines = verify(runner)

    assert code == 1, lines
    prefix = f"{LABELS[table]} {row_id} (problem {settled.problem_id}"
    assert any(line.startswith(prefix) and f": {column} is " in line for line in lines), lines


def test_the_payout_chain_cannot_be_rewritten_by_moving_a_place(settled, world, runner, session):
    """The reported attack: hand Bob's place to someone else; the chain settlement would read
    changes, the hashes of the referrals do not, and verify says who the records name."""
    bob_place = settled.referral_ids[1]
    with raw_connection() as connection:
        connection.execute(text("UPDATE referrals SET holder_id = :who WHERE id = :id"), {
            "who": world.outsider.id, "id": bob_place,
        })  # fmt: skip

    code, lines = verify(runner)

    assert code == 1
    assert f"referral {bob_place} (problem {settled.problem_id}): holder_id is {world.outsider.id}, " \
        f"the attribution records say {world.bob.id}" in lines  # fmt: skip


def test_a_claim_written_without_a_record_is_reported(settled, session, world, runner, open_problem):
    """A place given in raw SQL, with no claim behind it, names the referral."""
    problem = open_problem(title="Another problem entirely")
    build.chain(session, problem, [world.ann])
    sent = chains.forward(session, world.ann, problem.id, to_email="nobody@elsewhere.example")
    session.commit()
    with raw_connection() as connection:
        connection.execute(text("UPDATE referrals SET status = 'claimed', holder_id = :who WHERE id = :id"), {
            "who": world.outsider.id, "id": sent.id,
        })  # fmt: skip

    code, lines = verify(runner)

    assert code == 1
    assert any(line.startswith(f"referral {sent.id} ") and "no claim is recorded" in line for line in lines), lines


def refusal(statement: str) -> str | None:
    with db.engine.connect() as connection:
        try:
            with connection.begin():
                connection.execute(text(statement))
        except DBAPIError as error:
            return str(error.orig)
    return None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE attribution_records SET content = '{}'",
        "UPDATE attribution_records SET hash = prev_hash",
        "DELETE FROM attribution_records WHERE kind = 'acceptance'",
        "DELETE FROM attribution_records",
    ],
)
def test_the_database_refuses_to_update_or_delete_attribution_records(settled, session, statement):
    before = session.execute(select(AttributionRecord.id, AttributionRecord.hash).order_by(AttributionRecord.id)).all()
    session.commit()
    refused = refusal(statement)
    assert refused is not None and "append-only" in refused
    assert (
        session.execute(select(AttributionRecord.id, AttributionRecord.hash).order_by(AttributionRecord.id)).all()
        == before
    )
    session.commit()


def test_a_record_rewritten_with_its_trigger_dropped_breaks_the_chain(settled, runner):
    """Only someone who drops the trigger can edit a record; the chain then says so."""
    dialect = db.engine.dialect.name
    try:
        with raw_connection() as connection:
            for statement in append_only_drop_statements("attribution_records")[dialect]:
                connection.execute(text(statement))
            connection.execute(text("UPDATE attribution_records SET content = content || ' ' WHERE seq = 2"))
    finally:
        with raw_connection() as connection:
            for statement in append_only_statements("attribution_records")[dialect]:
                connection.execute(text(statement))

    code, lines = verify(runner)

    assert code == 1
    assert any("#2): its hash does not match its content" in line for line in lines), lines


def test_records_written_for_rows_made_before_them_verify(settled, runner, session):
    """The migration writes the records of existing rows; on those rows they verify as live ones do."""
    dialect = db.engine.dialect.name
    try:
        with raw_connection() as connection:
            for statement in append_only_drop_statements("attribution_records")[dialect]:
                connection.execute(text(statement))
            connection.execute(text("DELETE FROM attribution_records"))
    finally:
        with raw_connection() as connection:
            for statement in append_only_statements("attribution_records")[dialect]:
                connection.execute(text(statement))

    assert attribution.backfill(session) == 6
    session.commit()

    assert verify(runner) == (0, ["all referral chains verify"])
