"""Field paths as IM officers write them, and the fast readers compiled from them.

    subject.given_name                          a field inside a field
    services[0].type                            an item of a list by position
    subject.identifiers[system=primero_case]    the item of a list whose `system` is that code
    interventions[0]["individuals.progres_id"]  a field whose name holds dots
    $.referral.id                               from the whole record (inside `each`)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.json_pointer import escape

Getter = Callable[[Any, Any], Any]
"""Reads a value: `getter(scope, root)`; None when any step is missing."""


class PathSyntaxError(ValueError):
    """The text is not a field path."""


@dataclass(frozen=True)
class Step:
    """One field of a path, optionally narrowed to one item of the list it holds."""

    key: str
    index: int | None = None
    match: tuple[str, str] | None = None

    @property
    def in_list(self) -> bool:
        return self.index is not None or self.match is not None

    @property
    def label(self) -> str:
        if self.index is not None:
            return f"{self.key}[{self.index}]"
        if self.match is not None:
            return f"{self.key}[{self.match[0]}={self.match[1]}]"
        return self.key


@dataclass(frozen=True)
class FieldPath:
    """A parsed path; `text` is what the file says."""

    text: str
    steps: tuple[Step, ...]
    from_root: bool = False

    def __str__(self) -> str:
        return self.text

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(step.label for step in self.steps)

    def pointer(self) -> str:
        """The JSON Pointer of the path where it names no list item ("-" marks one)."""
        parts: list[str] = []
        for step in self.steps:
            parts.append(escape(step.key))
            if step.index is not None:
                parts.append(str(step.index))
            elif step.match is not None:
                parts.append("-")
        return "".join("/" + p for p in parts)


_TOKEN = re.compile(
    r'(?P<dot>\.)'
    r'|\["(?P<quoted>[^"\]]+)"\]'
    r'|\[(?P<index>[0-9]+)\]'
    r'|\[(?P<mkey>[A-Za-z0-9_]+)=(?P<mval>[^\]\[]+)\]'
    r'|(?P<name>[^.\[\]\s"]+)'
)


def parse_path(text: str) -> FieldPath:
    """Parse a path, raising PathSyntaxError with a reason that names no value."""
    body, from_root = (text[2:], True) if text.startswith("$.") else (text, False)
    if not body:
        raise PathSyntaxError("a path needs at least one field name")
    steps: list[Step] = []
    expect_field = True
    position = 0
    while position < len(body):
        found = _TOKEN.match(body, position)
        if found is None:
            raise PathSyntaxError(f"unexpected character at position {position + 1}")
        position = found.end()
        kind = found.lastgroup
        if kind == "dot":
            if expect_field:
                raise PathSyntaxError("a dot must follow a field name")
            expect_field = True
        elif kind in ("name", "quoted"):
            if not expect_field and kind == "name":
                raise PathSyntaxError("field names are separated by dots")
            steps.append(Step(found.group(kind)))
            expect_field = False
        else:
            if expect_field or steps[-1].in_list:
                raise PathSyntaxError("a list item [..] must follow a field name, once")
            last = steps[-1]
            if kind == "index":
                steps[-1] = Step(last.key, index=int(found.group("index")))
            else:
                steps[-1] = Step(last.key, match=(found.group("mkey"), found.group("mval")))
    if expect_field:
        raise PathSyntaxError("a path cannot end with a dot")
    return FieldPath(text, tuple(steps), from_root)


def _step_reader(step: Step) -> Callable[[Any], Any]:
    key = step.key
    if step.index is not None:
        index = step.index

        def by_index(value: Any) -> Any:
            items = value.get(key) if isinstance(value, dict) else None
            return items[index] if isinstance(items, list) and len(items) > index else None

        return by_index
    if step.match is not None:
        match_key, match_value = step.match

        def by_match(value: Any) -> Any:
            items = value.get(key) if isinstance(value, dict) else None
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict) and item.get(match_key) == match_value:
                        return item
            return None

        return by_match
    return lambda value: value.get(key) if isinstance(value, dict) else None


def compile_getter(path: FieldPath) -> Getter:
    """A reader for `path`, specialised for the short plain paths most rules use."""
    getter = _scoped_getter(path.steps)
    if path.from_root:
        return lambda scope, root: getter(root, root)
    return getter


def _scoped_getter(steps: tuple[Step, ...]) -> Getter:
    if not any(step.in_list for step in steps):
        keys = [step.key for step in steps]
        if len(keys) == 1:
            (k1,) = keys
            return lambda scope, root: scope.get(k1)
        if len(keys) == 2:
            k1, k2 = keys

            def two(scope: Any, root: Any) -> Any:
                value = scope.get(k1)
                return value.get(k2) if isinstance(value, dict) else None

            return two
        if len(keys) == 3:
            k1, k2, k3 = keys

            def three(scope: Any, root: Any) -> Any:
                value = scope.get(k1)
                value = value.get(k2) if isinstance(value, dict) else None
                return value.get(k3) if isinstance(value, dict) else None

            return three
    readers = [_step_reader(step) for step in steps]

    def walk(scope: Any, root: Any) -> Any:
        value = scope
        for read in readers:
            value = read(value)
            if value is None:
                return None
        return value

    return walk
