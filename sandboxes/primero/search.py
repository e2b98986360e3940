"""Primero's list filters, ordering and paging (`search_filter_service.rb`, `pagination.rb`).

Any case field can be a query parameter: `a,b` is a list (the field holds one of them,
or an array field shares one), `a..b` an inclusive range with either end open, `true` /
`false` a boolean, `field[0]=x` the array form. `query=` is free text over names and ids.
`page` (default 1) and `per` (default 20, at most 1000; larger values are cut to 1000)
page the result; `order_by` (default `created_at`) and `order` (default `desc`) sort it.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandboxes.primero.errors import error

RESERVED = frozenset({"page", "per", "order_by", "order", "fields", "query", "id_search",
                      "phonetic", "locale", "types"})
PER_DEFAULT = 20
PER_MAX = 1000
_ARRAY_PARAM = re.compile(r"^(?P<name>[A-Za-z0-9_]+)\[\d*\]$")
_QUERY_FIELDS = ("name", "name_first", "name_middle", "name_last", "name_nickname",
                 "case_id", "case_id_display", "unique_identifier", "unhcr_individual_no",
                 "unhcr_id_no")


@dataclass(frozen=True)
class Range:
    low: str | None
    high: str | None


Condition = Range | list[str] | bool | str


def conditions(params: list[tuple[str, str]]) -> dict[str, Condition]:
    """Filters from query parameters, reserved paging and search names left out."""
    found: dict[str, Condition] = {}
    for key, value in params:
        array = _ARRAY_PARAM.match(key)
        if array:
            current = found.get(array["name"])
            found[array["name"]] = [*(current if isinstance(current, list) else []), value]
        elif key not in RESERVED:
            found[key] = _destringify(value)
    return found


def _destringify(value: str) -> Condition:
    if ".." in value:
        low, _, high = value.partition("..")
        return Range(low or None, high or None)
    if "," in value:
        return [v for v in value.split(",") if v]
    if value in ("true", "false"):
        return value == "true"
    return value


def matches(record: dict[str, Any], filters: dict[str, Condition], query: str | None) -> bool:
    """Whether `record` meets every filter and, when given, the free-text query."""
    for field, condition in filters.items():
        if not _meets(record.get(field), condition):
            return False
    if query:
        needle = query.casefold()
        return any(needle in str(record.get(f) or "").casefold() for f in _QUERY_FIELDS)
    return True


def _meets(value: Any, condition: Condition) -> bool:
    if isinstance(condition, Range):
        if value is None or isinstance(value, list | dict):
            return False
        return ((condition.low is None or _compare(value, condition.low) >= 0)
                and (condition.high is None or _compare(value, condition.high) <= 0))
    if isinstance(condition, bool):
        return value is condition or str(value).lower() == str(condition).lower()
    options = condition if isinstance(condition, list) else [condition]
    held = value if isinstance(value, list) else [value]
    return any(_text(v) == o for v in held for o in options)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _compare(value: Any, bound: str) -> int:
    """-1, 0 or 1: numbers as numbers, timestamps as instants, else as text."""
    left: Any
    right: Any
    try:
        left, right = float(value), float(bound)
    except (TypeError, ValueError):
        left, right = _instant(str(value)), _instant(bound)
        if left is None or right is None:
            left, right = str(value), bound
    return int(left > right) - int(left < right)


def _instant(text: str) -> datetime | None:
    if len(text) <= 10:
        return None  # a bare date compares as text, which orders dates correctly
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def order(records: list[dict[str, Any]], order_by: str | None, direction: str | None
          ) -> list[dict[str, Any]]:
    """Sorted by `order_by` (default `created_at`), ties broken by id so paging is stable."""
    key = order_by or "created_at"
    ordered = sorted(records, key=lambda r: (_text(r.get(key)), r.get("id", "")))
    return ordered if (direction or "desc").lower() == "asc" else ordered[::-1]


def paging(page: str | None, per: str | None) -> tuple[int, int]:
    """(page, per) from the query, with Primero's defaults and its silent cap on `per`."""
    try:
        page_number = int(page) if page else 1
        page_size = int(per) if per else PER_DEFAULT
    except ValueError:
        raise error(422, "page and per must be whole numbers") from None
    if page_number < 1 or page_size < 1:
        raise error(422, "page and per must be positive")
    return page_number, min(page_size, PER_MAX)


def page_of(records: list[dict[str, Any]], page: int, per: int
            ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page and its `metadata: {total, per, page}`."""
    start = (page - 1) * per
    return records[start:start + per], {"total": len(records), "per": per, "page": page}
