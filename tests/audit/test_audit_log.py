"""The audit log: every state change that matters writes one entry in its own transaction (who,
what, when, from which address), the database refuses to change or remove an entry, admins read
the whole log, and the people of a problem read its history, names hidden as they chose."""

from datetime import timedelta

import pytest
from blinker import NamedSignal
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from marketplace import signals
from marketplace.audit import registry as audit_registry
from marketplace.audit.models import AuditEntry
from marketplace.db import db, utcnow
from marketplace.notifications.models import Notification
from marketplace.referrals.models import Introduction, Referral
from tests import builders as build
from tests.statements import statements

OWNER_IP, ANN_IP, BOB_IP, DEV_IP, CLEO_IP, ADMIN_IP, NEW_IP = (f"203.0.113.{n}" for n in range(1, 8))
BOB = {"environ_base": {"REMOTE_ADDR": BOB_IP}}


def from_address(client, ip: str):
    """Requests from this client come from ``ip`` (what the web server reports as the remote address)."""
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def entries(session, **where) -> list[tuple]:
    """(action, actor id, ip, subject type, subject id) of the matching entries, oldest first."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    for column, value in where.items():
        query = query.where(getattr(AuditEntry, column) == value)
    rows = [(e.action, e.actor_id, e.ip, e.subject_type, e.subject_id) for e in session.scalars(query)]
    session.commit()
    return rows


def post_problem(owner_api, company_id: int, ip: str, **extra) -> int:
    body = {
        "company_id": company_id, "title": "Fix our Postgres replication lag",
        "description": "Replicas fall minutes behind at peak hours; we need an expert.",
        "skills": ["postgres"], "bounty": {"amount": 100_000, "currency": "usd"}, **extra,
    }  # fmt: skip
    response = owner_api.post("/problems", body, environ_base={"REMOTE_ADDR": ip})
    assert response.status_code == 201, response.json
    return response.json["id"]


def logged_in_from(browser, member, ip: str):
    person = build.logged_in(browser, member)
    from_address(person.client, ip)
    return person


@pytest.fixture
def platform_admin(session, make_user):
    admin = make_user("Pat Platform", "pat@marketplace.example")
    admin.is_platform_admin = True
    session.commit()
    return admin


def test_sign_up_is_recorded_with_the_new_member_and_their_address(browser, session):
    person = browser()
    from_address(person.client, NEW_IP)
    assert person.signup("Nora Newcomer", "nora@example.com").status_code == 200
    nora = session.scalar(select(AuditEntry.subject_id).where(AuditEntry.action == "member.signed_up"))
    assert entries(session, action="member.signed_up") == [("member.signed_up", nora, NEW_IP, "users", nora)]


def test_every_step_of_a_problem_is_recorded_with_its_actor_and_address(session, world, api, browser, platform_admin):
    owner, ann, bob, cleo, dev = (api(member) for member in (world.owner, world.ann, world.bob, world.cleo, world.dev))
    at = {ip: {"environ_base": {"REMOTE_ADDR": ip}} for ip in (OWNER_IP, ANN_IP, BOB_IP, CLEO_IP, DEV_IP)}
    problem_id = post_problem(owner, world.company.id, OWNER_IP, guarantee_days=30)
    owner_page = logged_in_from(browser, world.owner, OWNER_IP)
    assert (
        "open to referrals" in owner_page.submit(f"/problems/{problem_id}", action=f"/problems/{problem_id}/fund").text
    )

    assert ann.post(f"/problems/{problem_id}/pick", **at[ANN_IP]).status_code in (200, 201)
    sent = ann.post(f"/problems/{problem_id}/referrals", {"to_user_id": world.bob.id}, **at[ANN_IP])
    assert sent.status_code in (200, 201), sent.json
    assert bob.post(f"/referrals/{sent.json['token']}/claim", **at[BOB_IP]).status_code == 200
    message = {"message": "Knows exactly this problem."}
    to_cleo = bob.post(
        f"/problems/{problem_id}/introductions", {"candidate_user_id": world.cleo.id, **message}, **at[BOB_IP]
    )
    to_dev = bob.post(
        f"/problems/{problem_id}/introductions", {"candidate_user_id": world.dev.id, **message}, **at[BOB_IP]
    )
    assert cleo.post(f"/introductions/{to_cleo.json['id']}/consent", {"accept": True}, **at[CLEO_IP]).status_code == 200
    assert dev.post(f"/introductions/{to_dev.json['id']}/consent", {"accept": True}, **at[DEV_IP]).status_code == 200
    assert owner.post(f"/introductions/{to_cleo.json['id']}/decline", **at[OWNER_IP]).status_code == 200
    assert owner.post(f"/introductions/{to_dev.json['id']}/accept", **at[OWNER_IP]).status_code == 200

    owner_page.submit(
        f"/problems/{problem_id}",
        {"reason": "The expert left after a week."},
        action=f"/problems/{problem_id}/disputes",
    )
    dispute_id = session.scalar(text("SELECT id FROM disputes"))
    session.commit()
    admin_page = logged_in_from(browser, platform_admin, ADMIN_IP)
    admin_page.submit("/admin/disputes", {"note": "Checked."}, action=f"/admin/disputes/{dispute_id}/reject")

    referral_of = {r.holder_id: r.id for r in session.scalars(select(Referral))}
    session.commit()
    owner_id, ann_id, bob_id = world.owner.id, world.ann.id, world.bob.id
    assert entries(session, problem_id=problem_id) == [
        ("problem.published", owner_id, OWNER_IP, "problems", problem_id),
        ("problem.funded", owner_id, OWNER_IP, "problems", problem_id),
        ("referral.claimed", ann_id, ANN_IP, "referrals", referral_of[ann_id]),
        ("referral.forwarded", ann_id, ANN_IP, "referrals", referral_of[bob_id]),
        ("referral.claimed", bob_id, BOB_IP, "referrals", referral_of[bob_id]),
        ("introduction.made", bob_id, BOB_IP, "introductions", to_cleo.json["id"]),
        ("introduction.made", bob_id, BOB_IP, "introductions", to_dev.json["id"]),
        ("introduction.consented", world.cleo.id, CLEO_IP, "introductions", to_cleo.json["id"]),
        ("introduction.consented", world.dev.id, DEV_IP, "introductions", to_dev.json["id"]),
        ("introduction.declined", owner_id, OWNER_IP, "introductions", to_cleo.json["id"]),
        ("introduction.accepted", owner_id, OWNER_IP, "introductions", to_dev.json["id"]),
        ("bounty.settled", owner_id, OWNER_IP, "problems", problem_id),
        ("dispute.opened", owner_id, OWNER_IP, "disputes", dispute_id),
        ("dispute.rejected", platform_admin.id, ADMIN_IP, "disputes", dispute_id),
        ("shares.released", platform_admin.id, ADMIN_IP, "problems", problem_id),
    ]


def test_a_candidates_no_and_an_introducers_withdrawal_are_recorded_and_told(
    session, world, api, open_problem, make_user
):
    """Saying no and taking an introduction back change who may be paid, so both are audited;
    the introducer hears the no, the candidate and (once it had reached them) the company hear
    of the withdrawal, and nobody is told of their own act."""
    eve, fay, gus = (make_user(f"{n} Expert", f"{n.lower()}@example.com") for n in ("Eve", "Fay", "Gus"))
    problem = open_problem()
    build.chain(session, problem, [world.ann, world.bob])
    session.commit()
    bob = api(world.bob)
    made = {}
    for candidate in (eve, fay, gus):
        body = {"candidate_user_id": candidate.id, "message": "Knows exactly this problem."}
        made[candidate.id] = bob.post(f"/problems/{problem.id}/introductions", body, **BOB).json["id"]
    said_no = api(eve).post(
        f"/introductions/{made[eve.id]}/consent", {"accept": False}, environ_base={"REMOTE_ADDR": DEV_IP}
    )
    assert said_no.status_code == 200, said_no.json
    assert bob.post(f"/introductions/{made[fay.id]}/withdraw", **BOB).status_code == 200
    assert api(gus).post(f"/introductions/{made[gus.id]}/consent", {"accept": True}).status_code == 200
    assert bob.post(f"/introductions/{made[gus.id]}/withdraw", **BOB).status_code == 200

    assert entries(session, problem_id=problem.id, subject_type="introductions")[3:] == [
        ("introduction.refused", eve.id, DEV_IP, "introductions", made[eve.id]),
        ("introduction.withdrawn", world.bob.id, BOB_IP, "introductions", made[fay.id]),
        ("introduction.consented", gus.id, "127.0.0.1", "introductions", made[gus.id]),
        ("introduction.withdrawn", world.bob.id, BOB_IP, "introductions", made[gus.id]),
    ]
    told = {
        (n.user_id, n.kind)
        for n in session.scalars(select(Notification).where(Notification.kind.like("introduction_%")))
        if n.kind in ("introduction_answered", "introduction_withdrawn")
    }
    session.commit()
    assert told == {
        (world.bob.id, "introduction_answered"),
        (fay.id, "introduction_withdrawn"),
        (gus.id, "introduction_withdrawn"),
        (world.owner.id, "introduction_withdrawn"),
        (world.admin.id, "introduction_withdrawn"),
    }


def test_cancelling_is_the_managers_and_expiry_is_the_systems(session, world, api, runner):
    owner = api(world.owner)
    cancelled = post_problem(owner, world.company.id, OWNER_IP)
    assert owner.post(f"/problems/{cancelled}/cancel", environ_base={"REMOTE_ADDR": OWNER_IP}).status_code == 200
    expiring = post_problem(owner, world.company.id, OWNER_IP)
    session.execute(
        text("UPDATE problems SET expires_at = :past WHERE id = :id"),
        {"past": utcnow() - timedelta(days=1), "id": expiring},
    )
    session.commit()
    assert runner.invoke(args=["problems", "expire"]).exit_code == 0

    assert entries(session, action="problem.cancelled") == [
        ("problem.cancelled", world.owner.id, OWNER_IP, "problems", cancelled)
    ]
    assert entries(session, action="problem.expired") == [("problem.expired", None, None, "problems", expiring)]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor_id = NULL", "UPDATE audit_log SET ip = '10.0.0.1'", "DELETE FROM audit_log"],
)
def test_the_database_refuses_to_update_or_delete_audit_entries(session, world, statement):
    before = entries(session)
    assert before, "the world's sign-ups are recorded"
    with db.engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"), connection.begin():
        connection.execute(text(statement))
    assert entries(session) == before


# Reading the log ---------------------------------------------------------------------------------


@pytest.fixture
def settled_problem(session, world, open_problem):
    """Ann → Bob → Cleo; Cleo introduced Dev, who agreed; the owner accepted. Bob keeps his name
    off chains."""
    world.bob.show_name_on_chains = False
    session.commit()
    problem = open_problem()
    build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo], world.dev)
    return problem


def test_the_problem_page_shows_its_history_to_its_people_only(settled_problem, world, browser, session):
    problem_id = settled_problem.id
    session.commit()
    for member in (world.owner, world.ann, world.bob, world.cleo):
        page = build.logged_in(browser, member).get(f"/problems/{problem_id}").text
        assert 'id="history"' in page, member.name
        assert "Ann Li took a place in a chain" in page
        assert "Olivia Owner accepted an introduction" in page
        assert "203.0.113" not in page
        # Bob keeps his name off chains: the company reads "Anonymous member"; he himself, and Ann
        # and Cleo, who dealt with him directly, read his name (referrals.appearance).
        history = page.split('id="history"')[1]
        if member is world.owner:
            assert "Anonymous member took a place in a chain" in history and "Bob Martins" not in history
        else:
            assert "Bob Martins took a place in a chain" in history
    for stranger in (world.outsider, None):
        person = build.logged_in(browser, stranger) if stranger else browser()
        page = person.get(f"/problems/{problem_id}")
        assert page.status_code == 200 and 'id="history"' not in page.text
        assert "took a place in a chain" not in page.text


def test_the_paid_chains_fingerprint_is_shown_to_the_company_and_the_chain(
    settled_problem, world, browser, api, session
):
    head = session.scalar(
        text("SELECT reference FROM ledger_transactions WHERE idempotency_key = :key"),
        {"key": f"settle:problem:{settled_problem.id}"},
    ).removeprefix("chain:")
    introduction_id = session.scalar(select(Introduction.id).where(Introduction.status == "accepted"))
    session.commit()
    fingerprint = head[:12]
    for member in (world.owner, world.ann, world.cleo):
        assert fingerprint in build.logged_in(browser, member).get(f"/problems/{settled_problem.id}").text
        assert api(member).get(f"/problems/{settled_problem.id}").json["chain_fingerprint"] == fingerprint
    assert (
        api(world.owner).get(f"/problems/{settled_problem.id}/introductions").json[0]["chain_fingerprint"]
        == fingerprint
    )
    assert introduction_id
    assert fingerprint not in build.logged_in(browser, world.outsider).get(f"/problems/{settled_problem.id}").text
    assert api(world.outsider).get(f"/problems/{settled_problem.id}").json["chain_fingerprint"] is None
    assert api().get(f"/problems/{settled_problem.id}").json["chain_fingerprint"] is None


def test_admins_read_the_log_filtered_and_paged_in_a_fixed_number_of_statements(
    app, settled_problem, world, browser, platform_admin, session
):
    admin = build.logged_in(browser, platform_admin)
    whole = admin.get("/admin/audit")
    assert whole.status_code == 200
    assert "introduction.accepted" in whole.text and "member.signed_up" in whole.text

    only = admin.get(f"/admin/audit?subject_type=problems&subject_id={settled_problem.id}").text
    assert "bounty.settled" in only and "referral.claimed" not in only and "member.signed_up" not in only
    by_problem = admin.get(f"/admin/audit?problem_id={settled_problem.id}").text
    assert "referral.claimed" in by_problem and "member.signed_up" not in by_problem
    assert admin.get("/admin/audit?subject_id=abc").status_code == 422
    assert admin.get("/admin/audit?page=99999").status_code == 422

    counts = []
    for pages in ("?page=1", "?subject_type=users"):
        with statements(app) as log:
            assert admin.get("/admin/audit" + pages).status_code == 200
        counts.append(len(log))
    assert counts[0] == counts[1], counts  # 22 entries or 8: the same statements.

    for member in (world.owner, world.ann):
        assert build.logged_in(browser, member).get("/admin/audit").status_code == 404
    session.commit()


def test_the_log_is_paged(session, make_user, browser, platform_admin):
    for n in range(30):
        make_user(f"Member {n:02d}", f"member{n:02d}@example.com")
    admin = build.logged_in(browser, platform_admin)
    first = admin.get("/admin/audit?subject_type=users").text
    second = admin.get("/admin/audit?subject_type=users&page=2").text
    assert "member.signed_up" in first and "Older" in first and "Newer" not in first
    assert "Newer" in second and "Older" not in second
    # 31 members (the admin too), each signed up and confirmed their address: 62 entries.
    assert first.count("<code>member.") == 50
    assert second.count("<code>member.") == 62 - 50


def test_every_signal_is_recorded_or_says_why_not():
    """A new state change cannot slip past the audit log: each signal of the namespace has a
    receiver in the log's registry or a stated reason not to."""
    every = {value for value in vars(signals).values() if isinstance(value, NamedSignal)}
    recorded, skipped = set(audit_registry.RECEIVERS), set(audit_registry.NOT_RECORDED)
    assert not recorded & skipped
    assert every == recorded | skipped, sorted(s.name for s in every - recorded - skipped)
