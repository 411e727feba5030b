"""What the marketplace tells people, and which messages cannot be switched off."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    label: str
    # Consent requests, a company's answer to the candidate and payment problems always go out
    # at once: missing them costs someone an introduction, their next step or their money.
    mandatory: bool = False


KINDS: dict[str, Kind] = {
    "referral_received": Kind("Someone forwarded you a problem"),
    "chain_grew": Kind("A chain you are in grew"),
    "introduction_consent": Kind("You are asked to agree to an introduction", mandatory=True),
    "introduction_proposed": Kind("A candidate agreed to be introduced to your company"),
    "introduction_decided": Kind("An introduction you are part of was accepted or declined"),
    "introduction_answered": Kind("A candidate you introduced chose not to be introduced"),
    "introduction_withdrawn": Kind("An introduction you were part of was withdrawn"),
    "candidate_answer": Kind("The company's answer after you agreed to be introduced", mandatory=True),
    "problem_funded": Kind("Your problem's bounty is funded"),
    "problem_expiring": Kind("Your problem closes in 3 days"),
    "problem_closed": Kind("Your problem expired or was cancelled, and refunded"),
    "share_settled": Kind("You earned a share of a bounty"),
    "share_released": Kind("A share became available to pay out"),
    "payout_sent": Kind("A payout was sent"),
    "payout_failed": Kind("A payout failed", mandatory=True),
    "payout_account": Kind("Your payout account needs attention", mandatory=True),
    "invitation": Kind("Invitations to a company", mandatory=True),
    "admin_alert": Kind("Money that needs a platform admin", mandatory=True),
    "password_reset": Kind("Password reset links", mandatory=True),
    "email_verification": Kind("Links that confirm your e-mail address", mandatory=True),
    "membership_ended": Kind("You were removed from a company"),
    "webhook_disabled": Kind("Your company's webhook endpoint was disabled after days of failures", mandatory=True),
    "connection_request": Kind("A member asks to connect with you"),
    "connection_confirmed": Kind("A member confirmed your connection"),
    "join_invitation": Kind("A member invites you to join (to an address without an account)", mandatory=True),
}


def choosable() -> dict[str, Kind]:
    """The kinds a member may set to digest or off."""
    return {name: kind for name, kind in KINDS.items() if not kind.mandatory}
