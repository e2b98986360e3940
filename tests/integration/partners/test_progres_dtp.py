"""proGres's second channel, the messages of UNHCR's integration layer (DTP), end to end
against the real proGres sandbox and a real gateway over HTTP (SQLite and PostgreSQL).

The sandbox pushes interventions and review decisions to the gateway's DTP endpoint as
DTP does; the gateway's deliverer (what a worker runs, here without the broker) sends
referrals, decisions and feedback to the sandbox's DTP endpoints through the proGres DTP
adapter. Each flow is checked on both sides: in the gateway's store, and in proGres as
its own staff would read it through the Web API.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.progres.dtp import ProgresDtpAdapter, service_key
from gateway.contracts import Contracts
from gateway.delivery import dead_letters
from gateway.delivery.poller import Poller
from gateway.delivery.worker import Deliverer, Done
from gateway.errors import TransientDeliveryError
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import (
    AuditEntry,
    DeadLetter,
    OutboxMessage,
    Partner,
    PartnerRecord,
    Referral,
    utcnow,
)
from sandboxes.progres.app import create_app
from sandboxes.progres.dtp import DEFAULT_SUBSCRIPTION_KEY
from sandboxes.progres.schema import ReferralStatus
from sandboxes.progres.seed import CASEWORKER_USER, individual_id, intervention_type_id, sid
from servers import LiveServer, gateway_marks_delivered
from sharing import write_agreement

API = "/api/data/v9.2"
PROGRES, UNICEF, PROBATION = "progres-eth", "primero-ssd", "ndelius-n07"
AGREED_SERVICES = ["alternative_care", "best_interests_assessment",
                   "best_interests_determination", "family_tracing_reunification"]
CATEGORIES = ["identity", "demographics", "contact", "protection", "risk", "case-notes"]


@dataclass
class World:
    settings: Settings
    sessions: sessionmaker[Session]
    contracts: Contracts
    gateway: LiveServer
    progres: LiveServer
    keys: dict[str, str]
    translator: MappingTranslator

    def staff(self, client_id: str = "progres-caseworker",
              secret: str = "caseworker-secret") -> httpx.Client:
        """proGres staff on the Web API, as a proGres form calls it."""
        token = httpx.post(f"{self.progres.url}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret, "scope": f"{self.progres.url}/.default"})
        assert token.status_code == 200, token.text
        return httpx.Client(base_url=f"{self.progres.url}{API}", timeout=10, headers={
            "Authorization": f"Bearer {token.json()['access_token']}"})

    def api(self, partner_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[partner_id]}"})

    def deliverer(self) -> Deliverer:
        return Deliverer(sessions=self.sessions, contracts=self.contracts,
                         translator=self.translator)

    def deliver_pending(self, target: str) -> list[Any]:
        """What the relay and a worker do with the outbox rows for `target`, without the
        broker; the outcomes."""
        with self.sessions() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.envelope).where(
                OutboxMessage.published_at.is_(None),
                OutboxMessage.routing_key.like(f"%.{target}"))
                .order_by(OutboxMessage.id)).all()
        outcomes = []
        for row_id, envelope in rows:
            outcomes.append(self.deliverer().handle(envelope, 1))
            with unit_of_work(self.sessions) as session:
                session.get_one(OutboxMessage, row_id).published_at = utcnow()
        return outcomes


@pytest.fixture(scope="module")
def world(settings: Settings, isolated_database_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("dtp")
    agreements = folder / "agreements"
    write_agreement(agreements, "isp-progres-unicef", [PROGRES, UNICEF], purposes=["referral"],
                    service_types=AGREED_SERVICES, data_categories={"referral": CATEGORIES},
                    consent_recorded_by=[PROGRES])
    # No consent_recorded_by: every referral between these two must carry its consent.
    write_agreement(agreements, "isp-progres-probation", [PROGRES, PROBATION],
                    purposes=["referral"], data_categories={"referral": CATEGORIES})
    mine = settings.model_copy(update={"database_url": isolated_database_url,
                                       "agreements_dir": agreements})
    sessions = make_sessionmaker(make_engine(isolated_database_url))
    contracts = Contracts(mine.contracts_dir)
    with LiveServer(create_app(database=folder / "progres.db")) as progres, \
            LiveServer(mine) as gateway:
        keys = {}
        with unit_of_work(sessions) as session:
            for partner_id, system in ((PROGRES, "progres"), (UNICEF, "primero"),
                                       (PROBATION, "ndelius")):
                _, keys[partner_id] = register_partner(
                    session=session, partner_id=partner_id, name=partner_id, system=system)
            session.get_one(Partner, PROGRES).connection = {
                "base_url": f"{progres.url}/dtp", "channel": "dtp",
                "credentials": {"subscription_key": DEFAULT_SUBSCRIPTION_KEY}}
        inbox = httpx.put(f"{progres.url}/_sandbox/dtp/inbox", json={
            "url": f"{gateway.url}/v1/progres/dtp",
            "headers": {"Authorization": f"Bearer {keys[PROGRES]}"}})
        assert inbox.status_code == 200, inbox.text
        yield World(mine, sessions, contracts, gateway, progres, keys,
                    MappingTranslator(mine.mappings_dir, contracts=contracts))


# -- proGres refers interventions to partners --------------------------------------------

def intervention(world: World, *, person: str = "testa", service: str = "FTR",
                 provider: str = "unicef", **consent: Any) -> dict[str, Any]:
    """A caseworker records an intervention referred to a partner; the row, as read back."""
    with world.staff() as staff:
        made = staff.post("/progres_lpinterventions", headers={
            "Prefer": "return=representation"}, json={
            "progres_individual@odata.bind": f"/progres_individuals({individual_id(person)})",
            "progres_interventiontype2@odata.bind":
                f"/progres_interventiontypes({intervention_type_id(service)})",
            "progres_interventionserviceprovider@odata.bind":
                f"/progres_partners({sid(f'progres_partner:{provider}')})",
            "progres_businessowner@odata.bind": f"/systemusers({CASEWORKER_USER})",
            "progres_interventionstartdate": "2026-11-02T08:30:00Z",
            "progres_interventiondescription": "<p>Fictional: the service asked.</p>",
            **consent})
    assert made.status_code == 201, made.text
    return dict(made.json())


def push(world: World, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    """DTP pushes these interventions to the gateway; the feedback it was answered."""
    answer = httpx.post(f"{world.progres.url}/_sandbox/dtp/push", timeout=60, json={
        "interventions": [r["progres_lpinterventionid"] for r in rows]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == 200, answer.json()
    return list(answer.json()["answer"]["feedback"])


def as_progres_sees(world: World, row: dict[str, Any]) -> dict[str, Any]:
    with world.staff() as staff:
        read = staff.get(f"/progres_lpinterventions({row['progres_lpinterventionid']})")
    assert read.status_code == 200, read.text
    return dict(read.json())


def referrals_from(world: World, external_reference: str) -> list[Referral]:
    with world.sessions() as session:
        return [r for r in session.scalars(select(Referral).where(
            Referral.sender_id == PROGRES)) if r.content.get("external_reference") ==
            external_reference]


def letters(world: World) -> list[DeadLetter]:
    with world.sessions() as session:
        return list(session.scalars(select(DeadLetter).where(
            DeadLetter.partner_id == PROGRES, DeadLetter.direction == "inbound")
            .order_by(DeadLetter.id)))


def test_a_pushed_intervention_becomes_a_referral_and_a_resend_creates_nothing_new(
        world: World) -> None:
    row = intervention(world)  # no consent on it: proGres recorded it, the agreement says
    number = row["progres_interventionnumber"]

    [answer] = push(world, row)

    [referral] = referrals_from(world, number)
    assert answer == {"request_type": "Feedback", "progres_interventionnumber": number,
                      "case_id": referral.id, "status": "Pending Acknowledgement"}
    assert (referral.receiver_id, referral.status, referral.kind) == (UNICEF, "submitted",
                                                                      "referral")
    content = referral.content
    assert content["consent"]["recorded_by_sender"] is True
    assert "given_by" not in content["consent"]
    # proGres's consent covers identity, demographics, contact and protection: the notes
    # (case-notes) are left out, as the consent gate leaves out any such field.
    assert content["services"] == [{"type": "family_tracing_reunification"}]
    assert "/services/0/notes" in referral.withheld and "reason" not in content
    assert content["subject"]["given_name"] == "Testa"
    assert {"system": "progres_group", "value": "DAD-26-00001"} in \
        content["subject"]["identifiers"]  # read from the lookup's Name
    with world.sessions() as session:
        assert session.scalar(select(PartnerRecord.native_id).where(
            PartnerRecord.referral_id == referral.id)) == f"intervention/{number}"
    seen = as_progres_sees(world, row)
    assert (seen["progres_partnerstatus"], seen["progres_partnercaseid"]) == (
        "Pending Acknowledgement", referral.id)

    assert push(world, row) == [answer]  # DTP resends it: the same answer, nothing new
    assert len(referrals_from(world, number)) == 1


def test_without_consent_and_no_agreement_recording_it_the_intervention_is_refused(
        world: World) -> None:
    row = intervention(world, person="samplo", service="BID", provider="probation")
    number = row["progres_interventionnumber"]

    [answer] = push(world, row)

    assert (answer["status"], answer["progres_interventionnumber"]) == ("Delivery Fail", number)
    assert "consent_recorded_by" in answer["closure_reason"]
    assert "/consent/recorded_by_sender" in answer["closure_reason"]
    assert "Samplo" not in answer["closure_reason"]
    assert referrals_from(world, number) == []
    seen = as_progres_sees(world, row)
    assert seen["progres_partnerstatus"] == "Delivery Fail"
    assert seen["progres_partnerclosurereason"] == answer["closure_reason"]
    [letter] = [x for x in letters(world) if x.change and x.change["native_id"] ==
                f"intervention/{number}"]
    assert (letter.reason, letter.message_type) == ("consent-required", "referral")
    with world.sessions() as session:
        refusal = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "referral.refuse", AuditEntry.partner_id == PROGRES)
            .order_by(AuditEntry.seq.desc())).first()
    assert refusal is not None and refusal.detail["problem"] == "consent-required"
    assert refusal.detail["rules"] == ["consent-not-carried"]

    # The same intervention, now carrying the consent proGres recorded: it goes.
    with world.staff() as staff:
        assert staff.patch(f"/progres_lpinterventions({row['progres_lpinterventionid']})", json={
            "progres_consentobtained": True, "progres_consentdate": "2026-11-01",
            "progres_consentgivenby": 125080000, "progres_consentform": 125080000}
        ).status_code == 204
    [again] = push(world, row)
    assert again["status"] == "Pending Acknowledgement"
    [referral] = referrals_from(world, number)
    assert referral.receiver_id == PROBATION
    assert referral.content["consent"]["given_by"] == "self"


def test_a_refused_intervention_is_redriven_once_the_agreement_records_consent(
        world: World, tmp_path: Path) -> None:
    row = intervention(world, person="demo", service="BIA", provider="probation")
    number = row["progres_interventionnumber"]
    assert push(world, row)[0]["status"] == "Delivery Fail"
    [letter] = [x for x in letters(world) if x.change and x.change["native_id"] ==
                f"intervention/{number}"]

    agreements = Path(world.settings.agreements_dir)
    before = (agreements / "isp-progres-probation.yaml").read_bytes()
    write_agreement(agreements, "isp-progres-probation", [PROGRES, PROBATION],
                    purposes=["referral"], data_categories={"referral": CATEGORIES},
                    consent_recorded_by=[PROGRES])
    try:
        with unit_of_work(world.sessions) as session:
            assert dead_letters.redrive(session=session, contracts=world.contracts,
                                        letters=[session.get_one(DeadLetter, letter.id)],
                                        actor="user:tester") == [letter.id]
        poller = Poller(sessions=world.sessions, contracts=world.contracts,
                        agreements=AgreementRegistry(agreements, world.contracts),
                        translator=world.translator)
        result = poller.poll(PROGRES)
    finally:
        (agreements / "isp-progres-probation.yaml").write_bytes(before)

    assert (result.retaken, len(result.submitted)) == (1, 1)
    [referral] = referrals_from(world, number)
    assert referral.content["consent"]["recorded_by_sender"] is True
    with world.sessions() as session:
        assert session.get_one(DeadLetter, letter.id).change is None  # taken


def test_only_the_agreed_service_types_pass_the_others_get_delivery_fail(
        world: World) -> None:
    with world.staff() as staff:  # a type this office added after the code list was written
        added = staff.post("/progres_interventiontypes", headers={
            "Prefer": "return=representation"}, json={
            "progres_code": "CASH", "progres_description": "Cash assistance",
            "progres_interopenabled": False})
    assert added.status_code == 201, added.text
    rows = [intervention(world, person="amani", service=code)
            for code in ("ALTC", "PSS", "ACC")]
    rows.append(intervention(world, person="amani", service="ALTC", **{
        "progres_interventiontype2@odata.bind":
            f"/progres_interventiontypes({added.json()['progres_interventiontypeid']})"}))

    answers = push(world, *rows)

    assert [a["status"] for a in answers] == ["Pending Acknowledgement", "Delivery Fail",
                                              "Delivery Fail", "Delivery Fail"]
    assert "the service 'psychosocial_support'" in answers[1]["closure_reason"]
    assert "/services/0/type" in answers[1]["closure_reason"]
    assert "the service 'other'" in answers[2]["closure_reason"]
    unknown = answers[3]["closure_reason"]
    assert "code list 'intervention-type'" in unknown
    assert added.json()["progres_interventiontypeid"] in unknown  # the code to list
    assert [len(referrals_from(world, r["progres_interventionnumber"])) for r in rows] == [
        1, 0, 0, 0]
    assert [as_progres_sees(world, r)["progres_partnerstatus"] for r in rows] == [
        "Pending Acknowledgement", "Delivery Fail", "Delivery Fail", "Delivery Fail"]


def test_progres_is_told_the_partners_decision_and_nothing_for_other_states(
        world: World) -> None:
    row = intervention(world, person="kito", service="ALTC")
    [answer] = push(world, row)
    referral_id = answer["case_id"]
    gateway_marks_delivered(world.settings, referral_id)
    with world.api(UNICEF) as unicef:
        accepted = unicef.post(f"/v1/referrals/{referral_id}/events",
                               json={"status": "accepted"})
    assert accepted.status_code == 201, accepted.text

    outcomes = world.deliver_pending(PROGRES)

    assert [o.note for o in outcomes] == ["status delivered", "status delivered"]
    seen = as_progres_sees(world, row)
    assert (seen["progres_partnerstatus"], seen["progres_partnercaseid"]) == (
        "acknowledged", referral_id)  # the decision; "delivered" sent nothing


def test_a_dead_delivery_is_told_delivery_fail_and_a_redrive_takes_it_back(
        world: World) -> None:
    row = intervention(world, person="kito", service="BIA")
    [answer] = push(world, row)
    referral_id = answer["case_id"]
    with world.sessions() as session:
        envelope = session.scalars(select(OutboxMessage.envelope).where(
            OutboxMessage.referral_id == referral_id,
            OutboxMessage.routing_key == f"deliver.{UNICEF}")).one()
    # The delivery to UNICEF dies (as the dead-letter consumer records it).
    with unit_of_work(world.sessions) as session:
        letter = dead_letters.record(
            session=session, contracts=world.contracts, envelope=envelope,
            headers={"x-casebridge-reason": "retries_exhausted", "x-attempt": 6},
            routing_key=f"deliver.{UNICEF}", message_id=f"dead-{referral_id}")
        assert letter is not None
        letter_id = letter.id
    assert [o.note for o in world.deliver_pending(PROGRES)] == ["status delivered"]
    seen = as_progres_sees(world, row)
    assert (seen["progres_partnerstatus"], seen["progres_partnerclosurereason"]) == (
        "Delivery Fail", "retries_exhausted")

    with unit_of_work(world.sessions) as session:
        assert dead_letters.redrive(session=session, contracts=world.contracts,
                                    letters=[session.get_one(DeadLetter, letter_id)],
                                    actor="operator-test") == [letter_id]
    assert [o.note for o in world.deliver_pending(PROGRES)] == ["status delivered"]
    assert as_progres_sees(world, row)["progres_partnerstatus"] == "Pending Acknowledgement"
    world.deliver_pending(UNICEF)
    world.deliver_pending(PROGRES)  # delivered: DTP has no message for it
    assert as_progres_sees(world, row)["progres_partnerstatus"] == "Pending Acknowledgement"


# -- partners refer to proGres; proGres decides ------------------------------------------

def refer_to_progres(world: World, make_referral: Callable[..., dict[str, Any]],
                     services: list[str]) -> str:
    """UNICEF refers a child to UNHCR through the API; delivered by the deliverer."""
    document = make_referral(UNICEF, PROGRES, services=[{"type": s} for s in services])
    with world.api(UNICEF) as unicef:
        made = unicef.post("/v1/referrals", json=document,
                           headers={"Idempotency-Key": uuid.uuid4().hex})
    assert made.status_code == 201, made.text
    referral_id = str(made.json()["id"])
    assert all(isinstance(o, Done) for o in world.deliver_pending(PROGRES))
    return referral_id


def progres_rows(world: World, referral_id: str) -> list[dict[str, Any]]:
    """The incoming referrals proGres holds for one gateway referral, as staff read them."""
    with world.staff() as staff:
        found = staff.get("/progres_interoperabilityreferrals", params={
            "$filter": f"startswith(progres_orgreferralid,'{referral_id}#')",
            "$orderby": "progres_orgreferralid"})
    assert found.status_code == 200, found.text
    return list(found.json()["value"])


def test_a_referral_goes_to_progres_one_message_per_service_and_a_resend_creates_nothing_new(
        world: World, make_referral: Callable[..., dict[str, Any]]) -> None:
    referral_id = refer_to_progres(world, make_referral,
                                   ["family_tracing_reunification",
                                    "best_interests_determination"])

    rows = progres_rows(world, referral_id)
    assert sorted(r["progres_orgreferralid"] for r in rows) == sorted(
        f"{referral_id}#{service_key(referral_id, i)}" for i in range(2))
    assert {(r["statuscode"], r["progres_direction"], r["progres_givenname"]) for r in rows} \
        == {(ReferralStatus.PENDING_ACKNOWLEDGEMENT, 125080001, "Zawadi")}
    with world.sessions() as session:
        assert session.get_one(Referral, referral_id).status == "delivered"
        assert session.scalar(select(PartnerRecord.native_id).where(
            PartnerRecord.referral_id == referral_id, PartnerRecord.partner_id == PROGRES)
        ) == f"referral/{referral_id}"

    # A retry after an answer that never came: proGres took it, and takes it once.
    adapter = ProgresDtpAdapter(f"{world.progres.url}/dtp",
                                subscription_key=DEFAULT_SUBSCRIPTION_KEY)
    with world.sessions() as session:
        content = session.get_one(Referral, referral_id).content
    record, _ = world.translator.outbound("progres", "referral", content, channel="dtp")
    faults = f"{world.progres.url}/_sandbox/faults"
    assert httpx.put(faults, json={"lost_response_rate": 1.0}).status_code == 200
    try:
        with pytest.raises(TransientDeliveryError):
            adapter.create(referral_id=referral_id, kind="referral", record=record)
    finally:
        assert httpx.put(faults, json={}).status_code == 200
    assert adapter.create(referral_id=referral_id, kind="referral", record=record) == \
        f"referral/{referral_id}"
    adapter.close()
    assert len(progres_rows(world, referral_id)) == 2


def test_a_decision_message_with_an_unknown_code_dead_letters_that_item_only(
        world: World, make_referral: Callable[..., dict[str, Any]]) -> None:
    ids = [refer_to_progres(world, make_referral, ["best_interests_assessment"])
           for _ in range(3)]
    accepted, rejected, unknown = (progres_rows(world, i)[0] for i in ids)
    with world.staff("progres-reviewer", "reviewer-secret") as reviewer:
        for row, body in ((accepted, {"statuscode": ReferralStatus.ACCEPTED}),
                          (rejected, {"statuscode": ReferralStatus.REJECTED,
                                      "progres_interoperabiltyreferralrejectionreason":
                                          125080001,
                                      "progres_interoperabilityreferralrejectionomment":
                                          "Fictional: the UNHCR ID is another child's."})):
            answer = reviewer.patch(
                f"/progres_interoperabilityreferrals({row['progres_interoperabilityreferralid']})",
                json=body)
            assert answer.status_code == 204, answer.text
    before = len(letters(world))
    order = {"referrals": [r["progres_interoperabilityreferralid"]
                           for r in (accepted, unknown, rejected)],
             # proGres holds a decision code the lists do not know (seen in a real sample)
             "overrides": {unknown["progres_interoperabilityreferralid"]: {
                 "progres_reviewdecision": "125080003",
                 "progres_reviewdate": "2026-11-20T10:00:00Z"}}}

    sent = httpx.post(f"{world.progres.url}/_sandbox/dtp/decisions", json=order, timeout=60)

    assert sent.status_code == 200, sent.text
    items = sent.json()["answer"]["items"]
    assert [i["outcome"] for i in items] == ["recorded", "refused", "recorded"]
    assert items[1]["problem"] == "mapping-error"
    with world.sessions() as session:
        states = [session.get_one(Referral, i).status for i in ids]
        reason = session.get_one(Referral, ids[1]).events[-1].reason_code
    assert states == ["accepted", "rejected", "delivered"]  # never taken for accepted
    assert reason == "individual_not_match_id"
    new = letters(world)[before:]
    assert [(x.reason, x.message_type) for x in new] == [("mapping-error", "status")]
    assert "125080003" in (new[0].detail or "") and "review-decision" in (new[0].detail or "")
    assert new[0].referral_id == ids[2]

    again = httpx.post(f"{world.progres.url}/_sandbox/dtp/decisions", json=order, timeout=60)
    assert [i["outcome"] for i in again.json()["answer"]["items"]] == [
        "unchanged", "refused", "unchanged"]
    assert len(letters(world)) == before + 1  # the same item, the same letter


def test_the_endpoint_takes_only_dtp_messages_from_progres(world: World) -> None:
    with world.api(UNICEF) as unicef:
        not_progres = unicef.post("/v1/progres/dtp", json={"interventions": [{}]})
    assert not_progres.status_code == 403
    assert not_progres.headers["content-type"] == "application/problem+json"
    with world.api(PROGRES) as progres:
        unknown = progres.post("/v1/progres/dtp", json={"request_type": "Something",
                                                         "interventions": [{}]})
        empty = progres.post("/v1/progres/dtp", json={"interventions": []})
        unplaced = progres.post("/v1/progres/dtp", json={"interventions": ["x"]})
    assert unknown.status_code == 422
    assert [e["pointer"] for e in unknown.json()["errors"]] == ["/request_type"]
    assert [e["pointer"] for e in empty.json()["errors"]] == ["/interventions"]
    assert unplaced.status_code == 200
    [fail] = unplaced.json()["feedback"]
    assert fail["status"] == "Delivery Fail" and "progres_interventionnumber" not in fail
    assert "progres_interventionnumber" in fail["closure_reason"]
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeadLetter).where(
            DeadLetter.reason == "unreadable-change", DeadLetter.partner_id == PROGRES)) >= 1
