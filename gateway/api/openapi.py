"""The OpenAPI document tells the truth: every status, header and body of every route.

FastAPI documents what a route returns when all goes well. What can go wrong is declared
where it is decided: on the dependency that refuses (`declare`: the partner's key, the
operator's key, a body reader) or on the route itself (`problems(…)` in `responses=`).
`install` then completes every operation from the same rules, so a route added later is
documented by construction:

- the problems its dependencies declare, and their request body (a canonical contract
  from contracts/ with its examples, a pydantic model, or a plain schema);
- 400 when it has a parameter (FastAPI's parameter errors are answered 400 here, not 422);
- 404 when it has a path parameter (nothing with that id is visible to the caller);
- every 4xx and 5xx answer as `application/problem+json` (RFC 9457, `Problem` below);
- `X-Correlation-ID` as an optional request header and a header of every answer, and
  `Retry-After` on 429.
"""

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gateway.api.problems import PROBLEM_JSON
from gateway.api.routing import flat_routes, is_api_route
from gateway.contracts import ID_PREFIX, Contracts
from gateway.logs import CORRELATION_HEADER

PROBLEM = "#/components/schemas/Problem"

DESCRIPTIONS = {
    400: "The request cannot be read: a parameter or header is missing or invalid, the body "
         "is not JSON, or it breaks a JSON limit (depth). `errors` names each by pointer.",
    401: "No valid credentials were sent.",
    403: "The credentials are valid, but do not allow this.",
    404: "Nothing with that id is visible to the caller.",
    409: "The request conflicts with the current state (the lifecycle, an Idempotency-Key).",
    413: "The body, or a string or array in it, is larger than the limit named in `limit`.",
    415: "The body is not sent with the media type this operation reads.",
    422: "The document breaks its contract, or a rule the gateway keeps beyond it (consent, "
         "the data-sharing agreement, known partners, dates). `errors` names each field.",
    429: "Too many requests from this partner: wait `Retry-After` seconds.",
    503: "A dependency of the gateway (database, broker) does not answer.",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem. Members beyond these are extensions of the problem "
                   "type (e.g. `limit`, `allowed_next_states`, OAuth2's `error`).",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "format": "uri",
                 "description": "https://casebridge.org/problems/<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "Never repeats a personal value."},
        "instance": {"type": "string", "description": "The path of the request"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["pointer", "rule", "detail"],
            "properties": {
                "pointer": {"type": "string",
                            "description": "JSON Pointer (RFC 6901) of the field, in the body "
                                           "unless `in` names a parameter's place"},
                "in": {"type": "string", "enum": ["query", "header", "path", "cookie", "body"]},
                "rule": {"type": "string", "description": "The rule broken: a JSON Schema "
                         "keyword, or a rule of the gateway (consent, lifecycle, limits)"},
                "detail": {"type": "string"},
            }}},
    },
}

CORRELATION_DOC = ("The correlation id of the request (and of the referral it touches): sent "
                   "back on every answer. A caller's own id is kept if it matches "
                   "`^[A-Za-z0-9._:-]{8,64}$`, else a new one is made.")
RETRY_AFTER = {"description": "Seconds to wait before trying again.",
               "schema": {"type": "integer", "minimum": 1}}


@dataclass(frozen=True)
class Declared:
    """What a dependency adds to the operations that use it."""

    problems: frozenset[int]
    body: Callable[[dict[str, Any], Contracts], dict[str, Any]] | None = None


_DECLARED: dict[Any, Declared] = {}


