"""What we keep of Stripe: Checkout Sessions per problem, members' Connect accounts, webhook events."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, utcnow
from marketplace.payments.idempotency import new_token
from marketplace.payments.requirements import OnboardingStatus, onboarding_status


class CheckoutSession(Base):
    """One attempt to fund a problem's bounty; an abandoned, declined or failed one leaves room
    for another.

    The attempt is recorded (``creating``) before Stripe is asked for its session, with a random
    ``request_token`` and the exact ``request`` parameters: the idempotency key is made from the
    token, so every retry of the attempt (a timeout, a crash before the answer was recorded) sends
    the same parameters under the same key and gets the same session, and no other database on
    the same Stripe account can ever reuse it. Statuses: ``creating`` → ``open`` → ``complete``
    (paid and funded), or ``processing`` (completed, a bank debit not yet settled) → ``complete``
    or ``failed``; ``expired``; ``refunded`` (paid when the problem no longer needed it).
    """

    __tablename__ = "checkout_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    attempt: Mapped[int]
    request_token: Mapped[str] = mapped_column(String(36), unique=True, default=new_token)
    request: Mapped[dict] = mapped_column(JSON, default=dict)
    stripe_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="creating")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The charge's hosted receipt at Stripe, which shows its refunds too: the company's proof of
    # payment, linked from its figures page.
    receipt_url: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the sweep last asked Stripe about this attempt (it asks again after a few minutes).
    checked_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class PayoutAccount(Base):
    """A member's Stripe Connect Express account and what Stripe last said about it.

    The row is written before the account exists at Stripe (``stripe_id`` empty), with the
    random ``creation_key`` every attempt to create it sends: a retry after a timeout gets the
    same account back, and no other installation's key can collide with it.
    """

    __tablename__ = "payout_accounts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    stripe_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    creation_key: Mapped[str] = mapped_column(String(255), unique=True)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    transfers_active: Mapped[bool] = mapped_column(default=False)
    requirements: Mapped[list] = mapped_column(JSON, default=list)
    # Stripe's ``requirements.errors``: what it could not verify, and why.
    requirement_errors: Mapped[list] = mapped_column(JSON, default=list)
    disabled_reason: Mapped[str | None] = mapped_column(String(120))
    # Stripe's fingerprints of the bank accounts the member gave (``external_accounts``): the
    # same bank account behind two members is a fraud signal (docs/fraud.md).
    bank_fingerprints: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # When the Stripe read recorded here began: an older read never overwrites a newer one.
    synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def ready(self) -> bool:
        """Transfers can be sent to it."""
        return self.transfers_active and self.details_submitted

    @property
    def status(self) -> OnboardingStatus:
        """What Stripe still needs and what failed, in words for the member."""
        return onboarding_status(self.requirements, self.requirement_errors, self.disabled_reason)


class StripeEvent(Base):
    """Every webhook event we accepted, once: its id is the primary key."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    account: Mapped[str | None] = mapped_column(String(255))
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(200), default="")
