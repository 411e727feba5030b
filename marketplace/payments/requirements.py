"""What Stripe needs from a member before it can pay them, in words they understand.

Stripe names what it needs by field path (``individual.dob.day``, ``tos_acceptance.ip``) and
reports what it could not verify in ``requirements.errors`` and ``disabled_reason``. Members see
one phrase per thing they have to do, each once, and when verification failed, that it failed
and what to do about it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

# The first prefix a path starts with gives its phrase; several paths share one.
PHRASES: tuple[tuple[str, str], ...] = (
    ("individual.verification.additional_document", "a document that proves your address"),
    ("individual.verification.document", "an identity document"),
    ("individual.verification.", "an identity document"),
    ("individual.dob.", "your date of birth"),
    ("individual.address.", "your address"),
    ("individual.first_name", "your name"),
    ("individual.last_name", "your name"),
    ("individual.email", "your e-mail address"),
    ("individual.phone", "your phone number"),
    ("individual.ssn_last_4", "your tax identification number"),
    ("individual.id_number", "your tax identification number"),
    ("tos_acceptance.", "acceptance of Stripe's terms"),
    ("external_account", "a bank account"),
    ("business_type", "whether you are paid as a person or as a company"),
    ("business_profile.mcc", "the kind of work you do"),
    ("business_profile.", "your website or a description of your work"),
    ("company.", "your company's details"),
    ("representative.", "details of your company's representative"),
)
OTHER = "other details Stripe asks for"
CHECKING = {"requirements.pending_verification", "under_review"}


def describe(path: str) -> str:
    """One requirement path in words (``individual.dob.day`` → "your date of birth")."""
    return next((phrase for prefix, phrase in PHRASES if path.startswith(prefix)), OTHER)


def describe_all(paths: Iterable[str]) -> list[str]:
    """Each phrase once, in the order Stripe listed what it needs."""
    return list(dict.fromkeys(describe(path) for path in paths))


@dataclass(frozen=True)
class OnboardingStatus:
    """A payout account's state for the member: what is still needed, what failed, what to do."""

    needs: list[str]
    failures: list[str]
    checking: bool
    closed: bool
    failed_requirements: tuple[str, ...] = ()

    @property
    def verification_failed(self) -> bool:
        return bool(self.failures)

    @property
    def advice(self) -> str:
        if self.closed:
            return "Stripe will not pay out to this account. Write to us and we will help you set up payouts again."
        if self.failures:
            return (
                "Open the payout set-up again and provide "
                + _join(describe_all(self.failed_requirements))
                + " once more; a clear photo of a valid, unexpired document usually works."
            )
        if self.needs:
            return "Open the payout set-up again and add " + _join(self.needs) + "."
        return ""

    def summary(self) -> str:
        """The whole status in sentences, for a notification or an e-mail."""
        lines = []
        if self.failures:
            lines.append("Verification failed: " + " ".join(self.failures))
        elif self.needs:
            lines.append("Stripe still needs " + _join(self.needs) + ".")
        elif self.checking:
            lines.append("Stripe is checking your details.")
        if self.advice:
            lines.append("What to do: " + self.advice)
        return " ".join(lines)


def onboarding_status(paths: list[str], errors: list[dict], disabled_reason: str | None) -> OnboardingStatus:
    """Stripe's ``requirements`` (paths due, ``errors``, ``disabled_reason``) in words."""
    failures = list(
        dict.fromkeys(
            f"Stripe could not verify {describe(error.get('requirement', ''))}"
            + (f" ({error['reason'].rstrip('.')})." if error.get("reason") else ".")
            for error in errors
        )
    )
    closed = (disabled_reason or "").startswith("rejected")
    if closed:
        failures.append("Stripe closed this payout account.")
    return OnboardingStatus(
        needs=describe_all(paths),
        failures=failures,
        checking=disabled_reason in CHECKING,
        closed=closed,
        failed_requirements=tuple(dict.fromkeys(e.get("requirement", "") for e in errors)),
    )


def _join(phrases: list[str]) -> str:
    """ "a, b and c"."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
