"""How a bounty is divided along an introduction chain.

Pure arithmetic on integer minor units (cents), so the same numbers appear in the payout
preview, in settlement and in tests. The rules, their formulas, the rounding method and
worked examples are in ``docs/split-rules.md``.

Vocabulary: the chain is v1 (top, the company's direct contact) ... vn (the finder, who
introduced the candidate). Shares are tuples indexed from the top: ``shares[0]`` is v1,
``shares[-1]`` is the finder. The pool P is the bounty minus the platform fee and the
candidate's thank-you share; whatever a rule does not pay out of P is the remainder and goes
back to the company.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from marketplace.errors import ValidationError

BPS_SCALE = 10_000
"""Basis points in a whole: 100 bps = 1 %."""

FINDER_MINIMUM_BPS = 5_000
"""``flat_fee_finder_rest`` refuses hop fees that could leave the finder under half the pool."""

DEFAULT_HOP_FEE_BPS = 500
DEFAULT_FINDER_SHARE_BPS = 8_000


@dataclass(frozen=True)
class RuleInfo:
    """What a company sees when choosing a rule, and the parameters it accepts."""

    name: str
    label: str
    summary: str
    param_names: tuple[str, ...]
    default_params: Callable[[int], dict[str, int]]
    pays_whole_pool: bool


@dataclass(frozen=True)
class Split:
    """A pool divided along a chain: ``sum(shares) + remainder == pool``."""

    shares: tuple[int, ...]
    remainder: int


@dataclass(frozen=True)
class Settlement:
    """Where every minor unit of a bounty goes.

    ``platform_fee + candidate_share + sum(shares) + remainder == bounty``; the remainder
    returns to the company.
    """

    bounty: int
    platform_fee: int
    candidate_share: int
    shares: tuple[int, ...]
    remainder: int


def _largest_remainder(exact_shares: Sequence[Fraction], total: int) -> list[int]:
    """Round exact shares to integers summing to ``total`` (which is at most their exact sum).

    Every share is floored, then the missing units go one each to the largest fractional
    parts; equal fractional parts favour the link nearest the finder (the higher index),
    because the finder did the work the bounty pays for.
    """
    floored = [floor(share) for share in exact_shares]
    missing_units = total - sum(floored)
    nearest_finder_first = sorted(
        range(len(exact_shares)),
        key=lambda index: (exact_shares[index] - floored[index], index),
        reverse=True,
    )
    for index in nearest_finder_first[:missing_units]:
        floored[index] += 1
    return floored


def _split_equal(pool: int, n: int, params: dict[str, int]) -> Split:
    shares = _largest_remainder([Fraction(pool, n)] * n, pool)
    return Split(tuple(shares), 0)


def _split_halving(pool: int, n: int, params: dict[str, int]) -> Split:
    # Link at index i is d = n - 1 - i hops above the finder and is owed P / 2^(d+1).
    exact_shares = [Fraction(pool, 2 ** (n - index)) for index in range(n)]
    shares = _largest_remainder(exact_shares, floor(sum(exact_shares)))
    return Split(tuple(shares), pool - sum(shares))


def _split_flat_fee_finder_rest(pool: int, n: int, params: dict[str, int]) -> Split:
    # The hop fee is one fixed integer: a link above the finder is paid exactly that or
    # nothing, so a fake identity is worth at most one fee and the finder's block is
    # always P minus what the links above it get.
    hop_fee = pool * params["f_bps"] // BPS_SCALE
    paid_hops = min(params["H"], n - 1)
    intermediaries = tuple(hop_fee if index < paid_hops else 0 for index in range(n - 1))
    return Split(intermediaries + (pool - hop_fee * paid_hops,), 0)


def _split_uniform_halving(pool: int, n: int, params: dict[str, int]) -> Split:
    # Deliberately floor(P / 2^(n-1)) for every link rather than largest remainder: handing
    # leftover units to the links nearest the finder would let a link that adds fakes below
    # itself collect those units and end up a cent ahead.
    per_link = pool // 2 ** (n - 1)
    return Split((per_link,) * n, pool - per_link * n)


def _split_finder_and_first(pool: int, n: int, params: dict[str, int]) -> Split:
    if n == 1:
        return Split((pool,), 0)
    exact_finder_share = Fraction(pool * params["s_bps"], BPS_SCALE)
    first_share, finder_share = _largest_remainder([pool - exact_finder_share, exact_finder_share], pool)
    return Split((first_share,) + (0,) * (n - 2) + (finder_share,), 0)


def _flat_fee_defaults(max_depth: int) -> dict[str, int]:
    """Pay every intermediary of the longest chain; the 5 % fee shrinks only when that many
    hops at 5 % could take more than half the pool (max_depth > 11)."""
    paid_hops = max_depth - 1
    if paid_hops == 0:
        return {"f_bps": DEFAULT_HOP_FEE_BPS, "H": 0}
    return {"f_bps": min(DEFAULT_HOP_FEE_BPS, FINDER_MINIMUM_BPS // paid_hops), "H": paid_hops}


def _finder_and_first_defaults(max_depth: int) -> dict[str, int]:
    return {"s_bps": DEFAULT_FINDER_SHARE_BPS}


def _no_params(max_depth: int) -> dict[str, int]:
    return {}


def _require_whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """Accept only a real ``int`` (not a bool, float or numeric string) within range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number, got {value!r}.")
    if value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValidationError(f"{name} must be {allowed}, got {value}.")
    return value


