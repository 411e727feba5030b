"""Small charts drawn on the server as SVG (docs/dashboards.md): columns by month and rows of
bars, each with its numbers as a table for those who do not see the picture.

Hand-rolled rather than a charting library: the two shapes the dashboards need are a few dozen
lines of arithmetic, they share the site's Content-Security-Policy without inline styles or
scripts (presentation attributes only), and every number they show is the one in the table.
Geometry is in the picture's own units; ``templates/charts/_chart.html`` draws it at the width
of its column (``viewBox``), so that it fits a 360 px phone.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 340.0
CHAR_WIDTH = 6.0  # an average character of the 11-unit axis text
PLOT_TOP = 8.0
PLOT_HEIGHT = 130.0
AXIS_ROOM = 18.0  # below the plot: the categories' labels
LEGEND_ROOM = 18.0
ROW_TEXT = 14.0
ROW_BAR = 12.0
ROW_GAP = 8.0

BLUE, GREEN, ORANGE, GREY, RED = "#0d6efd", "#198754", "#fd7e14", "#6c757d", "#dc3545"


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    tooltip: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    key: str  # unique on its page: the ids of its title and description
    title: str
    description: str
    height: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    legend: tuple[tuple[str, str], ...]
    table: Table
    width: float = WIDTH


def columns(
    key: str, title: str, categories: Sequence[str], series: Sequence[Series], show: Callable[[int], str]
) -> Chart:
    """Grouped columns: one group per category (a month), one column per series, heights in
    proportion to the largest value; category labels thinned out so that they never overlap."""
    top = max([0, *(value for s in series for value in s.values)])
    slot = WIDTH / max(1, len(categories))
    column = slot * 0.8 / max(1, len(series))
    bars = []
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            value = max(0, s.values[i])
            height = PLOT_HEIGHT * value / top if top else 0.0
            x = i * slot + slot * 0.1 + j * column
            bars.append(
                Bar(x, PLOT_TOP + PLOT_HEIGHT - height, column, height, s.color, f"{category}, {s.name}: {show(value)}")
            )
    widest = max([1, *(len(c) for c in categories)]) * CHAR_WIDTH + 4
    every = max(1, -(-int(widest) // max(1, int(slot))))  # ceil(widest / slot)
    labels = [
        Label(i * slot + slot / 2, PLOT_TOP + PLOT_HEIGHT + 13, c, "middle")
        for i, c in enumerate(categories)
        if i % every == 0
    ]
    labels.append(Label(WIDTH, PLOT_TOP + 10, f"top: {show(top)}", "end"))
    table = Table(
        ("Month", *(s.name for s in series)),
        tuple((c, *(show(s.values[i]) for s in series)) for i, c in enumerate(categories)),
    )
    described = "; ".join(f"{s.name} {show(sum(s.values))} in all" for s in series)
    return Chart(
        key,
        title,
        f"{title}, {len(categories)} months: {described}." if categories else f"{title}: nothing yet.",
        PLOT_TOP + PLOT_HEIGHT + AXIS_ROOM + LEGEND_ROOM,
        tuple(bars),
        tuple(labels),
        tuple((s.name, s.color) for s in series),
        table,
    )


def rows(
    key: str, title: str, items: Sequence[tuple[str, int]], show: Callable[[int], str], color: str = BLUE
) -> Chart:
    """One bar per item under its label and value, lengths in proportion to the largest: reads
    top to bottom on a phone (a funnel, counts by state)."""
    top = max([0, *(value for _, value in items)])
    bars, labels = [], []
    row = ROW_TEXT + ROW_BAR + ROW_GAP
    for i, (label, value) in enumerate(items):
        y = i * row
        labels.append(Label(0, y + 11, f"{label}: {show(value)}"))
        length = (WIDTH - 1) * max(0, value) / top if top else 0.0
        bars.append(Bar(0, y + ROW_TEXT, max(length, 1.0), ROW_BAR, color, f"{label}: {show(value)}"))
    described = ", ".join(f"{label} {show(value)}" for label, value in items)
    return Chart(
        key,
        title,
        f"{title}: {described}." if items else f"{title}: nothing yet.",
        max(row, len(items) * row - ROW_GAP),
        tuple(bars),
        tuple(labels),
        (),
        Table(("", "Number"), tuple((label, show(value)) for label, value in items)),
    )


def count(value: int) -> str:
    return f"{value:,}"
