"""The canonical contracts: load the JSON Schemas in contracts/ and validate documents.

Errors name the offending field as a JSON Pointer and the rule broken, and never
repeat the value that broke it (it may be personal data).
"""

import json
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from gateway.errors import FieldError
from gateway.json_pointer import pointer

ID_PREFIX = "https://casebridge.org/contracts/v1/"


class Contracts:
    """Every schema under one folder, addressable by short name (`referral`, `codes/sex`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.schemas: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.rglob("*.json")):
            if "examples" in path.relative_to(folder).parts:
                continue
            schema = json.loads(path.read_text(encoding="utf-8"))
            self.schemas[path.relative_to(folder).with_suffix("").as_posix()] = schema

    @cached_property
    def registry(self) -> Registry[Any]:
        resources = [(s["$id"], Resource.from_contents(s)) for s in self.schemas.values()]
        return Registry().with_resources(resources)

    @cached_property
    def _validators(self) -> dict[str, Draft202012Validator]:
        return {
            name: Draft202012Validator(
                schema, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            for name, schema in self.schemas.items()
        }

    @cached_property
    def _compiled(self) -> dict[str, jsonschema_rs.Draft202012Validator]:
        """The same schemas compiled (jsonschema-rs): a valid document is confirmed in
        microseconds; only an invalid one is walked again to say what it breaks."""
        registry = jsonschema_rs.Registry([(s["$id"], s) for s in self.schemas.values()])
        return {name: jsonschema_rs.Draft202012Validator(schema, registry=registry,
                                                         validate_formats=True)
                for name, schema in self.schemas.items()}

    def validate(self, name: str, document: Any) -> list[FieldError]:
        """Every rule `document` breaks in schema `name`, in document order."""
        if self._compiled[name].is_valid(document):
            return []
        return schema_errors(self._validators[name], document)

    def codes(self, name: str) -> list[str]:
        """The codes of a code list, e.g. `codes("service-type")`."""
        return list(self.schemas[f"codes/{name}"]["enum"])

    def labels(self, name: str) -> dict[str, str]:
        """The codes of a code list with their labels, in the list's order."""
        labels: dict[str, str] = self.schemas[f"codes/{name}"]["x-labels"]
        return {code: labels[code] for code in self.codes(name)}


def schema_errors(validator: Draft202012Validator, document: Any) -> list[FieldError]:
    """Every rule `document` breaks in `validator`'s schema, by pointer, never quoting a value."""
    errors = [f for e in _leaves(validator.iter_errors(document)) for f in _field_errors(e)]
    return sorted(set(errors), key=lambda e: (e.pointer, e.rule))


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """Replace an anyOf/oneOf failure by the errors of its best-matching branch."""
    for error in errors:
        if error.context:
            best = best_match(error.context)
            yield from _leaves([e for e in error.context if e.relative_schema_path[0] ==
                                best.relative_schema_path[0]])
        else:
            yield error


def _field_errors(error: ValidationError) -> list[FieldError]:
    """One error per missing field of a `required` rule; otherwise the error itself."""
    required: Any = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict):
        path = list(error.absolute_path)
        return [FieldError(pointer([*path, p]), "required", "is required")
                for p in required if p not in error.instance]
    return [_field_error(error)]


def _field_error(error: ValidationError) -> FieldError:
    path = list(error.absolute_path)
    rule = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if rule == "additionalProperties" and isinstance(instance, dict):
        known = set(schema.get("properties", {}))
        extra = next((k for k in instance if k not in known), "")
        return FieldError(pointer([*path, extra]), rule, "is not a field of this contract")
    return FieldError(pointer(path), rule, _describe(rule, value, schema))


def _describe(rule: str, value: Any, schema: Any) -> str:
    title = schema.get("title") if isinstance(schema, dict) else None
    match rule:
        case "enum":
            shown = ", ".join(map(str, value[:12])) + (" …" if len(value) > 12 else "")
            return f"must be a code of {title or 'the code list'}: {shown}"
        case "const":
            return f"must be {value!r}"
        case "format":
            return f"must be a valid {value}"
        case "type":
            return f"must be of type {value}"
        case "pattern":
            return f"must match the pattern {value}"
        case "maxLength" | "minLength":
            bound = "at most" if rule == "maxLength" else "at least"
            return f"must have {bound} {value} characters"
        case "maxItems" | "minItems":
            bound = "at most" if rule == "maxItems" else "at least"
            return f"must have {bound} {value} items"
        case "minimum" | "maximum":
            return f"must be {'at least' if rule == 'minimum' else 'at most'} {value}"
        case "not":
            return "is not allowed here"
        case _:
            return f"breaks the '{rule}' rule"
