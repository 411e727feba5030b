"""The domain signals (``marketplace.signals``), each turned into notifications for exactly the
right people.

Every receiver runs inside the transaction of the event it hears, so a notification (and its
e-mail job) exists exactly when the event does. Names of chain members follow their privacy
choice (``referrals.appearance``): upstream links learn that their chain grew, not who joined it.
"""

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Invitation, Membership, Role, User
from marketplace.db import utcnow
from marketplace.ledger.models import Share
from marketplace.ledger.settlement import SettlementSummary
from marketplace.money import format_money
from marketplace.network.models import ConnectionRequest, JoinInvitation
from marketplace.notifications.service import (
    Message,
    due_for_expiry_warning,
    email_only,
    notify,
    notify_address,
)
from marketplace.problems.models import Problem
from marketplace.problems.service import payout_preview
from marketplace.referrals import appearance
from marketplace.referrals.chains import chain_member_ids, chain_to
from marketplace.referrals.models import Introduction, Referral


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def _managers(session: Session, company_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.company_id == company_id, Membership.role.in_([Role.OWNER, Role.ADMIN]))
        )
    )


def _payout_preview_for(problem: Problem, depth: int) -> dict[str, str]:
    """What the recipient of a referral at ``depth`` would earn, as finder or as a link above one."""
    rows = payout_preview(problem, max_links=problem.max_depth)
    preview = {}
    if depth <= len(rows):
        preview["as_finder"] = _money(rows[depth - 1].shares[-1], problem.currency)
    if depth < len(rows):
        preview["as_link"] = _money(rows[-1].shares[depth - 1], problem.currency)
    return preview


def referral_sent(referral: Referral, *, session: Session, **_: Any) -> None:
    problem = referral.problem
    sender = referral.sender
    if sender is None:
        raise ValueError(f"referral {referral.id} has no sender to name")
    message = Message(
        title=f"{sender.name} thinks you can help: {problem.title}",
        body=referral.note,
        link=f"/r/{referral.token}",
        data={
            "sender": sender.name,
            "note": referral.note,
            "problem": problem.title,
            "company": problem.company.name,
            "bounty": _money(problem.bounty_amount, problem.currency),
            "depth": referral.depth,
            "preview": _payout_preview_for(problem, referral.depth),
        },
    )
    email = referral.recipient_user.email if referral.recipient_user else referral.recipient_email
    if email is None:
        raise ValueError(f"referral {referral.id} has neither a recipient nor an address")
    notify_address(session, email, referral.recipient_user, "referral_received", f"referral:{referral.id}", message)


def chain_grew(referral: Referral, *, session: Session, what: str, exclude_id: int | None, **_: Any) -> None:
    """Tell every link above ``referral`` that the chain grew (counts, never names), except the
    member who made it grow."""
    problem = referral.problem
    above = [r.holder for r in chain_to(referral.parent) if r.holder is not None]
    for position, member in enumerate(above, start=1):
        if member.id == exclude_id:
            continue
        links_below = referral.depth - position
        message = Message(
            title=f"Your chain for “{problem.title}” grew",
            body=f"It now reaches {links_below} link{'s' if links_below != 1 else ''} past you; someone {what}.",
            link=f"/problems/{problem.id}",
            data={"problem": problem.title, "links_below": links_below, "what": what},
        )
        notify(session, member, "chain_grew", f"referral:{referral.id}:{what}", message)


def introduction_awaiting_consent(introduction: Introduction, *, session: Session, **_: Any) -> None:
    problem = introduction.problem
    message = Message(
        title=f"{introduction.introducer.name} would like to introduce you to {problem.company.name}",
        body=introduction.message,
        link=f"/i/{introduction.consent_token}",
        data={
            "introducer": introduction.introducer.name,
            "company": problem.company.name,
            "problem": problem.title,
            "message": introduction.message,
            "candidate_name": introduction.candidate_name,
        },
    )
    notify_address(
        session,
        introduction.candidate_email,
        introduction.candidate_user,
        "introduction_consent",
        f"introduction:{introduction.id}",
        message,
    )


