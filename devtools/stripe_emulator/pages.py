"""Hosted pages standing in for Stripe Checkout, Connect onboarding and charge receipts.

They are plain HTML forms so that tests can drive them with any HTTP client (GET the page,
POST the form) and a developer can click through them in a browser.
"""

import hashlib
import re
import time
from html import escape
from urllib.parse import parse_qsl

from .lifecycle import tick
from .resources import checkout, connect, payments
from .resources.common import Context
from .web import Response

DEFAULT_ROUTING_NUMBER = "110000000"


def default_account_number(account_id: str) -> str:
    """A test bank account number of the account's own, so that two connected accounts onboarded
    with the prefilled form do not share one bank account (and one fingerprint) unless typed so."""
    digits = int(hashlib.sha256(account_id.encode()).hexdigest(), 16) % 10**8
    return f"0001{digits:08d}"


# The hosted pages name their icon inline: without one a browser asks for /favicon.ico, which
# the emulator, like Stripe's API, answers 401 for want of a key (an error in the console).
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%23635bff'/%3E%3C/svg%3E"
)

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<link rel="icon" href="{icon}">
<style>
*{{box-sizing:border-box}}
body{{margin:0;background:#f6f8fb;color:#1a1f36;
  font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}}
.bar{{background:#635bff;color:#fff;padding:.6rem 1rem;font-size:.85rem;display:flex;justify-content:space-between}}
.bar b{{letter-spacing:.02em}} .test{{background:#ffde92;color:#5e4200;border-radius:4px;padding:0 .4rem}}
main{{max-width:28rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px;
  box-shadow:0 2px 12px rgba(26,31,54,.08)}}
h1{{font-size:1.35rem;margin:0 0 1rem}} h2{{margin:1.25rem 0 .25rem;font-weight:600}}
table{{width:100%;border-collapse:collapse;margin-bottom:.5rem}}
td{{padding:.35rem 0;border-bottom:1px solid #e3e8ee}} td:last-child{{text-align:right;white-space:nowrap}}
.total{{font-size:1.25rem}} .muted{{color:#697386;font-size:.85rem}}
label{{display:block;margin:.75rem 0 .25rem;font-size:.9rem;color:#3c4257}}
input{{width:100%;padding:.55rem .7rem;border:1px solid #cfd7df;border-radius:6px;font:inherit}}
input:focus{{outline:2px solid #a5a0ff;border-color:#635bff}}
button{{display:block;width:100%;margin:.75rem 0 0;padding:.65rem;border:0;border-radius:6px;
  background:#635bff;color:#fff;font:600 1rem system-ui,sans-serif;cursor:pointer}}
button.secondary{{background:#fff;color:#635bff;border:1px solid #cfd7df;font-weight:500}}
.error{{color:#b00020;background:#fdecee;border-radius:6px;padding:.5rem .7rem}}
a{{color:#635bff}} code{{word-break:break-all}}
</style></head>
<body><div class="bar"><b>Stripe emulator</b><span class="test">TEST MODE</span></div>
<main><h1>{title}</h1>
{body}
</main></body></html>"""


def _page(status, title, body=""):
    return Response.html(status, _LAYOUT.format(title=escape(title), body=body, icon=ICON))


def handle(store, request):
    receipt = re.fullmatch(r"/pages/receipts/([^/]+)/([^/]+)", request.path)
    if receipt and request.method == "GET":
        with store.lock:
            return _receipt(store, *receipt.groups())
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


def _day(timestamp):
    return time.strftime("%B %d, %Y", time.gmtime(timestamp))


def _receipt(store, charge_id, secret):
    """A charge's receipt as it stands now: what was paid, when, for what, and its refunds."""
    charge = payments.charge_of_receipt(store, charge_id, secret)
    if charge is None:
        return _page(404, "Receipt not found")
    card = (charge["payment_method_details"] or {}).get("card")
    method = f"{card['brand'].title()} ending in {card['last4']}" if card else "—"
    rows = "".join(
        f"<tr><td>{escape(description)}</td><td>{_money(amount, charge['currency'])}</td></tr>"
        for description, amount in _bought(store, charge)
    )
    refunds = store.query(store.owner(charge_id), "refund", lambda refund: refund["charge"] == charge_id)
    refunded = "".join(
        f"<tr><td>Refund {escape(refund['status'])}, {_day(refund['created'])} <code>{escape(refund['id'])}</code></td>"
        f"<td>−{_money(refund['amount'], refund['currency'])}</td></tr>"
        for refund in reversed(refunds)
    )
    refunds_table = f'<h2 class="muted">Refunds</h2><table id="refunds">{refunded}</table>' if refunds else ""
    body = f"""<p class="muted">Receipt from {escape(charge["calculated_statement_descriptor"] or "")}</p>
<table>
<tr><td>Amount paid</td><td class="total" id="amount"><b>{_money(charge["amount"], charge["currency"])}</b></td></tr>
<tr><td>Date paid</td><td>{_day(charge["created"])}</td></tr>
<tr><td>Payment method</td><td>{escape(method)}</td></tr>
</table>
<h2 class="muted">Summary</h2>
<table>{rows}</table>
{refunds_table}
<p class="muted">Charge <code>{escape(charge_id)}</code></p>"""
    return _page(200, "Receipt", body)


def _bought(store, charge):
    """What the charge paid for: the line items of the Checkout Session that made it, or the
    charge's own description."""
    intent = charge["payment_intent"]
    paid_by = [s for s in store.of_kind("checkout.session") if intent and s["payment_intent"] == intent]
    if paid_by:
        return [(line["description"], line["amount_total"]) for line in store.meta[paid_by[0]["id"]]["line_items"]]
    return [(charge["description"] or "Payment", charge["amount"])]


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
    total = _money(session["amount_total"], session["currency"])
    body = f"""<table>{rows}</table>
<p class="total">Total: <b>{total}</b></p>
{notice}
<form method="post">
<label for="email">Email</label>
<input id="email" name="email" type="email" value="{escape(session["customer_email"] or "")}">
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" placeholder="4242424242424242" inputmode="numeric" autocomplete="off">
<button type="submit">Pay {total}</button>
</form>
<form method="post">
<input type="hidden" name="payment_method_type" value="us_bank_account">
<button type="submit" id="bank-debit" class="secondary">Pay by bank debit (settles later)</button>
</form>
<p class="muted">Test cards: 4242424242424242 pays, 4000000000000077 pays into the available balance,
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
    body = f"""<p class="muted">Account <code>{escape(account["id"])}</code>
({escape(account["email"] or "no email")})</p>
<form method="post">
<label for="routing_number">Routing number</label>
<input id="routing_number" name="routing_number" value="{DEFAULT_ROUTING_NUMBER}">
<label for="account_number">Account number</label>
<input id="account_number" name="account_number" value="{default_account_number(account["id"])}">
<button type="submit" name="outcome" value="complete">Submit</button>
<button type="submit" name="outcome" value="pending_verification" class="secondary">
Submit (verification stays pending)</button>
<button type="submit" name="outcome" value="fail_verification" class="secondary">
Submit (identity verification fails)</button>
</form>"""
    return _page(200, "Set up payouts", body)
