"""Keyset pagination: a page is the rows after the last one the reader saw, in (sort key, id)
order, so rows inserted meanwhile shift nothing (an offset would repeat or skip rows).

Services take an optional ``Window`` and ``seek`` their statement with it; the API turns the key
of a page's last row into an opaque cursor (``marketplace.api.pagination``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")
Key = tuple[Any, int]
Column = ColumnElement[Any] | InstrumentedAttribute[Any]


@dataclass(frozen=True)
class Window:
    """At most ``limit`` rows, those after ``after`` (the key of the last row already read)."""

    limit: int
    after: Key | None = None


def seek(statement: Select, sort: Column, row_id: Column, window: Window, *, descending: bool) -> Select:
    """``statement`` ordered by (``sort``, ``row_id``), from just after ``window.after``, with one
    row more than the limit so the caller can tell whether another page follows. ``sort`` must
    never be NULL (coalesce a nullable column): NULLs compare as neither before nor after."""
    if window.after is not None:
        value, last_id = window.after
        if descending:
            statement = statement.where(or_(sort < value, and_(sort == value, row_id < last_id)))
        else:
            statement = statement.where(or_(sort > value, and_(sort == value, row_id > last_id)))
    order = (sort.desc(), row_id.desc()) if descending else (sort.asc(), row_id.asc())
    return statement.order_by(*order).limit(window.limit + 1)


def cut(rows: Sequence[T], window: Window, key: Callable[[T], Key]) -> tuple[list[T], Key | None]:
    """The page out of ``seek``'s rows, and the key to continue after when another page follows."""
    page = list(rows[: window.limit])
    return page, key(page[-1]) if len(rows) > window.limit and page else None
