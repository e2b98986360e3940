"""The sandboxes' HS256 access tokens and the nDelius working-day calendar."""

from __future__ import annotations

from datetime import date

import jwt
import pytest

from sandboxes.ndelius.auth import DEFAULT_CLIENTS
from sandboxes.ndelius.auth import TokenIssuer as NdeliusIssuer
from sandboxes.ndelius.errors import Unauthorised
from sandboxes.ndelius.store import add_working_days
from sandboxes.progres.auth import Client
from sandboxes.progres.auth import TokenIssuer as ProgresIssuer
from sandboxes.progres.errors import ODataError

FORM = {"grant_type": "client_credentials", "client_id": "casebridge",
        "client_secret": "sandbox-secret", "scope": "https://progres.example/.default"}


def progres(lifetime: float = 60) -> ProgresIssuer:
    return ProgresIssuer({"casebridge": Client("casebridge", "sandbox-secret", "user-1")},
                         lifetime=lifetime)


def progres_refusal(issuer: ProgresIssuer, token: str) -> str:
    with pytest.raises(ODataError) as refused:
        issuer.verify(f"Bearer {token}", challenge="Bearer")
    assert refused.value.status == 401
    return str(refused.value.body())


def test_a_progres_token_is_a_jwt_for_its_application_user() -> None:
    issuer = progres()
    token = str(issuer.issue(FORM)["access_token"])
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["aud"], claims["oid"]) == ("https://progres.example", "user-1")
    assert issuer.verify(f"Bearer {token}", challenge="Bearer").user_id == "user-1"


def test_a_progres_token_tampered_expired_or_revoked_is_refused() -> None:
    issuer = progres()
    token = str(issuer.issue(FORM)["access_token"])
    assert "not valid" in progres_refusal(issuer, token[:-2] + "xx")
    issuer.revoke_all()
    assert "not valid" in progres_refusal(issuer, token)
    issuer.lifetime = -5
    assert "has expired" in progres_refusal(issuer, str(issuer.issue(FORM)["access_token"]))


def test_an_ndelius_token_carries_the_officer_and_roles_and_expires() -> None:
    issuer = NdeliusIssuer(DEFAULT_CLIENTS, lifetime=60)
    answer = issuer.issue("delius-ui", "N07P001")
    assert jwt.get_unverified_header(answer["access_token"])["kid"] == "sandbox"
    who = issuer.verify(answer["access_token"])
    assert (who.client_id, who.user) == ("delius-ui", "N07P001")
    issuer.revoke_all()
    with pytest.raises(Unauthorised, match="Invalid access token"):
        issuer.verify(answer["access_token"])
    issuer.lifetime = -5
    with pytest.raises(Unauthorised, match="Access token expired"):
        issuer.verify(issuer.issue("casebridge", None)["access_token"])


@pytest.mark.parametrize(("start", "days", "due"), [
    (date(2026, 12, 24), 2, date(2026, 12, 30)),  # Christmas Friday, Boxing Day on Monday
    (date(2026, 4, 2), 1, date(2026, 4, 7)),      # Good Friday and Easter Monday
    (date(2026, 3, 6), 10, date(2026, 3, 20)),    # two plain weeks
])
def test_ndelius_due_dates_skip_weekends_and_english_bank_holidays(
        start: date, days: int, due: date) -> None:
    assert add_working_days(start, days) == due
