"""Split rules: exact sums, the fake-identity guarantees each rule claims, worked examples.

A "fake identity" attack: the person at chain position ``position`` (0 = top) invents
``fakes`` extra accounts and inserts them directly below themselves, so the chain grows from
n to n + fakes and the attacker controls positions position .. position + fakes. The attack
gains ``sum(those shares) - original share``.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.errors import ValidationError
from marketplace.problems.splits import (
    DEFAULT_RULE,
    SPLIT_RULES,
    RuleInfo,
    Settlement,
    Split,
    normalize_params,
    preview,
    settle_amounts,
    split_pool,
)

MAX_LINKS = 50
MAX_FAKES = 5
MAX_BOUNTY = 10**9
# Chains of up to 50 links plus up to 5 fakes must still be valid chains.
MAX_DEPTH = MAX_LINKS + MAX_FAKES

PROPERTY = settings(max_examples=300, deadline=None)
# Tests that try every position and every number of fakes do ~250 splits per example.
EXHAUSTIVE_PER_EXAMPLE = settings(max_examples=100, deadline=None)

# Small pools are where rounding bites, so draw them as often as large ones.
pools = st.one_of(st.integers(min_value=0, max_value=1000), st.integers(min_value=0, max_value=MAX_BOUNTY))
chain_lengths = st.integers(min_value=1, max_value=MAX_LINKS)
fake_counts = st.integers(min_value=1, max_value=MAX_FAKES)


@st.composite
def flat_fee_params(draw):
    """Any H up to the chain limit and any hop fee the f·H ≤ 50 % cap allows with it."""
    few_hops = st.integers(min_value=0, max_value=10)
    paid_hops = draw(st.one_of(few_hops, st.integers(min_value=0, max_value=MAX_DEPTH - 1)))
    max_fee_bps = 5000 // paid_hops if paid_hops else 5000
    hop_fee_bps = draw(st.integers(min_value=0, max_value=max_fee_bps))
    return normalize_params("flat_fee_finder_rest", {"f_bps": hop_fee_bps, "H": paid_hops}, max_depth=MAX_DEPTH)


finder_and_first_params = st.builds(
    lambda finder_bps: normalize_params("finder_and_first", {"s_bps": finder_bps}, max_depth=MAX_DEPTH),
    st.integers(min_value=5000, max_value=10000),
)


@st.composite
def any_rule_and_params(draw):
    rule = draw(st.sampled_from(list(SPLIT_RULES)))
    if rule == "flat_fee_finder_rest":
        return rule, draw(flat_fee_params())
    if rule == "finder_and_first":
        return rule, draw(finder_and_first_params)
    return rule, normalize_params(rule, None, max_depth=MAX_DEPTH)


def fake_identity_gain(rule, params, pool, n, position, fakes):
    """What the link at ``position`` gains by inserting ``fakes`` accounts directly below."""
    honest = split_pool(rule, pool, n, params).shares[position]
    with_fakes = split_pool(rule, pool, n + fakes, params).shares
    return sum(with_fakes[position : position + fakes + 1]) - honest


def hop_fee(pool, params):
    return pool * params["f_bps"] // 10_000


# --- exact sums -------------------------------------------------------------------------


@PROPERTY
@given(any_rule_and_params(), pools, chain_lengths)
def test_split_pool_accounts_for_every_unit(rule_and_params, pool, n):
    rule, params = rule_and_params
    split = split_pool(rule, pool, n, params)

    assert len(split.shares) == n
    assert sum(split.shares) + split.remainder == pool
    assert min(split.shares) >= 0
    assert split.remainder >= 0
    if SPLIT_RULES[rule].pays_whole_pool:
        assert split.remainder == 0


@PROPERTY
@given(
    any_rule_and_params(),
    st.integers(min_value=0, max_value=MAX_BOUNTY),
    chain_lengths,
    st.integers(min_value=0, max_value=10000),
    st.data(),
)
def test_settlement_accounts_for_every_unit(rule_and_params, bounty, n, fee_bps, data):
    rule, params = rule_and_params
    candidate_bps = data.draw(st.integers(min_value=0, max_value=10000 - fee_bps))
    settlement = settle_amounts(
        bounty,
        n,
        rule=rule,
        params=params,
        platform_fee_bps=fee_bps,
        candidate_share_bps=candidate_bps,
    )

    assert settlement.platform_fee == bounty * fee_bps // 10000
    assert settlement.candidate_share == bounty * candidate_bps // 10000
    parts = settlement.platform_fee + settlement.candidate_share + sum(settlement.shares)
    assert parts + settlement.remainder == bounty
    assert min(settlement.shares) >= 0
    assert settlement.remainder >= 0


@PROPERTY
@given(pools, chain_lengths)
def test_equal_shares_differ_by_at_most_one_unit_with_extras_nearest_the_finder(pool, n):
    shares = split_pool("equal", pool, n, {}).shares

    assert list(shares) == sorted(shares)
    assert shares[-1] - shares[0] <= 1


@PROPERTY
@given(pools, chain_lengths)
def test_halving_rounds_each_share_within_one_unit_and_pays_the_floor_of_the_exact_total(pool, n):
    shares = split_pool("halving", pool, n, {}).shares
    # Exact share of index i is pool / 2^(n - i); the exact total is pool·(2^n - 1) / 2^n.
    for index, share in enumerate(shares):
        assert abs(share * 2 ** (n - index) - pool) < 2 ** (n - index)
    assert sum(shares) == pool * (2**n - 1) // 2**n


# --- fake identities: rules that resist them ---------------------------------------------


@PROPERTY
@given(flat_fee_params(), pools, chain_lengths, fake_counts)
def test_flat_fee_finder_gains_nothing_from_fakes(params, pool, n, fakes):
    gain = fake_identity_gain("flat_fee_finder_rest", params, pool, n, n - 1, fakes)
    assert gain == 0


@EXHAUSTIVE_PER_EXAMPLE
@given(flat_fee_params(), pools, chain_lengths)
def test_flat_fee_intermediary_gains_at_most_one_fee_per_fake_and_h_fees_in_all(params, pool, n):
    for position in range(n - 1):
        for fakes in range(1, MAX_FAKES + 1):
            gain = fake_identity_gain("flat_fee_finder_rest", params, pool, n, position, fakes)
            assert 0 <= gain <= fakes * hop_fee(pool, params)
            assert gain <= params["H"] * hop_fee(pool, params)
            # Tighter: only positions 1..H are paid, so link i (1-based) can add at most
            # H - i paid fakes.
            paid_fakes_possible = max(params["H"] - (position + 1), 0)
            assert gain <= min(fakes, paid_fakes_possible) * hop_fee(pool, params)


@PROPERTY
@given(flat_fee_params(), pools, chain_lengths, st.integers(min_value=1, max_value=MAX_FAKES))
def test_flat_fee_links_added_below_never_change_an_intermediarys_pay(params, pool, n, added):
    """Every link that is not the finder keeps its pay however the chain grows below it;
    only the finder's pay changes, because the finder then becomes an intermediary."""
    shorter = split_pool("flat_fee_finder_rest", pool, n, params).shares
    longer = split_pool("flat_fee_finder_rest", pool, n + added, params).shares

    assert longer[: n - 1] == shorter[:-1]
    assert longer[n - 1] in (0, hop_fee(pool, params))