def introduction_proposed(introduction: Introduction, *, session: Session, **_: Any) -> None:
    """The company hears of a consented candidate, with the introducer's message and the
    candidate's own note to the company, if they wrote one."""
    problem = introduction.problem
    name = introduction.candidate_name or introduction.candidate_email
    body = introduction.message
    if introduction.candidate_note:
        body += f"\n\n{name} adds: {introduction.candidate_note}"
    for manager in _managers(session, problem.company_id):
        introducer = appearance.name_of(introduction.introducer, appearance.viewer_on(session, manager, problem.id))
        message = Message(
            title=f"{name} agreed to be introduced for “{problem.title}”",
            body=body,
            link=f"/problems/{problem.id}",
            data={
                "candidate": name,
                "introducer": introducer,
                "problem": problem.title,
                "candidate_note": introduction.candidate_note,
            },
        )
        notify(session, manager, "introduction_proposed", f"introduction:{introduction.id}", message)


def introduction_accepted(
    introduction: Introduction, *, session: Session, chain: list[int], settlement: SettlementSummary, **_: Any
) -> None:
    """Everyone the accept paid hears what they earned; the rest of the chain hears it was accepted."""
    earned: dict[int, int] = {}
    for line in settlement.shares:
        earned[line.user_id] = earned.get(line.user_id, 0) + line.amount
    _tell_decision(session, introduction, chain, earned)
    _tell_candidate(session, introduction, settlement.candidate_share)


def introduction_declined(introduction: Introduction, *, session: Session, **_: Any) -> None:
    chain = chain_member_ids(session, introduction.referral_id) if introduction.referral_id else []
    _tell_decision(session, introduction, chain, {})
    _tell_candidate(session, introduction, 0)


def introduction_refused(introduction: Introduction, *, session: Session, **_: Any) -> None:
    """The introducer hears the candidate's no, kindly, and that the company never saw it."""
    problem = introduction.problem
    name = introduction.candidate_name or "The candidate"
    message = Message(
        title=f"{name} chose not to be introduced for “{problem.title}”",
        body=(
            "Thank you for thinking of them. The company never saw this introduction, and nothing "
            "about it is shared; you can still introduce someone else."
        ),
        link=f"/problems/{problem.id}",
        data={"problem": problem.title, "candidate": name},
    )
    key = f"introduction:{introduction.id}:refused"
    notify(session, introduction.introducer, "introduction_answered", key, message)


def introduction_withdrawn(introduction: Introduction, *, session: Session, was_proposed: bool, **_: Any) -> None:
    """The candidate hears that nothing more will happen; the company's managers hear it only if
    the introduction had reached them. The introducer acted, so is told nothing."""
    problem = introduction.problem
    key = f"introduction:{introduction.id}:withdrawn"
    to_candidate = Message(
        title=f"The introduction to {problem.company.name} for “{problem.title}” was withdrawn",
        body="Nothing more will happen with it, and nothing about you is shared with the company.",
        data={"problem": problem.title, "company": problem.company.name},
    )
    if not introduction.is_self_introduction:
        notify_address(
            session, introduction.candidate_email, introduction.candidate_user, "introduction_withdrawn", key,
            to_candidate,
        )  # fmt: skip
    if not was_proposed:
        return
    name = introduction.candidate_name or introduction.candidate_email
    for manager in _managers(session, problem.company_id):
        message = Message(
            title=f"The introduction of {name} for “{problem.title}” was withdrawn",
            body="It no longer waits for your decision.",
            link=f"/problems/{problem.id}",
            data={"problem": problem.title, "candidate": name},
        )
        notify(session, manager, "introduction_withdrawn", key, message)


