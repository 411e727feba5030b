"""The domain signals: what happened, for whoever needs to know (docs/architecture.md, "Signals").

A domain or workflow changes its tables, then sends one of these; notifications, payments and
the network's change log and the audit log listen. Nothing here imports a listener, so adding one
(a fraud check, outbound webhooks) means connecting a receiver, not editing every service.

Every signal is sent with its sender as the first argument and the caller's database session as
``session=``. Receivers run synchronously, inside the sender's transaction: what they write
commits or rolls back with the event itself, so a notification exists exactly when its event
does. Anything slow or external (e-mail, Stripe) is an outbox job a receiver enqueues, never a
call made in the receiver. Receivers are connected by each subscriber's ``init_app``.
"""

from blinker import Namespace

_signals = Namespace()

# Accounts ---------------------------------------------------------------------------------------

member_signed_up = _signals.signal(
    "member-signed-up",
    doc="""Someone created an account. Sender: the new ``User``.""",
)

member_skills_changed = _signals.signal(
    "member-skills-changed",
    doc="""A member's set of skills changed. Sender: the ``User``. The network records it in its
    change log, so every process's reach index follows.""",
)

member_appearance_changed = _signals.signal(
    "member-appearance-changed",
    doc="""A member changed how others see them on chains and paths: their name, or whether they
    show it. Sender: the ``User``. The network records it in its change log, so that the names
    every process keeps for the reach's paths follow.""",
)

invitation_created = _signals.signal(
    "invitation-created",
    doc="""A company invited an e-mail address. Sender: the ``Invitation``; ``token``: the raw
    token of the invitation link (only its hash is stored).""",
)

password_reset_requested = _signals.signal(
    "password-reset-requested",
    doc="""Someone asked to reset a member's password. Sender: the ``User``; ``token``: the raw
    reset token for the e-mailed link.""",
)

email_verification_requested = _signals.signal(
    "email-verification-requested",
    doc="""A member needs a link that proves they read mail at their address (on sign-up, when
    they ask again, after changing it). Sender: the ``User`` (``email`` is the address to prove);
    ``token``: the raw token of the link (only its hash is stored).""",
)

email_verified = _signals.signal(
    "email-verified",
    doc="""A member proved their address: what waited for it (payouts) may go on.
    Sender: the ``User``.""",
)

invitation_withdrawn = _signals.signal(
    "invitation-withdrawn",
    doc="""A company's owner or admin withdrew an invitation before it was accepted; its link no
    longer works. Sender: the ``Invitation``; ``actor``: the ``User`` who withdrew it.""",
)

member_removed = _signals.signal(
    "member-removed",
    doc="""A company's owner or admin removed a member (or a member stepped down): their role is
    gone at once, their work stays theirs. Sender: the ``Company``; ``member``: the removed
    ``User``; ``role``: the ``Role`` they had; ``actor``: the ``User`` who removed them.""",
)

# The network ------------------------------------------------------------------------------------

connection_requested = _signals.signal(
    "connection-requested",
    doc="""A member asked another to connect. Sender: the new pending ``ConnectionRequest``.""",
)

member_invited_to_join = _signals.signal(
    "member-invited-to-join",
    doc="""A member invited an address that has no account to join and connect. Sender: the new
    ``JoinInvitation``.""",
)

connection_confirmed = _signals.signal(
    "connection-confirmed",
    doc="""Two members are connected: the member asked confirmed, or both had asked each other.
    Sender: the confirmed ``ConnectionRequest``; ``actor_id``: the member whose step confirmed it.""",
)

# Problems ---------------------------------------------------------------------------------------

problem_published = _signals.signal(
    "problem-published",
    doc="""A company member published a problem; it waits for its bounty to be paid.
    Sender: the ``Problem``; ``actor_id``: the member who published it.""",
)

problem_funded = _signals.signal(
    "problem-funded",
    doc="""The bounty was paid into escrow and the problem is open. Sender: the ``Problem``.""",
)

problem_closed = _signals.signal(
    "problem-closed",
    doc="""The problem closed without a match (cancelled or expired); its escrow is on its way
    back to the company. Sender: the ``Problem`` (its status says which).""",
)

# Referrals and introductions -------------------------------------------------------------------

referral_sent = _signals.signal(
    "referral-sent",
    doc="""A member forwarded a problem to someone, by account or by e-mail address.
    Sender: the new ``Referral``.""",
)

referral_claimed = _signals.signal(
    "referral-claimed",
    doc="""A member took a place in a chain: claimed a referral sent to them, or picked a public
    problem from the board (a new root). The claim is in the attribution records already.
    Sender: the claimed ``Referral`` (its ``holder_id`` is the member).""",
)

chain_grew = _signals.signal(
    "chain-grew",
    doc="""A chain got a new link: forwarded on (``what`` = "was forwarded the problem") or
    claimed ("joined it"). Sender: the ``Referral`` at the new end; ``what``: the words for it;
    ``exclude_id``: the member who made it grow (told nothing), or None.""",
)

introduction_awaiting_consent = _signals.signal(
    "introduction-awaiting-consent",
    doc="""A candidate was introduced and must agree before the company sees them (double
    opt-in). Sender: the ``Introduction``.""",
)

