"""A member's earnings and giving, a company's report of a failed introduction, admins' decisions."""

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts.models import Role
from marketplace.accounts.service import user_by_email
from marketplace.db import db, utcnow
from marketplace.errors import MarketplaceError, NotFound
from marketplace.ledger import accounts, disputes, donations, settlement
from marketplace.ledger.models import LedgerTransaction
from marketplace.money import parse_major
from marketplace.payments.service import payout_account, refused_payouts_of
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import records
from marketplace.web.dashboards import earnings_charts, giving_chart
from marketplace.web.forms.ledger import DecisionForm, DisputeForm, DonationForm
from marketplace.web.util import form_error
from marketplace.workflows import disputes as workflow_disputes

bp = Blueprint("ledger", __name__)

BUCKET_LABELS = {
    "held": "Held",
    "available": "Available",
    "payout_pending": "Payout on its way",
    "paid": "Paid to your bank",
    "reversed": "Taken back by the bank",
}


@dataclass
class StatementRow:
    """One event on the earnings page in people's words: a positive amount and where it went.

    A payout is two or three ledger transactions (started, then paid or refused); the member sees
    one line for it, with its outcome."""

    transaction: LedgerTransaction
    kind: str
    amount: int
    source: str | None
    destination: str | None
    outcome: str = ""


def _payout_base(key: str) -> str:
    return key.removesuffix(":paid").removesuffix(":failed")


def statement_rows(statement: accounts.CurrencyStatement) -> list[StatementRow]:
    rows: list[StatementRow] = []
    payouts: dict[str, StatementRow] = {}
    for line in reversed(statement.lines):  # oldest first, so a payout's start comes before its end
        changes = {bucket: amount for bucket, amount in line.changes.items() if amount}
        if not changes:
            continue
        taken = [b for b, amount in changes.items() if amount < 0]
        given = [b for b, amount in changes.items() if amount > 0]
        amount = max(abs(a) for a in changes.values())
        kind = line.transaction.kind.value
        key = line.transaction.idempotency_key
        if kind == "payout" and key.startswith("payout:"):
            row = payouts.get(_payout_base(key))
            if row is None:
                row = payouts[_payout_base(key)] = StatementRow(
                    line.transaction, "payout", amount, "available", "paid", "on its way to your bank"
                )
                rows.append(row)
            if key.endswith(":paid"):
                row.outcome = "paid"
            elif key.endswith(":failed"):
                row.outcome = "refused by the bank: back in Available"
            continue
        if kind == "donation":
            kind = "gift_received" if given and not taken else "gift_given"
        rows.append(
            StatementRow(line.transaction, kind, amount, taken[0] if taken else None, given[0] if given else None)
        )
    rows.reverse()  # newest first, as the ledger lists them
    return rows


def _earnings_page(form: DonationForm):

    given, received = donations.giving_record(db.session, current_user.id)
    statements = accounts.member_statement(db.session, current_user.id)
    return render_template(
        "ledger/earnings.html",
        payout_account=payout_account(db.session, current_user),
        refused_payouts=refused_payouts_of(db.session, current_user),
        statements=[(s, statement_rows(s)) for s in statements],
        bucket_labels=BUCKET_LABELS,
        given=given,
        received=received,
        form=form,
        earnings_charts=earnings_charts(statements),
        giving_chart=giving_chart(records.giving(db.session, current_user.id), len(given), len(received)),
    )


@bp.get("/me/earnings")
@login_required
def earnings():
    return _earnings_page(DonationForm())


@bp.post("/me/earnings/give")
@login_required
def give():
    form = DonationForm()
    if form.validate_on_submit():
        try:
            recipient = user_by_email(db.session, form.to_email.data)
            if recipient is None:
                raise NotFound("No member has that e-mail address.")
            amount = parse_major(form.amount.data, form.currency.data)
            donations.donate(
                db.session,
                current_user,
                to_user_id=recipient.id,
                amount=amount,
                currency=form.currency.data,
                key=form.key.data,
                note=form.note.data or "",
            )
        except MarketplaceError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            flash(f"Thank you: you passed your share on to {recipient.name}.", "success")
            return redirect(url_for("ledger.earnings"))
    return _earnings_page(form)


# Before a problem is matched nothing has been settled, refunded or disputed: no query needed.
_NO_MONEY_YET: dict[str, object] = {
    "settlement": None,
    "members": {},
    "refunds": [],
    "dispute": None,
    "guarantee_ends": None,
    "dispute_form": None,
}


def problem_money(problem: Problem, role: Role | None, books: settlement.ProblemBooks | None) -> dict:
    """The company's side of the problem page: the settlement, refunds and dispute, read from
    ``books`` (``settlement.books_of``, read once by the page) and one look for a dispute."""
    if books is None:
        return _NO_MONEY_YET
    ends = settlement.guarantee_ends(problem)
    can_dispute = (
        role is not None
        and role.manages
        and problem.status == ProblemStatus.IN_GUARANTEE
        and ends is not None
        and utcnow() < ends
    )
    return {
        "settlement": books.settlement,
        "members": books.members,
        "refunds": books.refunds,
        "dispute": disputes.dispute_of(db.session, problem.id),
        "guarantee_ends": ends,
        "dispute_form": DisputeForm() if can_dispute else None,
    }


@bp.post("/problems/<int:problem_id>/disputes")
@login_required
def open_dispute(problem_id: int):
    form = DisputeForm()
    if not form.validate_on_submit():
        reasons = "; ".join(message for messages in form.errors.values() for message in messages)
        flash(f"The report was not sent: {reasons}", "danger")
        return redirect(url_for("problems.show", problem_id=problem_id))
    workflow_disputes.open_dispute(db.session, current_user, problem_id, reason=form.reason.data)
    flash("Reported. Nobody is paid until a platform admin has looked at it.", "info")
    return redirect(url_for("problems.show", problem_id=problem_id))


@bp.get("/admin/disputes")
@login_required
def admin_disputes():
    listed = disputes.disputes_for_admin(db.session, current_user)
    return render_template(
        "ledger/admin_disputes.html",
        disputes=listed,
        settlements={d.problem_id: settlement.settlement_of(db.session, d.problem) for d in listed},
        form=DecisionForm(),
    )


@bp.post("/admin/disputes/<int:dispute_id>/<any(uphold, reject):decision>")
@login_required
def decide_dispute(dispute_id: int, decision: str):
    workflow_disputes.decide(db.session, current_user, dispute_id, decision, note=request.form.get("note", ""))
    flash(
        "Upheld: the shares are clawed back and the company is refunded."
        if decision == "uphold"
        else "Rejected: the shares are released and the problem is settled.",
        "success",
    )
    return redirect(url_for("ledger.admin_disputes"))
