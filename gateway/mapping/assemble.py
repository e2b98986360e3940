"""Assemble the target objects of a mapping as one straight-line Python function.

Reading a field and storing it is most of the work of a mapping, and a closure call per
rule costs about as much as the rule's own work. So the whole translation of a record is
generated as Python source: the objects, the plain copies, the usual case of every rule
(its conditions, source fields, transforms, code list lookups) and the loops over `each`
lists, inline.

Each rule also keeps its closure from `produce.py` (`Parts.producer`), which does exactly
what the rule says in every case. The inline code is only a fast path for the usual case:
whenever it meets anything else (a missing required value, an unknown code, a value of an
unexpected type, a transform that fails, a default to apply) it calls the rule's closure,
which computes the rule again from the start and gives the value or raises the error, with
its message, file and line. Reading a record changes nothing, so computing a rule twice
gives the same answer; `tests/unit/mapping/test_mapping_assembly.py` checks the two give
the same output and the same errors on every example of every shipped mapping, each field
in turn removed or replaced by values of other types.

Safety: no text from a mapping file ever enters the generated source. Field names,
constants and closures are handed over in the function's namespace under names this module
makes up (`k3`, `c1`, `p7`); the source is built only from the fixed templates below and
those names, and it runs with no builtins but the few it names. A mapping file can
therefore never run Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

from gateway.mapping.model import Condition, Rule
from gateway.mapping.paths import FieldPath, Step, compile_getter
from gateway.mapping.produce import (
    CodeLookup,
    Producer,
    RuleFailed,
    condition,
    flat,
    fresh,
)
from gateway.mapping.transforms import Apply, build, iso_date_renderer


class TargetTree(Protocol):
    """A target object: rules writing it whole, fields inside it, or list items."""

    rules: list[Rule]
    children: dict[str, Any]
    items: dict[Step, Any]


class Parts(Protocol):
    """What the compiler provides for the parts that are not plain copies."""

    def pipeline(self, rule: Rule) -> tuple[list[Apply], CodeLookup | None]: ...

    def node(self, target: Any) -> Producer: ...

    def producer(self, rule: Rule) -> Producer: ...

    def tree(self, rules: list[Rule]) -> Any: ...


class Slow(Exception):
    """Raised by generated code to leave a fast path for the rule's closure."""


# What a fast path gives up on: the rule's closure then decides (and raises, if it must).
_LEAVE = (LookupError, TypeError, ValueError, AttributeError, RuleFailed, Slow)
_MISS = object()