introduction_proposed = _signals.signal(
    "introduction-proposed",
    doc="""The candidate agreed (or put themselves forward): the company can now review the
    introduction. Sender: the ``Introduction``.""",
)

introduction_refused = _signals.signal(
    "introduction-refused",
    doc="""The candidate said no to being introduced; the company never saw them. Sender: the
    ``Introduction`` (its ``candidate_user_id`` is the account that answered, if any).""",
)

introduction_withdrawn = _signals.signal(
    "introduction-withdrawn",
    doc="""The introducer took back an introduction before the company decided. Sender: the
    ``Introduction``; ``was_proposed``: True when the company could already see it.""",
)

introduction_accepted = _signals.signal(
    "introduction-accepted",
    doc="""The company accepted an introduction and the bounty was settled along its chain, in
    the same transaction. Sender: the ``Introduction``; ``chain``: the paid links' user ids,
    top first; ``settlement``: the ``SettlementSummary`` that was posted.""",
)

introduction_declined = _signals.signal(
    "introduction-declined",
    doc="""The company declined a proposed introduction. Sender: the ``Introduction``.""",
)

# Money ------------------------------------------------------------------------------------------

dispute_opened = _signals.signal(
    "dispute-opened",
    doc="""An accepted introduction was reported as failed in its guarantee period, by the
    company or by a chargeback; the problem's shares are frozen. Sender: the ``Dispute``;
    ``chargeback``: True when the card payment was disputed with the bank (nobody acted here).""",
)

dispute_decided = _signals.signal(
    "dispute-decided",
    doc="""A platform admin upheld or rejected a dispute (its status says which; its
    ``resolved_by_id`` who). Sender: the ``Dispute``.""",
)

shares_released = _signals.signal(
    "shares-released",
    doc="""The guarantee period held: these shares became available to their members.
    Sender: the ``Problem``; ``shares``: the released ``Share`` rows with an amount.""",
)

refund_posted = _signals.signal(
    "refund-posted",
    doc="""Money left a problem's escrow for the company's refund-pending account and must go
    back to the company's card. Sender: the ``Problem``; ``key``: the ledger transaction's
    idempotency key (also the refund's); ``amount``, ``currency``.""",
)

refund_completed = _signals.signal(
    "refund-completed",
    doc="""A refund reached the company. Sender: the ``Problem``; ``key``: the refund's key.""",
)

payout_started = _signals.signal(
    "payout-started",
    doc="""A share moved from available to payout pending and must be transferred.
    Sender: the ``Share``; ``key``: the attempt's idempotency key.""",
)

payout_sent = _signals.signal(
    "payout-sent",
    doc="""The payment provider accepted a share's transfer. Sender: the ``Share``;
    ``transfer_id``; ``amount``: what was sent.""",
)

payout_failed = _signals.signal(
    "payout-failed",
    doc="""A share's transfer was refused for good; its money is back in the member's available
    balance, where it waits for a change (a ready payout account, an admin's retry).
    Sender: the ``Share``; ``reason``: in words; ``amount``: what could not be sent.""",
)

payout_account_needs_attention = _signals.signal(
    "payout-account-needs-attention",
    doc="""The payment provider still needs something from a member before it can pay them.
    Sender: the ``User``; ``event_key``: what makes this request distinct; ``requirements``:
    what is needed, in words; ``summary``: the whole state in sentences (what failed, what to do).""",
)

payout_bank_account_added = _signals.signal(
    "payout-bank-account-added",
    doc="""Stripe reports a bank account behind a member's payout account that was not recorded
    before. Sender: the ``User``; ``fingerprints``: every fingerprint now recorded for them.""",
)

payment_alert = _signals.signal(
    "payment-alert",
    doc="""Something about money needs a platform admin (a reversed transfer, a chargeback).
    Sender: None; ``key``: what makes the alert distinct; ``text``: what happened; ``link``
    (optional): the admin page to act on it.""",
)

fraud_flag_raised = _signals.signal(
    "fraud-flag-raised",
    doc="""An accepted introduction's chain raised fraud signals; its shares are held for a
    platform admin's review. Sender: the ``FraudFlag`` (its ``evidence`` lists the signals).""",
)

fraud_flag_decided = _signals.signal(
    "fraud-flag-decided",
    doc="""A platform admin cleared or upheld a fraud flag (its status says which; its
    ``decided_by_id`` who). Sender: the ``FraudFlag``.""",
)

# Webhooks ---------------------------------------------------------------------------------------

webhook_endpoint_changed = _signals.signal(
    "webhook-endpoint-changed",
    doc="""A company's owner or admin changed where its events go or how they are signed.
    Sender: the endpoint (before it is deleted, for a deletion); ``actor``: the ``User``;
    ``change``: "created", "updated", "secret_rotated" or "deleted".""",
)

webhook_endpoint_disabled = _signals.signal(
    "webhook-endpoint-disabled",
    doc="""A company's webhook endpoint failed every attempt for days and was disabled; nothing
    more is sent to it until its owner or an admin enables it again. Sender: the endpoint;
    ``company_id``; ``url``; ``reason``: the last failure, in words.""",
)
