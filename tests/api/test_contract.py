"""What the API promises beside its answers: every action of the pages has an API twin, every
route declares the errors it may answer (``{"error": {"code", "message"}}``, per status), every
request body carries an example, every action that creates or moves something takes an
``Idempotency-Key`` and declares the ``Idempotent-Replayed`` header of a replay, and every link
from a creating answer opens a real operation with the parameters it needs."""

from marketplace.api.contract import declared_errors
from tests.api.openapi import document_of, operations

# Each state-changing page route (a POST of the web blueprints) and the API route doing the same.
TWINS = {
    "accounts.invite": "accounts_api.invite_member",
    "accounts.withdraw_invitation": "accounts_api.withdraw_invitation",
    "accounts.remove_member": "accounts_api.remove_member",
    "accounts.new_company": "accounts_api.create_company",
    "accounts.invitation": "accounts_api.accept_invitation",
    "accounts.profile": "accounts_api.update_profile",
    "accounts.change_email": "accounts_api.change_email",
    "accounts.change_password": "accounts_api.change_password",
    "accounts.create_token": "accounts_api.create_token",
    "accounts.revoke_token": "accounts_api.revoke_token",
    "accounts.signup": "accounts_api.create_user",
    "accounts.resend_verification": "accounts_api.resend_verification",
    "problems.new": "problems_api.create_problem",
    "problems.edit": "problems_api.update_problem",
    "problems.publish": "problems_api.publish_problem",
    "problems.cancel": "problems_api.cancel_problem",
    "payments.checkout": "payments_api.checkout",
    "payments.onboard": "payments_api.payout_account",
    "referrals.pick": "referrals_api.pick",
    "referrals.forward": "referrals_api.forward",
    "referrals.claim": "referrals_api.claim",
    "referrals.introduce": "referrals_api.introduce",
    "referrals.consent": "referrals_api.consent",
    "referrals.decide": ("referrals_api.accept", "referrals_api.decline", "referrals_api.withdraw"),
    "network.connect": "network_api.request_connection",
    "network.connect_suggestion": "network_api.request_connection",
    "network.answer": ("network_api.confirm_request", "network_api.decline_request", "network_api.cancel_request"),
    "network.remove": "network_api.remove_connection",
    "network.invite": "network_api.invite_to_join",
    "network.forward_to": "network_api.forward_to_connection",
    "network.add_card": "network_api.create_card",
    "network.edit_card": "network_api.update_card",
    "network.delete_card": "network_api.delete_card",
    "network.upload": "network_api.upload_cards",
    "network.decide_import": ("network_api.confirm_import", "network_api.cancel_import"),
    "notifications.open_notification": "notifications_api.mark_read",
    "notifications.mark_all_read": "notifications_api.mark_read",
    "notifications.settings": "notifications_api.update_settings",
    "ledger.give": "ledger_api.donate",
    "ledger.open_dispute": "ledger_api.open_dispute",
    "ledger.decide_dispute": ("ledger_api.uphold", "ledger_api.reject"),
    "fraud.decide_flag": ("ledger_api.clear_flag", "ledger_api.uphold_flag"),
    "admin.retry_payout": "payments_api.retry_payout",
    "company_webhooks.create": "webhooks_api.create_endpoint",
    "company_webhooks.update": "webhooks_api.update_endpoint",
    "company_webhooks.switch": "webhooks_api.update_endpoint",
    "company_webhooks.delete": "webhooks_api.delete_endpoint",
    "company_webhooks.rotate_secret": "webhooks_api.rotate_secret",
    "company_webhooks.redeliver": "webhooks_api.redeliver",
    "company_webhooks.ping": "webhooks_api.ping",
}

# Page routes that change state with no API twin, and why.
PAGE_ONLY = {
    "accounts.login": "starts a browser session; the API authenticates with tokens (POST /tokens)",
    "accounts.logout": "ends a browser session; a token is revoked with DELETE /me/tokens/{id}",
    "accounts.logout_everywhere": "ends every browser session (a session version); tokens are revoked one by one",
    "accounts.forgot_password": "mails a reset link to a person who cannot log in, so holds no token",
    "accounts.reset_password": "the landing page of the e-mailed link; its signed token is the authorization",
    "accounts.verify_email": "the landing page of the e-mailed link; its signed token is the authorization",
    "notifications.unsubscribe": "the e-mail footer's one-click link (RFC 8058), signed, for a mail client",
    "problems.fund": "development only: funds without a payment; the API funds through checkout",
    "admin.retry_job": "the operator's console for the outbox (the worker's jobs), infrastructure, not a resource",
    "stripe_webhooks.receive": "Stripe's signed callback, not a person's action",
}


def state_changing_page_routes(app) -> set[str]:
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.rule.startswith("/api/")
    }


