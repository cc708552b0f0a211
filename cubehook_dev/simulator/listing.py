"""ComplyCube's list endpoints as the simulator serves them: filters, newest first, pages. Pure.

ComplyCube lists resources newest created first, ``page`` from 1 and ``pageSize`` from 1 to 1000
(default 100), with the generic filters ``createdAfter|Before`` and ``updatedAfter|Before`` beside
each resource's own (https://docs.complycube.com/api-reference/pagination,
https://docs.complycube.com/api-reference/filtering). A filter it cannot read gives a page with no
items, not an error: the reason a backfill must not trust an empty answer (workers.backfill).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service.events import parse_time

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
R = TypeVar("R")
# Each time filter: which bound it sets, on which time, and whether it is a lower bound.
TIME_FILTERS = (
    ("createdAfter", "created", True),
    ("createdBefore", "created", False),
    ("updatedAfter", "updated", True),
    ("updatedBefore", "updated", False),
)


@dataclass(frozen=True)
class Listing(Generic[R]):
    """What one list endpoint filters on: its exact-match filters, its two times, its rendering."""

    exact: Mapping[str, Callable[[R], str | None]]
    created: Callable[[R], float]
    updated: Callable[[R], float]
    render: Callable[[R], dict[str, Any]]

    def page(self, newest_first: Iterable[R], query: Mapping[str, str]) -> dict[str, Any]:
        """The answer to a list request: the matching records, newest first, one page of them."""
        try:
            page, size = page_params(query)
            keep = self._matcher(query)
        except ValueError:
            return empty_page()
        matching = [record for record in newest_first if keep(record)]
        start = (page - 1) * size
        return {
            "page": page,
            "pageSize": size,
            "totalItems": len(matching),
            "pages": -(-len(matching) // size),
            "items": [self.render(record) for record in matching[start : start + size]],
        }

    def _matcher(self, query: Mapping[str, str]) -> Callable[[R], bool]:
        wanted = [(self.exact[name], value) for name, value in query.items() if name in self.exact]
        times = {"created": self.created, "updated": self.updated}
        bounds: list[tuple[Callable[[R], float], float, bool]] = []
        for name, which, after in TIME_FILTERS:
            if name in query:
                parsed = parse_time(query[name])
                if parsed is None:
                    raise ValueError(name)
                bounds.append((times[which], parsed.timestamp(), after))

        def keep(record: R) -> bool:
            if any(attribute(record) != value for attribute, value in wanted):
                return False
            for moment, limit, after in bounds:
                value = moment(record)
                if (value <= limit) if after else (value >= limit):
                    return False
            return True

        return keep


def page_params(query: Mapping[str, str]) -> tuple[int, int]:
    page, size = int(query.get("page", "1")), int(query.get("pageSize", str(DEFAULT_PAGE_SIZE)))
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError("page or pageSize out of range")
    return page, size


def empty_page() -> dict[str, Any]:
    return {"page": 1, "pageSize": DEFAULT_PAGE_SIZE, "totalItems": 0, "pages": 0, "items": []}
