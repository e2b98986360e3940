"""What a hostile or runaway caller meets over real HTTP: JSON limits, rate limits, and the
security headers of every answer."""

import json

import httpx

from servers import assert_problem, key


def test_two_hundred_thousand_nested_brackets_are_a_400_naming_the_limit(
    new_partner, client_for
) -> None:
    _, sender_key = new_partner()
    response = client_for(sender_key).post(
        "/v1/referrals", content=b"[" * 200_000 + b"]" * 200_000,
        headers={**key(), "Content-Type": "application/json"})
    body = assert_problem(response, 400, "json-limit")
    assert body["limit"] == {"name": "json_max_depth", "value": 32}


def test_an_overlong_string_is_a_413_naming_the_field(new_partner, client_for,
                                                      make_referral) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document = make_referral(sender, receiver, reason="Zawadi " * 10_000)
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 413, "json-limit")
    assert body["errors"][0]["pointer"] == "/reason"
    assert "Zawadi" not in json.dumps(body)


def test_a_partner_over_its_own_limit_waits_and_the_others_do_not(
    new_partner, client_for, cli, settings
) -> None:
    (busy, busy_key), (_, other_key) = new_partner(), new_partner()
    limited = cli("partners", "limit", busy, "--per-second", "0.01", "--burst", "3",
                  database_url=settings.database_url)
    assert limited.exit_code == 0, limited.output
    busy_client = client_for(busy_key)
    assert [busy_client.get("/v1/referrals").status_code for _ in range(3)] == [200] * 3
    refused = busy_client.get("/v1/referrals")
    body = assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["Retry-After"]) == body["retry_after"] >= 60
    assert body["limit"] == {"per_second": 0.01, "burst": 3}
    assert client_for(other_key).get("/v1/referrals").status_code == 200
    back = cli("partners", "limit", busy, "--default", database_url=settings.database_url)
    assert back.exit_code == 0 and "default a second" in back.output
    assert busy_client.get("/v1/referrals").status_code == 200


def test_every_answer_carries_the_security_headers(gateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        api = client.get("/v1/referrals")  # a problem: refusals carry them too
        assert api.status_code == 401
        console = client.get("/console/login")
    for answer in (api, console):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["Referrer-Policy"] == "no-referrer"
    csp = console.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp  # its one own script
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert console.headers["Referrer-Policy"] == "same-origin"  # keeps its forms' Origin


def test_hsts_is_sent_over_https_only(gateway) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a TLS proxy on the host.
    answer = httpx.get(f"{gateway.url}/healthz", headers={"X-Forwarded-Proto": "https"})
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_caller_without_a_valid_key_learns_nothing_of_its_body(gateway) -> None:
    """No key, or a wrong one, is a 401 before the body is parsed or checked; only the
    media type and size are looked at first (they are read before the key is)."""
    headers = {**key(), "Content-Type": "application/json"}
    with httpx.Client(base_url=gateway.url) as client:
        for credentials in ({}, {"Authorization": "Bearer cbk_not-a-key"},
                            {"X-API-Key": "not-a-key"}):
            for body in (b"{not json", b"[" * 200_000, b'{"kind": "referral"}'):
                answer = client.post("/v1/referrals", content=body,
                                     headers={**headers, **credentials})
                assert_problem(answer, 401, "not-authenticated")
        wrong_type = client.post("/v1/referrals", content=b"{}", headers={
            **key(), "Content-Type": "text/plain", "Authorization": "Bearer cbk_not-a-key"})
        assert_problem(wrong_type, 415, "unsupported-media-type")