def _tell_candidate(session: Session, introduction: Introduction, thank_you: int) -> None:
    """The expert agreed to be introduced; they hear the company's answer and what comes next.

    A member who put themselves forward hears it as the introducer instead."""
    if introduction.is_self_introduction:
        return
    problem = introduction.problem
    company = problem.company.name
    if introduction.status.value == "accepted":
        title = f"{company} accepted your introduction for “{problem.title}”"
        body = (
            f"{company} will contact you at {introduction.candidate_email} to take it from here; "
            "the terms of the work are between you and them."
        )
        if thank_you:
            body += f" As a thank-you for agreeing, {_money(thank_you, problem.currency)} is yours. " + _until_yours(
                problem, "the thank-you"
            )
    else:
        title = f"{company} went another way on “{problem.title}”"
        body = (
            "Thank you for agreeing to be introduced. The company has chosen someone else; nothing "
            "more is shared about you, and nobody else is told."
        )
    message = Message(
        title=title,
        body=body,
        link="/me/earnings" if thank_you else "",
        data={"problem": problem.title, "company": company, "accepted": introduction.status.value == "accepted"},
    )
    key = f"introduction:{introduction.id}:candidate:{introduction.status.value}"
    notify_address(session, introduction.candidate_email, introduction.candidate_user, "candidate_answer", key, message)


def _until_yours(problem: Problem, what: str) -> str:
    """When ``what`` (a share) becomes the member's to use, in words that fit a problem without
    a guarantee period (not "held for the 0-day guarantee period")."""
    days = problem.guarantee_days
    if days == 0:
        return f"There is no guarantee period: {what} is yours now to pay out or pass on."
    held = f"{what[:1].upper()}{what[1:]} is held for the {days}-day guarantee period"
    return f"{held}, then it is yours to pay out or pass on."


def _tell_decision(session: Session, introduction: Introduction, chain: list[int], earned: dict[int, int]) -> None:
    """Accepted or declined: the introducer and everyone on their chain hear it, kindly."""
    problem = introduction.problem
    accepted = introduction.status.value == "accepted"
    ids = [introduction.introducer_id, *chain]
    users = {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}
    people = {user_id: users[user_id] for user_id in dict.fromkeys(ids)}
    for person_id in list(people):
        if earned.get(person_id):
            person = people.pop(person_id)
            member_paid(
                session, person, "share_settled", f"problem:{problem.id}", problem=problem,
                amount=earned[person_id],
                detail=f"{problem.company.name} accepted the introduction. {_until_yours(problem, 'your share')}",
            )  # fmt: skip
    for person in people.values():
        message = Message(
            title=(
                f"Your introduction for “{problem.title}” was accepted"
                if accepted
                else f"{problem.company.name} went another way on “{problem.title}”"
            ),
            body=(
                (
                    "The bounty is shared along the chain and held for the guarantee period."
                    if problem.guarantee_days
                    else "The bounty is shared along the chain and paid at once."
                )
                if accepted
                else "Thank you for the introduction. Declining is about fit, never about you."
            ),
            link=f"/problems/{problem.id}",
            data={"problem": problem.title, "accepted": accepted, "company": problem.company.name},
        )
        notify(
            session,
            person,
            "introduction_decided",
            f"introduction:{introduction.id}:{introduction.status.value}",
            message,
        )


def shares_released(problem: Problem, *, session: Session, shares: list[Share], **_: Any) -> None:
    for share in shares:
        member_paid(
            session, share.member, "share_released", f"share:{share.id}", problem=problem, amount=share.amount,
            detail="The guarantee period is over. It is paid out to your payout account, or you can pass it on.",
        )  # fmt: skip


def problem_funded(problem: Problem, *, session: Session, **_: Any) -> None:
    for manager in _managers(session, problem.company_id):
        notify(
            session,
            manager,
            "problem_funded",
            f"problem:{problem.id}",
            Message(
                title=f"“{problem.title}” is funded and open",
                body=f"The {_money(problem.bounty_amount, problem.currency)} bounty is held in escrow; "
                "share the problem with people who might know the expert.",
                link=f"/problems/{problem.id}",
                data={"problem": problem.title, "bounty": _money(problem.bounty_amount, problem.currency)},
            ),
        )


