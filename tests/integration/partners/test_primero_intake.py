"""Cases a Primero caseworker refers through the gateway, polled from the Primero sandbox
over HTTP and submitted by the real poller into a real store (SQLite and PostgreSQL).

"Nothing lost, no child missed": consent recorded only as Primero's tick boxes is enough;
a case without consent is dead-lettered as a consent problem naming what is missing; a
child recorded by age alone gets the child safeguards; a note too long for any limit, in
a category nobody shares, is left out rather than refusing the referral.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.contracts import Contracts
from gateway.delivery.poller import Poller
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import DeadLetter, Partner, Referral
from sandboxes.primero.app import create_app
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from servers import LiveServer, fresh_store
from sharing import write_agreement

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = Contracts(ROOT / "contracts")
SENDER, RECEIVER = "primero-ssd", "progres-eth"
LONG_NOTE = "Fictional tracing note. " * 2700  # about 65,000 characters


@pytest.fixture
def ssd(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "primero.db", instance="cpims-ssd")) as server:
        yield server


def make_poller(database_url: str, folder: Path, ssd: LiveServer, **agreement: Any
                ) -> Iterator[tuple[Poller, Any]]:
    with fresh_store(database_url, folder) as url:
        sessions = make_sessionmaker(make_engine(url))
        with unit_of_work(sessions) as session:
            partner, _ = register_partner(session=session, partner_id=SENDER, name="x",
                                          system="primero")
            partner.connection = {"base_url": ssd.url, "credentials": {
                "user": GATEWAY_USER, "password": SANDBOX_PASSWORD}}
            register_partner(session=session, partner_id=RECEIVER, name="y", system="progres")
        write_agreement(folder / "agreements", "isp-ssd-eth", [SENDER, RECEIVER], **agreement)
        poller = Poller(sessions=sessions, contracts=CONTRACTS,
                        agreements=AgreementRegistry(folder / "agreements", CONTRACTS),
                        translator=MappingTranslator(ROOT / "mappings", contracts=CONTRACTS))
        poller.poll(SENDER)  # the first poll only sets the cursor: what follows is news
        yield poller, sessions


@pytest.fixture
def poller(database_url: str, tmp_path: Path, ssd: LiveServer) -> Iterator[tuple[Poller, Any]]:
    """A poller of primero-ssd; its agreement with progres-eth shares no case notes and
    requires a Best Interests Assessment and the child's assent for a child."""
    yield from make_poller(database_url, tmp_path, ssd, requires_bia_for_children=True,
                           requires_child_assent=True, data_categories={
                               "referral": ["identity", "demographics", "contact",
                                            "protection"],
                               "transfer": ["identity", "demographics", "protection"]})


def refer(ssd: LiveServer, *, overridden: bool = False, **fields: Any) -> str:
    """A caseworker opens a child's case and refers it to UNHCR Ethiopia through the
    gateway user; returns the case id."""
    login = httpx.post(f"{ssd.url}/api/v2/tokens", json={"user": {
        "user_name": "cp_worker", "password": SANDBOX_PASSWORD}}).json()
    with httpx.Client(base_url=f"{ssd.url}/api/v2", timeout=10, headers={
            "Authorization": f"Bearer {login['token']}"}) as caseworker:
        data = {"module_id": "primeromodule-cp", "name_first": "Kiden",
                "name_last": "Testwell", "sex": "female", "protection_concerns": ["refugee"],
                "services_section": [{"service_type": "family_seunification_service",
                                      "service_response_type": "service_provision"}],
                **fields}
        answer = caseworker.post("/cases", json={"data": data})
        assert answer.status_code == 200, answer.text
        case = answer.json()["data"]
        answer = caseworker.post(f"/cases/{case['id']}/referrals", json={"data": {
            "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
            "service": "family_seunification_service", "consent_overridden": overridden,
            "service_record_id": case["services_section"][0]["unique_id"],
            "notes": "Cross-border tracing."}})
        assert answer.status_code == 200, answer.text
        return str(case["id"])


