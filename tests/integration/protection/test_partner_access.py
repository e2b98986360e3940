"""Partner credentials: OAuth2 client credentials beside API keys, over real HTTP."""

import base64

import httpx
from sqlalchemy import update

from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AccessToken
from servers import assert_problem

FORM = {"content-type": "application/x-www-form-urlencoded"}


def client_secret(cli, settings, partner_id: str) -> str:
    """What `casebridge partners credentials ID` prints once: the new client secret."""
    result = cli("partners", "credentials", partner_id, database_url=settings.database_url)
    assert result.exit_code == 0, result.output
    client_id, secret = (line.split(": ")[1] for line in result.stdout.splitlines())
    assert client_id == partner_id
    return secret


def test_client_credentials_give_a_token_that_works_like_an_api_key(
    new_partner, gateway, settings, make_referral, cli
) -> None:
    (sender, _), (receiver, _) = new_partner(), new_partner()
    secret = client_secret(cli, settings, sender)
    with httpx.Client(base_url=gateway.url) as anonymous:
        answer = anonymous.post("/oauth/token", headers=FORM, content=(
            f"grant_type=client_credentials&client_id={sender}&client_secret={secret}"))
        assert answer.status_code == 200, answer.text
        token = answer.json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
        basic = base64.b64encode(f"{sender}:{secret}".encode()).decode()
        assert anonymous.post("/oauth/token", content="grant_type=client_credentials",
                              headers={**FORM, "authorization": f"Basic {basic}"}
                              ).status_code == 200
        bearer = {"authorization": f"Bearer {token['access_token']}"}
        created = anonymous.post("/v1/referrals", json=make_referral(sender, receiver),
                                 headers={**bearer, "Idempotency-Key": "oauth-1"})
        assert created.status_code == 201, created.text
        assert anonymous.get("/v1/referrals", headers=bearer).json()["items"][0]["id"] == \
            created.json()["id"]
        # An expired token is refused like a wrong key.
        with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
            session.execute(update(AccessToken).where(AccessToken.partner_id == sender)
                            .values(expires_at=AccessToken.issued_at))
        assert_problem(anonymous.get("/v1/referrals", headers=bearer), 401, "not-authenticated")


def test_bad_token_requests_are_refused_with_the_oauth_error_and_a_pointer(
    new_partner, gateway, settings, cli
) -> None:
    partner, _ = new_partner()
    secret = client_secret(cli, settings, partner)
    with httpx.Client(base_url=gateway.url) as anonymous:
        wrong = assert_problem(anonymous.post("/oauth/token", headers=FORM, content=(
            f"grant_type=client_credentials&client_id={partner}&client_secret=x{secret}")),
            401, "oauth-invalid-client")
        assert wrong["error"] == "invalid_client" and secret not in str(wrong)
        grant = assert_problem(anonymous.post("/oauth/token", headers=FORM, content=(
            "grant_type=password&client_id=a&client_secret=b")), 400,
            "oauth-unsupported-grant-type")
        assert grant["errors"][0]["pointer"] == "/grant_type"
        missing = assert_problem(anonymous.post("/oauth/token", headers=FORM, content=(
            "grant_type=client_credentials")), 400, "oauth-invalid-request")
        assert {e["pointer"] for e in missing["errors"]} == {"/client_id", "/client_secret"}
        unreadable = assert_problem(anonymous.post(
            "/oauth/token", content="grant_type=client_credentials",
            headers={**FORM, "authorization": "basic %%%"}), 400, "oauth-invalid-request")
        assert unreadable["error"] == "invalid_request"
        lowercase = base64.b64encode(f"{partner}:{secret}".encode()).decode()
        assert anonymous.post("/oauth/token", content="grant_type=client_credentials",
                              headers={**FORM, "authorization": f"basic {lowercase}"}
                              ).status_code == 200
        assert_problem(anonymous.post("/oauth/token", json={"grant_type": "client_credentials"}),
                       415, "oauth-invalid-request")
        assert_problem(anonymous.post("/oauth/token", headers=FORM, content="x" * 5000), 413,
                       "oauth-invalid-request")
        # A new secret revokes the old one.
        client_secret(cli, settings, partner)
        assert anonymous.post("/oauth/token", headers=FORM, content=(
            f"grant_type=client_credentials&client_id={partner}&client_secret={secret}")
        ).status_code == 401
