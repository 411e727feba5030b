"""The referral tree's picture is laid out so that it can be read on a phone, whatever the
tree's shape (marketplace/referrals/tree_layout.py): no two boxes overlap, every edge joins its
parent to its child, the picture never grows wider than its fixed width, and every position
is a whole number of its units."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.referrals.tree_layout import MIN_BOX_WIDTH, WIDTH, Branch, fit, layout


def trees(max_leaves: int = 60) -> st.SearchStrategy[Branch]:
    """Random trees whose nodes get unique keys once drawn."""
    counter = itertools.count()
    shapes = st.recursive(
        st.just(()), lambda children: st.lists(children, max_size=4).map(tuple), max_leaves=max_leaves
    )

    def build(shape) -> Branch:
        return Branch(next(counter), tuple(build(child) for child in shape))

    return shapes.map(build)


def chains_of(length: int) -> Branch:
    node = Branch(length)
    for key in range(length - 1, -1, -1):
        node = Branch(key, (node,))
    return node


def overlap(a, b) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.bottom and b.y < a.bottom


@settings(max_examples=150, deadline=None)
@given(trees())
def test_no_two_boxes_overlap_and_every_box_fits_the_width(root):
    drawn = layout(root)
    assert drawn.width == WIDTH
    for box in drawn.boxes:
        assert all(type(n) is int for n in (box.x, box.y, box.width, box.height, drawn.height)), box
        assert box.x >= 0 and box.x + box.width <= WIDTH + 1e-9
        assert box.width >= MIN_BOX_WIDTH - 1e-9
        assert box.y >= 0 and box.bottom <= drawn.height + 1e-9
    for a, b in itertools.combinations(drawn.boxes, 2):
        assert not overlap(a, b), (a, b)


@settings(max_examples=150, deadline=None)
@given(trees())
def test_every_edge_joins_a_parent_to_its_child(root):
    drawn = layout(root)
    boxes = {box.key: box for box in drawn.boxes}
    expected = set()
    stack = [root]
    while stack:
        node = stack.pop()
        expected.update((node.key, child.key) for child in node.children)
        stack.extend(node.children)
    assert {(edge.parent, edge.child) for edge in drawn.edges} == expected
    for edge in drawn.edges:
        parent, child = boxes[edge.parent], boxes[edge.child]
        (start_x, start_y), *_, (end_x, end_y) = edge.points
        assert all(type(n) is int for point in edge.points for n in point), edge
        assert parent.x < start_x < parent.x + parent.width and start_y == parent.bottom
        assert end_x == child.x and child.y < end_y < child.bottom
        assert child.level == parent.level + 1 and child.y > parent.y


def test_a_chain_as_deep_as_any_problem_allows_stays_within_the_width():
    """A chain of 100 links indents each level a little, so that the last box is still readable."""
    drawn = layout(chains_of(100))
    assert len(drawn.boxes) == 101
    assert max(box.x + box.width for box in drawn.boxes) <= WIDTH
    assert min(box.width for box in drawn.boxes) >= MIN_BOX_WIDTH
    assert all(b.x < c.x for b, c in itertools.pairwise(drawn.boxes)), "each link indented below its parent"


@given(st.text(max_size=200), st.floats(min_value=MIN_BOX_WIDTH, max_value=WIDTH))
def test_text_is_cut_to_its_box_with_an_ellipsis(text, width):
    shown = fit(text, width)
    assert shown == text or (shown.endswith("…") and len(shown) <= len(text))
    assert len(fit("x" * 500, width)) < 60
