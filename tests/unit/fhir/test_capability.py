"""The CapabilityStatement at /fhir/metadata says exactly what the routes under /fhir do."""

import re
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from gateway.api.app import create_app
from gateway.fhir import capability
from gateway.settings import Settings

ID = r"\{[a-z_]+\}"
# How a FHIR interaction shows as a route: (method, path under /fhir) → (type, interaction).
SHAPES = [
    ("GET", rf"^/(?P<t>[A-Z]\w+)/{ID}$", "read"),
    ("GET", rf"^/(?P<t>[A-Z]\w+)/{ID}/_history/{ID}$", "vread"),
    ("GET", rf"^/(?P<t>[A-Z]\w+)/{ID}/_history$", "history-instance"),
    ("GET", r"^/(?P<t>[A-Z]\w+)$", "search-type"),
    ("POST", r"^/(?P<t>[A-Z]\w+)$", "create"),
    ("PUT", rf"^/(?P<t>[A-Z]\w+)/{ID}$", "update"),
    ("PATCH", rf"^/(?P<t>[A-Z]\w+)/{ID}$", "patch"),
    ("DELETE", rf"^/(?P<t>[A-Z]\w+)/{ID}$", "delete"),
    ("POST", r"^$", "transaction"),
]
# Query parameters that steer a search rather than filter it (FHIR's result parameters).
CONTROLS = {"_format", "_count", "_include", "_cursor"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    store = tmp_path_factory.mktemp("capability") / "casebridge.db"
    yield create_app(Settings(database_url=f"sqlite:///{store}"))


@pytest.fixture(scope="module")
def statement() -> CapabilityStatement:
    """As /fhir/metadata serves it (tests/integration/fhir reads it over HTTP)."""
    made = capability.statement("https://casebridge.example.org/fhir", software_version="1")
    return CapabilityStatement.model_validate_json(made.model_dump_json())


def fhir_routes(app: FastAPI) -> list[Any]:
    """The routes under /fhir but the statement's own (FastAPI wraps an included router's
    routes in contexts that read like them: path, methods, dependant)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = contexts(app.routes) if contexts else app.routes
    return [r for r in routes if isinstance(getattr(r, "original_route", r), APIRoute)
            and (r.path == "/fhir" or r.path.startswith("/fhir/")) and r.path != "/fhir/metadata"]


def interaction(method: str, path: str) -> tuple[str, str]:
    for shape_method, pattern, code in SHAPES:
        found = re.match(pattern, path)
        if method == shape_method and found:
            return (found.groupdict().get("t") or "system", code)
    raise AssertionError(f"{method} /fhir{path} is no FHIR interaction")


def test_every_route_is_an_interaction_the_statement_lists_and_the_other_way_round(
        app: FastAPI, statement: CapabilityStatement) -> None:
    routed = {interaction(method, route.path.removeprefix("/fhir"))
              for route in fhir_routes(app) for method in route.methods}
    [rest] = statement.rest
    declared = {(r.type, i.code) for r in rest.resource for i in r.interaction}
    declared |= {("system", i.code) for i in rest.interaction}
    assert routed == declared
    assert (statement.fhirVersion, statement.format, statement.kind) == (
        "4.0.1", ["json"], "instance")


def test_the_search_parameters_are_those_the_search_route_reads(
        app: FastAPI, statement: CapabilityStatement) -> None:
    [search] = [r for r in fhir_routes(app) if r.path == "/fhir/Task" and "GET" in r.methods]
    read = {p.alias or p.name for p in search.dependant.query_params} - CONTROLS
    [task] = [r for r in statement.rest[0].resource if r.type == "Task"]
    assert {p.name for p in task.searchParam} == read
    assert set(task.searchInclude) == {"Task:focus", "Task:patient"}


def test_the_fhir_routes_stay_out_of_the_openapi_document(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/fhir")]
