"""Where each link of a referral tree goes in its picture (docs/referrals.md, "The tree as a
picture"): a pure function of the tree's shape, so that it can be tested on any shape.

The picture is an outline drawn top to bottom, one row per link, each row indented under its
parent, so that it reads on a phone: the tree grows downwards, never sideways. Its width is
fixed; a deep tree indents each level less, so that a box is never narrower than
``MIN_BOX_WIDTH``.

Every position and size is a whole number of the picture's units, a three-hundred-and-fortieth
of its width: finer than a phone's pixel, and written into the SVG as a short integer. A float
was written with all its digits ("22.857142857142858"), and writing each one cost as much as the
rest of its box's markup (docs/performance.md, "What limits them").
"""

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field

WIDTH = 340  # the picture's own units; it is drawn at the width of its column (viewBox)
BOX_HEIGHT = 38
ROW_GAP = 10
STEP = 22  # the indent of one level in a shallow tree
MIN_BOX_WIDTH = 180
CHAR_WIDTH = 6.6  # an average character of the picture's 12-unit sans-serif text
TEXT_PADDING = 8


@dataclass(frozen=True)
class Branch:
    """A node of the tree to lay out: a key that names it, and its children in order."""

    key: Hashable
    children: Sequence["Branch"] = field(default_factory=tuple)


@dataclass(frozen=True)
class Box:
    key: Hashable
    level: int
    x: int
    y: int
    width: int
    height: int = BOX_HEIGHT

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def middle(self) -> int:
        return self.y + self.height // 2


@dataclass(frozen=True)
class Edge:
    """An elbow from the parent box's bottom edge down to the child box's left edge."""

    parent: Hashable
    child: Hashable
    points: tuple[tuple[int, int], ...]

    @property
    def path(self) -> str:
        return "M" + " L".join(f"{x} {y}" for x, y in self.points)


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


def _walk(branch: Branch, level: int = 0) -> Iterator[tuple[Branch, int]]:
    """Depth first, parents before children, without recursion (a chain may be long)."""
    stack = [(branch, level)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in reversed(node.children))


def layout(root: Branch) -> Layout:
    """Boxes one row each in depth-first order, indented by level; edges from each parent."""
    order = list(_walk(root))
    deepest = max(level for _, level in order)
    # In whole units, so that no box is narrower than ``MIN_BOX_WIDTH``: past 160 levels (a
    # problem's chains have at most 12 links) the levels are no longer indented.
    step = STEP if deepest == 0 else min(STEP, (WIDTH - MIN_BOX_WIDTH) // deepest)
    boxes: dict[Hashable, Box] = {}
    for row, (branch, level) in enumerate(order):
        x = level * step
        boxes[branch.key] = Box(branch.key, level, x, row * (BOX_HEIGHT + ROW_GAP), WIDTH - x)
    edges = []
    for branch, _ in order:
        parent = boxes[branch.key]
        elbow_x = parent.x + max(1, step // 2)
        for child in branch.children:
            below = boxes[child.key]
            edges.append(
                Edge(
                    branch.key, child.key, ((elbow_x, parent.bottom), (elbow_x, below.middle), (below.x, below.middle))
                )
            )
    height = len(order) * (BOX_HEIGHT + ROW_GAP) - ROW_GAP
    return Layout(WIDTH, height, tuple(boxes.values()), tuple(edges))


def fit(text: str, width: float) -> str:
    """The text cut to what a line of ``width`` holds, with an ellipsis where it was cut (the
    picture gives the whole text as the box's tooltip)."""
    room = max(1, int((width - 2 * TEXT_PADDING) / CHAR_WIDTH))
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"
