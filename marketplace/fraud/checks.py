"""The fraud signals over a paid chain's members, each a pure function (docs/fraud.md).

A chain pays each link a share of the bounty, so one person who plays several links, or the
expert as well, is paid several times for one introduction. Each check looks for one trace such a
person leaves, and returns evidence (the signal's name and what was seen, in words) or nothing.
Every threshold is a named constant, so that a near miss and a hit differ by one step.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
SAME_IP_WINDOW = timedelta(hours=24)
ACCOUNT_RUN_WINDOW = timedelta(minutes=30)
ACCOUNT_RUN_MIN_MEMBERS = 3
QUICK_FORWARD = timedelta(seconds=10)
QUICK_FORWARD_MIN_RUN = 2


@dataclass(frozen=True)
class ChainMember:
    """What the checks need of one member of a paid chain (a link or the candidate)."""

    id: int
    email: str
    name: str
    email_skeleton: str
    created_at: datetime
    signup_ip: str | None = None
    signed_up_at: datetime | None = None
    bank_fingerprints: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Forward:
    """One link of the chain: when its holder claimed it and when they passed it on (None when
    the chain ends with them)."""

    claimed_at: datetime | None
    forwarded_at: datetime | None


@dataclass(frozen=True)
class Evidence:
    signal: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"signal": self.signal, "detail": self.detail}


def normalised_email(address: str) -> str:
    """The mailbox an address reaches: lower-cased, a ``+tag`` dropped, and for Gmail (which
    ignores them) the dots of the local part dropped."""
    local, _, domain = address.strip().lower().rpartition("@")
    if not local:
        return address.strip().lower()
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def folded_name(name: str) -> str:
    """A name as a reader sees it: compatibility forms unified (NFKC), case folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _pairs_sharing(members: Sequence[ChainMember], key, signal: str, what: str) -> list[Evidence]:
    seen: dict[str, list[int]] = {}
    for member in members:
        value = key(member)
        if value:
            seen.setdefault(value, []).append(member.id)
    return [
        Evidence(signal, f"Members {', '.join(map(str, sorted(set(ids))))} share {what}.")
        for ids in seen.values()
        if len(set(ids)) > 1
    ]


def shared_mailbox(members: Sequence[ChainMember]) -> list[Evidence]:
    """Two members whose addresses reach one mailbox (``a.b+x@gmail.com`` and ``ab@gmail.com``)."""
    return _pairs_sharing(members, lambda m: normalised_email(m.email), "shared_mailbox", "one mailbox")


def shared_bank_account(members: Sequence[ChainMember]) -> list[Evidence]:
    """Two members paid into one bank account (Stripe's fingerprint of the account behind each
    member's payout account): whoever owns it is paid twice for one chain."""
    found = []
    for a, b in combinations(members, 2):
        shared = a.bank_fingerprints & b.bank_fingerprints
        if a.id != b.id and shared:
            found.append(Evidence("shared_bank_account", f"Members {a.id} and {b.id} are paid into one bank account."))
    return found


def same_signup_ip(members: Sequence[ChainMember]) -> list[Evidence]:
    """Two members who signed up from one address within ``SAME_IP_WINDOW`` of each other."""
    found = []
    for a, b in combinations(members, 2):
        if not (a.signup_ip and a.signup_ip == b.signup_ip and a.signed_up_at and b.signed_up_at):
            continue
        if a.id != b.id and abs(a.signed_up_at - b.signed_up_at) < SAME_IP_WINDOW:
            found.append(
                Evidence("same_signup_ip", f"Members {a.id} and {b.id} signed up from {a.signup_ip} within a day.")
            )
    return found


def account_run(members: Sequence[ChainMember]) -> list[Evidence]:
    """At least ``ACCOUNT_RUN_MIN_MEMBERS`` distinct members whose accounts were all created
    within ``ACCOUNT_RUN_WINDOW``: accounts made in one sitting to form the chain."""
    distinct = sorted({m.id: m for m in members}.values(), key=lambda m: m.created_at)
    size = ACCOUNT_RUN_MIN_MEMBERS
    for start in range(len(distinct) - size + 1):
        window = distinct[start : start + size]
        if window[-1].created_at - window[0].created_at <= ACCOUNT_RUN_WINDOW:
            ids = ", ".join(str(m.id) for m in window)
            return [Evidence("account_run", f"Members {ids} were created within 30 minutes of each other.")]
    return []


def quick_forwards(forwards: Sequence[Forward]) -> list[Evidence]:
    """At least ``QUICK_FORWARD_MIN_RUN`` consecutive links each passed on less than
    ``QUICK_FORWARD`` after it was claimed: faster than a person reads, as a script forwards."""
    run = 0
    for position, link in enumerate(forwards, start=1):
        quick = (
            link.claimed_at is not None
            and link.forwarded_at is not None
            and link.forwarded_at - link.claimed_at < QUICK_FORWARD
        )
        run = run + 1 if quick else 0
        if run >= QUICK_FORWARD_MIN_RUN:
            return [
                Evidence(
                    "quick_forwards",
                    f"Links {position - run + 1} to {position} were each forwarded within 10 seconds of a claim.",
                )
            ]
    return []


def look_alike_members(members: Sequence[ChainMember]) -> list[Evidence]:
    """Two members with look-alike addresses (one ``email_skeleton``) or one name once folded."""
    return _pairs_sharing(
        members, lambda m: m.email_skeleton, "look_alike_address", "a look-alike address"
    ) + _pairs_sharing(members, lambda m: folded_name(m.name), "look_alike_name", "one name")


def evidence_for(members: Sequence[ChainMember], forwards: Sequence[Forward]) -> list[Evidence]:
    """Every signal the chain raises, in a stable order; empty when it looks clean."""
    return [
        *shared_mailbox(members),
        *shared_bank_account(members),
        *same_signup_ip(members),
        *account_run(members),
        *quick_forwards(forwards),
        *look_alike_members(members),
    ]
