"""A previous/next page window for long lists where counting every row is too slow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, func, select

from consult.extensions import db


@dataclass
class Window:
    items: list[Any]
    page: int
    per_page: int
    has_next: bool
    pages: None = None  # unknown: the template shows previous/next only

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def window_of(rows: Sequence[Any], page: int, per_page: int) -> Window:
    """The window of ``rows`` that start at the page's first row: one row beyond the page (if
    given) tells that a next page exists."""
    return Window(items=list(rows[:per_page]), page=page, per_page=per_page,
                  has_next=len(rows) > per_page)


def window(stmt: Select[Any], page: int, per_page: int) -> Window:
    """Fetch one page plus one row, to know whether a next page exists."""
    rows = list(db.session.scalars(stmt.limit(per_page + 1).offset((page - 1) * per_page)))
    return window_of(rows, page, per_page)


def window_of_list(rows: Sequence[Any], page: int, per_page: int) -> Window:
    """A page of a list already in memory (e.g. a frozen notice's appendix)."""
    start = (page - 1) * per_page
    return window_of(rows[start:start + per_page + 1], page, per_page)


class RowPagination(Pagination):
    """Flask-SQLAlchemy pagination for selects of several entities (rows, not scalars)."""

    def _query_items(self) -> list[Any]:
        stmt = self._query_args["select"]
        return list(db.session.execute(stmt.limit(self.per_page).offset(self._query_offset)))

    def _query_count(self) -> int:
        stmt = self._query_args["select"].order_by(None).subquery()
        return db.session.scalar(select(func.count()).select_from(stmt)) or 0


def paginate_rows(stmt: Select[Any], page: int, per_page: int) -> RowPagination:
    """Paginate a select whose rows hold several entities, e.g. (RollEntry, Ballot)."""
    return RowPagination(select=stmt, page=page, per_page=per_page, error_out=False)
