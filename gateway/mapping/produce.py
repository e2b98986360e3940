"""The closures one rule compiles to: conditions, code lookups, constants, and the finisher
that turns a source value into the target value (transforms, code list, default, required).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gateway.mapping.model import DROP, CodeList, Condition, Direction, Rule
from gateway.mapping.paths import compile_getter
from gateway.mapping.transforms import Apply, TransformFailed

Producer = Callable[[Any, Any], Any]
"""`produce(scope, root)` → the value for one target, or None for "leave it out"."""
Finisher = Callable[[Any, Any, Any], Any]
"""`finish(source_value, scope, root)` → the value for the target, or None."""
Test = Callable[[Any, Any], bool]


class RuleFailed(Exception):
    """A rule could not produce its value; carries the rule and the list items it was in."""

    def __init__(self, rule: Rule, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.frames: list[tuple[Rule, int, int]] = []


def present(value: Any) -> bool:
    """None, empty text, an empty list or mapping count as no value; 0 and false are values."""
    return bool(value) or value == 0


def condition(test: Condition) -> Test:
    """The check of one `when`/`where` condition."""
    get = compile_getter(test.path)
    operand = test.operand
    steps = test.path.steps
    if test.op == "equals" and len(steps) == 1 and not steps[0].in_list and not test.path.from_root:
        key = steps[0].key
        return lambda scope, root: bool(scope.get(key) == operand)
    match test.op:
        case "equals":
            return lambda scope, root: bool(get(scope, root) == operand)
        case "not_equals":
            return lambda scope, root: bool(get(scope, root) != operand)
        case "in":
            return lambda scope, root: get(scope, root) in operand
        case "not_in":
            return lambda scope, root: get(scope, root) not in operand
        case "present":
            return lambda scope, root: present(get(scope, root)) is operand
        case _:
            def contains(scope: Any, root: Any) -> bool:
                value = get(scope, root)
                return isinstance(value, list) and operand in value

            return contains


def conditions(tests: tuple[Condition, ...]) -> Test | None:
    """All of `tests` as one check; None when there is nothing to check."""
    checks = [condition(c) for c in tests]
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda scope, root: all(check(scope, root) for check in checks)


# What an option value, lookup id or code looks like: one case, digits, underscores; or a
# GUID. A name ("Amani"), a hyphenated or spaced phrase, or anything long is not shown.
CODE_SHAPE = re.compile(r"[a-z0-9_]{1,40}|[A-Z0-9_]{1,40}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}"
                        r"-[0-9a-fA-F]{12}")


class CodeLookup:
    """The code list lookup of one rule, with its policy for unknown codes."""

    def __init__(self, rule: Rule, codes: CodeList, direction: Direction) -> None:
        self.table = codes.inbound_table() if direction == "inbound" else codes.outbound_table()
        self.policy, self.name = rule.unknown, codes.name
        fallback = codes.fallbacks.get(direction)
        self.fallback = None if fallback is None or fallback.value == DROP else fallback.value

    def missing(self, value: Any) -> Any:
        """What an unknown code becomes: itself, the code list's declared fallback, or an error.

        The error names the code: codes are vocabulary, never personal data.
        """
        if self.policy == "keep":
            return value
        if self.policy == "fallback":
            return self.fallback
        raise TransformFailed(f"the code {_shown(value)} is not in code list '{self.name}'")

    def one(self, value: Any) -> Any:
        try:
            return self.table[value]
        except KeyError:
            return self.missing(value)
        except TypeError:
            raise TransformFailed(f"the value is not a single code of '{self.name}'") from None

    def apply(self, value: Any, scope: Any, root: Any) -> Any:
        """Look up one code, or each code of a list (dropping those that become nothing)."""
        if type(value) is list:
            return [c for c in map(self.one, value) if c is not None]
        return self.one(value)


def _shown(code: Any) -> str:
    """A code as an error message may show it: only what has the shape of a code.

    Operators need the unlisted code to fix the list, but a field meant for a code can hold
    free text (a name, a note), which must never reach a dead letter, a log or the broker.
    """
    if isinstance(code, bool) or not isinstance(code, str | int):
        return f"(a {type(code).__name__}, not a code)"
    if isinstance(code, int) or CODE_SHAPE.fullmatch(code):
        return repr(code)
    return "(a value that does not look like a code, not shown)"


def fresh(value: Any) -> Any:
    """A copy of a constant, so that no record ever shares (and changes) the mapping's own."""
    if type(value) is list:
        return [fresh(v) for v in value]
    if type(value) is dict:
        return {k: fresh(v) for k, v in value.items()}
    return value


