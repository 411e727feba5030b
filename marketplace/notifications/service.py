"""Notifications: a row per member and event, e-mail through the outbox, preferences, digests.

``notify`` is called by the services in the same transaction as the event it reports, so a
notification exists exactly when its event does. E-mail is an outbox job whose payload fixes the
recipient, the content's data and the ``Message-ID``: if the worker dies after the SMTP server
accepted a message but before the job was marked done, the retry sends the same message again,
which mail clients recognise as one.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any, cast

from sqlalchemy import CursorResult, Integer, ScalarResult, bindparam, func, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import Prepared, connection_of, utcnow
from marketplace.errors import NotFound, ValidationError
from marketplace.jobs.service import enqueue
from marketplace.keyset import Window, seek
from marketplace.notifications.kinds import KINDS, choosable
from marketplace.notifications.mail import seal_link
from marketplace.notifications.models import Delivery, DigestSchedule, Notification, NotificationPreference
from marketplace.problems.models import Problem, ProblemStatus

EMAIL_JOB = "email.send"
MESSAGE_ID_DOMAIN = "marketplace.local"


@dataclass(frozen=True)
class Message:
    """What a notification says: a title, a line of text and where to act, plus template data."""

    title: str
    body: str = ""
    link: str = ""
    data: dict | None = None
    # The link carries a secret (a reset, an invitation, a confirmation): the e-mail job keeps
    # it encrypted (``mail.seal_link``), never as it is.
    secret_link: bool = False


def delivery_for(session: Session, user_id: int, kind: str) -> Delivery:
    if KINDS[kind].mandatory:
        return Delivery.IMMEDIATELY
    preference = session.get(NotificationPreference, (user_id, kind))
    return preference.delivery if preference else Delivery.IMMEDIATELY


def _email_job(session: Session, key: str, kind: str, to: str, message: Message, *, user_id: int | None = None) -> None:
    enqueue(
        session,
        EMAIL_JOB,
        f"email:{key}",
        {
            "to": to,
            "kind": kind,
            "title": message.title,
            "body": message.body,
            "link": "" if message.secret_link else message.link,
            "sealed_link": seal_link(message.link) if message.secret_link else "",
            "data": message.data or {},
            "user_id": user_id,
            "message_id": make_msgid(domain=MESSAGE_ID_DOMAIN),
        },
    )


def notify(session: Session, user: User, kind: str, event_key: str, message: Message) -> Notification | None:
    """Tell a member about an event, in the app and (by their preference) by e-mail, once."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    existing = session.scalar(
        select(Notification).where(
            Notification.user_id == user.id, Notification.kind == kind, Notification.event_key == event_key
        )
    )
    if existing is not None:
        return existing
    delivery = delivery_for(session, user.id, kind)
    notification = Notification(
        user_id=user.id,
        kind=kind,
        event_key=event_key,
        title=message.title,
        body=message.body,
        link=message.link,
        data=message.data or {},
        delivery=delivery,
    )
    session.add(notification)
    session.flush()
    if delivery == Delivery.IMMEDIATELY:
        notification.emailed_at = utcnow()
        _email_job(session, f"{kind}:{event_key}:{user.id}", kind, user.email, message, user_id=user.id)
    return notification


def email_only(session: Session, email: str, kind: str, event_key: str, message: Message) -> None:
    """E-mail someone who is not (yet) a member, e.g. a referral or an introduction to an address."""
    _email_job(session, f"{kind}:{event_key}:{email}", kind, email, message)


def notify_address(
    session: Session, email: str, user: User | None, kind: str, event_key: str, message: Message
) -> Notification | None:
    """Notify a member if the address has an account, else e-mail the address."""
    if user is not None:
        return notify(session, user, kind, event_key, message)
    email_only(session, email, kind, event_key, message)
    return None


# The inbox -------------------------------------------------------------------------------------


