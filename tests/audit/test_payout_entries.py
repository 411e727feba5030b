"""Payouts are the system's doing: the worker sends each transfer, and its audit entry names no
member and no address, only the share, the amount and the transfer."""

from sqlalchemy import select

from marketplace.audit.models import AuditEntry
from marketplace.ledger.models import Share
from tests.payments import test_payments as money_loop

# The emulator and the app served over HTTP, as the money loop's tests use them.
emulator = money_loop.emulator
live = money_loop.live


def test_each_payout_sent_is_recorded_as_the_systems(live, emulator, app, api, world, session):
    problem_id = money_loop.funded_problem(live, emulator, app, api, world)
    introduction = money_loop.chain_of_three_accepted(session, world, problem_id)
    assert api(world.owner).post(f"/introductions/{introduction.id}/accept").status_code == 200
    money_loop.run_jobs(app)
    for member in (world.ann, world.bob, world.cleo):
        assert money_loop.onboard(api(member)).status_code == 303
    money_loop.deliver(emulator, app)
    money_loop.run_jobs(app)

    shares = {s.id: s for s in session.scalars(select(Share).where(Share.problem_id == problem_id))}
    sent = session.scalars(select(AuditEntry).where(AuditEntry.action == "payout.sent")).all()
    assert sorted(entry.subject_id for entry in sent) == sorted(shares)
    for entry in sent:
        share = shares[entry.subject_id]
        assert (entry.actor_id, entry.ip, entry.subject_type, entry.problem_id) == (
            None,
            None,
            "ledger_shares",
            problem_id,
        )
        assert entry.detail["member_id"] == share.member_id and entry.detail["amount"] == share.amount
        assert entry.detail["transfer_id"] == share.transfer_reference
    session.commit()