def test_every_action_of_the_pages_has_an_api_twin(app):
    """A page action added without its API twin (or a reason it has none) fails here."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    page_routes = state_changing_page_routes(app)

    unaccounted = page_routes - set(TWINS) - set(PAGE_ONLY)
    assert not unaccounted, f"page actions with no API twin and no reason: {sorted(unaccounted)}"
    assert not set(TWINS) & set(PAGE_ONLY)
    assert set(TWINS) | set(PAGE_ONLY) <= page_routes, "the tables name a page route that is gone"
    for twins in TWINS.values():
        for twin in (twins,) if isinstance(twins, str) else twins:
            assert twin in endpoints, f"{twin} is not an API route"


def api_operations(app):
    for method, path, _, operation in operations(document_of(app)):
        yield f"{method.upper()} {path}", operation


def test_every_route_declares_its_error_answers(app):
    """Each error response is the one error shape with its codes named; a route taking a token
    declares 401, one with an id in its path 404, one reading a body or a query 422."""
    for name, operation in api_operations(app):
        if name == "GET /api/v1/openapi.json":
            continue
        errors = {int(status): answer for status, answer in operation["responses"].items() if int(status) >= 400}
        assert errors, f"{name} declares no error"
        assert 400 in errors, name
        for status, answer in errors.items():
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
            assert "`" in answer["description"], f"{name} {status} names no code"
        if "{" in name:
            assert 404 in errors, name
        if operation.get("requestBody") or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert 422 in errors, name


def test_every_request_body_has_an_example(app):
    for name, operation in api_operations(app):
        body = operation.get("requestBody")
        if body is None:
            continue
        for content_type, content in body["content"].items():
            assert content.get("example") is not None, f"{name} ({content_type}) has no example"


def test_routes_taking_a_token_declare_401(app):
    views = app.view_functions
    for rule in app.url_map.iter_rules():
        view = views[rule.endpoint]
        if rule.rule.startswith("/api/v1/") and getattr(view, "requires_token", False):
            assert 401 in declared_errors(view), rule.rule


def test_every_authenticated_post_takes_an_idempotency_key(app):
    """Every action a token holder takes by POST can be retried safely (docs/api.md, "Idempotency")."""
    unauthenticated = {"POST /api/v1/users", "POST /api/v1/tokens"}
    # Changing the password or address needs the current password, and ends sessions: a retry
    # is refused (wrong password) or harmless, and keeping the answer would keep nothing useful.
    by_password = {"POST /api/v1/me/password", "POST /api/v1/me/email"}
    for name, operation in api_operations(app):
        if not name.startswith("POST ") or name in unauthenticated | by_password:
            continue
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, name


def test_operation_ids_are_the_endpoints_and_unique(app):
    names = [operation["operationId"] for _, operation in api_operations(app)]
    assert len(names) == len(set(names))
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(names) <= endpoints


def schema_of(document, response: dict) -> dict:
    schema = response["content"]["application/json"]["schema"]
    return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema


def points_into(document, schema: dict, pointer: str) -> bool:
    """Whether the JSON pointer ``pointer`` names a property ``schema`` (or its nested ones) declares."""
    for name in pointer.strip("/").split("/"):
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if name not in schema.get("properties", {}):
            return False
        schema = schema["properties"][name]
    return True


def path_parameters(document) -> dict[str, set[str]]:
    """Each operation's path parameters (declared on its path, shared by its methods), by operationId."""
    return {
        operation["operationId"]: {p["name"] for p in parameters}
        for _, _, parameters, operation in operations(document)
    }


def test_every_link_opens_an_operation_with_the_parameters_it_fills(app):
    """A link names an existing operation, fills exactly that operation's path parameters, and
    takes each value from a path parameter of its own request or a field of its own answer."""
    document = document_of(app)
    parameters = path_parameters(document)
    links = 0
    for name, operation in api_operations(app):
        for status, response in operation["responses"].items():
            for link_name, link in response.get("links", {}).items():
                links += 1
                where = f"{name} {status} {link_name}"
                assert link["operationId"] in parameters, f"{where}: no operation {link['operationId']}"
                assert set(link["parameters"]) == parameters[link["operationId"]], where
                for expression in link["parameters"].values():
                    source, _, pointer = expression.partition("#")
                    if source == "$response.body":
                        assert points_into(document, schema_of(document, response), pointer), f"{where}: {expression}"
                    else:
                        own = parameters[operation["operationId"]]
                        assert source.removeprefix("$request.path.") in own, f"{where}: {expression}"
    assert links >= 40


def test_every_idempotent_route_declares_the_key_and_the_replay_header(app):
    """Every route taking ``Idempotency-Key`` says so, and says that each answer a key can replay
    (a success, or a refusal kept with the key: 403, 404, 409) may carry ``Idempotent-Replayed``."""
    operations = {operation["operationId"]: operation for _, operation in api_operations(app)}
    idempotent = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if "idempotency_key_reused" in declared_errors(view).get(409, [])
    ]
    assert len(idempotent) > 30
    for endpoint in idempotent:
        operation = operations[endpoint]
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, endpoint
        replayable = [s for s in operation["responses"] if int(s) < 300 or int(s) in (403, 404, 409)]
        assert any(int(s) < 300 for s in replayable), endpoint
        for status in replayable:
            replayed = operation["responses"][status].get("headers", {}).get("Idempotent-Replayed", {})
            assert replayed.get("schema") == {"type": "string", "enum": ["true"]}, (endpoint, status)
