"""Template filters: money, safe Markdown, dates and status badges."""

import functools
from datetime import datetime

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from marketplace.money import format_money
from marketplace.referrals import appearance, records

# CommonMark with raw HTML switched off, then sanitised: user text can never inject markup.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}

STATUS_STYLES = {
    "draft": "secondary",
    "awaiting_payment": "warning",
    "open": "success",
    "matched": "info",
    "in_guarantee": "info",
    "disputed": "danger",
    "settled": "primary",
    "expired": "secondary",
    "cancelled": "secondary",
    "refunded": "secondary",
    "sent": "info",
    "claimed": "success",
    "awaiting_candidate": "warning",
    "proposed": "info",
    "accepted": "success",
    "declined": "secondary",
    "withdrawn": "secondary",
    "duplicate": "secondary",
}
# Where a kind's state means something else than the same value of another kind: an open
# problem is good news, an open dispute holds everyone's payout until an admin decides.
STATUS_STYLES_OF_KIND = {
    "DisputeStatus": {"open": "warning", "upheld": "secondary", "rejected": "primary"},
}


# Each state in people's words, by the kind of thing it is the state of (the same value means
# different things: an "expired" referral is a link nobody used, an "expired" problem closed
# without an accepted introduction). A state not listed shows its own name.
STATUS_LABELS = {
    "ProblemStatus": {
        "awaiting_payment": "waiting for payment",
        "matched": "expert found",
        "in_guarantee": "in guarantee period",
        "disputed": "reported as failed",
        "settled": "paid out",
        "expired": "closed without an introduction",
        "refunded": "refunded",
    },
    "ReferralStatus": {"sent": "not joined yet", "claimed": "joined", "expired": "link closed"},
    "IntroductionStatus": {
        "awaiting_candidate": "waiting for the expert to agree",
        "proposed": "waiting for the company's decision",
        "expired": "closed with the problem",
        "duplicate": "introduced earlier by someone else",
    },
    "DisputeStatus": {"open": "waiting for a decision", "upheld": "upheld: refunded", "rejected": "rejected: paid out"},
    "ImportStatus": {"preview": "waiting for your confirmation", "importing": "importing", "done": "imported"},
}


def status_label(status) -> str:
    value = getattr(status, "value", status)
    return STATUS_LABELS.get(type(status).__name__, {}).get(value, value.replace("_", " "))


@functools.lru_cache(maxsize=2048)
def render_markdown(text: str) -> Markup:
    """Markdown to sanitised HTML, memoised by the text itself: a published description does
    not change, so each is rendered once per process instead of on every view; an edited draft
    is a new text and a new entry (docs/performance.md, "Statements per page")."""
    html = _markdown.render(text or "")
    return Markup(nh3.clean(html, tags=_ALLOWED_TAGS, link_rel="noopener noreferrer nofollow"))


# ``typed``: the states of two kinds may share a value ("expired") and not a label.
@functools.lru_cache(maxsize=256, typed=True)
def status_badge(status) -> Markup:
    """Memoised: a list page shows one per row, and formatting Markup is slow beside a lookup."""
    value = getattr(status, "value", status)
    style = STATUS_STYLES_OF_KIND.get(type(status).__name__, {}).get(value) or STATUS_STYLES.get(value, "secondary")
    return Markup('<span class="badge text-bg-{}">{}</span>').format(style, status_label(status))


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def short_date(moment: datetime | None) -> str:
    """``05 Dec 2026``: what ``strftime("%d %b %Y")`` gives in the C locale, whatever the
    process's locale, in a quarter of its time (a list page formats one per row)."""
    return f"{moment.day:02} {MONTHS[moment.month - 1]} {moment.year}" if moment else "—"


def register_filters(app) -> None:
    app.jinja_env.globals["name_of"] = appearance.name_of
    app.jinja_env.globals["id_of"] = appearance.id_of
    app.jinja_env.globals["record_prior"] = (records.PRIOR_SUCCESSES, records.PRIOR_DECIDED)
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["status"] = status_badge
    app.jinja_env.filters["status_label"] = status_label
    app.jinja_env.filters["date"] = short_date