def _check_flat_fee(params: dict, max_depth: int | None) -> None:
    hop_fee_bps = _require_whole("f_bps", params["f_bps"], 0, FINDER_MINIMUM_BPS)
    paid_hops = _require_whole("H", params["H"], 0)
    if max_depth is not None and paid_hops > max_depth - 1:
        raise ValidationError(
            f"H must be at most {max_depth - 1}: chains have at most {max_depth} links, "
            f"so at most {max_depth - 1} sit above the finder (got {paid_hops})."
        )
    if hop_fee_bps * paid_hops > FINDER_MINIMUM_BPS:
        raise ValidationError(
            f"f_bps * H must be at most {FINDER_MINIMUM_BPS} so the finder keeps at least half "
            f"the pool; with H={paid_hops}, f_bps can be at most "
            f"{FINDER_MINIMUM_BPS // paid_hops} (got {hop_fee_bps})."
        )


def _check_finder_and_first(params: dict, max_depth: int | None) -> None:
    _require_whole("s_bps", params["s_bps"], FINDER_MINIMUM_BPS, BPS_SCALE)


def _check_nothing(params: dict, max_depth: int | None) -> None:
    """Rules without parameters have nothing to check beyond the (empty) key set."""


SPLIT_RULES: dict[str, RuleInfo] = {
    "equal": RuleInfo(
        name="equal",
        label="Equal split",
        summary=(
            "Everyone in the chain gets the same share, so forwarding pays, but a finder "
            "can add fake accounts below themselves to take a bigger part."
        ),
        param_names=(),
        default_params=_no_params,
        pays_whole_pool=True,
    ),
    "halving": RuleInfo(
        name="halving",
        label="Halving (Red Balloon)",
        summary=(
            "The finder gets half, each link above gets half of what the link below gets and "
            "the rest comes back to you; fake accounts let a finder take more."
        ),
        param_names=(),
        default_params=_no_params,
        pays_whole_pool=False,
    ),
    "flat_fee_finder_rest": RuleInfo(
        name="flat_fee_finder_rest",
        label="Flat fee per hop, finder gets the rest",
        summary=(
            "Each link above the finder gets a small fixed fee and the finder keeps the rest; "
            "a finder gains nothing from fake accounts, a middle link at most one fee per fake."
        ),
        param_names=("f_bps", "H"),
        default_params=_flat_fee_defaults,
        pays_whole_pool=True,
    ),
    "uniform_halving": RuleInfo(
        name="uniform_halving",
        label="Uniform halving",
        summary=(
            "Every link gets the same share, halved for each extra link, and the rest comes "
            "back to you; nobody gains anything from fake accounts."
        ),
        param_names=(),
        default_params=_no_params,
        pays_whole_pool=False,
    ),
    "finder_and_first": RuleInfo(
        name="finder_and_first",
        label="Finder and first contact",
        summary=(
            "The finder gets most of it, your direct contact the rest and links in between "
            "nothing; nobody gains anything from fake accounts."
        ),
        param_names=("s_bps",),
        default_params=_finder_and_first_defaults,
        pays_whole_pool=True,
    ),
}

DEFAULT_RULE = "flat_fee_finder_rest"

_SPLITTERS: dict[str, Callable[[int, int, dict[str, int]], Split]] = {
    "equal": _split_equal,
    "halving": _split_halving,
    "flat_fee_finder_rest": _split_flat_fee_finder_rest,
    "uniform_halving": _split_uniform_halving,
    "finder_and_first": _split_finder_and_first,
}