@PROPERTY
@given(flat_fee_params(), pools, chain_lengths)
def test_flat_fee_finder_always_keeps_at_least_half(params, pool, n):
    finder_share = split_pool("flat_fee_finder_rest", pool, n, params).shares[-1]
    assert 2 * finder_share >= pool


@EXHAUSTIVE_PER_EXAMPLE
@given(pools, chain_lengths)
def test_uniform_halving_no_link_gains_from_fakes(pool, n):
    for position in range(n):
        for fakes in range(1, MAX_FAKES + 1):
            assert fake_identity_gain("uniform_halving", {}, pool, n, position, fakes) <= 0


@PROPERTY
@given(pools, st.integers(min_value=2, max_value=MAX_LINKS))
def test_uniform_halving_merging_two_links_gains_at_most_the_rounding_unit(pool, n):
    """Exactly, a merged pair gets what the two got apart; flooring each share can leave the
    pair one unit short, so the merged link may be one unit ahead, never more."""
    pair = 2 * split_pool("uniform_halving", pool, n, {}).shares[0]
    merged = split_pool("uniform_halving", pool, n - 1, {}).shares[0]
    assert 0 <= merged - pair <= 1


@EXHAUSTIVE_PER_EXAMPLE
@given(finder_and_first_params, pools, chain_lengths)
def test_finder_and_first_no_link_gains_from_fakes(params, pool, n):
    for position in range(n):
        for fakes in range(1, MAX_FAKES + 1):
            gain = fake_identity_gain("finder_and_first", params, pool, n, position, fakes)
            assert gain <= 0


