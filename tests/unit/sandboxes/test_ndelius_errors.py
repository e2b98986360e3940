"""The nDelius sandbox answers refusals in the two real HMPPS error shapes, over real HTTP."""

from pathlib import Path

import httpx
import pytest

from sandboxes.ndelius.app import create_app
from servers import LiveServer

UI = ("delius-ui", "delius-ui-sandbox-secret")


def officer(server: LiveServer) -> httpx.Client:
    token = httpx.post(f"{server.url}/auth/oauth/token", auth=UI,
                       params={"grant_type": "client_credentials", "username": "N03ACT1"})
    return httpx.Client(base_url=server.url, timeout=5.0, headers={
        "Authorization": f"Bearer {token.json()['access_token']}"})


@pytest.mark.parametrize("style", ["community-api", "integration"])
def test_a_conflict_and_a_bad_request_carry_the_status_and_a_message(
        tmp_path: Path, style: str) -> None:
    with LiveServer(create_app(database=tmp_path / "n03.db", provider="N03",
                               errors=style)) as server, officer(server) as ui:
        person = ui.get("/person", params={"size": 1}).json()["content"][0]
        conflict = ui.post("/person", json={
            "crn": person["crn"], "name": {"forename": "Sky", "surname": "Notreal"},
            "dateOfBirth": "1990-01-01", "gender": "F", "manager": {"team": "N03AOM"}})
        bad = ui.post("/nsi", json={"type": "TRF01"})
    assert (conflict.status_code, bad.status_code) == (409, 400)
    for answer in (conflict, bad):
        body = answer.json()
        assert body["status"] == answer.status_code
        if style == "integration":
            # hmpps-probation-integration-services: {status, message, fields?}
            assert set(body) <= {"status", "message", "fields"} and body["message"]
        else:
            # community-api: {status, errorCode, userMessage, developerMessage, moreInfo}
            assert body["userMessage"] and body["developerMessage"]
    if style == "integration":
        assert {"field": "offenderCrn", "message": "Field required"} in bad.json()["fields"]