def declare(dependency: Any, *problems: int,
            body: Callable[[dict[str, Any], Contracts], dict[str, Any]] | None = None) -> None:
    """Record the problems `dependency` may answer with, and the request body it reads."""
    _DECLARED[dependency] = Declared(frozenset(problems), body)


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: these problem statuses, with a description each (a keyword
    `s409="…"` replaces the general one)."""
    return {status: {"description": descriptions.get(f"s{status}", DESCRIPTIONS[status])}
            for status in statuses}


def contract_body(contract: str) -> Callable[[dict[str, Any], Contracts], dict[str, Any]]:
    """A request body that is a canonical contract, with its valid examples."""

    def document(_: dict[str, Any], contracts: Contracts) -> dict[str, Any]:
        media: dict[str, Any] = {"schema": {"$ref": _component_ref(contract)}}
        examples = {path.stem: {"summary": path.stem.removeprefix("valid-").replace("-", " "),
                                "value": json.loads(path.read_text(encoding="utf-8"))}
                    for path in sorted((contracts.folder / "examples" / contract)
                                       .glob("valid-*.json"))}
        if examples:
            media["examples"] = examples
        return {"required": True, "content": {"application/json": media},
                "description": f"A canonical {contract} document (GET /v1/contracts/{contract})"}

    return document


def model_body(model: type[BaseModel]) -> Callable[[dict[str, Any], Contracts], dict[str, Any]]:
    """A request body read as a pydantic model."""

    def document(schemas: dict[str, Any], _: Contracts) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}

    return document


def schema_body(schema: dict[str, Any], media_type: str = "application/json"
                ) -> Callable[[dict[str, Any], Contracts], dict[str, Any]]:
    """A request body described by a plain JSON Schema."""
    return lambda _, __: {"required": True, "content": {media_type: {"schema": schema}}}


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app`, completed by the rules above."""
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                      description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    contracts: Contracts = app.state.contracts
    schemas.update(contract_components(contracts))
    components["headers"] = {
        "CorrelationId": {"description": CORRELATION_DOC, "schema": {"type": "string"}},
        "RetryAfter": RETRY_AFTER,
    }
    components["parameters"] = {"CorrelationId": {
        "name": CORRELATION_HEADER, "in": "header", "required": False,
        "description": CORRELATION_DOC, "schema": {"type": "string"}}}
    for route in flat_routes(app):
        if not is_api_route(route) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = doc["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route, schemas, contracts)
    return doc


def _complete(operation: dict[str, Any], route: Any, schemas: dict[str, Any],
              contracts: Contracts) -> None:
    """Add to `operation` what its route's dependencies, parameters and path imply."""
    statuses: set[int] = set()
    for dependant in _dependants(route.dependant):
        if dependant.path_params:
            statuses |= {400, 404}
        if dependant.query_params or dependant.header_params or dependant.cookie_params \
                or dependant.body_params:
            statuses.add(400)
        declared = _DECLARED.get(dependant.call)
        if declared is not None:
            statuses |= declared.problems
            if declared.body is not None:
                operation["requestBody"] = declared.body(schemas, contracts)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    fastapi_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in json.dumps(fastapi_422):
        del responses["422"]
    for status in sorted(statuses):
        responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM}}}
            if not response.get("description"):
                response["description"] = HTTPStatus(int(code)).phrase
        headers = response.setdefault("headers", {})
        headers.setdefault(CORRELATION_HEADER,
                           {"$ref": "#/components/headers/CorrelationId"})
        if code == "429":
            headers.setdefault("Retry-After", {"$ref": "#/components/headers/RetryAfter"})
    operation["responses"] = dict(sorted(responses.items()))
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        _without_null(parameter)
    parameters.append({"$ref": "#/components/parameters/CorrelationId"})
    if "security" in operation:  # FastAPI adds openapi_extra's entries to its own
        operation["security"] = [json.loads(entry) for entry in dict.fromkeys(
            json.dumps(entry, sort_keys=True) for entry in operation["security"])]


def _without_null(parameter: dict[str, Any]) -> None:
    """An optional parameter is left out, never sent as null: FastAPI's `X | None` schema
    (anyOf X or null) says only X."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf", [])
    if len(options) == 2 and {"type": "null"} in options:
        kept = next(option for option in options if option != {"type": "null"})
        del schema["anyOf"]
        parameter["schema"] = {**kept, **schema}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    """The route's own dependant and every dependency under it."""
    yield dependant
    for dependency in dependant.dependencies:
        yield from _dependants(dependency)


# -- the canonical contracts as components -------------------------------------------------

def _component_name(contract: str, definition: str | None = None) -> str:
    name = "contract." + contract.replace("/", ".")
    return f"{name}.{definition}" if definition else name


def _component_ref(contract: str, definition: str | None = None) -> str:
    return "#/components/schemas/" + _component_name(contract, definition)


def contract_components(contracts: Contracts) -> dict[str, Any]:
    """Each contract as a component `contract.<name>` (its `$defs` as `contract.<name>.<def>`),
    its references rewritten to point inside the document."""
    components: dict[str, Any] = {}
    for name, schema in contracts.schemas.items():
        schema = copy.deepcopy(schema)
        for keyword in ("$schema", "$id"):
            schema.pop(keyword, None)
        definitions = schema.pop("$defs", {})
        components[_component_name(name)] = _local_refs(schema, name)
        for definition, sub in definitions.items():
            components[_component_name(name, definition)] = _local_refs(sub, name)
    return components


def _local_refs(node: Any, contract: str) -> Any:
    """`node` with each `$ref` (to another contract, or to a `$defs` entry) made local."""
    if isinstance(node, list):
        return [_local_refs(item, contract) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _local_refs(value, contract) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target, _, fragment = ref.partition("#")
        other = (target.removeprefix(ID_PREFIX).removesuffix(".json")
                 if target.startswith(ID_PREFIX) else contract)
        if fragment.startswith("/$defs/"):
            rewritten["$ref"] = _component_ref(other, fragment.removeprefix("/$defs/"))
        elif not fragment:
            rewritten["$ref"] = _component_ref(other)
        else:
            raise ValueError(f"contract {contract}: cannot make {ref} local")
    return rewritten