_CHECKERS: dict[str, Callable[[dict, int | None], None]] = {
    "equal": _check_nothing,
    "halving": _check_nothing,
    "flat_fee_finder_rest": _check_flat_fee,
    "uniform_halving": _check_nothing,
    "finder_and_first": _check_finder_and_first,
}


def _rule_info(rule: str) -> RuleInfo:
    try:
        return SPLIT_RULES[rule]
    except (KeyError, TypeError):
        known = ", ".join(SPLIT_RULES)
        raise ValidationError(f"Unknown split rule {rule!r}; choose one of {known}.") from None


def _check_params(info: RuleInfo, params: object, max_depth: int | None) -> None:
    """Refuse anything but exactly the rule's parameters, each in its allowed range.

    ``max_depth`` is None when splitting with stored parameters: their H was held to the
    chain limit when the bounty was posted, and a later change of limit must not void them.
    """
    if not isinstance(params, dict):
        raise ValidationError(f"Parameters of {info.name} must be a mapping, got {params!r}.")
    unknown = sorted(set(params) - set(info.param_names), key=str)
    if unknown:
        raise ValidationError(
            f"Unknown parameter {', '.join(map(str, unknown))} for rule {info.name}; "
            f"it accepts {', '.join(info.param_names) or 'no parameters'}."
        )
    missing = [name for name in info.param_names if name not in params]
    if missing:
        raise ValidationError(f"Missing parameter {', '.join(missing)} for rule {info.name}.")
    _CHECKERS[info.name](params, max_depth)


def normalize_params(rule: str, params: dict | None, *, max_depth: int) -> dict:
    """The complete, validated parameters of ``rule``: defaults filled in, ranges checked.

    ``max_depth`` is the longest chain the marketplace accepts; it sets the default and the
    upper limit of ``H`` because hops beyond the longest chain would never be paid.
    """
    info = _rule_info(rule)
    _require_whole("max_depth", max_depth, 1)
    if params is not None and not isinstance(params, dict):
        raise ValidationError(f"Parameters of {rule} must be a mapping, got {params!r}.")
    completed = info.default_params(max_depth) | (params or {})
    _check_params(info, completed, max_depth)
    return {name: completed[name] for name in info.param_names}


def split_pool(rule: str, pool: int, n: int, params: dict) -> Split:
    """Divide ``pool`` minor units along a chain of ``n`` links under ``rule``.

    ``params`` must be complete (as returned by :func:`normalize_params`); they are checked
    again here because stored parameters reach settlement without passing through a form.
    """
    info = _rule_info(rule)
    _require_whole("pool", pool, 0)
    _require_whole("n", n, 1)
    _check_params(info, params, None)
    return _SPLITTERS[rule](pool, n, params)


def settle_amounts(
    bounty: int,
    n: int,
    *,
    rule: str,
    params: dict,
    platform_fee_bps: int = 1000,
    candidate_share_bps: int = 0,
) -> Settlement:
    """Split a bounty for a chain of ``n`` links.

    The platform fee and the candidate's share are basis points of the bounty, each rounded
    down, and come off first; the rule then divides the pool that is left.
    """
    _require_whole("bounty", bounty, 0)
    _require_whole("platform_fee_bps", platform_fee_bps, 0, BPS_SCALE)
    _require_whole("candidate_share_bps", candidate_share_bps, 0, BPS_SCALE)
    if platform_fee_bps + candidate_share_bps > BPS_SCALE:
        raise ValidationError(
            "platform_fee_bps + candidate_share_bps must be at most 10000 (the whole bounty), "
            f"got {platform_fee_bps} + {candidate_share_bps}."
        )
    platform_fee = bounty * platform_fee_bps // BPS_SCALE
    candidate_share = bounty * candidate_share_bps // BPS_SCALE
    split = split_pool(rule, bounty - platform_fee - candidate_share, n, params)
    return Settlement(bounty, platform_fee, candidate_share, split.shares, split.remainder)


def preview(
    bounty: int,
    *,
    rule: str,
    params: dict,
    platform_fee_bps: int = 1000,
    candidate_share_bps: int = 0,
    max_links: int = 6,
) -> list[Settlement]:
    """The settlement for every chain length from 1 to ``max_links``, for the posting page."""
    _require_whole("max_links", max_links, 1)
    return [
        settle_amounts(
            bounty,
            n,
            rule=rule,
            params=params,
            platform_fee_bps=platform_fee_bps,
            candidate_share_bps=candidate_share_bps,
        )
        for n in range(1, max_links + 1)
    ]
