"""Hosted pages standing in for Stripe Checkout and Connect onboarding.

They are plain HTML forms so that tests can drive them with any HTTP client (GET the page,
POST the form) and a developer can click through them in a browser.
"""

import hashlib
import re
from html import escape
from urllib.parse import parse_qsl

from .lifecycle import tick
from .resources import checkout, connect
from .resources.common import Context
from .web import Response

DEFAULT_ROUTING_NUMBER = "110000000"


def default_account_number(account_id: str) -> str:
    """A test bank account number of the account's own, so that two connected accounts onboarded
    with the prefilled form do not share one bank account (and one fingerprint) unless typed so."""
    digits = int(hashlib.sha256(account_id.encode()).hexdigest(), 16) % 10**8
    return f"0001{digits:08d}"


_LAYOUT = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:34rem;margin:3rem auto}}
.error{{color:#b00020}} td{{padding:.2rem .6rem}} button{{margin:.3rem 0}}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>"""


def _page(status, title, body=""):
    return Response.html(status, _LAYOUT.format(title=escape(title), body=body))


def handle(store, request):
    match = re.fullmatch(r"/pages/(checkout|onboarding)/([^/]+)", request.path)
    if not match or request.method not in ("GET", "POST"):
        return _page(404, "Page not found")
    form = dict(parse_qsl(request.body.decode(errors="replace"))) if request.method == "POST" else None
    kind, ident = match.groups()
    with store.transaction():
        tick(store)
        if kind == "checkout":
            return _checkout(store, request, ident, form)
        return _onboarding(store, request, ident, form)


def _money(amount, currency):
    return f"{amount / 100:.2f} {currency.upper()}"


def _checkout(store, request, session_id, form):
    session = store.find(session_id, "checkout.session")
    if session is None:
        return _page(404, "Checkout Session not found")
    if session["status"] != "open":
        return _page(
            410,
            "This Checkout Session is no longer available",
            f"<p>Its status is <b>{escape(session['status'])}</b>.</p>",
        )
    error = None
    if form is not None:
        ctx = Context(store, store.owner(session_id), request.base_url)
        email = form.get("email") or None
        if form.get("payment_method_type") == "us_bank_account":
            error = checkout.pay_later(ctx, session, email)
        else:
            error = checkout.pay(ctx, session, form.get("card_number", ""), email)
        if error is None:
            target = checkout.success_url(session)
            return Response.redirect(target) if target else _page(200, "Payment succeeded")
    rows = "".join(
        f"<tr><td>{escape(line['description'])}</td><td>× {line['quantity']}</td>"
        f"<td>{_money(line['amount_total'], line['currency'])}</td></tr>"
        for line in store.meta[session_id]["line_items"]
    )
    notice = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    cancel = (
        f'<p><a id="cancel" href="{escape(session["cancel_url"])}">Cancel and go back</a></p>'
        if session["cancel_url"]
        else ""
    )
    body = f"""<table>{rows}</table>
<p>Total: <b>{_money(session["amount_total"], session["currency"])}</b></p>
{notice}
<form method="post">
<label>Email <input name="email" type="email" value="{escape(session["customer_email"] or "")}">
</label><br>
<label>Card number <input name="card_number" placeholder="4242424242424242"></label><br>
<button type="submit">Pay</button>
</form>
<form method="post">
<input type="hidden" name="payment_method_type" value="us_bank_account">
<button type="submit" id="bank-debit">Pay by bank debit (settles later)</button>
</form>
<p>Test cards: 4242424242424242 pays, 4000000000000077 pays into the available balance,
4000000000000002 is declined.</p>
{cancel}"""
    return _page(200, "Pay", body)


def _onboarding(store, request, token, form):
    link = connect.usable_link(store, token)
    if link is None:
        stale = store.account_links.get(token)
        if stale and stale["refresh_url"]:
            return Response.redirect(stale["refresh_url"])
        return _page(410, "This onboarding link has expired or was already used")
    account = store.find(link["account"])
    if form is not None:
        outcome = form.get("outcome") or "complete"
        if outcome not in connect.OUTCOMES:
            return _page(400, "Unknown outcome", f"<p>{escape(outcome)}</p>")
        link["used"] = True
        ctx = Context(store, store.platform_id, request.base_url)
        connect.onboard(
            ctx,
            account,
            outcome,
            form.get("routing_number") or DEFAULT_ROUTING_NUMBER,
            form.get("account_number") or default_account_number(account["id"]),
        )
        if link["return_url"]:
            return Response.redirect(link["return_url"])
        return _page(200, "Onboarding submitted")
    body = f"""<p>Account <code>{escape(account["id"])}</code>
({escape(account["email"] or "no email")})</p>
<form method="post">
<label>Routing number <input name="routing_number" value="{DEFAULT_ROUTING_NUMBER}"></label><br>
<label>Account number <input name="account_number" value="{default_account_number(account["id"])}"></label><br>
<button type="submit" name="outcome" value="complete">Submit</button><br>
<button type="submit" name="outcome" value="pending_verification">
Submit (verification stays pending)</button><br>
<button type="submit" name="outcome" value="fail_verification">
Submit (identity verification fails)</button>
</form>"""
    return _page(200, "Set up payouts", body)