# --- fake identities: known weaknesses ---------------------------------------------------


@PROPERTY
@given(
    st.integers(min_value=10_000, max_value=MAX_BOUNTY),
    st.integers(min_value=2, max_value=MAX_LINKS),
    fake_counts,
)
def test_equal_lets_a_finder_gain_from_fakes(pool, n, fakes):
    """Documents a known weakness: under ``equal`` a finder in any chain of two or more who
    adds k fakes takes (k + 1)/(n + k) of the pool instead of 1/n."""
    assert fake_identity_gain("equal", {}, pool, n, n - 1, fakes) > 0


@PROPERTY
@given(st.integers(min_value=100, max_value=MAX_BOUNTY), chain_lengths, fake_counts)
def test_halving_lets_a_finder_gain_from_fakes(pool, n, fakes):
    """Documents a known weakness: under ``halving`` a finder who adds k fakes below collects
    P/2 + P/4 + ... + P/2^(k+1) instead of P/2."""
    assert fake_identity_gain("halving", {}, pool, n, n - 1, fakes) > 0


def test_weak_rules_concrete_fake_identity_gains():
    """Documents the known weakness with the posting-page numbers: a $900 pool, a chain of
    two, and a finder who invents one account below themselves."""
    assert split_pool("equal", 90000, 2, {}).shares == (45000, 45000)
    assert split_pool("equal", 90000, 3, {}).shares == (30000, 30000, 30000)
    assert fake_identity_gain("equal", {}, 90000, 2, 1, 1) == 15000

    assert split_pool("halving", 90000, 2, {}).shares == (22500, 45000)
    assert split_pool("halving", 90000, 3, {}).shares == (11250, 22500, 45000)
    assert fake_identity_gain("halving", {}, 90000, 2, 1, 1) == 22500


# --- worked examples (the numbers in docs/split-rules.md) --------------------------------

THOUSAND_DOLLARS = 100_000


@pytest.mark.parametrize(
    ("rule", "n", "shares", "remainder"),
    [
        ("flat_fee_finder_rest", 1, (90000,), 0),
        ("flat_fee_finder_rest", 3, (4500, 4500, 81000), 0),
        ("flat_fee_finder_rest", 6, (4500, 4500, 4500, 4500, 4500, 67500), 0),
        ("equal", 3, (30000, 30000, 30000), 0),
        ("halving", 1, (45000,), 45000),
        ("halving", 3, (11250, 22500, 45000), 11250),
        ("halving", 5, (2812, 5625, 11250, 22500, 45000), 2813),
        ("uniform_halving", 1, (90000,), 0),
        ("uniform_halving", 3, (22500, 22500, 22500), 22500),
        ("uniform_halving", 6, (2812,) * 6, 73128),
        ("finder_and_first", 1, (90000,), 0),
        ("finder_and_first", 2, (18000, 72000), 0),
        ("finder_and_first", 4, (18000, 0, 0, 72000), 0),
    ],
)
def test_thousand_dollar_bounty_with_default_parameters(rule, n, shares, remainder):
    params = normalize_params(rule, None, max_depth=6)
    settlement = settle_amounts(THOUSAND_DOLLARS, n, rule=rule, params=params)
    assert settlement == Settlement(THOUSAND_DOLLARS, 10000, 0, shares, remainder)