def taken(poller: tuple[Poller, Any]) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Poll once: the stored referrals' content and the inbound dead letters."""
    gateway, sessions = poller
    result = gateway.poll(SENDER)
    with sessions() as session:
        stored = [session.get_one(Referral, i).content for i in result.submitted]
        dead = list(session.scalars(select(DeadLetter).where(
            DeadLetter.partner_id == SENDER, DeadLetter.direction == "inbound")))
        session.expunge_all()
    return stored, dead


def test_consent_recorded_only_as_tick_boxes_lets_the_referral_go(poller, ssd) -> None:
    refer(ssd, consent_for_services=True, disclosure_other_orgs=True, age=30)
    [content], dead = taken(poller)
    assert dead == []
    assert content["consent"]["given_by"] == "self"
    assert content["consent"]["scope"]["purposes"] == ["referral"]
    assert content["subject"]["age"]["years"] == 30
    assert content["subject"]["is_minor"] is False


def test_a_polled_referral_keeps_the_hash_of_the_mapping_that_made_it(poller, ssd) -> None:
    refer(ssd, consent_for_services=True, disclosure_other_orgs=True, age=30)
    gateway, sessions = poller
    [referral_id] = gateway.poll(SENDER).submitted
    with sessions() as session:
        stored = session.get_one(Referral, referral_id).mapping_hash
    assert stored is not None and stored.startswith("sha256:")


def test_a_case_without_consent_is_dead_lettered_as_a_consent_problem(poller, ssd) -> None:
    # Primero lets a caseworker override its own consent check; the gateway does not.
    refer(ssd, overridden=True, consent_source="caregiver", age=30)
    stored, [dead] = taken(poller)
    assert stored == []
    assert dead.reason == "consent-required"
    assert "/consent/scope/purposes required" in dead.detail
    assert "/consent/scope/data_categories required" in dead.detail
    assert "Kiden" not in dead.detail


def test_a_child_known_only_by_age_gets_the_child_safeguards(poller, ssd) -> None:
    refer(ssd, consent_for_services=True, disclosure_other_orgs=True, age=12,
          module_id="primeromodule-cp")
    stored, [dead] = taken(poller)
    assert stored == []
    assert dead.reason == "child-safeguard-required"
    assert "/consent/bia_reference bia-required" in dead.detail


def test_a_child_protection_case_without_age_or_birth_date_is_a_childs(poller, ssd) -> None:
    refer(ssd, consent_for_services=True, disclosure_other_orgs=True)
    stored, [dead] = taken(poller)
    assert (stored, dead.reason) == ([], "child-safeguard-required")


def test_a_note_nobody_shares_is_left_out_whatever_its_length(
        database_url, tmp_path, ssd) -> None:
    # An adult, so that only the note is in question; case notes are not shared.
    for gateway in make_poller(database_url, tmp_path, ssd, data_categories={
            "referral": ["identity", "demographics", "protection"],
            "transfer": ["identity", "demographics", "protection"]}):
        case = {"consent_for_services": True, "disclosure_other_orgs": True, "age": 34,
                "module_id": "primeromodule-cp", "services_section": [{
                    "service_type": "family_seunification_service",
                    "service_referral_notes": LONG_NOTE}]}
        refer(ssd, **case)
        [content], dead = taken(gateway)
        assert dead == []
        assert "notes" not in content["services"][0] and "reason" not in content
        with gateway[1]() as session:
            [row] = session.scalars(select(Referral).where(Referral.sender_id == SENDER))
            assert "/services/0/notes" in row.withheld
            assert session.get(Partner, RECEIVER) is not None


def test_other_names_middle_name_and_the_owners_group_reach_the_record(poller, ssd) -> None:
    refer(ssd, consent_for_services=True, disclosure_other_orgs=True, age=40,
          name_middle="Achan", name_nickname="Kid", name_other="Kiden Fictional")
    [content], _ = taken(poller)
    assert content["subject"]["middle_name"] == "Achan"
    assert content["subject"]["other_names"] == "Kiden Fictional, Kid"
    assert content["sender"]["user"] == "cp_worker"
    assert content["sender"]["unit"].startswith("usergroup-")
    assert uuid.UUID(content["external_reference"])