def inbox(
    session: Session,
    user: User,
    *,
    unread_only: bool = False,
    limit: int = 50,
    before_id: int | None = None,
    window: Window | None = None,
) -> list[Notification]:
    """Newest first: ``limit`` before ``before_id``, or with a ``window`` that keyset page."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    if window is not None:
        return list(session.scalars(seek(query, Notification.id, Notification.id, window, descending=True)))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


# The inbox page's columns, newest first: built and compiled once, run on the driver's cursor, as
# the other lists of a member's pages (docs/performance.md, "Instructions per request").
_INBOX_PAGE = Prepared(
    select(Notification.id, Notification.title, Notification.body, Notification.read_at, Notification.created_at)
    .where(Notification.user_id == bindparam("user_id", type_=Integer))
    .order_by(Notification.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def inbox_page(session: Session, user: User, limit: int = 100) -> list[Any]:
    """The member's ``limit`` newest notifications as named rows (``id``, ``title``, ``body``,
    ``read_at``, ``created_at``): what the inbox page shows of each."""
    return _INBOX_PAGE.all(connection_of(session), {"user_id": user.id, "limit": limit})


def unread_count(session: Session, user: User) -> int:
    return (
        session.scalar(select(func.count()).where(Notification.user_id == user.id, Notification.read_at.is_(None))) or 0
    )


def mark_read(session: Session, user: User, notification_ids: list[int] | None = None) -> int:
    """Mark some (or all) of a member's notifications read; returns how many changed."""
    statement = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_ids is not None:
        statement = statement.where(Notification.id.in_(notification_ids))
    result = session.execute(statement.values(read_at=utcnow()).execution_options(synchronize_session=False))
    return cast(CursorResult, result).rowcount


def get_own(session: Session, user: User, notification_id: int) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        raise NotFound("No such notification.")
    return notification


# Preferences -----------------------------------------------------------------------------------


def preferences(session: Session, user: User) -> dict[str, Delivery]:
    stored = {
        p.kind: p.delivery
        for p in session.scalars(select(NotificationPreference).where(NotificationPreference.user_id == user.id))
    }
    return {kind: stored.get(kind, Delivery.IMMEDIATELY) for kind in choosable()}


def set_preference(session: Session, user: User, kind: str, delivery: str) -> None:
    if kind not in choosable():
        raise ValidationError(f"'{kind}' cannot be changed: it is either unknown or always sent.", code="invalid_kind")
    try:
        value = Delivery(delivery)
    except ValueError:
        raise ValidationError("Choose immediately, digest or off.", code="invalid_delivery") from None
    preference = session.get(NotificationPreference, (user.id, kind))
    if preference is None:
        session.add(NotificationPreference(user_id=user.id, kind=kind, delivery=value))
    else:
        preference.delivery = value
    session.flush()


def digest_hour(session: Session, user: User) -> int:
    schedule = session.get(DigestSchedule, user.id)
    return schedule.hour_utc if schedule else 8


def set_digest_hour(session: Session, user: User, hour: int) -> None:
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise ValidationError("The digest hour is a whole number from 0 to 23.", code="invalid_hour")
    schedule = session.get(DigestSchedule, user.id)
    if schedule is None:
        session.add(DigestSchedule(user_id=user.id, hour_utc=hour))
    else:
        schedule.hour_utc = hour
    session.flush()


# Digests ---------------------------------------------------------------------------------------


def send_digests(session: Session, now: datetime | None = None) -> int:
    """Once a day at each member's hour: one e-mail with everything they chose to get as a digest."""
    now = now or utcnow()
    today = now.date().isoformat()
    waiting = session.execute(
        select(Notification.user_id, func.count())
        .where(Notification.delivery == Delivery.DIGEST, Notification.emailed_at.is_(None))
        .group_by(Notification.user_id)
    ).all()
    sent = 0
    for user_id, _count in waiting:
        schedule = session.get(DigestSchedule, user_id) or DigestSchedule(user_id=user_id, hour_utc=8)
        if schedule.hour_utc != now.hour or schedule.last_sent_on == today:
            continue
        items = list(
            session.scalars(
                select(Notification)
                .where(
                    Notification.user_id == user_id,
                    Notification.delivery == Delivery.DIGEST,
                    Notification.emailed_at.is_(None),
                )
                .order_by(Notification.id)
            )
        )
        user = session.get_one(User, user_id)
        message = Message(
            title=f"Your daily digest: {len(items)} update{'s' if len(items) != 1 else ''}",
            link="/notifications",
            data={"items": [{"title": n.title, "body": n.body, "link": n.link} for n in items]},
        )
        _email_job(session, f"digest:{user_id}:{today}", "digest", user.email, message, user_id=user_id)
        for item in items:
            item.emailed_at = now
        schedule.last_sent_on = today
        session.merge(schedule)
        sent += 1
    return sent


def due_for_expiry_warning(session: Session, now: datetime | None = None) -> ScalarResult[Problem]:
    """Open problems that close within three days (for the 'closing soon' notice)."""
    now = now or utcnow()
    return session.scalars(
        select(Problem).where(
            Problem.status == ProblemStatus.OPEN,
            Problem.expires_at > now,
            Problem.expires_at <= now + timedelta(days=3),
        )
    )
