"""Which rule produced each field of an output: the `casebridge mappings preview` listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.json_pointer import escape, tokens
from gateway.mapping.model import Rule
from gateway.mapping.paths import compile_getter
from gateway.mapping.produce import present


@dataclass(frozen=True)
class Origin:
    """A field of the output (JSON Pointer) and the rules that may have written it."""

    pointer: str
    rules: tuple[Rule, ...]
    selector: bool = False

    def describe(self) -> str:
        if not self.rules:
            return "(no rule)"
        lines = " or ".join(str(r.pos.line) for r in self.rules)
        what = "list item key" if self.selector else self.rules[0].describe()
        return f"{'line ' + lines:<10} {what}"


def leaves(value: Any, pointer: str = "") -> list[tuple[str, Any]]:
    """Every scalar or list of scalars in `value`, with its JSON Pointer."""
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items()
                for leaf in leaves(item, f"{pointer}/{escape(str(key))}")]
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return [leaf for index, item in enumerate(value)
                for leaf in leaves(item, f"{pointer}/{index}")]
    return [(pointer, value)]


def origins(rules: list[Rule], record: Any, output: Any) -> list[Origin]:
    """The origin of each leaf of `output`, produced from `record` by `rules`."""
    found = []
    for pointer, _ in leaves(output):
        parts = tokens(pointer)
        matches, selector = _match(rules, parts, output)
        if len(matches) > 1:
            holding = tuple(r for r in matches if _holds(r, record))
            matches = holding or matches
        found.append(Origin(pointer, tuple(matches), selector))
    return found


def _holds(rule: Rule, record: Any) -> bool:
    for condition in rule.when:
        value = compile_getter(condition.path)(record, record)
        if condition.op == "equals" and value != condition.operand:
            return False
        if condition.op == "not_equals" and value == condition.operand:
            return False
        if condition.op == "present" and present(value) is not condition.operand:
            return False
    return True


def _match(rules: list[Rule], parts: list[str], node: Any) -> tuple[tuple[Rule, ...], bool]:
    """The rules whose target the pointer `parts` (inside output `node`) falls under."""
    matched: list[Rule] = []
    selector = False
    for rule in rules:
        consumed, is_selector = _consume(rule, parts, node)
        if consumed is None:
            continue
        if rule.each is not None and len(parts) > consumed + 1:
            items = _at(node, parts[:consumed])
            index = int(parts[consumed])
            inner, inner_selector = _match(rule.rules, parts[consumed + 1:], items[index])
            matched.extend(inner or (rule,))
            selector = selector or inner_selector
        else:
            matched.append(rule)
            selector = selector or is_selector
    return tuple(matched), selector


def _consume(rule: Rule, parts: list[str], node: Any) -> tuple[int | None, bool]:
    """How many pointer parts the rule's target covers, or None if it is not that field."""
    position = 0
    for number, step in enumerate(rule.to.steps):
        if position >= len(parts) or parts[position] != step.key:
            return None, False
        position += 1
        if not step.in_list:
            continue
        if position >= len(parts) or not parts[position].isdigit():
            return None, False
        index = int(parts[position])
        if step.index is not None and index != step.index:
            return None, False
        if step.match is not None:
            item = _at(node, parts[:position])[index]
            if not isinstance(item, dict) or item.get(step.match[0]) != step.match[1]:
                return None, False
            rest = parts[position + 1:]
            if rest == [step.match[0]] and number < len(rule.to.steps) - 1:
                return len(parts), True
        position += 1
    return position, False


def _at(node: Any, parts: list[str]) -> Any:
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node
