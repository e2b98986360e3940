"""Compile checked rules once into a function that translates a record in one pass.

Nothing is interpreted per record: each rule becomes a small closure (`produce.py`) that
does exactly what it says in every case, and the whole translation is generated as one
Python function per object tree (`assemble.py`) doing the usual case of every rule inline
(a plain field costs one dictionary read and one store, a code one lookup more) and
calling a rule's closure for anything else: errors, defaults, unknown codes, odd values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import MappingError
from gateway.mapping.assemble import Assembly
from gateway.mapping.check import Checked
from gateway.mapping.model import CodeList, Direction, MappingFile, Rule
from gateway.mapping.paths import Step, compile_getter
from gateway.mapping.produce import (
    CodeLookup,
    Producer,
    RuleFailed,
    conditions,
    producer,
)
from gateway.mapping.transforms import Apply, build


@dataclass
class _Target:
    """A target object under construction: its rules, its fields, its list items."""

    rules: list[Rule] = field(default_factory=list)
    children: dict[str, _Target] = field(default_factory=dict)
    items: dict[Step, _Target] = field(default_factory=dict)

    def add(self, steps: tuple[Step, ...], rule: Rule) -> None:
        node = self
        for step in steps:
            node = node.children.setdefault(step.key, _Target())
            if step.in_list:
                node = node.items.setdefault(step, _Target())
        node.rules.append(rule)


class Compiler:
    """Turns the rules of one direction into one function of the record."""

    def __init__(self, mapping: MappingFile, codes: dict[str, CodeList],
                 direction: Direction, *, inline: bool = True) -> None:
        self.mapping = mapping
        self.inline = inline
        # Built once per rule: the generated code and the rule's closure share them.
        self._pipelines: dict[int, tuple[list[Apply], CodeLookup | None]] = {}
        self._producers: dict[int, Producer] = {}
        self.codes = {**codes, **mapping.codes}
        self.direction = direction

    def object(self, rules: list[Rule]) -> Producer:
        """One function building the object the rules describe from one scope."""
        label = f"{self.mapping.system}/{self.mapping.name} {self.direction}"
        return Assembly(self, label, inline=self.inline).build(self.tree(rules))

    def tree(self, rules: list[Rule]) -> _Target:
        """The target objects the rules fill, field by field and list item by list item."""
        root = _Target()
        for rule in rules:
            root.add(rule.to.steps, rule)
        return root

    def producer(self, rule: Rule) -> Producer:
        """The whole rule as one closure of (scope, root): the generated code's slow path."""
        if id(rule) not in self._producers:
            self._producers[id(rule)] = self._each(rule) if rule.each is not None else \
                producer(rule, *self.pipeline(rule))
        return self._producers[id(rule)]

    def node(self, target: _Target) -> Producer:
        """The closure filling a target that is not a plain field or object."""
        if target.rules:
            return self._leaf(target.rules)
        if target.items:
            return self._list(target)
        return Assembly(self, "object", inline=self.inline).build(target)

    def _leaf(self, rules: list[Rule]) -> Producer:
        producers = [self.producer(r) for r in rules]
        if len(producers) == 1:
            return producers[0]

        def first(scope: Any, root: Any) -> Any:
            for produce in producers:
                value = produce(scope, root)
                if value is not None:
                    return value
            return None

        return first

    def pipeline(self, rule: Rule) -> tuple[list[Apply], CodeLookup | None]:
        """The rule's transforms, built, and its code list lookup."""
        if id(rule) not in self._pipelines:
            transforms = [build(t.name, t.args) for t in rule.transforms]
            lookup = None if rule.code is None else \
                CodeLookup(rule, self.codes[rule.code], self.direction)
            self._pipelines[id(rule)] = (transforms, lookup)
        transforms, lookup = self._pipelines[id(rule)]
        return list(transforms), lookup

    def _list(self, target: _Target) -> Producer:
        by_index = sorted((s for s in target.items if s.index is not None),
                          key=lambda s: s.index or 0)
        by_match = [s for s in target.items if s.match is not None]
        entries = [(step.match, self.node(target.items[step])) for step in by_index + by_match]

        def items(scope: Any, root: Any) -> Any:
            out = []
            for match, produce in entries:
                value = produce(scope, root)
                if value is not None:
                    if match is not None and isinstance(value, dict):
                        value = {match[0]: match[1], **value}
                    out.append(value)
            return out or None

        return items

    def _each(self, rule: Rule) -> Producer:
        assert rule.each is not None
        get = compile_getter(rule.each)
        when, where = conditions(rule.when), conditions(rule.where)
        fill = self.object(rule.rules)
        required = rule.required

        def each(scope: Any, root: Any) -> Any:
            if when is not None and not when(scope, root):
                return None
            source = get(scope, root)
            out: list[Any] = []
            if isinstance(source, list):
                for index, item in enumerate(source):
                    if not isinstance(item, dict):
                        raise RuleFailed(rule, "a list item is not an object")
                    if where is not None and not where(item, root):
                        continue
                    try:
                        value = fill(item, root)
                    except RuleFailed as failure:
                        failure.frames.append((rule, index, len(out)))
                        raise
                    if value is not None:
                        out.append(value)
            elif source is not None:
                raise RuleFailed(rule, "the source is not a list")
            if not out and required:
                raise RuleFailed(rule, "a required list is empty")
            return out or None

        return each


