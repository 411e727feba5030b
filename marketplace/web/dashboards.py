"""The charts of the company page and of a member's earnings (docs/dashboards.md), built from
figures the pages load with a fixed number of aggregate queries."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marketplace.ledger import reports
from marketplace.ledger.accounts import CurrencyStatement
from marketplace.money import format_money
from marketplace.payments.service import funding_receipts
from marketplace.referrals.records import Giving
from marketplace.web.charts import BLUE, GREEN, GREY, ORANGE, Chart, Series, columns, count, rows

MONTHS_SHOWN = 12


@dataclass(frozen=True)
class CompanyDashboard:
    bounties: Chart | None
    money: list[Chart]
    funnels: list[Chart]
    payments: list[reports.PaymentRecord]


def _month(moment: datetime) -> str:
    return moment.strftime("%b %Y")


def _shown_in(currency: str):
    return lambda amount: format_money(amount, currency)


def company_dashboard(session, company_id: int) -> CompanyDashboard:
    """Problems by state, spend and refunds by month per currency, the newest problems'
    funnels, and the payment records with their receipts: four aggregate queries."""
    by_state = [(state.value.replace("_", " "), n) for state, n in reports.problems_by_state(session, company_id)]
    bounties = rows("bounties", "Problems by state", by_state, count) if by_state else None
    months: dict[str, list[reports.MonthOfMoney]] = {}
    for month in reports.money_by_month(session, company_id):
        months.setdefault(month.currency, []).append(month)
    money = [
        columns(
            f"money-{currency}",
            f"Paid and refunded by month ({currency.upper()})",
            [m.label for m in shown],
            [Series("Paid", BLUE, [m.spent for m in shown]), Series("Refunded", ORANGE, [m.refunded for m in shown])],
            _shown_in(currency),
        )
        for currency, listed in sorted(months.items())
        for shown in [listed[-MONTHS_SHOWN:]]
    ]
    funnels = [
        rows(
            f"funnel-{f.problem_id}",
            f"{f.title}: from forwards to acceptance",
            [
                ("Forwards", f.forwards),
                ("Places claimed", f.claims),
                ("Introductions", f.introductions),
                ("Accepted", f.accepted),
            ],
            count,
            GREEN,
        )
        for f in reports.funnels(session, company_id)
    ]
    payments = reports.payment_records(session, company_id, receipts=funding_receipts())
    return CompanyDashboard(bounties, money, funnels, payments)


EARNING_SERIES = (("held", "Held", GREY), ("available", "Available", BLUE), ("paid", "Paid", GREEN))


def earnings_charts(statements: Sequence[CurrencyStatement]) -> list[Chart]:
    """Each currency's held, available and paid balances at the end of each month in which they
    moved, from the statement the earnings page loaded already (no further query)."""
    charts = []
    for statement in statements:
        moved: dict[str, dict[str, int]] = {}
        for line in sorted(statement.lines, key=lambda line: line.transaction.id):
            month = moved.setdefault(_month(line.transaction.created_at), {})
            for bucket, change in line.changes.items():
                month[bucket] = month.get(bucket, 0) + change
        labels = list(moved)[-MONTHS_SHOWN:]
        running = dict.fromkeys((bucket for bucket, _, _ in EARNING_SERIES), 0)
        balances: dict[str, dict[str, int]] = {}
        for label, changes in moved.items():
            for bucket in running:
                running[bucket] += changes.get(bucket, 0)
            balances[label] = dict(running)
        charts.append(
            columns(
                f"earnings-{statement.currency}",
                f"Your earnings at the end of each month ({statement.currency.upper()})",
                labels,
                [
                    Series(name, color, [balances[label][bucket] for label in labels])
                    for bucket, name, color in EARNING_SERIES
                ],
                _shown_in(statement.currency),
            )
        )
    return charts


def giving_chart(giving: Giving, passed_on: int, received: int) -> Chart:
    """What the member did for others' problems and the shares passed on, as counts."""
    return rows(
        "giving",
        "Your giving record",
        [
            ("Problems forwarded", giving.forwards),
            ("Introductions for others", giving.introductions_for_others),
            ("Shares passed on", passed_on),
            ("Gifts received", received),
        ],
        count,
        ORANGE,
    )
