"""The shipped Primero mappings against the Primero sandbox, through the real adapter.

A canonical referral goes out (referral-to-case.out.yaml), the adapter makes the case and
its referral in the sandbox over HTTP, reads them back, and the inbound mapping
(case-to-referral.in.yaml) must give back what went out; a status set through the
status mapping must read back as the same canonical status.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.primero import PrimeroAdapter
from gateway.contracts import Contracts
from gateway.mapping.translator import MappingTranslator
from sandboxes.primero.app import create_app
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from servers import LiveServer

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def primero(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(database=tmp_path / "primero.db", instance="cpims-gambella",
                     agency="agency-unicef-gambella")
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def adapter(primero: LiveServer) -> Iterator[PrimeroAdapter]:
    client = PrimeroAdapter(primero.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD,
                            intake_user="cp_worker")
    yield client
    client.close()


def log_in(server: LiveServer, user_name: str) -> httpx.Client:
    """A Primero user's own session, as the Primero UI would have it."""
    answer = httpx.post(f"{server.url}/api/v2/tokens",
                        json={"user": {"user_name": user_name, "password": SANDBOX_PASSWORD}})
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server.url}/api/v2", timeout=10,
                        headers={"Authorization": f"Bearer {answer.json()['token']}"})


@pytest.fixture(scope="module")
def translator() -> MappingTranslator:
    return MappingTranslator(ROOT / "mappings", contracts=Contracts(ROOT / "contracts"))


def test_a_referral_sent_to_primero_reads_back_as_the_same_referral(
        adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    outbound = translator.registry.get("primero", "referral-to-case")
    sent = outbound.mapping.blocks["outbound"].examples[0].input
    native, content_hash = translator.outbound("primero", "referral", sent)
    assert content_hash == outbound.content_hash

    native_id = adapter.create(referral_id=f"cbr-{uuid.uuid4()}", kind="referral",
                               record=native)
    stored = adapter.read(native_id=native_id)
    back, _ = translator.inbound("primero", "referral", stored)

    subject = {k: v for k, v in sent["subject"].items() if k != "birth_date_precision"}
    assert {k: back["subject"][k] for k in subject if k != "identifiers"} == {
        k: v for k, v in subject.items() if k != "identifiers"}
    assert back["subject"]["birth_date_precision"] == "estimated"  # Primero: "year" is estimated
    progres = [i for i in back["subject"]["identifiers"] if i["system"].startswith("progres")]
    assert progres == sent["subject"]["identifiers"]
    assert back["receiver"]["partner"] == sent["receiver"]["partner"]
    assert back["case"]["module"] == sent["case"]["module"]
    assert back["case"]["risk_level"] == "high"  # Primero has no very_high
    assert [s["type"] for s in back["services"]] == ["alternative_care", "medical_care"]
    assert [s["urgency"] for s in back["services"]] == ["emergency", "urgent"]
    assert back["consent"]["given_by"] == sent["consent"]["given_by"]
    assert back["consent"]["scope"]["purposes"] == ["referral"]


def test_statuses_set_in_primero_read_back_as_canonical_statuses(
        primero: LiveServer, adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    sent = translator.registry.get("primero", "referral-to-case").mapping.blocks[
        "outbound"].examples[0].input
    native, _ = translator.outbound("primero", "referral", sent)
    native_id = adapter.create(referral_id=f"cbr-{uuid.uuid4()}", kind="referral",
                               record=native)
    case_id, _, transition_id = native_id.split("/")
    assert translator.status_in("primero", "referral", adapter.read(native_id=native_id))[
        "status"] == "delivered"
    with log_in(primero, "cp_worker") as receiver:
        for primero_status, canonical in (("accepted", "accepted"), ("done", "completed")):
            answer = receiver.patch(f"/cases/{case_id}/referrals/{transition_id}",
                                    json={"data": {"status": primero_status}})
            assert answer.status_code == 200, answer.text
            event = translator.status_in("primero", "referral",
                                         adapter.read(native_id=native_id))
            assert (event["status"], event["source_status"]) == (canonical, primero_status)


def test_canonical_statuses_sent_to_primero_read_back_as_themselves(
        primero: LiveServer, adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    with log_in(primero, "cp_worker") as sender:
        cases = sender.get("/cases", params={"per": 1}).json()["data"]
        case_id = cases[0]["id"]
        made = sender.post(f"/cases/{case_id}/referrals", json={"data": {
            "transitioned_to": GATEWAY_USER, "consent_overridden": True,
            "notes": "Fictional referral to the gateway."}})
        assert made.status_code == 200, made.text
    native_id = f"{case_id}/referrals/{made.json()['data']['id']}"
    for canonical in ("accepted", "completed"):
        body = translator.status_out("primero", "referral", {"status": canonical})
        adapter.update_status(native_id=native_id, referral_id="r-1", status=body)
        event = translator.status_in("primero", "referral", adapter.read(native_id=native_id))
        assert event["status"] == canonical
