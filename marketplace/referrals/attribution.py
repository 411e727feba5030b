"""Attribution nobody can rewrite (docs/audit.md, "Attribution records").

Who is paid is decided by four kinds of fact: the claim of a place (who holds it, since when,
under which parent), the introduction (who introduced whom, from which place), the candidate's
consent and the company's acceptance (who accepted, and the chain it paid). Each is appended,
when it happens, to its problem's hash chain of ``AttributionRecord`` rows, which the database
keeps append-only. The referral and introduction rows still carry the same values for queries,
but they are not the evidence: ``verify_records`` recomputes every chain and reports each column
that no longer says what the records say, and the settlement stores the head of the chain it
paid (``head``) in its ledger transaction.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from marketplace.db import Prepared, connection_of, insert_of, utcnow
from marketplace.referrals.models import (
    AttributionKind,
    AttributionRecord,
    Introduction,
    IntroductionStatus,
    Referral,
    ReferralStatus,
)

FINGERPRINT_DIGITS = 12
# Introductions in these states exist only after the candidate agreed.
CONSENTED_STATES = {IntroductionStatus.PROPOSED, IntroductionStatus.ACCEPTED}


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def record_hash(prev_hash: str, content: str) -> str:
    """sha256(previous record's hash ‖ canonical JSON of this record's fact)."""
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def fingerprint(head: str | None) -> str | None:
    """The short form of a chain head that people compare: its first 12 hex digits."""
    return head[:FINGERPRINT_DIGITS] if head else None


def _moment(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


# Appending -------------------------------------------------------------------------------------

RECORDS = cast(Table, AttributionRecord.__table__)
HEAD = Prepared(
    select(RECORDS.c.seq, RECORDS.c.hash)
    .where(RECORDS.c.problem_id == bindparam("problem_id"))
    .order_by(RECORDS.c.seq.desc())
    .limit(1)
)
# Appends to one problem's records queue here (PostgreSQL; SQLite's writers queue for its lock).
# Not the problem's row lock: a claim holds its referral's row while it appends, and closing a
# problem holds the problem's row while it expires the referrals, which would be a deadlock.
LOCK_RECORDS = Prepared(select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0))))
INSERT_RECORD = insert_of(
    RECORDS,
    *("problem_id", "seq", "kind", "referral_id", "introduction_id", "content", "prev_hash", "hash", "recorded_at"),
)


def _append(
    session: Session,
    problem_id: int,
    kind: AttributionKind,
    facts: dict[str, Any],
    *,
    referral_id: int | None = None,
    introduction_id: int | None = None,
    recorded_at: datetime | None = None,
) -> str:
    """Append one fact to the problem's chain; returns the new head.

    Appends to one problem queue (``LOCK_RECORDS``), so that two facts never follow the same head.
    """
    connection = connection_of(session)
    if connection.dialect.name == "postgresql":
        LOCK_RECORDS.fetchall(connection, {"key": f"attribution:problem:{problem_id}"})
    rows = HEAD.fetchall(connection, {"problem_id": problem_id})
    seq, prev_hash = (rows[0][0] + 1, rows[0][1]) if rows else (1, "")
    content = canonical(
        {
            "kind": kind.value,
            "problem_id": problem_id,
            "seq": seq,
            "referral_id": referral_id,
            "introduction_id": introduction_id,
            **facts,
        }
    )
    head = record_hash(prev_hash, content)
    values = {
        "problem_id": problem_id,
        "seq": seq,
        "kind": kind,
        "referral_id": referral_id,
        "introduction_id": introduction_id,
        "content": content,
        "prev_hash": prev_hash,
        "hash": head,
        "recorded_at": recorded_at or utcnow(),
    }
    INSERT_RECORD.execute(connection, values)
    return head


def claim_facts(referral: Referral) -> dict[str, Any]:
    """A claimed place: who holds it and since when, and where it sits (its referral's own hash
    covers the hop's sender, recipient, parent, depth, token and time)."""
    return {
        "holder_id": referral.holder_id,
        "claimed_at": _moment(referral.claimed_at),
        "parent_id": referral.parent_id,
        "sender_id": referral.sender_id,
        "depth": referral.depth,
        "referral_hash": referral.chain_hash,
    }


def introduction_facts(introduction: Introduction) -> dict[str, Any]:
    return {
        "introducer_id": introduction.introducer_id,
        "place_id": introduction.referral_id,
        "candidate_user_id": introduction.candidate_user_id,
        "created_at": _moment(introduction.created_at),
    }


def consent_facts(introduction: Introduction) -> dict[str, Any]:
    return {"candidate_user_id": introduction.candidate_user_id, "consented_at": _moment(introduction.consented_at)}


def acceptance_facts(introduction: Introduction, chain: list[int]) -> dict[str, Any]:
    return {
        "decided_by_id": introduction.decided_by_id,
        "decided_at": _moment(introduction.decided_at),
        "place_id": introduction.referral_id,
        "candidate_user_id": introduction.candidate_user_id,
        "chain": chain,
    }


def record_claim(session: Session, referral: Referral) -> str:
    return _append(session, referral.problem_id, AttributionKind.CLAIM, claim_facts(referral), referral_id=referral.id)


def record_introduction(session: Session, introduction: Introduction) -> str:
    """The introduction, and for a self-introduction (which is its own consent) the consent too."""
    head = _append(
        session,
        introduction.problem_id,
        AttributionKind.INTRODUCTION,
        introduction_facts(introduction),
        introduction_id=introduction.id,
    )
    if introduction.consented_at is not None:
        head = record_consent(session, introduction)
    return head


def record_consent(session: Session, introduction: Introduction) -> str:
    return _append(
        session,
        introduction.problem_id,
        AttributionKind.CONSENT,
        consent_facts(introduction),
        introduction_id=introduction.id,
    )


def record_acceptance(session: Session, introduction: Introduction, chain: list[int]) -> str:
    """The acceptance and the chain it pays (user ids, top first): on settlement's hot path, two
    prepared statements (three on PostgreSQL, with the lock). Returns the head the settlement pays."""
    return _append(
        session,
        introduction.problem_id,
        AttributionKind.ACCEPTANCE,
        acceptance_facts(introduction, chain),
        introduction_id=introduction.id,
    )


def head(session: Session, problem_id: int) -> str | None:
    """The hash of the problem's latest record (None before any)."""
    rows = HEAD.fetchall(connection_of(session), {"problem_id": problem_id})
    return rows[0][1] if rows else None


# Verifying -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    """What the records say an accepted introduction paid."""

    problem_id: int
    introduction_id: int
    head: str
    chain: list[int]
    candidate_user_id: int | None
    backfilled: bool


@dataclass
class Records:
    """Every problem's records, read and checked once: the latest fact of each kind per subject."""

    broken: list[str]
    claims: dict[int, dict[str, Any]]
    introductions: dict[int, dict[str, Any]]
    consents: dict[int, dict[str, Any]]
    acceptances: dict[int, dict[str, Any]]
    heads: dict[int, str]  # The hash of each acceptance record, by introduction.


def read_records(session: Session) -> Records:
    """Recompute every problem's chain: numbering, links, hashes, and that each row's columns
    say what its content says."""
    found = Records([], {}, {}, {}, {}, {})
    by_kind = {
        AttributionKind.CLAIM: found.claims,
        AttributionKind.INTRODUCTION: found.introductions,
        AttributionKind.CONSENT: found.consents,
        AttributionKind.ACCEPTANCE: found.acceptances,
    }
    expected_seq: dict[int, int] = {}
    last_hash: dict[int, str] = {}
    rows = session.execute(select(AttributionRecord).order_by(AttributionRecord.problem_id, AttributionRecord.seq))
    for record in rows.scalars():
        label = f"attribution record {record.id} (problem {record.problem_id}, #{record.seq})"
        seq = expected_seq.get(record.problem_id, 0) + 1
        if record.seq != seq:
            found.broken.append(f"{label}: expected #{seq}; a record is missing")
        if record.prev_hash != last_hash.get(record.problem_id, ""):
            found.broken.append(f"{label}: does not follow the record before it")
        if record_hash(record.prev_hash, record.content) != record.hash:
            found.broken.append(f"{label}: its hash does not match its content")
        expected_seq[record.problem_id] = record.seq
        last_hash[record.problem_id] = record.hash
        content = json.loads(record.content)
        columns = (record.kind.value, record.problem_id, record.seq, record.referral_id, record.introduction_id)
        said = tuple(content.get(key) for key in ("kind", "problem_id", "seq", "referral_id", "introduction_id"))
        if columns != said:
            found.broken.append(f"{label}: its columns disagree with its content")
            continue
        subject = record.referral_id if record.kind == AttributionKind.CLAIM else record.introduction_id
        if subject is not None:
            by_kind[record.kind][subject] = content
        if record.kind == AttributionKind.ACCEPTANCE and record.introduction_id is not None:
            found.heads[record.introduction_id] = record.hash
    return found


def _differences(label: str, row: dict[str, Any], recorded: dict[str, Any]) -> Iterator[str]:
    for column, value in row.items():
        if value != recorded.get(column):
            yield f"{label}: {column} is {value}, the attribution records say {recorded.get(column)}"


def _recorded_chain(claims: dict[int, dict[str, Any]], place_id: int | None) -> list[int]:
    """The holders from the root down to this place, as the claim records say."""
    chain = []
    while place_id is not None and place_id in claims:
        chain.append(claims[place_id]["holder_id"])
        place_id = claims[place_id]["parent_id"]
    return chain[::-1]


def verify_records(session: Session) -> tuple[list[str], list[Acceptance]]:
    """Every deciding column of referrals and introductions against the records.

    Returns one line per difference (naming the row and column), and the acceptances the records
    hold, for the ledger's check that every settled share went where they say.
    """
    records = read_records(session)
    found = list(records.broken)
    for referral in session.scalars(select(Referral).order_by(Referral.id)):
        label = f"referral {referral.id} (problem {referral.problem_id})"
        claim = records.claims.get(referral.id)
        if claim is None:
            if referral.status == ReferralStatus.CLAIMED or referral.holder_id is not None:
                found.append(
                    f"{label}: status is {referral.status.value} and holder_id is {referral.holder_id}, "
                    "but no claim is recorded"
                )
            continue
        if referral.status != ReferralStatus.CLAIMED:
            found.append(f"{label}: status is {referral.status.value}, the attribution records say claimed")
        found += _differences(label, claim_facts(referral), claim)
    accepted: list[Acceptance] = []
    for introduction in session.scalars(select(Introduction).order_by(Introduction.id)):
        label = f"introduction {introduction.id} (problem {introduction.problem_id})"
        made = records.introductions.get(introduction.id)
        consent = records.consents.get(introduction.id)
        acceptance = records.acceptances.get(introduction.id)
        if made is None:
            if introduction.status != IntroductionStatus.DUPLICATE:
                found.append(f"{label}: status is {introduction.status.value}, but no introduction is recorded")
            continue
        row = {
            "introducer_id": introduction.introducer_id,
            "referral_id": introduction.referral_id,
            "candidate_user_id": introduction.candidate_user_id,
        }
        recorded = {
            "introducer_id": made["introducer_id"],
            "referral_id": made["place_id"],
            "candidate_user_id": (consent or made)["candidate_user_id"],  # A consent may name the candidate.
        }
        found += _differences(label, row, recorded)
        if consent is not None:
            found += _differences(label, {"consented_at": _moment(introduction.consented_at)}, consent)
        elif introduction.status in CONSENTED_STATES or introduction.consented_at is not None:
            found.append(
                f"{label}: status is {introduction.status.value} and consented_at is {introduction.consented_at}, "
                "but no consent is recorded"
            )
        if acceptance is None:
            if introduction.status == IntroductionStatus.ACCEPTED:
                found.append(f"{label}: status is accepted, but no acceptance is recorded")
            continue
        if introduction.status != IntroductionStatus.ACCEPTED:
            found.append(f"{label}: status is {introduction.status.value}, the attribution records say accepted")
        found += _differences(label, {"decided_by_id": introduction.decided_by_id}, acceptance)
        claimed_chain = _recorded_chain(records.claims, acceptance["place_id"])
        if acceptance["chain"] != claimed_chain:
            found.append(f"{label}: the accepted chain {acceptance['chain']} is not the claimed {claimed_chain}")
        accepted.append(
            Acceptance(
                introduction.problem_id,
                introduction.id,
                records.heads[introduction.id],
                acceptance["chain"],
                acceptance["candidate_user_id"],
                bool(acceptance.get("backfilled")),
            )
        )
    return found, accepted


# Records for rows made before the records existed -----------------------------------------------


def backfill(session: Session) -> int:
    """Append the records of every existing claim, introduction, consent and acceptance, in the
    order they happened, for databases that had them before the records existed. An acceptance
    is marked ``backfilled``: its settlement was posted without a head. Returns how many."""
    referrals = cast(Table, Referral.__table__).c
    introductions = cast(Table, Introduction.__table__)
    intros = introductions.c
    events: list[tuple[int, datetime, int, AttributionKind, int, dict[str, Any]]] = []
    claims: dict[int, tuple[int | None, int | None]] = {}
    for row in session.execute(
        select(
            referrals.id,
            referrals.problem_id,
            referrals.holder_id,
            referrals.claimed_at,
            referrals.parent_id,
            referrals.sender_id,
            referrals.depth,
            referrals.chain_hash,
        ).where(referrals.status == ReferralStatus.CLAIMED.value)
    ):
        claims[row.id] = (row.holder_id, row.parent_id)
        facts = {
            "holder_id": row.holder_id,
            "claimed_at": _moment(row.claimed_at),
            "parent_id": row.parent_id,
            "sender_id": row.sender_id,
            "depth": row.depth,
            "referral_hash": row.chain_hash,
        }
        events.append((row.problem_id, row.claimed_at, 0, AttributionKind.CLAIM, row.id, facts))
    for row in session.execute(select(introductions).where(intros.status != IntroductionStatus.DUPLICATE.value)):
        made = {
            "introducer_id": row.introducer_id,
            "place_id": row.referral_id,
            "candidate_user_id": row.candidate_user_id,
            "created_at": _moment(row.created_at),
        }
        events.append((row.problem_id, row.created_at, 1, AttributionKind.INTRODUCTION, row.id, made))
        if row.consented_at is not None:
            consent = {"candidate_user_id": row.candidate_user_id, "consented_at": _moment(row.consented_at)}
            events.append((row.problem_id, row.consented_at, 2, AttributionKind.CONSENT, row.id, consent))
        if row.status == IntroductionStatus.ACCEPTED.value:
            chain: list[int] = []
            place = row.referral_id
            while place in claims:
                holder, place = claims[place]
                chain.append(cast(int, holder))
            accepted = {
                "decided_by_id": row.decided_by_id,
                "decided_at": _moment(row.decided_at),
                "place_id": row.referral_id,
                "candidate_user_id": row.candidate_user_id,
                "chain": chain[::-1],
                "backfilled": True,
            }
            events.append((row.problem_id, row.decided_at, 3, AttributionKind.ACCEPTANCE, row.id, accepted))
    for problem_id, at, _, kind, subject, facts in sorted(events, key=lambda e: (e[0], e[1], e[2], e[4])):
        subject_ids = {"referral_id": subject} if kind == AttributionKind.CLAIM else {"introduction_id": subject}
        _append(session, problem_id, kind, facts, recorded_at=at, **subject_ids)
    return len(events)
