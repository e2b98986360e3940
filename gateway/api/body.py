"""Reading a request body safely: media type, size, then the JSON limits.

`read_body` is the one place a body is read (JSON for the partner API, forms for OAuth2
and the console): the media type is checked first and the size limit while reading, so
an oversized body is refused without being held whole. `parse_json` then refuses, before
any view sees the document, what a 1 MiB body can still hide: nesting deep enough to
exhaust the parser's stack, a string or array too long for any contract, a number no
store can hold, text that is not Unicode. Each refusal is a problem naming the limit (its
setting) and, where the parser got that far, the JSON Pointer of the value.
"""

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, count
from operator import sub
from typing import Any, TypeVar

from fastapi import Request
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from gateway.api.openapi import contract_body, declare, model_body, schema_body
from gateway.contracts import schema_errors
from gateway.errors import (
    FieldError,
    JsonLimitExceeded,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationProblem,
)
from gateway.json_pointer import pointer

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# Longest number literal read: more digits than any count, amount or date needs.
MAX_NUMBER_CHARS = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# An opening bracket counts 2 and a closing 0, so after k brackets the running sum minus k
# is the depth there: the deepest point is found by C loops alone, even for 1 MiB of them.
_WEIGHT = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")


@dataclass(frozen=True)
class JsonLimits:
    """How deep, long and wide a JSON document may be (CASEBRIDGE_JSON_MAX_*)."""

    max_depth: int
    max_string: int
    max_items: int


async def read_body(request: Request, *, media_type: str, limit: int) -> bytes:
    """The raw body, if sent as `media_type` (JSON also as `…+json`) and within `limit`."""
    got = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if got != media_type and not (media_type == JSON and got.endswith("+json")):
        raise UnsupportedMediaType(got, media_type)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    return bytes(body)


def parse_json(body: bytes, limits: JsonLimits) -> Any:
    """The document in `body`, or a problem naming the limit or syntax rule it breaks."""
    if body.count(b"[") + body.count(b"{") > limits.max_depth:  # else it cannot be too deep
        depth = _depth(body)
        if depth > limits.max_depth:
            raise JsonLimitExceeded(
                "json_max_depth", limits.max_depth, "", status=400,
                detail=f"nested {depth} levels deep, more than {limits.max_depth}")
    try:
        document = json.loads(body, parse_int=_integer, parse_float=_float,
                               parse_constant=_constant)
    except UnicodeDecodeError as error:
        raise MalformedRequest("The body is not UTF-8 text.", errors=[
            FieldError("", "encoding", "send UTF-8 encoded JSON")]) from error
    except json.JSONDecodeError as error:
        # The decoder's message names the syntax problem, never the content.
        raise MalformedRequest(
            f"The body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}.",
            errors=[FieldError("", "json-syntax", f"{error.msg} at line {error.lineno} "
                                                  f"column {error.colno}")],
        ) from error
    _check_values(document, limits)
    return document


async def json_body(request: Request) -> Any:
    """The parsed body within the configured size and JSON limits, or a problem naming
    why it cannot be read."""
    return parse_configured(request, await json_bytes(request))


async def json_bytes(request: Request) -> bytes:
    """The raw body, sent as JSON within the configured size, not yet parsed."""
    return await read_body(request, media_type=JSON,
                           limit=request.app.state.settings.max_body_bytes)


def parse_configured(request: Request, body: bytes) -> Any:
    """`parse_json` with the configured limits."""
    settings = request.app.state.settings
    return parse_json(body, JsonLimits(settings.json_max_depth, settings.json_max_string,
                                       settings.json_max_items))


def json_document(contract: str | None = None, *, schema: dict[str, Any] | None = None
                  ) -> Callable[[Request], Awaitable[Any]]:
    """A dependency reading a JSON body, documented as the canonical `contract` (with its
    examples) or as `schema`; the view checks it (422 when it breaks its rules)."""

    async def document(request: Request) -> Any:
        return await json_body(request)

    declare(document, 400, 413, 415, 422, body=contract_body(contract) if contract
            else schema_body(schema or {}))
    return document


def raw_json_document(contract: str) -> Callable[[Request], Awaitable[bytes]]:
    """As `json_document`, but the view parses the bytes itself (`parse_configured`): on
    the worker-thread turn it takes anyway, after authenticating the caller."""

    async def document(request: Request) -> bytes:
        return await json_bytes(request)

    declare(document, 400, 413, 415, 422, body=contract_body(contract))
    return document


def json_model(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading a JSON body as `model`: checked against the very JSON Schema
    the OpenAPI document publishes for it (422 naming each field), then read."""
    validator = Draft202012Validator(model.model_json_schema(),
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)

    async def document(request: Request) -> M:
        parsed = await json_body(request)
        errors = schema_errors(validator, parsed)
        if errors:
            raise ValidationProblem(f"The body breaks the {model.__name__} schema.", errors)
        return model.model_validate(parsed)

    declare(document, 400, 413, 415, 422, body=model_body(model))
    return document


def _depth(body: bytes) -> int:
    """How deeply the brackets of `body` nest, brackets inside strings not counted."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    deepest: int = max(map(sub, accumulate(brackets.translate(_WEIGHT)), count(1)))
    return deepest


def _number_refused(detail: str) -> MalformedRequest:
    return MalformedRequest(f"The body holds a number that cannot be read: {detail}.",
                            errors=[FieldError("", "json-number", detail)])


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _number_refused(f"a number has more than {MAX_NUMBER_CHARS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS or not math.isfinite(value := float(text)):
        raise _number_refused("a number is too long or too large")
    return value


def _constant(text: str) -> Any:
    raise _number_refused(f"{text} is not a JSON number")


def _check_values(document: Any, limits: JsonLimits) -> None:
    """Every string (name or value) and array within the limits, and text Unicode."""
    for path, value in _walk(document):
        if isinstance(value, str):
            if len(value) > limits.max_string:
                raise JsonLimitExceeded(
                    "json_max_string", limits.max_string, pointer(path),
                    detail=f"a string of more than {limits.max_string} characters")
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    raise MalformedRequest("The body holds text that is not Unicode.", errors=[
                        FieldError(pointer(path), "unicode",
                                   "a lone surrogate escape (\\ud800-\\udfff) is not a "
                                   "character")]) from None
        elif isinstance(value, list) and len(value) > limits.max_items:
            raise JsonLimitExceeded(
                "json_max_items", limits.max_items, pointer(path),
                detail=f"an array of more than {limits.max_items} items")


def _walk(document: Any) -> Iterator[tuple[list[str | int], Any]]:
    """(path, value) of every value and member name, parents first; no recursion."""
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            for name, member in value.items():
                yield [*path, name], name
                stack.append(([*path, name], member))
        elif isinstance(value, list):
            stack.extend(([*path, index], item) for index, item in enumerate(value))