def _problem_expiring(session: Session, problem: Problem) -> None:
    for manager in _managers(session, problem.company_id):
        notify(
            session,
            manager,
            "problem_expiring",
            f"problem:{problem.id}",
            Message(
                title=f"“{problem.title}” closes on {problem.expires_at:%d %b %Y}",
                body="If it closes without an accepted introduction, the bounty is refunded in full.",
                link=f"/problems/{problem.id}",
                data={"problem": problem.title, "closes": f"{problem.expires_at:%d %b %Y}"},
            ),
        )


def warn_problems_closing_soon(session: Session) -> int:
    """Each open problem closing within three days gets one warning (notify is idempotent)."""
    problems = list(due_for_expiry_warning(session))
    for problem in problems:
        _problem_expiring(session, problem)
    return len(problems)


def problem_closed(problem: Problem, *, session: Session, **_: Any) -> None:
    state = problem.status.value.replace("_", " ")
    for manager in _managers(session, problem.company_id):
        notify(
            session,
            manager,
            "problem_closed",
            f"problem:{problem.id}:{problem.status.value}",
            Message(
                title=f"“{problem.title}” is {state}",
                body="Any bounty paid for it is refunded in full to your card.",
                link=f"/problems/{problem.id}",
                data={"problem": problem.title, "state": state},
            ),
        )


def member_paid(
    session: Session, user: User, kind: str, event_key: str, *, problem: Problem, amount: int, detail: str
) -> None:
    """Money news for a member: a share settled, released, paid out, or a payout that failed."""
    titles = {
        "share_settled": "You earned {amount} for “{problem}”",
        "share_released": "{amount} for “{problem}” is now available",
        "payout_sent": "{amount} for “{problem}” is on its way to your bank",
        "payout_failed": "Your payout of {amount} for “{problem}” failed",
    }
    amount_text = _money(amount, problem.currency)
    notify(
        session,
        user,
        kind,
        event_key,
        Message(
            title=titles[kind].format(amount=amount_text, problem=problem.title),
            body=detail,
            link="/me/earnings",
            data={"problem": problem.title, "amount": amount_text, "detail": detail},
        ),
    )


def payout_sent(share: Share, *, session: Session, transfer_id: str, amount: int, **_: Any) -> None:
    member_paid(
        session, share.member, "payout_sent", f"share:{share.id}:{transfer_id}", problem=share.problem,
        amount=amount, detail="Stripe usually puts it in your bank within two business days.",
    )  # fmt: skip


def payout_failed(share: Share, *, session: Session, reason: str, amount: int, **_: Any) -> None:
    member_paid(
        session, share.member, "payout_failed", f"share:{share.id}:{share.payout_attempts}", problem=share.problem,
        amount=amount,
        detail=f"Stripe refused it: {reason.rstrip('.')}. The money is safe in your available balance and is "
        "sent again as soon as your payout account is ready (check it on the earnings page) or our team "
        "has fixed the cause; nothing is retried before that.",
    )  # fmt: skip


def payout_account_attention(
    user: User, *, session: Session, event_key: str, requirements: list[str], summary: str, **_: Any
) -> None:
    notify(
        session,
        user,
        "payout_account",
        event_key,
        Message(
            title="Your payout account needs attention",
            body=summary or "Finish setting up payouts.",
            link="/me/earnings",
            data={"requirements": requirements, "summary": summary},
        ),
    )


def payment_alert(
    _sender: None, *, session: Session, key: str, text: str, link: str = "/admin/disputes", **_: Any
) -> None:
    """Every platform admin hears of it."""
    for admin in session.scalars(select(User).where(User.is_platform_admin.is_(True))):
        notify(
            session,
            admin,
            "admin_alert",
            key,
            Message(title="A payment needs your attention", body=text, link=link),
        )


def invitation_created(invitation: Invitation, *, session: Session, token: str, **_: Any) -> None:
    message = Message(
        title=f"{invitation.invited_by.name} invites you to {invitation.company.name}",
        link=f"/invitations/{token}",
        secret_link=True,
        data={"inviter": invitation.invited_by.name, "company": invitation.company.name, "role": invitation.role.value},
    )
    email_only(
        session, invitation.email, "invitation", f"invitation:{invitation.id}:{invitation.token_hash[:12]}", message
    )


