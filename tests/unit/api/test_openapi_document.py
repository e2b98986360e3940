"""The OpenAPI document is completed by rules, so every route tells the truth, a route
added later included."""

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI

from gateway import ROOT
from gateway.api import openapi
from gateway.api.app import create_app
from gateway.api.deps import PartnerDep
from gateway.contracts import Contracts
from gateway.settings import Settings

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("openapi")
    return create_app(Settings(database_url=f"sqlite:///{folder / 'unused.db'}")).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", operation)
            for path, item in document["paths"].items() for method, operation in item.items()]


def test_every_error_of_every_operation_is_a_documented_problem_with_its_headers(
    document: dict[str, Any]
) -> None:
    for label, operation in operations(document):
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Correlation-ID"], (label, status)
            if int(status) >= 400:
                assert response["content"] == PROBLEM, (label, status)
        assert {"$ref": "#/components/parameters/CorrelationId"} in operation["parameters"]
    assert "HTTPValidationError" not in str(document)


def test_what_each_partner_operation_may_answer_is_listed(document: dict[str, Any]) -> None:
    statuses = {label: set(op["responses"]) for label, op in operations(document)}
    assert statuses["POST /v1/referrals"] == {"201", "400", "401", "403", "409", "413", "415",
                                              "422", "429"}
    assert statuses["GET /v1/referrals/{referral_id}"] == {"200", "400", "401", "404", "429"}
    assert statuses["POST /v1/referrals/{referral_id}/events"] >= {"200", "201", "404", "409"}
    assert statuses["GET /v1/ops/dead-letters"] == {"200", "400", "401", "403"}
    assert "Retry-After" in document["paths"]["/v1/referrals"]["get"]["responses"]["429"][
        "headers"]


def test_the_referral_body_is_the_contract_with_its_examples_and_the_key_is_required(
    document: dict[str, Any]
) -> None:
    post = document["paths"]["/v1/referrals"]["post"]
    media = post["requestBody"]["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/contract.referral"}
    assert "valid-gbv-referral" in media["examples"]
    [key] = [p for p in post["parameters"] if p.get("name") == "idempotency-key"]
    assert key["required"] is True and key["in"] == "header"
    assert set(post["responses"]["201"]["headers"]) >= {"Location", "Idempotent-Replayed"}
    assert "GetReferral" in post["responses"]["201"]["links"]


def test_every_reference_of_the_document_resolves_inside_it(document: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
                r for value in node.values() for r in refs(value)]
        return [r for item in node for r in refs(item)] if isinstance(node, list) else []

    for ref in refs(document):
        assert ref.startswith("#/"), ref
        target: Any = document
        for token in ref[2:].split("/"):
            target = target[token]
    schemas = document["components"]["schemas"]
    assert "$id" not in schemas["contract.referral"]
    assert schemas["contract.referral"]["properties"]["sender"]["$ref"] == \
        "#/components/schemas/contract.referral.party"


def test_the_operations_api_declares_its_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["OperatorKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["paths"]["/v1/ops/mappings"]["get"]["security"] == [{"OperatorKey": []}]


def test_a_route_added_later_is_documented_by_the_same_rules() -> None:
    app = FastAPI()
    app.state.contracts = Contracts(ROOT / "contracts")
    router = APIRouter()

    async def timeline_checked(partner: PartnerDep) -> str:
        return partner.id

    @router.get("/v1/referrals/{referral_id}/timeline")
    def timeline(referral_id: str, _: Annotated[str, Depends(timeline_checked)]) -> list[str]:
        return [referral_id]

    app.include_router(router)
    openapi.install(app)
    responses = app.openapi()["paths"]["/v1/referrals/{referral_id}/timeline"]["get"][
        "responses"]
    assert set(responses) == {"200", "400", "401", "404", "429"}
    assert all(responses[s]["content"] == PROBLEM for s in ("400", "401", "404", "429"))
