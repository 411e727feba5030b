"""The template filters that are memoised give each input its own answer, and the ones written
for speed give what the slower standard call gave (marketplace/web/filters.py)."""

from datetime import UTC, datetime

from marketplace.ledger.models import DisputeStatus
from marketplace.problems.models import ProblemStatus
from marketplace.referrals.models import IntroductionStatus, ReferralStatus
from marketplace.web.filters import render_markdown, short_date, status_badge


def test_two_kinds_of_state_with_the_same_value_keep_their_own_label():
    # Both enums have "expired", and a StrEnum member equals its value: a cache keyed on the
    # value alone would give whichever came first to both.
    assert "link closed" in status_badge(ReferralStatus.EXPIRED)
    assert "closed with the problem" in status_badge(IntroductionStatus.EXPIRED)
    assert "link closed" in status_badge(ReferralStatus.EXPIRED)


def test_a_badge_escapes_a_state_it_does_not_know():
    assert "&lt;b&gt;" in status_badge("<b>")


def test_a_description_is_rendered_once_and_an_edited_one_afresh():
    render_markdown.cache_clear()
    first = render_markdown("We need **replication** fixed")
    again = render_markdown("We need **replication** fixed")
    edited = render_markdown("We need **failover** fixed")

    assert again is first  # the same object: rendered once
    assert "<strong>replication</strong>" in first and "<strong>failover</strong>" in edited
    assert render_markdown.cache_info().hits == 1


def test_memoised_markdown_is_still_sanitised():
    assert "<script" not in render_markdown("<script>alert(1)</script> [x](javascript:alert(1))")


def test_an_open_dispute_is_a_warning_where_an_open_problem_is_good_news():
    assert "text-bg-warning" in status_badge(DisputeStatus.OPEN)
    assert "text-bg-success" in status_badge(ProblemStatus.OPEN)


def test_a_short_date_reads_as_strftime_wrote_it_in_every_month():
    for month in range(1, 13):
        moment = datetime(2026, month, 5, 23, 59, tzinfo=UTC)
        assert short_date(moment) == moment.strftime("%d %b %Y")
    assert short_date(datetime(2027, 1, 31)) == "31 Jan 2027"
    assert short_date(None) == "—"