def test_candidate_share_comes_off_before_the_pool():
    params = normalize_params(DEFAULT_RULE, None, max_depth=6)
    settlement = settle_amounts(THOUSAND_DOLLARS, 3, rule=DEFAULT_RULE, params=params, candidate_share_bps=500)
    # Pool = 100000 - 10000 - 5000 = 85000; hop fee = 5 % of 85000 = 4250.
    assert settlement == Settlement(THOUSAND_DOLLARS, 10000, 5000, (4250, 4250, 76500), 0)


def test_platform_fee_rounds_down():
    settlement = settle_amounts(999, 1, rule="equal", params={})
    assert (settlement.platform_fee, settlement.shares) == (99, (900,))


@pytest.mark.parametrize(
    ("rule", "params", "pool", "n", "expected"),
    [
        # 100/3 each: one leftover unit, ties go to the finder.
        ("equal", {}, 100, 3, Split((33, 33, 34), 0)),
        ("equal", {}, 5, 2, Split((2, 3), 0)),
        # Exact 1.75 and 3.5 (total 5.25 → 5): the larger fraction, .75, gets the unit.
        ("halving", {}, 7, 2, Split((2, 3), 2)),
        # Exact 0.5: the floor of the total is 0, so nothing is paid.
        ("halving", {}, 1, 1, Split((0,), 1)),
        # Exact 2.5 and 2.5: the tie goes to the finder.
        ("finder_and_first", {"s_bps": 5000}, 5, 3, Split((2, 0, 3), 0)),
        # Exact 1.75 each: every link gets the floor, 1, and the four leftover units go back.
        ("uniform_halving", {}, 7, 3, Split((1, 1, 1), 4)),
        # Hop fee floor(5 % of 99) = 4 per hop; the finder absorbs the rounding.
        ("flat_fee_finder_rest", {"f_bps": 500, "H": 5}, 99, 3, Split((4, 4, 91), 0)),
    ],
)
def test_rounding_examples(rule, params, pool, n, expected):
    assert split_pool(rule, pool, n, params) == expected


def test_uniform_halving_floors_every_share_because_handing_out_leftovers_would_reward_fakes():
    """With a 4-unit pool and three links, exact shares are 1 each. Largest remainder on a
    chain of four (exact 0.5 each, total 2) would pay (0, 0, 1, 1), letting the finder of
    the three-link chain turn 1 unit into 2 with one fake; flooring pays (0, 0, 0, 0)."""
    assert split_pool("uniform_halving", 4, 3, {}) == Split((1, 1, 1), 1)
    assert split_pool("uniform_halving", 4, 4, {}) == Split((0, 0, 0, 0), 4)


def test_preview_lists_one_settlement_per_chain_length():
    params = normalize_params(DEFAULT_RULE, None, max_depth=6)
    settlements = preview(THOUSAND_DOLLARS, rule=DEFAULT_RULE, params=params)

    assert [len(settlement.shares) for settlement in settlements] == [1, 2, 3, 4, 5, 6]
    assert [settlement.shares[-1] for settlement in settlements] == [
        90000,
        85500,
        81000,
        76500,
        72000,
        67500,
    ]
    assert settlements[2] == settle_amounts(THOUSAND_DOLLARS, 3, rule=DEFAULT_RULE, params=params)


# --- rule catalogue and parameters ------------------------------------------------------


def test_catalogue_describes_every_rule():
    assert DEFAULT_RULE in SPLIT_RULES
    for name, info in SPLIT_RULES.items():
        assert isinstance(info, RuleInfo)
        assert info.name == name
        assert info.label
        assert info.summary
        assert "\n" not in info.summary
        assert set(info.default_params(6)) == set(info.param_names)


@pytest.mark.parametrize(
    ("max_depth", "expected"),
    [(6, {"f_bps": 500, "H": 5}), (1, {"f_bps": 500, "H": 0}), (12, {"f_bps": 454, "H": 11})],
)
def test_flat_fee_defaults_pay_every_hop_and_stay_within_the_cap(max_depth, expected):
    assert normalize_params("flat_fee_finder_rest", None, max_depth=max_depth) == expected


