"""JSON Patch (RFC 6902) of a Task: add, remove, replace and test, on a copy.

FHIR offers JSON Patch for `PATCH [base]/Task/{id}`; the gateway then reads the patched
Task exactly like one sent whole with PUT. Errors name the operation by JSON Pointer into
the patch document (`/0/path`), never a value.
"""

import copy
from typing import Any

from gateway.errors import FieldError, MalformedRequest, ValidationProblem

OPERATIONS = ("add", "remove", "replace", "test")


def apply(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """`document` with `operations` applied in order; the original is left as it was."""
    if not isinstance(operations, list):
        raise MalformedRequest("A JSON Patch is a list of operations.", errors=[
            FieldError("", "json-patch", "send [{\"op\": \"replace\", \"path\": \"/status\", "
                                         "\"value\": \"accepted\"}]")])
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        result = _apply_one(result, operation, index)
    return result


def _apply_one(document: dict[str, Any], operation: Any, index: int) -> dict[str, Any]:
    if not isinstance(operation, dict) or operation.get("op") not in OPERATIONS:
        raise MalformedRequest("A JSON Patch operation is not one the gateway applies.",
                               errors=[FieldError(f"/{index}/op", "json-patch-op",
                                                  f"one of {', '.join(OPERATIONS)}")])
    path = operation.get("path")
    if not isinstance(path, str) or not (path == "" or path.startswith("/")):
        raise MalformedRequest("A JSON Patch path is a JSON Pointer.", errors=[
            FieldError(f"/{index}/path", "json-pointer", "a JSON Pointer such as /status")])
    op = operation["op"]
    if op in ("add", "replace", "test") and "value" not in operation:
        raise MalformedRequest("This JSON Patch operation needs a value.", errors=[
            FieldError(f"/{index}/value", "required", f"'{op}' needs a value")])
    parent, key = _locate(document, path, index, creating=op == "add")
    value = copy.deepcopy(operation.get("value"))
    if op == "test":
        if _get(parent, key, index) != value:
            raise ValidationProblem("A JSON Patch test failed: the Task has changed.", [
                FieldError(f"/{index}/value", "json-patch-test",
                           "the Task does not hold this value; read it again")])
    elif op == "remove":
        _get(parent, key, index)
        del parent[key]
    elif op == "replace":
        _get(parent, key, index)
        parent[key] = value
    elif isinstance(parent, list):
        if key != "-" and key > len(parent):
            raise _missing(index)
        parent.insert(len(parent) if key == "-" else key, value)
    else:
        parent[key] = value
    return document


def _locate(document: Any, path: str, index: int, *, creating: bool) -> tuple[Any, Any]:
    """The container of the last step of `path`, and the key or list index in it."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    if not parts:
        raise MalformedRequest("A JSON Patch may not replace the whole Task.", errors=[
            FieldError(f"/{index}/path", "json-pointer", "point at an element of the Task")])
    node = document
    for part in parts[:-1]:
        node = _get(node, _key(node, part, index), index)
    last = parts[-1]
    if isinstance(node, list):
        return node, (last if creating and last == "-" else _key(node, last, index))
    if not isinstance(node, dict):
        raise _missing(index)
    return node, last


def _key(node: Any, part: str, index: int) -> Any:
    if isinstance(node, list):
        if not part.isdigit():
            raise _missing(index)
        return int(part)
    return part


def _get(node: Any, key: Any, index: int) -> Any:
    try:
        return node[key]
    except (KeyError, IndexError, TypeError):
        raise _missing(index) from None


def _missing(index: int) -> MalformedRequest:
    return MalformedRequest("A JSON Patch path names nothing in the Task.", errors=[
        FieldError(f"/{index}/path", "json-pointer", "no such element in the Task")])
