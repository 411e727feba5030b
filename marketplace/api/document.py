"""What the OpenAPI document says that no route's decorators can: each operation's name, the
links from an answer that creates something to what it opens, and the ``Idempotent-Replayed``
header of the answers an ``Idempotency-Key`` can replay. ``DocumentPlugin`` adds all three while
the document is built, in this one place (flask-smorest's ``response`` decorator takes no links).

Every operation is named by its Flask endpoint (``operationId: "problems_api.get_problem"``).
``LINKS`` says, per creating operation and status, which operations its answer opens and where
their path parameters come from: ``$response.body#/id`` (the new thing's id) or
``$request.path.company_id`` (the parent the request named), so a client, or a stateful fuzzer,
can chain them. ``tests/api/test_contract.py`` checks every link names an operation and its
parameters; ``tests/api/test_fuzz.py`` follows them.
"""

from typing import Any

from apispec import BasePlugin

from marketplace.api.idempotency import HEADER, KEPT_REFUSALS, REPLAYED

BODY_ID = "$response.body#/id"

# Each link: its name, the operation it opens and that operation's path parameters.
Link = tuple[str, str, dict[str, str]]


def _each(operations: dict[str, str], parameters: dict[str, str]) -> list[Link]:
    """The same parameters into several operations: ``{link name: operationId}``."""
    return [(name, operation, parameters) for name, operation in operations.items()]


PROBLEM_ID = {"problem_id": BODY_ID}
INTRODUCTION_ID = {"introduction_id": BODY_ID}
REFERRAL_TOKEN = {"token": "$response.body#/token"}
ENDPOINT_ID = {"company_id": "$request.path.company_id", "endpoint_id": BODY_ID}

LINKS: dict[tuple[str, int], list[Link]] = {
    ("accounts_api.create_user", 201): [("MemberRecord", "referrals_api.member_record", {"user_id": BODY_ID})],
    ("accounts_api.create_token", 201): [("RevokeToken", "accounts_api.revoke_token", {"token_id": BODY_ID})],
    ("accounts_api.create_company", 201): _each(
        {
            "InviteMember": "accounts_api.invite_member",
            "ListWebhooks": "webhooks_api.list_endpoints",
            "CreateWebhook": "webhooks_api.create_endpoint",
        },
        {"company_id": BODY_ID},
    ),
    ("accounts_api.invite_member", 201): [
        (
            "WithdrawInvitation",
            "accounts_api.withdraw_invitation",
            {"company_id": "$request.path.company_id", "invitation_id": BODY_ID},
        )
    ],
    ("problems_api.create_problem", 201): _each(
        {
            "GetProblem": "problems_api.get_problem",
            "UpdateProblem": "problems_api.update_problem",
            "PublishProblem": "problems_api.publish_problem",
            "CancelProblem": "problems_api.cancel_problem",
            "Checkout": "payments_api.checkout",
            "Pick": "referrals_api.pick",
            "Forward": "referrals_api.forward",
            "Introduce": "referrals_api.introduce",
            "ListIntroductions": "referrals_api.list_introductions",
            "Tree": "referrals_api.tree",
            "Reach": "network_api.problem_reach",
        },
        PROBLEM_ID,
    ),
    ("referrals_api.pick", 201): [
        ("Forward", "referrals_api.forward", {"problem_id": "$response.body#/referral/problem_id"}),
        ("Introduce", "referrals_api.introduce", {"problem_id": "$response.body#/referral/problem_id"}),
    ],
    ("referrals_api.forward", 201): [
        ("Claim", "referrals_api.claim", REFERRAL_TOKEN),
        ("GetProblem", "problems_api.get_problem", {"problem_id": "$response.body#/problem_id"}),
    ],
    ("network_api.forward_to_connection", 201): [("Claim", "referrals_api.claim", REFERRAL_TOKEN)],
    ("referrals_api.introduce", 201): _each(
        {
            "Consent": "referrals_api.consent",
            "Accept": "referrals_api.accept",
            "Decline": "referrals_api.decline",
            "Withdraw": "referrals_api.withdraw",
        },
        INTRODUCTION_ID,
    ),
    ("network_api.request_connection", 201): _each(
        {
            "Confirm": "network_api.confirm_request",
            "Decline": "network_api.decline_request",
            "Cancel": "network_api.cancel_request",
        },
        {"request_id": BODY_ID},
    ),
    ("network_api.create_card", 201): _each(
        {
            "GetCard": "network_api.get_card",
            "UpdateCard": "network_api.update_card",
            "DeleteCard": "network_api.delete_card",
        },
        {"card_id": BODY_ID},
    ),
    ("network_api.upload_cards", 201): _each(
        {"Confirm": "network_api.confirm_import", "Cancel": "network_api.cancel_import"}, {"import_id": BODY_ID}
    ),
    ("webhooks_api.create_endpoint", 201): _each(
        {
            "UpdateWebhook": "webhooks_api.update_endpoint",
            "DeleteWebhook": "webhooks_api.delete_endpoint",
            "RotateSecret": "webhooks_api.rotate_secret",
            "Ping": "webhooks_api.ping",
            "ListDeliveries": "webhooks_api.list_deliveries",
        },
        ENDPOINT_ID,
    ),
    ("webhooks_api.ping", 202): [
        (
            "Redeliver",
            "webhooks_api.redeliver",
            {
                "company_id": "$request.path.company_id",
                "endpoint_id": "$request.path.endpoint_id",
                "delivery_id": BODY_ID,
            },
        )
    ],
    ("ledger_api.open_dispute", 201): _each(
        {"Uphold": "ledger_api.uphold", "Reject": "ledger_api.reject"}, {"dispute_id": BODY_ID}
    ),
}


# What a replay carries (``api.idempotency``): a success, or a refusal kept with its key.
REPLAYED_HEADER = {
    "description": "`true`: this is the saved answer to an earlier request with the same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}


def _replayable(status: int) -> bool:
    return 200 <= status < 300 or status in KEPT_REFUSALS


class DocumentPlugin(BasePlugin):
    """Names each operation by its endpoint, adds ``LINKS`` to the answers they start from, and
    declares ``Idempotent-Replayed`` on the answers of an operation taking ``Idempotency-Key``."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if rule is None or operations is None:
            return
        for operation in operations.values():
            operation["operationId"] = rule.endpoint
            takes_key = any(parameter.get("name") == HEADER for parameter in operation.get("parameters", []))
            for status, response in operation.get("responses", {}).items():
                links = LINKS.get((rule.endpoint, int(status)))
                if links:
                    response["links"] = {
                        name: {"operationId": target, "parameters": parameters} for name, target, parameters in links
                    }
                if takes_key and _replayable(int(status)):
                    response.setdefault("headers", {})[REPLAYED] = REPLAYED_HEADER
