"""The parsed form of mapping files and code lists, each part knowing where it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.mapping.paths import FieldPath
from gateway.yamlpos import Pos

Direction = Literal["inbound", "outbound"]
DIRECTIONS: tuple[Direction, ...] = ("inbound", "outbound")
UNKNOWN_POLICIES = ("error", "fallback", "keep")
# Written in a code list's `fallback` to say "an unknown code is left out".
DROP = "drop"
CONDITION_OPS = ("equals", "not_equals", "in", "not_in", "present", "contains")


@dataclass(frozen=True)
class Transform:
    """A named transform with its checked arguments."""

    name: str
    args: dict[str, Any]
    pos: Pos


@dataclass(frozen=True)
class Condition:
    """`path` compared with `operand` by `op` (one of CONDITION_OPS)."""

    path: FieldPath
    op: str
    operand: Any
    pos: Pos


@dataclass
class Rule:
    """One target field and how to fill it; with `each`, a list built item by item."""

    pos: Pos
    to: FieldPath
    sources: tuple[FieldPath, ...] = ()
    several_sources: bool = False
    has_value: bool = False
    value: Any = None
    has_default: bool = False
    default: Any = None
    required: bool = False
    when: tuple[Condition, ...] = ()
    transforms: tuple[Transform, ...] = ()
    code: str | None = None
    unknown: str | None = None
    reversible: bool = False
    each: FieldPath | None = None
    where: tuple[Condition, ...] = ()
    rules: list[Rule] = field(default_factory=list)
    key_pos: dict[str, Pos] = field(default_factory=dict)

    def at(self, key: str) -> Pos:
        """Where `key` of this rule was written (the rule itself when absent)."""
        return self.key_pos.get(key, self.pos)

    @property
    def label(self) -> str:
        return self.to.text

    def describe(self) -> str:
        """A one-line account of where the value comes from, without any record value."""
        if self.each is not None:
            return f"each {self.each}"
        if self.has_value:
            return "value"
        steps = ["from " + ", ".join(str(s) for s in self.sources)]
        steps += [t.name for t in self.transforms]
        if self.code:
            steps.append(f"code list {self.code}")
        return " | ".join(steps)


@dataclass
class Example:
    """A native or canonical input with the output the rules must give (or the field that fails)."""

    name: str
    pos: Pos
    input: Any
    output: Any = None
    error: str | None = None


@dataclass
class Block:
    """The rules and examples of one direction."""

    direction: Direction
    pos: Pos
    rules: list[Rule]
    examples: list[Example]


@dataclass(frozen=True)
class CodeEntry:
    """One native code and the canonical code it stands for."""

    native: Any
    canonical: Any
    only: Direction | None
    pos: Pos

    @property
    def inbound(self) -> bool:
        return self.only != "outbound"

    @property
    def outbound(self) -> bool:
        return self.only != "inbound"


@dataclass(frozen=True)
class Fallback:
    """What a code list declares an unknown code becomes, one way, and why (never silent)."""

    value: Any
    why: str
    pos: Pos

    def describe(self) -> str:
        """The fallback in words, for `mappings check`."""
        return "is left out" if self.value == DROP else f"becomes '{self.value}'"


@dataclass
class CodeList:
    """Native codes ↔ canonical codes; `unmapped` names canonical codes with no native one.

    `fallbacks` holds what the list *declares* an unknown code becomes, per direction; a rule
    uses it only when it says `unknown: fallback`, and `mappings check` lists every such use.
    """

    name: str
    file: str
    pos: Pos
    entries: list[CodeEntry]
    contract: str | None = None
    contract_pos: Pos | None = None
    unmapped: list[tuple[str, Pos]] = field(default_factory=list)
    fallbacks: dict[Direction, Fallback] = field(default_factory=dict)
    raw: bytes = b""

    def inbound_table(self) -> dict[Any, Any]:
        """Native → canonical; a number also matches the same digits sent as text, and back."""
        table: dict[Any, Any] = {}
        for entry in self.entries:
            if entry.inbound:
                table.setdefault(entry.native, entry.canonical)
                if isinstance(entry.native, int) and not isinstance(entry.native, bool):
                    table.setdefault(str(entry.native), entry.canonical)
                elif isinstance(entry.native, str) and entry.native.isdigit():
                    table.setdefault(int(entry.native), entry.canonical)
        return table

    def outbound_table(self) -> dict[Any, Any]:
        """Canonical → native."""
        table: dict[Any, Any] = {}
        for entry in self.entries:
            if entry.outbound:
                table.setdefault(entry.canonical, entry.native)
        return table


@dataclass
class MappingFile:
    """One mapping file: the canonical contract, its local code lists and one or two directions."""

    path: Path
    file: str
    system: str
    name: str
    raw: bytes
    contract: str | None = None
    contract_pos: Pos = field(default_factory=lambda: Pos(1, 1))
    description: str | None = None
    # Which of the system's channels (ways of exchanging records) the file serves; None is
    # the system's main channel. A partner's adapter says which channel it speaks.
    channel: str | None = None
    reverse: str | None = None
    reverse_pos: Pos | None = None
    codes: dict[str, CodeList] = field(default_factory=dict)
    blocks: dict[Direction, Block] = field(default_factory=dict)