@dataclass
class CompiledMapping:
    """A checked mapping ready to run; `content_hash` identifies exactly what produced a record."""

    system: str
    name: str
    file: str
    contract: str
    content_hash: str
    mapping: MappingFile
    runners: dict[Direction, Producer]
    code_lists: dict[str, CodeList] = field(default_factory=dict)

    @property
    def directions(self) -> tuple[Direction, ...]:
        return tuple(self.runners)

    @property
    def channel(self) -> str | None:
        """The system's channel the file serves (None: its main channel)."""
        return self.mapping.channel

    def inbound(self, record: dict[str, Any]) -> dict[str, Any]:
        """Native record → canonical document."""
        runner = self.runners.get("inbound")
        if runner is None or type(record) is not dict:
            return self.run("inbound", record)
        try:
            result = runner(record, record)
        except RuleFailed as failure:
            raise self._error(failure, "inbound") from None
        return result if result is not None else {}

    def outbound(self, document: dict[str, Any]) -> dict[str, Any]:
        """Canonical document → native record."""
        return self.run("outbound", document)

    def run(self, direction: Direction, record: dict[str, Any]) -> dict[str, Any]:
        """Translate one record, raising MappingError (file, line, rule, field; no value)."""
        runner = self.runners.get(direction)
        if runner is None:
            raise MappingError(f"{self.file} has no {direction} rules", file=self.file,
                               rule=direction)
        if not isinstance(record, dict):
            raise MappingError(f"{self.file}: the {direction} record is not a JSON object",
                               file=self.file, rule=direction)
        try:
            result = runner(record, record)
        except RuleFailed as failure:
            raise self._error(failure, direction) from None
        return result if result is not None else {}

    def _error(self, failure: RuleFailed, direction: Direction) -> MappingError:
        rule = failure.rule
        pointer, source, label = "", "", ""
        for each, source_index, out_index in reversed(failure.frames):
            assert each.each is not None
            pointer += each.to.pointer() + f"/{out_index}"
            source = _join(source, each.each.text) + f"[{source_index}]"
            label += f"{each.to.text}[]."
        pointer += rule.to.pointer()
        label += rule.label
        sources = ", ".join(_join(source, s.text) for s in rule.sources) or (
            _join(source, rule.each.text) if rule.each is not None else "")
        line = rule.pos.line
        detail = (f"{self.file}:{line}: rule '{label}' ({direction}) failed at {pointer}"
                  f"{f' (from {sources})' if sources else ''}: {failure.reason}")
        return MappingError(detail, file=self.file, line=line, rule=label, path=pointer,
                            source=sources, reason=failure.reason, direction=direction,
                            mapping=f"{self.system}/{self.name}", content_hash=self.content_hash)


def _join(prefix: str, text: str) -> str:
    if text.startswith("$."):
        return text[2:]
    return f"{prefix}.{text}" if prefix else text


def compile_mapping(checked: Checked, *, inline: bool = True) -> CompiledMapping:
    """Compile a mapping that passed its check (a failed check is refused here too).

    `inline=False` leaves every rule to its closure, without the generated fast paths: the
    reference they are tested against.
    """
    mapping = checked.mapping
    if mapping is None or checked.problems:
        raise MappingError(f"{checked.file} has {len(checked.problems)} problems and cannot run",
                           file=checked.file, rule="check")
    runners = {direction: Compiler(mapping, checked.code_lists, direction, inline=inline)
               .object(block.rules)
               for direction, block in mapping.blocks.items()}
    return CompiledMapping(system=mapping.system, name=mapping.name, file=checked.file,
                           contract=mapping.contract or "", content_hash=checked.content_hash,
                           mapping=mapping, runners=runners,
                           code_lists={**checked.code_lists, **mapping.codes})