@PROPERTY
@given(st.sampled_from(list(SPLIT_RULES)), st.integers(min_value=1, max_value=200))
def test_defaults_are_always_valid(rule, max_depth):
    params = normalize_params(rule, None, max_depth=max_depth)
    assert normalize_params(rule, params, max_depth=max_depth) == params


def test_normalize_fills_missing_parameters_only():
    assert normalize_params("flat_fee_finder_rest", {"f_bps": 1000}, max_depth=6) == {
        "f_bps": 1000,
        "H": 5,
    }
    assert normalize_params("finder_and_first", {"s_bps": 10000}, max_depth=6) == {"s_bps": 10000}


@pytest.mark.parametrize(
    ("rule", "params", "message"),
    [
        ("flat_fee_finder_rest", {"f_bps": 2000, "H": 5}, r"f_bps \* H"),
        ("flat_fee_finder_rest", {"f_bps": 1001}, r"f_bps \* H"),
        ("flat_fee_finder_rest", {"f_bps": -1}, "f_bps"),
        ("flat_fee_finder_rest", {"f_bps": 5001, "H": 0}, "f_bps"),
        ("flat_fee_finder_rest", {"H": -1}, "H must"),
        ("flat_fee_finder_rest", {"H": 6}, "H must be at most 5"),
        ("flat_fee_finder_rest", {"f_bps": 2.5}, "f_bps must be a whole number"),
        ("flat_fee_finder_rest", {"f_bps": "500"}, "f_bps must be a whole number"),
        ("flat_fee_finder_rest", {"H": True}, "H must be a whole number"),
        ("flat_fee_finder_rest", {"fee": 500}, "Unknown parameter fee"),
        ("finder_and_first", {"s_bps": 4999}, "s_bps"),
        ("finder_and_first", {"s_bps": 10001}, "s_bps"),
        ("equal", {"s_bps": 8000}, "Unknown parameter s_bps"),
        ("equal", [("s_bps", 8000)], "mapping"),
        ("proportional", {}, "Unknown split rule"),
    ],
)
def test_normalize_refuses_bad_parameters(rule, params, message):
    with pytest.raises(ValidationError, match=message):
        normalize_params(rule, params, max_depth=6)


@pytest.mark.parametrize(
    ("rule", "pool", "n", "params", "message"),
    [
        ("equal", -1, 3, {}, "pool"),
        ("equal", 100, 0, {}, "n must"),
        ("equal", 100.0, 3, {}, "pool"),
        ("halving", 100, 3, {"H": 1}, "Unknown parameter H"),
        ("flat_fee_finder_rest", 100, 3, {"f_bps": 500}, "Missing parameter H"),
        ("flat_fee_finder_rest", 100, 3, {"f_bps": 5000, "H": 2}, r"f_bps \* H"),
        ("nobody", 100, 3, {}, "Unknown split rule"),
    ],
)
def test_split_pool_refuses_bad_input(rule, pool, n, params, message):
    with pytest.raises(ValidationError, match=message):
        split_pool(rule, pool, n, params)


@pytest.mark.parametrize(
    ("bounty", "fee_bps", "candidate_bps", "message"),
    [
        (-100, 1000, 0, "bounty"),
        (100, -1, 0, "platform_fee_bps"),
        (100, 10001, 0, "platform_fee_bps"),
        (100, 1000, "5", "candidate_share_bps"),
        (100, 6000, 5000, "platform_fee_bps \\+ candidate_share_bps"),
    ],
)
def test_settle_amounts_refuses_bad_input(bounty, fee_bps, candidate_bps, message):
    with pytest.raises(ValidationError, match=message):
        settle_amounts(
            bounty,
            2,
            rule="equal",
            params={},
            platform_fee_bps=fee_bps,
            candidate_share_bps=candidate_bps,
        )


def test_preview_refuses_an_empty_range():
    with pytest.raises(ValidationError, match="max_links"):
        preview(THOUSAND_DOLLARS, rule="equal", params={}, max_links=0)
