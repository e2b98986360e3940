"""Read the YAML files IM officers edit keeping the line and column of every key and value.

Mappings, code lists and agreements (and next deadline policies and the directory) are read
here. Problems found anywhere later (parsing, checking) are reported as
`file:line:column: rule: message`, so each one can point back into the file an IM officer
edits. Timestamps are read as the text written, never as dates.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that keeps `2025-03-01` as text, as JSON records have it."""


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda self, node: str(self.construct_scalar(node)),
)


@dataclass(frozen=True, order=True)
class Pos:
    """A place in a file, both numbers counting from 1."""

    line: int
    column: int


START = Pos(1, 1)


def display_path(path: Path) -> str:
    """The path as the person running the check knows it (relative to the working folder)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True, order=True)
class Problem:
    """One broken rule at one place of one file."""

    file: str
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.rule}: {self.message}"


@dataclass
class Problems:
    """The problems of one file, collected so that all are reported at once."""

    file: str
    items: list[Problem] = field(default_factory=list)

    def add(self, pos: Pos, rule: str, message: str) -> None:
        self.items.append(Problem(self.file, pos.line, pos.column, rule, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(sorted(set(self.items)))

    def __len__(self) -> int:
        return len(set(self.items))


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    return yaml


def read_yaml(path: Path, problems: Problems) -> tuple[bytes, Any]:
    """The file's bytes and its YAML tree, or None as tree when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        problems.add(START, "unreadable", f"cannot read the file ({error.strerror})")
        return b"", None
    try:
        return raw, _yaml().load(raw)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Pos(mark.line + 1, mark.column + 1) if mark is not None else START
        what = (error.problem or error.context or "cannot be read").split(" with value ")[0]
        problems.add(where, "yaml-syntax", what)
        return raw, None


def read_top_mapping(path: Path, problems: Problems, what: str, holds: str
                     ) -> tuple[bytes, Node | None]:
    """The file's bytes and its top-level mapping as a Node (`what` it is, e.g. "a calendar"),
    or None when it cannot be read or is not a mapping (`holds` says what it should hold)."""
    raw, tree = read_yaml(path, problems)
    if problems:
        return raw, None
    if not isinstance(tree, CommentedMap):
        problems.add(START, "bad-value", f"{what} file holds one mapping ({holds})")
        return raw, None
    return raw, Node(tree, problems, what)


def plain(value: Any) -> Any:
    """The same data as plain dicts, lists, str, int, float and bool."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a close choice exists, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Node:
    """A mapping (YAML dict) with the positions of its keys and values."""

    def __init__(self, data: CommentedMap, problems: Problems, what: str) -> None:
        self.data = data
        self.problems = problems
        self.what = what
        self.pos = node_pos(data, START)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def key_pos(self, key: str) -> Pos:
        """Where `key` is written."""
        return key_pos(self.data, key)

    def value_pos(self, key: str) -> Pos:
        """Where the value of `key` is written."""
        return value_pos(self.data, key)

    def check_keys(self, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        """Report keys this kind of node does not know, and keys it must have."""
        known = list(allowed)
        for key in self.data:
            if str(key) not in known:
                self.problems.add(self.key_pos(key), "unknown-key",
                                  f"'{key}' is not a key of {self.what}{suggest(str(key), known)}")
        for key in required:
            if key not in self.data:
                self.problems.add(self.pos, "missing-key", f"{self.what} needs '{key}'")

    def child(self, key: str, what: str) -> Node | None:
        """The mapping under `key`, or None (reported) when it is something else."""
        value = self.data.get(key)
        if isinstance(value, CommentedMap):
            return Node(value, self.problems, what)
        self.problems.add(self.value_pos(key), "bad-value", f"'{key}' must be a mapping ({what})")
        return None

    def items(self, key: str) -> list[tuple[Pos, Any]]:
        """The items of the list under `key` with their positions, reported if not a list."""
        value = self.data.get(key)
        if isinstance(value, CommentedSeq):
            return [(item_pos(value, i), item) for i, item in enumerate(value)]
        self.problems.add(self.value_pos(key), "bad-value", f"'{key}' must be a list")
        return []

    def text(self, key: str, *, required: bool = False) -> str | None:
        """The text under `key`; reported when it is something else (or missing and required)."""
        if key not in self.data:
            if required:
                self.problems.add(self.pos, "missing-key", f"{self.what} needs '{key}'")
            return None
        value = self.data[key]
        if isinstance(value, str) and value.strip():
            return str(value)
        self.problems.add(self.value_pos(key), "bad-value", f"'{key}' must be a non-empty text")
        return None


def key_pos(data: CommentedMap, key: str) -> Pos:
    """Where `key` of a YAML mapping is written."""
    line, column = data.lc.key(key)
    return Pos(line + 1, column + 1)


def value_pos(data: CommentedMap, key: str) -> Pos:
    """Where the value of `key` of a YAML mapping is written."""
    line, column = data.lc.value(key)
    return Pos(line + 1, column + 1)


def item_pos(seq: CommentedSeq, index: int) -> Pos:
    """Where item `index` of a YAML list is written."""
    line, column = seq.lc.item(index)
    return Pos(line + 1, column + 1)


def node_pos(value: Any, fallback: Pos) -> Pos:
    """Where a YAML mapping or list starts; `fallback` for scalars (which carry none)."""
    if isinstance(value, CommentedMap | CommentedSeq):
        return Pos(value.lc.line + 1, value.lc.col + 1)
    return fallback


def follow(tree: Any, parts: Iterable[str]) -> Any:
    """The YAML node at these (unescaped) JSON Pointer parts, or None when there is none."""
    node = tree
    for part in parts:
        if isinstance(node, CommentedMap) and part in node:
            node = node[part]
        elif isinstance(node, CommentedSeq) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def pointer_pos(tree: Any, parts: list[str], *, at_key: bool = False) -> Pos:
    """Where the field at these (unescaped) JSON Pointer parts is written.

    A value is shown where it is written, a list or mapping at its key (`at_key`: every
    field at its key, as for an unknown key), and a missing field at the nearest mapping or
    list on the way to it.
    """
    node, pos = tree, node_pos(tree, START)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(node, CommentedMap) and part in node:
            child = node[part]
            scalar = not isinstance(child, CommentedMap | CommentedSeq)
            pos = key_pos(node, part) if at_key or not scalar or not last else value_pos(node,
                                                                                        part)
            node = child
        elif isinstance(node, CommentedSeq) and part.isdigit() and int(part) < len(node):
            pos = item_pos(node, int(part))
            node = node[int(part)]
        else:
            break
    return pos
