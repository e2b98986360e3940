"""Walk the canonical JSON Schemas field by field, following `$ref`s through the registry."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from gateway.contracts import ID_PREFIX, Contracts

if TYPE_CHECKING:
    from referencing._core import Resolver

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


@dataclass(frozen=True)
class Field:
    """A resolved (sub)schema and the resolver for the `$ref`s written inside it."""

    schema: dict[str, Any]
    resolver: Resolver[Any]
    code_list: str | None = None

    def types(self) -> frozenset[str] | None:
        """The JSON types this field allows; None when the schema does not say."""
        declared = self.schema.get("type")
        if isinstance(declared, str):
            return frozenset({declared})
        if isinstance(declared, list):
            return frozenset(declared)
        values = self.enum()
        if values is not None:
            return frozenset(_json_type(v) for v in values)
        return None

    def enum(self) -> list[Any] | None:
        values = self.schema.get("enum")
        return list(values) if isinstance(values, list) else None

    def required(self, written: Collection[str] = ()) -> list[str]:
        """The fields the object requires; also those an `allOf` part requires `else`,
        unless a field its `if` requires is `written` (a consent's who, how and when,
        unless it is `recorded_by_sender`)."""
        names = [str(r) for r in self.schema.get("required", [])]
        for part in self.schema.get("allOf", []):
            condition, otherwise = part.get("if"), part.get("else")
            if isinstance(condition, dict) and isinstance(otherwise, dict) and not any(
                    name in written for name in condition.get("required", [])):
                names += [str(r) for r in otherwise.get("required", [])]
        return names

    def closed(self) -> bool:
        return self.schema.get("additionalProperties") is False

    def properties(self) -> list[str]:
        return list(self.schema.get("properties", {}))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def json_type(value: Any) -> str:
    """The JSON type name of a Python value."""
    return _json_type(value)


def compatible(given: str, allowed: frozenset[str]) -> bool:
    """Whether a value of JSON type `given` may go where `allowed` types are expected."""
    return given in allowed or (given == "integer" and "number" in allowed) or (
        given == "number" and "integer" in allowed)


class SchemaView:
    """Field-level questions about the contracts: does `subject.sex` exist, what may it hold."""

    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts

    def root(self, name: str) -> Field | None:
        schema = self.contracts.schemas.get(name)
        if schema is None:
            return None
        resolver = self.contracts.registry.resolver(base_uri=schema["$id"])
        return self._resolve(Field(schema, resolver))

    def _resolve(self, field: Field) -> Field:
        code_list = field.code_list
        seen = 0
        while "$ref" in field.schema and seen < 20:
            ref = field.schema["$ref"]
            resolved = field.resolver.lookup(ref)
            if ref.startswith(ID_PREFIX + "codes/"):
                code_list = ref.removeprefix(ID_PREFIX).removesuffix(".json")
            merged = {k: v for k, v in field.schema.items() if k != "$ref"}
            field = Field({**resolved.contents, **merged}, resolved.resolver, code_list)
            seen += 1
        return field

    def child(self, parent: Field, key: str) -> Field | None:
        """The property `key` of an object field, or None if the contract has no such field."""
        properties = parent.schema.get("properties", {})
        if key not in properties:
            return None
        try:
            return self._resolve(Field(properties[key], parent.resolver))
        except Unresolvable:
            return None

    def items(self, field: Field) -> Field | None:
        """The item schema of an array field."""
        items = field.schema.get("items")
        if not isinstance(items, dict):
            return None
        try:
            return self._resolve(Field(items, field.resolver))
        except Unresolvable:
            return None

    def validation_errors(self, field: Field, value: Any) -> list[str]:
        """Why `value` cannot be stored in `field` (formats included), without the value."""
        schema = {k: v for k, v in field.schema.items() if k not in ("description", "x-labels")}
        validator = Draft202012Validator(schema, registry=self.contracts.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        try:
            return sorted({_reason(e.validator, e.validator_value)
                           for e in validator.iter_errors(value)})
        except Unresolvable:
            return []


def _reason(rule: Any, expected: Any) -> str:
    if rule == "enum":
        return "is not one of the codes " + ", ".join(map(str, expected[:12]))
    if rule == "type":
        return f"must be of type {expected}"
    return f"breaks the '{rule}' rule"
