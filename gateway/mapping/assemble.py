"""Assemble the target objects of a mapping as one straight-line Python function.

Reading a field and storing it is most of the work of a mapping, and a loop of closure
calls per field costs three times what a programmer writes by hand. So the skeleton that
creates the output objects and copies plain fields is generated as Python source, while
everything with logic (transforms, code lists, conditions, lists) stays in the closures of
`produce.py`, called from it.

Safety: no text from a mapping file ever enters the generated source. Field names,
constants and closures are handed over in the function's namespace under names this module
makes up (`k3`, `c1`, `f7`); the source is built only from the fixed templates below and
those names, and it runs with no builtins. A mapping file can therefore never run Python.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.mapping.model import Rule
from gateway.mapping.paths import FieldPath, Step, compile_getter
from gateway.mapping.produce import CodeLookup, Finisher, Producer, flat, fresh
from gateway.mapping.transforms import Apply


class TargetTree(Protocol):
    """A target object: rules writing it whole, fields inside it, or list items."""

    rules: list[Rule]
    children: dict[str, Any]
    items: dict[Step, Any]


class Parts(Protocol):
    """What the compiler provides for the parts that are not plain copies."""

    def finisher(self, rule: Rule) -> Finisher | None: ...

    def pipeline(self, rule: Rule) -> tuple[list[Apply], CodeLookup | None]: ...

    def node(self, target: Any) -> Producer: ...


class Assembly:
    """The source and namespace of one generated function `(scope, root) -> object | None`."""

    def __init__(self, parts: Parts, label: str) -> None:
        self.parts = parts
        self.label = label
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"fresh": fresh, "type": type, "dict": dict, "str": str,
                                          "EMPTY": {}, "__builtins__": {}}
        self._names: dict[tuple[str, Any], str] = {}
        self._count = 0
        self._sources: dict[tuple[str, ...], str] = {}

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

    def _emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def build(self, target: TargetTree) -> Producer:
        """Generate, compile and return the function filling `target` from one scope."""
        out = self._object(target)
        source = "\n".join(["def assembled(scope, root):", *self.lines,
                            f"    return {out} or None", ""])
        code = compile(source, f"<mapping {self.label}>", "exec")
        exec(code, self.namespace)  # the source holds only this module's templates and names
        function: Producer = self.namespace["assembled"]
        return function

    def _object(self, target: TargetTree) -> str:
        out = self._name("o", None)
        self._emit(f"{out} = {{}}")
        for key, child in target.children.items():
            k = self._key(key)
            kind = _kind(child)
            if kind == "field":
                self._field(child.rules[0], f"{out}[{k}]")
            elif kind == "constant":
                value = child.rules[0].value
                c = self._name("c", value)
                copy = c if not isinstance(value, list | dict) else (
                    f"{c}.copy()" if flat(value) else f"fresh({c})")
                self._emit(f"{out}[{k}] = {copy}")
            elif kind == "object":
                inner = self._object(child)
                self._emit(f"if {inner}: {out}[{k}] = {inner}")
            elif kind == "list":
                items = self._list(child)
                self._emit(f"if {items}: {out}[{k}] = {items}")
            else:
                p = self._name("p", self.parts.node(child))
                self._emit(f"v = {p}(scope, root)")
                self._emit(f"if v is not None: {out}[{k}] = v")
        return out

    def _field(self, rule: Rule, store: str) -> None:
        """A rule reading one plain field: the common case inline, the rest by its closure."""
        source = self._source(rule.sources[0].steps[:-1])
        field = self._key(rule.sources[0].steps[-1].key)
        self._emit(f"v = {source}.get({field})")
        finish = self.parts.finisher(rule)
        if finish is None:
            self._emit(f"if v or v == 0: {store} = v")
            return
        f = self._name("f", finish)
        transforms, code = self.parts.pipeline(rule)
        if not rule.when and not transforms and code is None:
            self._emit(f"if v or v == 0: {store} = v")
        elif not rule.when and not transforms and code is not None and _plain_table(code.table):
            t = self._name("t", code.table)
            self._emit(f"if type(v) is str and v in {t}: {store} = {t}[v]")
        else:
            self._emit(f"v = {f}(v, scope, root)")
            self._emit(f"if v is not None: {store} = v")
            return
        self._emit("else:")
        self._emit(f"v = {f}(v, scope, root)", 2)
        self._emit(f"if v is not None: {store} = v", 2)

    def _list(self, target: TargetTree) -> str:
        """A list of items each named by position or by a key value, built inline."""
        items = self._name("l", None)
        self._emit(f"{items} = []")
        ordered = sorted((s for s in target.items if s.index is not None),
                         key=lambda s: s.index or 0)
        for step in ordered + [s for s in target.items if s.match is not None]:
            inner = self._object(target.items[step])
            if step.match is None:
                self._emit(f"if {inner}: {items}.append({inner})")
            else:
                key, value = self._key(step.match[0]), self._name("c", step.match[1])
                self._emit(f"if {inner}: {items}.append({{{key}: {value}, **{inner}}})")
        return items

    def _source(self, steps: tuple[Step, ...]) -> str:
        """The variable holding the source object at `steps` (found once per function)."""
        path = tuple(step.key for step in steps)
        if not path:
            return "scope"
        if path not in self._sources:
            variable = self._name("s", None)
            if len(path) == 1:
                self._emit(f"{variable} = scope.get({self._key(path[0])})")
            else:
                getter = compile_getter(FieldPath(".".join(path), tuple(steps)))
                self._emit(f"{variable} = {self._name('g', getter)}(scope, root)")
            self._emit(f"if type({variable}) is not dict: {variable} = EMPTY")
            self._sources[path] = variable
        return self._sources[path]


def _plain_table(table: dict[Any, Any]) -> bool:
    """Whether every code of a table is text with a value, so a hit can be stored as it is."""
    return all(isinstance(k, str) and isinstance(v, str) and v for k, v in table.items())


def _kind(target: TargetTree) -> str:
    """field (one plain source field), constant, object, list (of objects), or other."""
    if not target.rules and target.items and not any(
            _kind(item) != "object" for item in target.items.values()):
        return "list"
    if not target.rules:
        return "object" if target.children and not target.items else "other"
    if target.children or target.items or len(target.rules) != 1:
        return "other"
    rule = target.rules[0]
    if rule.has_value:
        return "constant" if not rule.when and rule.value is not None else "other"
    if rule.each is not None or len(rule.sources) != 1 or rule.several_sources:
        return "other"
    source = rule.sources[0]
    if source.from_root or any(step.in_list for step in source.steps):
        return "other"
    return "field"
