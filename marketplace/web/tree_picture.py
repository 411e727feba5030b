"""The referral tree as a picture on the problem page (docs/referrals.md, "The tree as a
picture"): the tree the viewer may see (``ChainView.tree``, names already as
``referrals.appearance`` allows), laid out by ``referrals.tree_layout`` and drawn as SVG by
``templates/referrals/_tree_svg.html``. No script: the server draws it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from marketplace.money import format_money
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import appearance
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral, ReferralStatus
from marketplace.referrals.read_models import TreeNode
from marketplace.referrals.tree_layout import TEXT_PADDING, Box, Branch, Edge, Layout, fit, layout

COMPANY = "company"
# The states in which a problem's settlement may have paid a chain (before them, no query).
AFTER_ACCEPTANCE = frozenset(
    {
        ProblemStatus.MATCHED,
        ProblemStatus.IN_GUARANTEE,
        ProblemStatus.DISPUTED,
        ProblemStatus.SETTLED,
        ProblemStatus.REFUNDED,
    }
)


@dataclass(frozen=True)
class PictureNode:
    box: Box
    name: str  # the whole name, for the tooltip
    line: str  # the name as it fits the box
    state: str  # what happened at this link, e.g. "claimed · forwarded · paid $120.00"
    state_line: str
    paid: bool  # on the chain the settlement paid
    mine: bool  # the viewer's own place
    anonymous: bool


@dataclass(frozen=True)
class PictureEdge:
    edge: Edge
    paid: bool


@dataclass(frozen=True)
class TreePicture:
    layout: Layout
    nodes: tuple[PictureNode, ...]
    edges: tuple[PictureEdge, ...]
    description: str
    text_x: int = TEXT_PADDING


def _walk(nodes: Sequence[TreeNode]) -> Iterator[TreeNode]:
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _branch(node: TreeNode) -> Branch:
    return Branch(node.referral.id, tuple(_branch(child) for child in node.children))


def _introduction_states(introductions: Sequence[Introduction]) -> dict[int, list[str]]:
    """What became of the introductions made from each link (the company's view loads them)."""
    states: dict[int, list[str]] = {}
    for introduction in introductions:
        if introduction.referral_id is None or introduction.status == IntroductionStatus.DUPLICATE:
            continue
        word = {
            IntroductionStatus.AWAITING_CANDIDATE: "introduced, waiting for the expert",
            IntroductionStatus.PROPOSED: "introduced",
        }.get(introduction.status, f"introduction {introduction.status.value.replace('_', ' ')}")
        states.setdefault(introduction.referral_id, []).append(word)
    return states


def _state_of(referral: Referral, node: TreeNode, introduced: list[str], share: str | None) -> str:
    words = [f"paid {share}"] if share else []  # first, so that a narrow box still shows it
    words.append(referral.status.value if referral.status != ReferralStatus.SENT else "sent, not claimed yet")
    if node.children:
        words.append("forwarded")
    words.extend(introduced)
    return " · ".join(words)


def tree_picture(
    problem: Problem,
    tree: Sequence[TreeNode],
    *,
    place: Referral | None,
    introductions: Sequence[Introduction],
    shares: dict[int, int],
) -> TreePicture | None:
    """The picture of ``tree`` (None when the viewer sees no tree): the company at the root,
    each link with its state, the paid chain with each share (``shares`` by member id), and
    the viewer's place."""
    if not tree:
        return None
    drawn = layout(Branch(COMPANY, tuple(_branch(node) for node in tree)))
    boxes = {box.key: box for box in drawn.boxes}
    introduced = _introduction_states(introductions)
    company = boxes[COMPANY]
    nodes = [
        PictureNode(
            company,
            problem.company.name,
            fit(problem.company.name, company.width),
            "the company",
            "the company",
            bool(shares),
            False,
            False,
        )
    ]
    paid_keys: set[object] = {COMPANY} if shares else set()
    anonymous = 0
    for node in _walk(tree):
        referral, box = node.referral, boxes[node.referral.id]
        paid = referral.holder_id in shares and referral.status == ReferralStatus.CLAIMED
        amount = format_money(shares[referral.holder_id], problem.currency) if paid and referral.holder_id else None
        mine = place is not None and referral.id == place.id
        name = f"{node.label} (you)" if mine else node.label
        state = _state_of(referral, node, introduced.get(referral.id, []), amount)
        if paid:
            paid_keys.add(referral.id)
        anonymous += node.label == appearance.ANONYMOUS
        nodes.append(
            PictureNode(
                box,
                name,
                fit(name, box.width),
                state,
                fit(state, box.width),
                paid,
                mine,
                node.label == appearance.ANONYMOUS,
            )
        )
    edges = tuple(PictureEdge(e, e.parent in paid_keys and e.child in paid_keys) for e in drawn.edges)
    links = len(nodes) - 1
    description = f"{links} link{'s' if links != 1 else ''} below {problem.company.name}"
    if anonymous:
        description += f", {anonymous} of them anonymous"
    if len(paid_keys) > 1:
        description += f"; the paid chain has {len(paid_keys) - 1} link{'s' if len(paid_keys) > 2 else ''}"
    if place is not None:
        description += "; your place is marked “(you)”"
    return TreePicture(drawn, tuple(nodes), edges, description + ".")