def password_reset_requested(user: User, *, session: Session, token: str, **_: Any) -> None:
    message = Message(
        title="Reset your password", link=f"/password/reset/{token}", data={"name": user.name}, secret_link=True
    )
    # The job's key names the link by its token's hash, never by any part of the token itself.
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    email_only(session, user.email, "password_reset", f"user:{user.id}:{digest}", message)


def email_verification_requested(user: User, *, session: Session, token: str, **_: Any) -> None:
    """The confirmation link goes to the address to prove, never to the inbox in the app: only
    reading that address's mail proves it."""
    message = Message(
        title="Confirm your e-mail address",
        link=f"/verify-email/{token}",
        secret_link=True,
        data={"name": user.name, "email": user.email},
    )
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    email_only(session, user.email, "email_verification", f"user:{user.id}:{digest}", message)


def member_removed(company: Company, *, session: Session, member: User, actor: User, **_: Any) -> None:
    """The removed member hears it from us rather than from a refused page; stepping down tells nobody."""
    if member.id == actor.id:
        return
    message = Message(
        title=f"You are no longer a member of {company.name}",
        body=f"{actor.name} removed you from {company.name}. What you posted and introduced there stays yours.",
        link="/dashboard",
        data={"company": company.name, "actor": actor.name},
    )
    notify(session, member, "membership_ended", f"company:{company.id}:{utcnow().isoformat()}", message)


def webhook_endpoint_disabled(
    endpoint: Any, *, session: Session, company_id: int, url: str, reason: str, **_: Any
) -> None:
    """The company's owner and admins hear that their systems stopped getting events, and why."""
    for manager in _managers(session, company_id):
        message = Message(
            title=f"Webhooks to {url} are disabled",
            body=f"{reason} Nothing more is sent there until you enable the endpoint again.",
            link=f"/companies/{company_id}/webhooks/{endpoint.id}",
            data={"url": url, "reason": reason},
        )
        notify(session, manager, "webhook_disabled", f"webhook-endpoint:{endpoint.id}:{endpoint.disabled_at}", message)


def connection_requested(request: ConnectionRequest, *, session: Session, **_: Any) -> None:
    """The member asked hears who asks, with their note, and where to answer."""
    asker = request.from_user
    message = Message(
        title=f"{asker.name} asks to connect with you",
        body=request.note,
        link="/network",
        data={"from": asker.name, "note": request.note},
    )
    notify(session, request.to_user, "connection_request", f"connection-request:{request.id}", message)


def connection_confirmed(request: ConnectionRequest, *, session: Session, actor_id: int, **_: Any) -> None:
    """The member who asked hears that the other confirmed (whoever's step made it: when both had
    asked, the other one is told)."""
    told, by = (
        (request.from_user, request.to_user) if actor_id == request.to_user_id else (request.to_user, request.from_user)
    )
    message = Message(
        title=f"{by.name} confirmed: you are connected",
        body=f"You can now forward problems to {by.name}, and they to you.",
        link="/network",
        data={"peer": by.name},
    )
    notify(session, told, "connection_confirmed", f"connection-confirmed:{request.id}", message)


def member_invited_to_join(invitation: JoinInvitation, *, session: Session, **_: Any) -> None:
    """One e-mail to the address, in the inviter's words; it joins and connects from there."""
    inviter = invitation.inviter
    message = Message(
        title=f"{inviter.name} invites you to connect on Someone who knows",
        body=(
            f"{invitation.note} Someone who knows is where people pass problems to whoever can solve "
            f"them, and are paid when an introduction works. Sign up with this address and confirm it: "
            f"{inviter.name}'s connection request is waiting for you."
        ),
        link="/signup",
        data={"inviter": inviter.name, "note": invitation.note},
    )
    email_only(session, invitation.email, "join_invitation", f"join-invitation:{invitation.id}", message)
