"""What rules mean against the contract: fields that exist, types that fit, code lists that cover.

Inbound rules write canonical fields (checked against the contract) from native fields
(not described anywhere); outbound rules read canonical fields and write native ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.codes import check_against_enum
from gateway.mapping.model import DROP, Block, CodeList, Condition, Direction, Rule
from gateway.mapping.paths import FieldPath
from gateway.mapping.schema import Field, SchemaView, compatible, json_type
from gateway.mapping.transforms import ARRAY, SPECS
from gateway.mapping.written import Written, check_required
from gateway.yamlpos import Pos, Problems, suggest

Types = frozenset[str] | None
ARRAY_ONLY = frozenset({ARRAY})
CodeListLookup = Callable[[str], CodeList | None]


@dataclass
class RuleChecker:
    """Checks the rules of one block of one mapping file against contract `root`."""

    view: SchemaView
    root: Field | None
    contract: str
    direction: Direction
    code_list: CodeListLookup
    problems: Problems
    used_codes: set[str] = field(default_factory=set)

    @property
    def inbound(self) -> bool:
        return self.direction == "inbound"

    def check_block(self, block: Block) -> None:
        tree = Written()
        self.rules(block.rules, self.root, tree)
        if self.inbound:
            check_required(tree, self.root, self.view, block.pos, "", self.problems)

    def rules(self, rules: list[Rule], scope: Field | None, tree: Written) -> None:
        """Check `rules`, whose canonical paths are relative to `scope` (None: unknown)."""
        for rule in rules:
            self.rule(rule, scope, tree)

    def rule(self, rule: Rule, scope: Field | None, tree: Written) -> None:
        if rule.to.from_root:
            self.problems.add(rule.at("to"), "bad-path", "a target cannot start with '$.'")
        node = tree.add(rule.to, rule, self.problems)
        target = self.resolve(rule.to, scope, rule.at("to")) if self.inbound else None
        for condition in rule.when:
            self.condition(condition, scope)
        if rule.each is not None:
            items_target = items_source = None
            if self.inbound:
                items_target = self.list_items(target, rule.to, rule.at("to"))
            else:
                source = self.resolve(rule.each, scope, rule.at("each"))
                items_source = self.list_items(source, rule.each, rule.at("each"))
            for condition in rule.where:
                self.condition(condition, items_source)
            node.items = Written()
            self.rules(rule.rules, items_target if self.inbound else items_source, node.items)
            return
        if rule.has_value:
            self.fits(target, rule.value, rule.at("value"), f"the value for {rule.to}")
            return
        source_types = self.source_types(rule, scope)
        types = self.transforms(rule, source_types)
        if rule.code is not None:
            types = self.code_lookup(rule, scope, target, types)
        if rule.has_default:
            self.fits(target, rule.default, rule.at("default"), f"the default of {rule.to}")
        wanted = target.types() if target is not None else None
        if types and wanted and not any(compatible(t, wanted) for t in types):
            self.problems.add(rule.at("to"), "type-mismatch",
                              f"{rule.to} takes {_names(wanted)} but the rule gives "
                              f"{_names(types)}")

    # --- paths ----------------------------------------------------------------------------------

    def resolve(self, path: FieldPath, scope: Field | None, pos: Pos) -> Field | None:
        """The canonical field `path` names, reporting fields the contract does not have."""
        current = self.root if path.from_root else scope
        walked: list[str] = []
        for step in path.steps:
            if current is None:
                return None
            child = self.view.child(current, step.key)
            if child is None:
                if current.closed():
                    where = ".".join(walked) or self.contract
                    fields = current.properties()
                    hint = suggest(step.key, fields) or (
                        f" (its fields: {', '.join(fields)})" if len(fields) <= 16 else "")
                    self.problems.add(pos, "unknown-field",
                                      f"'{path}' is not a canonical field: {where} has no "
                                      f"'{step.key}'{hint}")
                return None
            walked.append(step.key)
            current = child
            if step.in_list:
                current = self.list_items(current, path, pos)
                if current is not None and step.match is not None:
                    self.selector(current, step.match, path, pos)
        return current

    def selector(self, items: Field, match: tuple[str, str], path: FieldPath, pos: Pos) -> None:
        key, value = match
        sub = self.view.child(items, key)
        if sub is None:
            self.problems.add(pos, "unknown-field",
                              f"'{path}': the items have no field '{key}'"
                              f"{suggest(key, items.properties())}")
            return
        for reason in self.view.validation_errors(sub, value):
            self.problems.add(pos, "type-mismatch", f"'{path}': [{key}={value}] {reason}")

    def list_items(self, list_field: Field | None, path: FieldPath, pos: Pos) -> Field | None:
        if list_field is None:
            return None
        if "array" not in (list_field.types() or {"array"}):
            self.problems.add(pos, "type-mismatch", f"'{path}' is not a list")
            return None
        return self.view.items(list_field)

    def condition(self, condition: Condition, scope: Field | None) -> None:
        """Outbound conditions read canonical fields: check the field and the compared values."""
        if self.inbound:
            return
        subject = self.resolve(condition.path, scope, condition.pos)
        if subject is None or condition.op == "present":
            return
        operand = condition.operand
        if condition.op == "contains":
            subject = self.list_items(subject, condition.path, condition.pos)
        values = operand if condition.op in ("in", "not_in") else [operand]
        for value in values:
            self.fits(subject, value, condition.pos, f"'{condition.op}' on {condition.path}")

    # --- types ----------------------------------------------------------------------------------

    def fits(self, target: Field | None, value: Any, pos: Pos, what: str) -> None:
        if target is None:
            return
        for reason in self.view.validation_errors(target, value):
            self.problems.add(pos, "type-mismatch", f"{what} {reason}")

    def source_types(self, rule: Rule, scope: Field | None) -> Types:
        if rule.several_sources:
            for path in rule.sources:
                if not self.inbound:
                    self.resolve(path, scope, rule.at("from"))
            return ARRAY_ONLY
        if not rule.sources:
            return None
        if self.inbound:
            return None
        source = self.resolve(rule.sources[0], scope, rule.at("from"))
        return source.types() if source is not None else None

    def transforms(self, rule: Rule, types: Types) -> Types:
        for transform in rule.transforms:
            spec = SPECS[transform.name]
            listwise = spec.elementwise and types == ARRAY_ONLY
            if types and spec.accepts and not listwise and not any(
                    compatible(t, spec.accepts) for t in types):
                self.problems.add(transform.pos, "type-mismatch",
                                  f"{transform.name} takes {_names(spec.accepts)} but gets "
                                  f"{_names(types)}")
            if spec.output is not None:
                types = ARRAY_ONLY if listwise else frozenset({spec.output})
            elif transform.name == "first":
                types = None
        return types

    def code_lookup(self, rule: Rule, scope: Field | None, target: Field | None,
                    types: Types) -> Types:
        assert rule.code is not None
        codes = self.code_list(rule.code)
        if codes is None:
            self.problems.add(rule.at("code"), "unknown-code-list",
                              f"there is no code list '{rule.code}' (codes/{rule.code}.yaml "
                              "or under 'codes' in this file)")
            return None
        self.used_codes.add(rule.code)
        canonical = target if self.inbound else (
            self.resolve(rule.sources[0], scope, rule.at("from")) if rule.sources else None)
        if canonical is not None and types != ARRAY_ONLY and "array" in (canonical.types() or ()):
            canonical = self.view.items(canonical)
        values = canonical.enum() if canonical is not None else None
        if canonical is not None and values is not None:
            self.code_list_fits(rule, codes, canonical, values)
        produced = {json_type(e.native if not self.inbound else e.canonical)
                    for e in codes.entries}
        if rule.unknown == "fallback":
            fallback = self.fallback(rule, codes, values)
            if fallback is not None:
                produced.add(json_type(fallback))
        if rule.unknown == "keep" and types:
            produced |= types
        if types == ARRAY_ONLY:
            return ARRAY_ONLY
        if types is None and produced:
            produced.add(ARRAY)  # an unknown native value may be a list of codes
        return frozenset(produced) if produced else None

    def fallback(self, rule: Rule, codes: CodeList, values: list[Any] | None) -> Any:
        """The fallback `unknown: fallback` relies on: declared for this direction, a real code."""
        declared = codes.fallbacks.get(self.direction)
        if declared is None:
            self.problems.add(rule.at("unknown"), "missing-key",
                              f"unknown: fallback, but code list '{codes.name}' declares no "
                              f"{self.direction} fallback (add 'fallback: {{{self.direction}: "
                              "<code or drop>, why: <reason>}' to the list)")
            return None
        if declared.value == DROP:
            return None
        if self.inbound and values is not None and declared.value not in values:
            self.problems.add(rule.at("unknown"), "unknown-code",
                              f"the inbound fallback '{declared.value}' of code list "
                              f"'{codes.name}' is not a code of the field")
        return declared.value

    def code_list_fits(self, rule: Rule, codes: CodeList, field: Field, values: list[Any]) -> None:
        where = rule.at("code")
        if codes.contract is not None and field.code_list is not None:
            if codes.contract != field.code_list:
                self.problems.add(where, "type-mismatch",
                                  f"code list '{codes.name}' is for {codes.contract} but the "
                                  f"field takes {field.code_list}")
            return
        local = Problems(self.problems.file)
        check_against_enum(codes, values, field.code_list or "the field's codes", local, where)
        for problem in local:
            if problem.rule == "code-list-incomplete" and self.inbound:
                continue
            message = problem.message
            if (problem.line, problem.column) != (where.line, where.column):
                message = f"code list '{codes.name}' (line {problem.line}): {message}"
            self.problems.add(where, problem.rule, message)


def _names(types: frozenset[str]) -> str:
    return " or ".join(sorted(types))
