"""Receipts: the charge that funds a problem comes with Stripe's hosted receipt, which the app
records with the charge and links from the company's figures page, for the payment and for the
refund that gives it back."""

import re

import requests
from sqlalchemy import select

from marketplace.payments.models import CheckoutSession
from tests.payments.test_checkout import logged_in
from tests.payments.test_payments import funded_problem, run_jobs


def payment_rows(html: str) -> list[tuple[str, str | None]]:
    """Each payment record on the figures page: what it was, and the receipt it links."""
    table = re.search(r'<table[^>]*id="payment-records".*?</table>', html, re.S)
    assert table is not None
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S):
        what = re.search(r'<td data-label="What"[^>]*>([^<]+)</td>', row)
        if what is not None:
            receipt = re.search(r'<a href="([^"]+)" target="_blank" rel="noopener">Receipt', row)
            rows.append((what.group(1), receipt and receipt.group(1)))
    return rows


def test_funding_records_the_receipt_and_the_figures_page_links_it_for_the_payment_and_its_refund(
    live, emulator, app, api, world, session, browser
):
    problem_id = funded_problem(live, emulator, app, api, world)
    session.rollback()
    charge_id, receipt_url = session.execute(
        select(CheckoutSession.charge_id, CheckoutSession.receipt_url).where(CheckoutSession.problem_id == problem_id)
    ).one()
    session.rollback()
    assert receipt_url and receipt_url.startswith(f"{emulator.url}/pages/receipts/{charge_id}/")
    receipt = requests.get(receipt_url, timeout=10)
    assert receipt.status_code == 200 and "2000.00 USD" in receipt.text and charge_id in receipt.text

    figures = f"/companies/{world.company.id}/figures"
    owner = logged_in(browser, world.owner)
    assert payment_rows(owner.get(figures).text) == [("bounty paid", receipt_url)]

    assert api(world.owner).post(f"/problems/{problem_id}/cancel").status_code == 200
    run_jobs(app)
    assert payment_rows(owner.get(figures).text) == [("refund", receipt_url), ("bounty paid", receipt_url)]
    refunded = requests.get(receipt_url, timeout=10).text
    assert 'id="refunds"' in refunded and "−2000.00 USD" in refunded
