"""Sortable lists: ``?sort=key`` (ascending) or ``?sort=-key`` (descending), among the keys a
list offers. Anything else falls back to the list's usual order, never to an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import Select

Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class Sort:
    """The order a list is shown in: one of its keys, one way or the other."""

    key: str
    descending: bool = False

    @property
    def value(self) -> str:
        return ("-" if self.descending else "") + self.key

    def link_value(self, key: str, descending_first: bool = False) -> str:
        """What a column's header link asks for: the other way round when the list is
        already sorted by it, else the column's natural first direction (newest, largest)."""
        if key == self.key:
            return key if self.descending else f"-{key}"
        return f"-{key}" if descending_first else key

    def aria(self, key: str) -> str:
        """The header's ``aria-sort``, so screen readers say how the table is sorted."""
        if key != self.key:
            return "none"
        return "descending" if self.descending else "ascending"


def parse(value: str | None, keys: Sequence[str], default: str) -> Sort:
    """The ``?sort=`` value as a Sort, if it names one of ``keys``; ``default`` otherwise."""
    for candidate in (value or "", default):
        descending = candidate.startswith("-")
        key = candidate.removeprefix("-")
        if key in keys:
            return Sort(key, descending)
    raise ValueError(f"default sort {default!r} is not among {list(keys)}")


def order(stmt: Select[*Ts], sort: Sort, columns: Mapping[str, Sequence[Any]]) -> Select[*Ts]:
    """``stmt`` ordered by the columns of the chosen key, all in its direction; each key lists
    its tie-breakers after it, so equal rows keep a stable order across pages."""
    return stmt.order_by(None).order_by(
        *(column.desc() if sort.descending else column.asc() for column in columns[sort.key]))
