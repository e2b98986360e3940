"""Need to know: the receiver's copy of a referral keeps only the data categories allowed.

Every personal field of the referral contract names its data category (`x-category`).
`categories_of` reads them once per `Contracts` into a tree shaped like the document, and
`need_to_know` copies a referral along that tree, leaving out each field whose category is
not allowed. A categorised object or list goes whole; an uncategorised one (`subject`,
`case`, each service) keeps its uncategorised fields and loses only its categorised ones.
Fields the contract does not know have no category anyone allowed, so they go too: the
filter fails closed (a referral that passed its contract has none).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts import Contracts
from gateway.json_pointer import pointer, tokens
from gateway.mapping.schema import Field, SchemaView

CONTRACT = "referral"
UNKNOWN = "unknown"
# The contracts nest a few levels only; this bounds a walk should a $ref ever loop.
MAX_DEPTH = 32


@dataclass(frozen=True)
class Shape:
    """The categories of one field of the contract and of the fields inside it."""

    category: str | None = None
    properties: dict[str, Shape] = field(default_factory=dict, hash=False)
    items: Shape | None = None


@dataclass(frozen=True)
class CategoryIndex:
    """Which fields of a referral carry which data category.

    `paths` lists every categorised field by path, `*` standing for any list index
    (`/services/*/notes` → `case-notes`); `shape` is the same as a tree the filter walks.
    """

    shape: Shape
    paths: dict[str, str] = field(hash=False)

    def categories(self) -> frozenset[str]:
        """Every category some field of the contract carries."""
        return frozenset(self.paths.values())


@dataclass(frozen=True)
class Withheld:
    """A field left out of the receiver's copy, named by its JSON Pointer in the input.

    `category` is the field's data category; for an object or list that only became
    empty because its fields were left out, the categories of those fields, joined by ", ".
    """

    pointer: str
    category: str


@dataclass(frozen=True)
class Filtered:
    """The receiver's copy and what was left out of it, in document order."""

    document: dict[str, Any]
    withheld: list[Withheld]


_INDEXES: weakref.WeakKeyDictionary[Contracts, dict[str, CategoryIndex]] = (
    weakref.WeakKeyDictionary())


def categories_of(contracts: Contracts, contract: str = CONTRACT) -> CategoryIndex:
    """The category index of a contract (the referral's by default), built once."""
    indexes = _INDEXES.setdefault(contracts, {})
    index = indexes.get(contract)
    if index is None:
        view = SchemaView(contracts)
        root = view.root(contract)
        if root is None:
            raise KeyError(f"no '{contract}' contract in {contracts.folder}")
        shape = _shape(view, root, 0)
        index = CategoryIndex(shape, dict(_paths(shape, "")))
        indexes[contract] = index
    return index


def _shape(view: SchemaView, schema: Field, depth: int) -> Shape:
    category = schema.schema.get("x-category")
    if depth >= MAX_DEPTH:
        return Shape(category if isinstance(category, str) else None)
    properties = {}
    for name in schema.properties():
        child = view.child(schema, name)
        if child is not None:
            properties[name] = _shape(view, child, depth + 1)
    items = view.items(schema)
    return Shape(category if isinstance(category, str) else None, properties,
                 _shape(view, items, depth + 1) if items is not None else None)


def _paths(shape: Shape, path: str) -> Iterator[tuple[str, str]]:
    if shape.category is not None and path:
        yield path, shape.category
    for name, child in shape.properties.items():
        yield from _paths(child, f"{path}/{name}")
    if shape.items is not None:
        yield from _paths(shape.items, f"{path}/*")


def need_to_know(document: dict[str, Any], *, allowed: frozenset[str],
                 contracts: Contracts, contract: str = CONTRACT) -> Filtered:
    """A copy of a canonical referral (or of a document of another `contract`, such as a
    status event) without the fields whose category is not `allowed`."""
    withheld: list[Withheld] = []
    copy = _object(document, categories_of(contracts, contract).shape, "", allowed, withheld)
    return Filtered(copy if copy is not None else {}, withheld)


def categories_in(document: dict[str, Any], *, contracts: Contracts,
                  contract: str = CONTRACT) -> frozenset[str]:
    """The data categories of the fields a document holds: what a receiver's copy carries."""
    found: set[str] = set()
    _collect(document, categories_of(contracts, contract).shape, found, 0)
    return frozenset(found)


def _collect(value: Any, shape: Shape, found: set[str], depth: int) -> None:
    if shape.category is not None:
        found.add(shape.category)
        return
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            sub = shape.properties.get(key)
            if sub is not None:
                _collect(child, sub, found, depth + 1)
    elif isinstance(value, list) and shape.items is not None:
        for child in value:
            _collect(child, shape.items, found, depth + 1)


def category_at(contracts: Contracts, where: str, contract: str = CONTRACT) -> str | None:
    """The data category governing the field at JSON Pointer `where`: its own, or that of
    the nearest categorised field around it; None for the uncategorised structure."""
    shape: Shape | None = categories_of(contracts, contract).shape
    found = None
    for step in tokens(where):
        if shape is None:
            break
        if step in shape.properties:
            shape = shape.properties[step]
        elif step.isdigit() and shape.items is not None:
            shape = shape.items
        else:
            break  # a field the contract does not know: it sits in what holds it
        found = shape.category or found
    return found


def _value(value: Any, shape: Shape, where: str, allowed: frozenset[str],
           withheld: list[Withheld]) -> Any:
    """The filtered copy of one value, or None when removal left it empty."""
    if isinstance(value, dict):
        return _object(value, shape, where, allowed, withheld)
    if isinstance(value, list):
        return _list(value, shape, where, allowed, withheld)
    return value


def _object(value: dict[str, Any], shape: Shape, where: str, allowed: frozenset[str],
            withheld: list[Withheld]) -> dict[str, Any] | None:
    copy: dict[str, Any] = {}
    removed = len(withheld)
    for key, child in value.items():
        here = where + pointer([key])
        sub = shape.properties.get(key)
        if sub is None:
            withheld.append(Withheld(here, UNKNOWN))
        elif sub.category is not None and sub.category not in allowed:
            withheld.append(Withheld(here, sub.category))
        else:
            kept = _value(child, sub, here, allowed, withheld)
            if kept is not None:
                copy[key] = kept
    if copy or not value or len(withheld) == removed:
        return copy
    _emptied(where, withheld, removed)
    return None


def _list(value: list[Any], shape: Shape, where: str, allowed: frozenset[str],
          withheld: list[Withheld]) -> list[Any] | None:
    items = shape.items if shape.items is not None else Shape()
    copy = []
    removed = len(withheld)
    for index, child in enumerate(value):
        if items.category is not None and items.category not in allowed:
            withheld.append(Withheld(f"{where}/{index}", items.category))
            continue
        kept = _value(child, items, f"{where}/{index}", allowed, withheld)
        if kept is not None:
            copy.append(kept)
    if copy or not value or len(withheld) == removed:
        return copy
    _emptied(where, withheld, removed)
    return None


def _emptied(where: str, withheld: list[Withheld], since: int) -> None:
    """Record an object or list that is gone because every field in it was left out."""
    if not where:
        return  # the referral itself always stays, even if nothing in it may
    categories = sorted({c for w in withheld[since:] for c in w.category.split(", ")})
    withheld.append(Withheld(where, ", ".join(categories)))
