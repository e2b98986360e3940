"""Health, readiness, OpenAPI, unplanned errors and what reaches the log."""

import io
import json
import shutil

import httpx

from gateway import ROOT
from gateway.logs import configure_logging
from gateway.settings import Settings
from servers import LiveServer, free_port


def test_healthz_answers(gateway) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_checks_database_and_broker(gateway) -> None:
    answer = httpx.get(f"{gateway.url}/readyz", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_reports_an_unreachable_broker(settings: Settings) -> None:
    closed_port = free_port()
    broken = settings.model_copy(update={
        "amqp_url": f"amqp://guest:guest@127.0.0.1:{closed_port}/%2F", "readiness_timeout": 1.0})
    with LiveServer(broken) as server:
        answer = httpx.get(f"{server.url}/readyz", timeout=10)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    checks = answer.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"].startswith("unreachable")
    assert "guest" not in answer.text


def test_openapi_documents_the_partner_api(gateway) -> None:
    spec = httpx.get(f"{gateway.url}/openapi.json").json()
    assert {"/v1/referrals", "/v1/referrals/{referral_id}", "/v1/referrals/{referral_id}/events",
            "/healthz", "/readyz"} <= set(spec["paths"])
    assert "requestBody" in spec["paths"]["/v1/referrals"]["post"]
    assert "/v1/noop" not in spec["paths"]


def test_contracts_are_published(gateway) -> None:
    schema = httpx.get(f"{gateway.url}/v1/contracts/referral").json()
    assert schema["$id"].endswith("/v1/referral.json")
    assert httpx.get(f"{gateway.url}/v1/contracts/nothing").status_code == 404


def test_an_unplanned_failure_is_a_plain_500_and_logs_no_values(tmp_path, make_referral) -> None:
    # A store that was never migrated: every query fails inside the database driver.
    unmigrated = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    captured = io.StringIO()
    configure_logging(level="info", json=True, stream=captured)
    try:
        with LiveServer(unmigrated) as server:
            answer = httpx.post(f"{server.url}/v1/referrals",
                                json=make_referral("primero-a", "progres-b"),
                                headers={"Authorization": "Bearer cbk_zawadi_secret_key",
                                         "Idempotency-Key": "k-1",
                                         "X-Correlation-ID": "corr-test-500-abc"})
    finally:
        configure_logging(level="info", json=True)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in answer.text and "sqlite" not in answer.text.lower()
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    failure = next(line for line in lines if line["event"] == "request_failed")
    assert failure["error_type"] == "OperationalError"
    assert failure["correlation_id"] == "corr-test-500-abc"
    log_text = captured.getvalue()
    for secret in ("Zawadi", "Fictionalson", "2014-03-09", "cbk_zawadi_secret_key", "Traceback"):
        assert secret not in log_text


def test_every_log_line_of_a_referral_carries_its_correlation_id(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    captured = io.StringIO()
    configure_logging(level="info", json=True, stream=captured)
    try:
        client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                    headers={"Idempotency-Key": "corr-k",
                                             "X-Correlation-ID": "corr-log-check-1"})
    finally:
        configure_logging(level="info", json=True)
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("correlation_id") == "corr-log-check-1"]
    assert {"referral_submitted", "request_handled"} <= {line["event"] for line in mine}
    assert "Zawadi" not in captured.getvalue()


def test_operators_see_mappings_in_force_and_refused(settings, tmp_path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    ops = settings.model_copy(update={"operator_key": "ops-key-for-tests",
                                      "mappings_dir": mappings})
    # The first read compiles every mapping: on a loaded machine that takes seconds.
    with LiveServer(ops) as server, httpx.Client(
            base_url=server.url, timeout=60,
            headers={"Authorization": "Bearer ops-key-for-tests"}) as client:
        first = client.get("/v1/ops/mappings").json()
        assert "primero/referral-status" in {m["mapping"] for m in first["in_force"]}
        assert first["refused"] == []
        broken = mappings / "primero" / "referral-status.yaml"
        broken.write_text(broken.read_text().replace("contract: status-event",
                                                     "contract: status-event\nsurprise: 1"))
        later = client.get("/v1/ops/mappings").json()
    [refusal] = later["refused"]
    assert refusal["file"].endswith("referral-status.yaml")
    assert any("surprise" in problem for problem in refusal["problems"])
    # the last good version stays in force
    assert "primero/referral-status" in {m["mapping"] for m in later["in_force"]}


def test_openapi_declares_how_partners_and_operators_authenticate(gateway) -> None:
    spec = httpx.get(f"{gateway.url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {(s["type"], s.get("scheme") or s.get("name")) for s in schemes.values()} >= {
        ("http", "bearer"), ("apiKey", "X-API-Key"), ("http", "basic")}
    named = {name for entry in spec["paths"]["/v1/referrals"]["get"]["security"]
             for name in entry}
    assert {schemes[name]["type"] for name in named} == {"http", "apiKey"}
    assert spec["paths"]["/v1/ops/dead-letters"]["get"]["security"]


def test_the_operator_key_is_read_whatever_the_case_of_bearer(settings) -> None:
    ops = settings.model_copy(update={"operator_key": "ops-key-for-tests"})
    with LiveServer(ops) as server:
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = httpx.get(f"{server.url}/v1/ops/dead-letters",
                               headers={"Authorization": f"{scheme} ops-key-for-tests"})
            assert answer.status_code == 200, (scheme, answer.text)
        refused = httpx.get(f"{server.url}/v1/ops/dead-letters",
                            headers={"Authorization": "Basic ops-key-for-tests"})
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