class Assembly:
    """The source and namespace of one generated function `(scope, root) -> object | None`.

    With `inline=False` every rule is left to its closure: the reference the generated
    fast paths are tested against.
    """

    def __init__(self, parts: Parts, label: str, *, inline: bool = True) -> None:
        self.parts = parts
        self.label = label
        self.inline = inline
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "fresh": fresh, "type": type, "dict": dict, "str": str, "list": list,
            "isinstance": isinstance, "len": len, "EMPTY": {}, "LEAVE": _LEAVE, "MISS": _MISS,
            "Slow": Slow, "__builtins__": {}}
        self._names: dict[tuple[str, Any], str] = {}
        self._count = 0
        self._sources: list[dict[tuple[str, tuple[str, ...]], str]] = [{}]
        self._producers: dict[int, str] = {}

    def _name(self, prefix: str, value: Any, *, shared: bool = False) -> str:
        """A made-up name bound to `value` in the namespace (keys are shared by value)."""
        if shared and (prefix, value) in self._names:
            return self._names[(prefix, value)]
        self._count += 1
        name = f"{prefix}{self._count}"
        self.namespace[name] = value
        if shared:
            self._names[(prefix, value)] = name
        return name

    def _key(self, key: str) -> str:
        return self._name("k", key, shared=True)

    def _emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * depth + line)

    @contextmanager
    def _block(self) -> Iterator[None]:
        """Code emitted inside may not run: the source objects it finds stay inside."""
        self._sources.append(dict(self._sources[-1]))
        try:
            yield
        finally:
            self._sources.pop()

    def build(self, target: TargetTree) -> Producer:
        """Generate, compile and return the function filling `target` from one scope."""
        out = self._object(target, "scope", 1)
        source = "\n".join(["def assembled(scope, root):", *self.lines,
                            f"    return {out} or None", ""])
        code = compile(source, f"<mapping {self.label}>", "exec")
        exec(code, self.namespace)  # the source holds only this module's templates and names
        function: Producer = self.namespace["assembled"]
        return function

    # --- objects and lists ---------------------------------------------------------------------

    def _object(self, target: TargetTree, scope: str, depth: int, first: str = "") -> str:
        """The variable holding the object filled from `scope` (`first`: its first field)."""
        out = self._name("o", None)
        self._emit(f"{out} = {{{first}}}", depth)
        for key, child in target.children.items():
            store = f"{out}[{self._key(key)}]"
            kind = _kind(child)
            if kind == "constant" and self.inline:
                self._constant(child.rules[0].value, store, depth)
            elif kind == "object":
                inner = self._object(child, scope, depth)
                self._emit(f"if {inner}: {store} = {inner}", depth)
            elif kind == "list":
                items = self._list(child, scope, depth)
                self._emit(f"if {items}: {store} = {items}", depth)
            elif kind == "leaf":
                self._leaf(child.rules, store, scope, depth)
            else:
                p = self._name("p", self.parts.node(child))
                self._emit(f"v = {p}({scope}, root)", depth)
                self._emit(f"if v is not None: {store} = v", depth)
        return out

    def _list(self, target: TargetTree, scope: str, depth: int) -> str:
        """A list of items each named by position or by a key value, built inline."""
        items = self._name("l", None)
        self._emit(f"{items} = []", depth)
        ordered = sorted((s for s in target.items if s.index is not None),
                         key=lambda s: s.index or 0)
        for step in ordered + [s for s in target.items if s.match is not None]:
            item = target.items[step]
            if step.match is None:
                inner = self._object(item, scope, depth)
                self._emit(f"if {inner}: {items}.append({inner})", depth)
                continue
            key, value = self._key(step.match[0]), self._name("c", step.match[1])
            if step.match[0] in item.children:
                inner = self._object(item, scope, depth)
                self._emit(f"if {inner}: {items}.append({{{key}: {value}, **{inner}}})", depth)
            else:  # the item starts with the key that names it; kept if anything follows
                inner = self._object(item, scope, depth, first=f"{key}: {value}")
                self._emit(f"if len({inner}) > 1: {items}.append({inner})", depth)
        return items

    def _constant(self, value: Any, store: str, depth: int) -> None:
        if value is None:
            return
        c = self._name("c", value)
        copy = c if not isinstance(value, list | dict) else (
            f"{c}.copy()" if flat(value) else f"fresh({c})")
        self._emit(f"{store} = {copy}", depth)

    # --- rules ---------------------------------------------------------------------------------

    def _leaf(self, rules: list[Rule], store: str, scope: str, depth: int) -> None:
        """The rules writing one target: the first that gives a value wins."""
        if len(rules) == 1:
            self._rule(rules[0], store, scope, depth)
            return
        first = self._name("x", None)
        self._emit(f"{first} = None", depth)
        for index, rule in enumerate(rules):
            if index == 0:
                self._rule(rule, first, scope, depth)
                continue
            self._emit(f"if {first} is None:", depth)
            with self._block():
                self._rule(rule, first, scope, depth + 1)
        self._emit(f"if {first} is not None: {store} = {first}", depth)

    def _slow(self, rule: Rule, store: str, scope: str, depth: int) -> None:
        """Leave the rule to its closure, which gives its value or raises its error."""
        if id(rule) not in self._producers:
            self._producers[id(rule)] = self._name("p", self.parts.producer(rule))
        p = self._producers[id(rule)]
        self._emit(f"w = {p}({scope}, root)", depth)
        self._emit(f"if w is not None: {store} = w", depth)

    def _rule(self, rule: Rule, store: str, scope: str, depth: int) -> None:
        if not self.inline:
            self._slow(rule, store, scope, depth)
            return
        with ExitStack() as blocks:
            if rule.when:
                self._emit(f"if {self._test(rule.when, scope, depth)}:", depth)
                blocks.enter_context(self._block())
                depth += 1
            if rule.has_value:
                self._constant(rule.value, store, depth)
                if rule.value is None:
                    self._emit("pass", depth)
            elif rule.each is not None:
                self._each(rule, store, scope, depth)
            else:
                self._from(rule, store, scope, depth)

    def _from(self, rule: Rule, store: str, scope: str, depth: int) -> None:
        """A rule reading `from`: read, transform, look up, store; else its closure."""
        transforms = list(rule.transforms)
        if rule.several_sources and transforms and transforms[0].name == "first":
            # `first` of the present values is the first source that has one.
            transforms = transforms[1:]
            for path in rule.sources:  # the objects holding them, found before the choice
                if not any(step.in_list for step in path.steps):
                    self._source("root" if path.from_root else scope, path.steps[:-1], depth)
            with ExitStack() as blocks:
                for index, path in enumerate(rule.sources):
                    if index:
                        self._emit("if not (v or v == 0):", depth + index - 1)
                        blocks.enter_context(self._block())
                    self._emit(f"v = {self._read(path, scope, depth + index)}", depth + index)
        elif rule.several_sources:
            self._emit("v = []", depth)
            for path in rule.sources:
                self._emit(f"u = {self._read(path, scope, depth)}", depth)
                self._emit("if u or u == 0: v.append(u)", depth)
        else:
            self._emit(f"v = {self._read(rule.sources[0], scope, depth)}", depth)
        code = self.parts.pipeline(rule)[1]
        self._emit("if v or v == 0:", depth)
        with self._block():
            if transforms or code is not None:
                self._emit("try:", depth + 1)
                for transform in transforms:
                    self._transform(transform.name, transform.args, scope, depth + 2)
                lookup, certain = self._code(code) if code is not None else ("", False)
                if certain and not transforms:  # a plain list's hit on a value is a value
                    self._emit(f"{store} = {lookup}", depth + 2)
                    self._emit("except LEAVE:", depth + 1)
                    self._slow(rule, store, scope, depth + 2)
                else:
                    if lookup:
                        self._emit(f"v = {lookup}", depth + 2)
                    self._emit("except LEAVE:", depth + 1)
                    self._slow(rule, store, scope, depth + 2)
                    self._emit("else:", depth + 1)
                    self._emit(f"if v or v == 0: {store} = v", depth + 2)
                    self._emit("else:", depth + 2)
                    self._slow(rule, store, scope, depth + 3)
            else:
                self._emit(f"{store} = v", depth + 1)
        if rule.has_default or rule.required:
            self._emit("else:", depth)
            self._slow(rule, store, scope, depth + 1)

    def _transform(self, name: str, args: dict[str, Any], scope: str, depth: int) -> None:
        """One transform of `v`, raising to leave the fast path when it cannot be applied."""
        apply = self._name("a", build(name, args))
        if name == "as_list":
            self._emit("v = v if isinstance(v, list) else [v]", depth)
        elif name == "trim":
            self._emit(f"v = v.strip() if type(v) is str else {apply}(v, {scope}, root)", depth)
        elif name == "date" and args["from"] == "iso" and args["to"] != "iso":
            render = self._name("d", iso_date_renderer(args["to"]))
            self._emit(f"v = {render}(v) if type(v) is str else {apply}(v, {scope}, root)", depth)
        else:
            self._emit(f"v = {apply}(v, {scope}, root)", depth)

    def _code(self, code: CodeLookup) -> tuple[str, bool]:
        """The code list lookup of `v`: a hit inline, anything else by the rule's closure.

        Also whether the lookup always gives a value (every code of the list stands for one).
        """
        if all(value is not None and (value or value == 0) for value in code.table.values()):
            t = self._name("t", code.table)
            return f"{t}[v] if type(v) is not list else [{t}[c] for c in v]", True
        return f"{self._name('a', code.apply)}(v, None, None)", False

    def _each(self, rule: Rule, store: str, scope: str, depth: int) -> None:
        """A list built item by item in a loop; any trouble goes to the rule's closure."""
        assert rule.each is not None
        source, items, item = self._name("e", None), self._name("l", None), self._name("i", None)
        self._emit(f"{source} = {self._read(rule.each, scope, depth)}", depth)
        self._emit(f"if type({source}) is list:", depth)
        with self._block():
            self._emit("try:", depth + 1)
            self._emit(f"{items} = []", depth + 2)
            self._emit(f"for {item} in {source}:", depth + 2)
            with self._block():
                self._emit(f"if type({item}) is not dict: raise Slow", depth + 3)
                if rule.where:
                    self._emit(f"if not ({self._test(rule.where, item, depth + 3)}): continue",
                               depth + 3)
                out = self._object(self.parts.tree(rule.rules), item, depth + 3)
                self._emit(f"if {out}: {items}.append({out})", depth + 3)
            self._emit("except LEAVE:", depth + 1)
            self._emit(f"{items} = MISS", depth + 2)
            self._emit(f"if {items} and {items} is not MISS: {store} = {items}", depth + 1)
            self._emit("else:" if rule.required else f"elif {items} is MISS:", depth + 1)
            self._slow(rule, store, scope, depth + 2)
        self._emit(f"elif {source} is not None:", depth)
        self._slow(rule, store, scope, depth + 1)
        if rule.required:
            self._emit("else:", depth)
            self._slow(rule, store, scope, depth + 1)

    # --- reading -------------------------------------------------------------------------------

    def _read(self, path: FieldPath, scope: str, depth: int) -> str:
        """An expression reading `path` (None when any step is missing)."""
        base = "root" if path.from_root else scope
        if any(step.in_list for step in path.steps):
            getter = self._name("g", compile_getter(path))
            return f"{getter}({scope}, root)"
        source = self._source(base, path.steps[:-1], depth)
        return f"{source}.get({self._key(path.steps[-1].key)})"

    def _source(self, base: str, steps: tuple[Step, ...], depth: int) -> str:
        """The variable holding the object at `steps` under `base` (found once per block)."""
        path = tuple(step.key for step in steps)
        if not path:
            return base
        known = self._sources[-1]
        if (base, path) not in known:
            outer = self._source(base, steps[:-1], depth)
            variable = self._name("s", None)
            self._emit(f"{variable} = {outer}.get({self._key(path[-1])})", depth)
            self._emit(f"if type({variable}) is not dict: {variable} = EMPTY", depth)
            known[(base, path)] = variable
        return known[(base, path)]

    def _test(self, tests: tuple[Condition, ...], scope: str, depth: int) -> str:
        """An expression true when all the conditions hold (their fields read first)."""
        parts = []
        for test in tests:
            plain = not any(step.in_list for step in test.path.steps)
            if plain and test.op in ("equals", "not_equals", "present"):
                value = self._name("q", None)
                self._emit(f"{value} = {self._read(test.path, scope, depth)}", depth)
                if test.op == "present":
                    present = f"({value} or {value} == 0)"
                    parts.append(present if test.operand else f"not {present}")
                else:
                    operand = self._name("c", test.operand)
                    parts.append(f"{value} {'==' if test.op == 'equals' else '!='} {operand}")
            else:
                check = self._name("b", condition(test))
                parts.append(f"{check}({scope}, root)")
        return " and ".join(f"({part})" for part in parts)


def _kind(target: TargetTree) -> str:
    """constant, object, list (of objects), leaf (rules), or other."""
    if not target.rules and target.items and not any(
            _kind(item) != "object" for item in target.items.values()):
        return "list"
    if not target.rules:
        return "object" if target.children and not target.items else "other"
    if target.children or target.items:
        return "other"
    rule = target.rules[0]
    if len(target.rules) == 1 and rule.has_value and not rule.when and rule.value is not None:
        return "constant"
    return "leaf"

