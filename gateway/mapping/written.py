"""The tree of target fields a set of rules writes: finds fields written twice and required
canonical fields never written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.model import Condition, Rule
from gateway.mapping.paths import FieldPath
from gateway.mapping.schema import Field, SchemaView
from gateway.yamlpos import Pos, Problems


@dataclass
class Written:
    """One target field: the rules writing it whole, or the fields written inside it."""

    rules: list[Rule] = field(default_factory=list)
    children: dict[str, Written] = field(default_factory=dict)
    selector: str | None = None
    items: Written | None = None
    first: Pos | None = None

    def add(self, path: FieldPath, rule: Rule, problems: Problems) -> Written:
        """Record that `rule` writes `path`; report when something else writes it already."""
        node = self
        trail: list[str] = []
        for step in path.steps:
            for label in ([step.key, step.label[len(step.key):]] if step.in_list
                          else [step.key]):
                if node.rules:
                    _twice(problems, rule, f"{path} is inside {'.'.join(trail)}, written whole",
                           node.rules[0])
                    return node
                node.first = node.first or rule.pos
                node = node.children.setdefault(label, Written())
                trail.append(label)
            if step.match is not None:
                node.selector = step.match[0]
        node.first = node.first or rule.pos
        if node.children:
            _twice(problems, rule, f"{path} is also written field by field", _first_rule(node))
        for other in node.rules:
            if not exclusive(other, rule):
                _twice(problems, rule, f"{path} is written twice", other)
                break
        node.rules.append(rule)
        return node


def _twice(problems: Problems, rule: Rule, what: str, other: Rule | None) -> None:
    line = f" (also at line {other.pos.line})" if other is not None else ""
    problems.add(rule.at("to"), "written-twice",
                 f"target {what}{line}; give the rules 'when' conditions that exclude each other")


def _first_rule(node: Written) -> Rule | None:
    if node.rules:
        return node.rules[0]
    for child in node.children.values():
        found = _first_rule(child)
        if found is not None:
            return found
    return None


def exclusive(a: Rule, b: Rule) -> bool:
    """Whether two rules can never both apply: their `when`s test one field for different values."""
    return any(x.path.text == y.path.text and _disjoint(x, y) for x in a.when for y in b.when)


def _values(condition: Condition) -> tuple[bool, set[Any]] | None:
    """(positive, values) of an equality-style condition; None for others."""
    op, operand = condition.op, condition.operand
    if op in ("equals", "not_equals"):
        operand = [operand]
    elif op not in ("in", "not_in"):
        return None
    try:
        return op in ("equals", "in"), {(type(v).__name__, v) for v in operand}
    except TypeError:
        return None


def _disjoint(x: Condition, y: Condition) -> bool:
    if x.op == y.op == "present":
        return bool(x.operand != y.operand)
    if "present" in (x.op, y.op):
        presence = x if x.op == "present" else y
        other = y if presence is x else x
        return presence.operand is False and other.op in ("equals", "in")
    a, b = _values(x), _values(y)
    if a is None or b is None:
        return False
    (a_pos, a_set), (b_pos, b_set) = a, b
    if a_pos and b_pos:
        return not a_set & b_set
    if a_pos != b_pos:
        return (a_set if a_pos else b_set) <= (b_set if a_pos else a_set)
    return False


def check_required(tree: Written, field: Field | None, view: SchemaView, where: Pos,
                   label: str, problems: Problems) -> None:
    """Report each required canonical field under `tree` that no rule writes."""
    if field is None:
        return
    for name in field.required(tree.children):
        if name not in tree.children and name != tree.selector:
            problems.add(where, "required-missing",
                         f"required canonical field '{label}{name}' is never written")
    for name, child in tree.children.items():
        sub = view.child(field, name)
        if sub is None:
            continue
        if child.rules:
            each = next((r for r in child.rules if r.each is not None), None)
            if each is not None and child.items is not None:
                check_required(child.items, view.items(sub), view, each.pos,
                               f"{label}{name}[].", problems)
            continue
        items = view.items(sub) if "array" in (sub.types() or ()) else None
        if items is not None:
            for bracket, item in child.children.items():
                check_required(item, items, view, item.first or where,
                               f"{label}{name}{bracket}.", problems)
        else:
            check_required(child, sub, view, child.first or where, f"{label}{name}.", problems)
