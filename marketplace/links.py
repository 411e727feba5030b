"""Absolute links the pages and the API hand out (to Stripe, in JSON, in e-mails): built from
``BASE_URL`` so they work from outside, whatever host the request came in on."""

from typing import Any

from flask import current_app, url_for

from marketplace.referrals.models import Referral


def absolute(endpoint: str, **values: Any) -> str:
    return current_app.config["BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def referral_link(referral: Referral) -> str:
    return absolute("referrals.landing", token=referral.token)


def checkout_urls(problem_id: int) -> dict[str, str]:
    """Where Stripe's hosted Checkout sends the company back, paid or not."""
    success = absolute("payments.funded", problem_id=problem_id) + "?session_id={CHECKOUT_SESSION_ID}"
    return {
        "success_url": success,
        "cancel_url": absolute("problems.show", problem_id=problem_id) + "?payment=cancelled",
    }
