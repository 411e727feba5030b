"""The template filters that are memoised give each input its own answer
(marketplace/web/filters.py)."""

from marketplace.ledger.models import DisputeStatus
from marketplace.problems.models import ProblemStatus
from marketplace.referrals.models import IntroductionStatus, ReferralStatus
from marketplace.web.filters import render_markdown, status_badge


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