def flat(value: Any) -> bool:
    """Whether a constant is a list or mapping of plain values (a shallow copy is a full one)."""
    items = value if isinstance(value, list) else value.values() if isinstance(value, dict) \
        else None
    return items is not None and not any(isinstance(v, list | dict) for v in items)


def constant(value: Any) -> Producer:
    """A producer of a constant; each record gets its own copy of a list or mapping."""
    if isinstance(value, list | dict):
        if flat(value):
            return lambda scope, root: value.copy()
        return lambda scope, root: fresh(value)
    return lambda scope, root: value


def finisher(rule: Rule, transforms: list[Apply], code: CodeLookup | None) -> Finisher | None:
    """The finishing step of a rule reading `from`; None when it is a plain copy."""
    when = conditions(rule.when)
    has_default, default, required = rule.has_default, rule.default, rule.required
    pipeline = transforms + ([code.apply] if code is not None else [])
    if when is None and not pipeline and not has_default and not required:
        return None
    if when is None and not transforms and code is not None:
        table, missing, one = code.table, code.missing, code.one

        def finish_code(value: Any, scope: Any, root: Any) -> Any:
            if value or value == 0:
                try:
                    if type(value) is list:
                        value = [c for c in map(one, value) if c is not None]
                    else:
                        try:
                            value = table[value]
                        except KeyError:
                            value = missing(value)
                except (TransformFailed, TypeError) as failure:
                    reason = str(failure) if isinstance(failure, TransformFailed) else \
                        "the value is not a single code"
                    raise RuleFailed(rule, reason) from None
                if value or value == 0:
                    return value
            if has_default:
                return fresh(default)
            if required:
                raise RuleFailed(rule, "a required value is missing")
            return None

        return finish_code
    if when is None and len(pipeline) <= 1:
        only = pipeline[0] if pipeline else None

        def finish_simple(value: Any, scope: Any, root: Any) -> Any:
            if value or value == 0:
                if only is None:
                    return value
                try:
                    value = only(value, scope, root)
                except TransformFailed as failure:
                    raise RuleFailed(rule, str(failure)) from None
                if value or value == 0:
                    return value
            if has_default:
                return fresh(default)
            if required:
                raise RuleFailed(rule, "a required value is missing")
            return None

        return finish_simple

    def finish(value: Any, scope: Any, root: Any) -> Any:
        if when is not None and not when(scope, root):
            return None
        if value or value == 0:
            try:
                for apply in pipeline:
                    value = apply(value, scope, root)
            except TransformFailed as failure:
                raise RuleFailed(rule, str(failure)) from None
            if value or value == 0:
                return value
        if has_default:
            return fresh(default)
        if required:
            raise RuleFailed(rule, "a required value is missing")
        return None

    return finish


def producer(rule: Rule, transforms: list[Apply], code: CodeLookup | None) -> Producer:
    """The whole rule as one function of (scope, root), for rules not batched by source."""
    when = conditions(rule.when)
    if rule.has_value:
        make = constant(rule.value)
        if when is None:
            return make
        return lambda scope, root: make(scope, root) if when(scope, root) else None
    if len(rule.sources) == 1 and not rule.several_sources:
        get = compile_getter(rule.sources[0])
    else:
        getters = [compile_getter(p) for p in rule.sources]

        def get(scope: Any, root: Any) -> Any:
            values = [g(scope, root) for g in getters]
            return [v for v in values if v or v == 0]

    finish = finisher(rule, transforms, code)
    if finish is None:
        def copy(scope: Any, root: Any) -> Any:
            value = get(scope, root)
            return value if value or value == 0 else None

        return copy
    done = finish
    return lambda scope, root: done(get(scope, root), scope, root)
