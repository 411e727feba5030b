"""The referral tree as a picture on the problem page (docs/referrals.md, "The tree as a
picture"): the tree the viewer may see (``ChainView.tree``, names already as
``referrals.appearance`` allows), laid out by ``referrals.tree_layout`` and drawn as SVG by
``templates/referrals/_tree_svg.html``, beside the same tree as a list. No script: the server
draws it.

Everything the section shows is first written down in plain values (``Sketch``), and the
section is drawn from those alone, so each process draws it once for each sketch: a tree is
drawn again only when a link, a name, a state, a share or the place it is seen from changes
(docs/performance.md, "The tree and the reach panel drawn once for each state").
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from flask import render_template
from markupsafe import Markup

from marketplace.money import format_money
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import appearance
from marketplace.referrals.models import Introduction, IntroductionStatus, ReferralStatus
from marketplace.referrals.read_models import TreeNode
from marketplace.referrals.tree_layout import TEXT_PADDING, Box, Branch, Edge, Layout, fit, layout
from marketplace.web.util import rendered_once

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


class Link(NamedTuple):
    """One link of the tree as the section shows it."""

    id: int
    label: str  # the name the viewer may see (``referrals.appearance``)
    status: ReferralStatus
    holder_id: int | None
    children: tuple["Link", ...]


class Sketch(NamedTuple):
    """Everything the tree's section shows, in plain values: the section is drawn from these
    alone, so two equal sketches are the same markup. Tuples, so that a sketch is cheap to make
    and to compare."""

    title: str
    company: str
    currency: str
    links: tuple[Link, ...]
    place_id: int | None
    introduced: tuple[tuple[int, tuple[str, ...]], ...]  # by referral: what became of its introductions
    shares: tuple[tuple[int, int], ...]  # by member: their share of the paid chain


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
    title: str  # the problem's
    layout: Layout
    nodes: tuple[PictureNode, ...]
    edges: tuple[PictureEdge, ...]
    description: str
    text_x: int = TEXT_PADDING


def sketch(
    problem: Problem,
    tree: Sequence[TreeNode],
    *,
    place_id: int | None,
    introductions: Sequence[Introduction],
    shares: dict[int, int],
) -> Sketch:
    """What the section of ``tree`` shows: the company at the root, each link with its state,
    the paid chain with each share (``shares`` by member id), and the viewer's place."""
    return Sketch(
        problem.title,
        problem.company.name,
        problem.currency,
        tuple(_link(node) for node in tree),
        place_id,
        tuple((referral_id, tuple(words)) for referral_id, words in _introduction_states(introductions).items()),
        tuple(shares.items()),
    )


def _link(node: TreeNode) -> Link:
    referral = node.referral
    return Link(
        referral.id, node.label, referral.status, referral.holder_id, tuple(_link(child) for child in node.children)
    )


@rendered_once(maxsize=1024)
def tree_section(drawn: Sketch) -> Markup:
    """The tree's picture and the same tree as a list (``templates/problems/_tree_section.html``)."""
    return Markup(render_template("problems/_tree_section.html", picture=tree_picture(drawn), links=drawn.links))


def _walk(links: Sequence[Link]) -> Iterator[Link]:
    stack = list(reversed(links))
    while stack:
        link = stack.pop()
        yield link
        stack.extend(reversed(link.children))


def _branch(link: Link) -> Branch:
    return Branch(link.id, tuple(_branch(child) for child in link.children))


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


def _state_of(link: Link, introduced: Sequence[str], share: str | None) -> str:
    words = [f"paid {share}"] if share else []  # first, so that a narrow box still shows it
    words.append(link.status.value if link.status != ReferralStatus.SENT else "sent, not claimed yet")
    if link.children:
        words.append("forwarded")
    words.extend(introduced)
    return " · ".join(words)


def tree_picture(drawn: Sketch) -> TreePicture:
    """The picture of a sketched tree that has at least one link."""
    tree = drawn.links
    shares = dict(drawn.shares)
    laid_out = layout(Branch(COMPANY, tuple(_branch(link) for link in tree)))
    boxes = {box.key: box for box in laid_out.boxes}
    introduced = dict(drawn.introduced)
    company = boxes[COMPANY]
    nodes = [
        PictureNode(
            company,
            drawn.company,
            fit(drawn.company, company.width),
            "the company",
            "the company",
            bool(shares),
            False,
            False,
        )
    ]
    paid_keys: set[object] = {COMPANY} if shares else set()
    anonymous = 0
    for link in _walk(tree):
        box = boxes[link.id]
        paid = link.holder_id in shares and link.status == ReferralStatus.CLAIMED
        amount = format_money(shares[link.holder_id], drawn.currency) if paid and link.holder_id else None
        mine = link.id == drawn.place_id
        name = f"{link.label} (you)" if mine else link.label
        state = _state_of(link, introduced.get(link.id, ()), amount)
        if paid:
            paid_keys.add(link.id)
        anonymous += link.label == appearance.ANONYMOUS
        nodes.append(
            PictureNode(
                box,
                name,
                fit(name, box.width),
                state,
                fit(state, box.width),
                paid,
                mine,
                link.label == appearance.ANONYMOUS,
            )
        )
    edges = tuple(PictureEdge(e, e.parent in paid_keys and e.child in paid_keys) for e in laid_out.edges)
    links = len(nodes) - 1
    description = f"{links} link{'s' if links != 1 else ''} below {drawn.company}"
    if anonymous:
        description += f", {anonymous} of them anonymous"
    if len(paid_keys) > 1:
        description += f"; the paid chain has {len(paid_keys) - 1} link{'s' if len(paid_keys) > 2 else ''}"
    if drawn.place_id is not None:
        description += "; your place is marked “(you)”"
    return TreePicture(drawn.title, laid_out, tuple(nodes), edges, description + ".")
