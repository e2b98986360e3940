"""The demo's stories: each acts as staff in the partner systems, through their own APIs,
and checks its end state there (never in the gateway's store, which it reads only to find
which record the gateway made of what)."""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.demo.setup import (
    CASEWORKER_APP,
    CASEWORKER_KEY,
    OBSERVER,
    OBSERVER_KEY,
    OPERATOR_KEY,
    Ports,
)
from gateway.store.models import Delivery, PartnerRecord, Referral, StatusEvent, TrackedDeadline

STEP = 45.0  # seconds one hop may take: a poll, the relay, a worker delivery
DATAVERSE = "/api/data/v9.2"
REFERRALS = "progres_interoperabilityreferrals"
PROGRES_CASEWORKER = ("progres-caseworker", "caseworker-secret")
PROGRES_REVIEWER = ("progres-reviewer", "reviewer-secret")
PRIMERO_PASSWORD = "sandbox-passw0rd"
PRIMERO_GATEWAY_USER = "casebridge"
# proGres statuscode values (sandboxes/progres/schema.py ReferralStatus)
PENDING_ACTION, ACCEPTED, COMPLETED = 125080003, 125080004, 125080006


class StoryFailed(Exception):
    """What differed from the story's expected end state."""


@dataclass
class Demo:
    """What a story needs: where each system is, and how to tell the person watching."""

    ports: Ports
    sessions: sessionmaker[Session]
    say: Callable[[str], None]
    alive: Callable[[], None]  # raises when a supervised process has died
    keeper: Callable[[datetime], Any]  # a deadline keeper tick at a chosen instant
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.ports.url(self.ports.gateway)

    def url(self, partner_id: str) -> str:
        return self.ports.url(self.ports.sandbox(partner_id))

    def console(self, referral_id: str) -> str:
        return f"{self.gateway}/console/referrals/{referral_id}"

    def client(self, base_url: str, **headers: str) -> httpx.Client:
        client = httpx.Client(base_url=base_url, timeout=15, headers=headers)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def wait(self, what: str, check: Callable[[], Any], timeout: float = STEP) -> Any:
        """Poll `check` until it is truthy, saying every 2 s what is awaited."""
        start = time.monotonic()
        told = start
        while True:
            self.alive()
            found = check()
            if found:
                return found
            now = time.monotonic()
            if now - start > timeout:
                raise StoryFailed(f"{what}: not within {timeout:.0f} s")
            if now - told >= 2:
                self.say(f"      … waiting for {what} ({now - start:.0f} s)")
                told = now
            time.sleep(0.3)

    # -- the gateway's ids of partner records (from its store; not used as evidence) -------
    def referral_from(self, partner_id: str, native_id: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(PartnerRecord.referral_id).where(
                PartnerRecord.partner_id == partner_id, PartnerRecord.native_id == native_id))

    def native_id(self, referral_id: str, partner_id: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(PartnerRecord.native_id).where(
                PartnerRecord.referral_id == referral_id,
                PartnerRecord.partner_id == partner_id))

    def deadline_due(self, referral_id: str, name: str) -> datetime | None:
        with self.sessions() as session:
            due: datetime | None = session.scalar(select(TrackedDeadline.due_at).where(
                TrackedDeadline.referral_id == referral_id, TrackedDeadline.name == name))
        return due.replace(tzinfo=UTC) if due and due.tzinfo is None else due

    def applied(self, referral_id: str) -> bool:
        """The scheduler has applied every status event of the referral to its deadlines."""
        with self.sessions() as session:
            return session.scalar(select(StatusEvent.id).where(
                StatusEvent.referral_id == referral_id,
                StatusEvent.deadlines_applied_at.is_(None))) is None

    def keep(self, now: datetime) -> None:
        """One tick of the deadline keeper at `now` (the demo's clock jump)."""
        self.keeper(now)

    def attempts(self, referral_id: str) -> list[tuple[int, str, str | None]]:
        """The delivery attempts of a referral: (attempt, outcome, detail), oldest first."""
        with self.sessions() as session:
            rows = session.execute(select(Delivery.attempt, Delivery.outcome, Delivery.detail)
                                   .where(Delivery.referral_id == referral_id,
                                          Delivery.status_event_id.is_(None))
                                   .order_by(Delivery.id)).all()
        return [(attempt, outcome, detail) for attempt, outcome, detail in rows]

    def status(self, referral_id: str) -> str | None:
        with self.sessions() as session:
            referral = session.get(Referral, referral_id)
            return referral.status if referral else None

    # -- staff sessions in each system ---------------------------------------------------
    def caseworker_app(self) -> httpx.Client:
        return self.client(self.gateway, Authorization=f"Bearer {CASEWORKER_KEY}")

    def operator(self) -> httpx.Client:
        return self.client(self.gateway, Authorization=f"Bearer {OPERATOR_KEY}")

    def progres(self, who: tuple[str, str]) -> httpx.Client:
        url = self.url("progres-eth")
        answer = httpx.post(f"{url}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": who[0], "client_secret": who[1],
            "scope": f"{url}/.default"}, timeout=15)
        expect_status(answer, 200, "proGres login")
        return self.client(f"{url}{DATAVERSE}", **{
            "Authorization": f"Bearer {answer.json()['access_token']}",
            "OData-Version": "4.0", "Accept": "application/json",
            "Prefer": 'odata.include-annotations="*"'})

    def primero(self, partner_id: str, user: str) -> httpx.Client:
        url = self.url(partner_id)
        answer = httpx.post(f"{url}/api/v2/tokens", json={
            "user": {"user_name": user, "password": PRIMERO_PASSWORD}}, timeout=15)
        expect_status(answer, 200, f"Primero login as {user}")
        return self.client(f"{url}/api/v2", Authorization=f"Bearer {answer.json()['token']}")

    def delius(self, partner_id: str, staff_code: str) -> httpx.Client:
        url = self.url(partner_id)
        token = httpx.post(f"{url}/auth/oauth/token",
                           auth=("delius-ui", "delius-ui-sandbox-secret"),
                           params={"grant_type": "client_credentials", "username": staff_code},
                           timeout=15)
        expect_status(token, 200, f"nDelius login as {staff_code}")
        return self.client(url, Authorization=f"Bearer {token.json()['access_token']}")


def expect_status(answer: httpx.Response, status: int, what: str) -> Any:
    if answer.status_code != status:
        raise StoryFailed(f"{what}: HTTP {answer.status_code}, expected {status}: "
                          f"{answer.text[:300]}")
    return answer.json() if answer.content else None


def expect(what: str, actual: Any, wanted: Any) -> None:
    if actual != wanted:
        raise StoryFailed(f"{what} is {actual!r}, expected {wanted!r}")


def data(answer: httpx.Response, what: str, status: int = 200) -> dict[str, Any]:
    found: dict[str, Any] = expect_status(answer, status, what)["data"]
    return found


def data_list(answer: httpx.Response, what: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = expect_status(answer, 200, what)["data"]
    return found


def nsis_for(officer: httpx.Client, referral_id: str) -> int:
    """How many NSIs a provider's nDelius holds for a gateway referral (its external reference)."""
    page = expect_status(officer.get("/nsi", params={"externalReference": referral_id}), 200,
                         "the NSI search")
    return int(page["totalElements"])


def label(row: dict[str, Any], column: str) -> str:
    return str(row.get(f"{column}@OData.Community.Display.V1.FormattedValue"))


def progres_row(session: httpx.Client, native_id: str) -> dict[str, Any]:
    row: dict[str, Any] = expect_status(session.get(f"/{native_id}"), 200, "proGres row")
    return row


def progres_rows(session: httpx.Client, referral_id: str) -> list[dict[str, Any]]:
    """The proGres referrals carrying a gateway referral id (what a proGres list view shows)."""
    answer = session.get(f"/{REFERRALS}", params={
        "$filter": f"progres_orgreferralid eq '{referral_id}'"})
    rows: list[dict[str, Any]] = expect_status(answer, 200, "proGres query")["value"]
    return rows


def progres_set(session: httpx.Client, native_id: str, **columns: Any) -> None:
    expect_status(session.patch(f"/{native_id}", json=columns, headers={"If-Match": "*"}),
                  204, "proGres update")


def transition(session: httpx.Client, native_id: str) -> dict[str, Any]:
    """A Primero referral or transfer (`case/kind/id`), read through the Primero API."""
    case_id, kind, transition_id = native_id.split("/")
    transitions: list[dict[str, Any]] = expect_status(
        session.get(f"/cases/{case_id}/{kind}"), 200, "Primero transitions")["data"]
    for found in transitions:
        if found["id"] == transition_id:
            return found
    raise StoryFailed(f"Primero has no {kind} {transition_id} on case {case_id}")


def tag() -> str:
    """A short mark making this run's fictional records unique."""
    return uuid.uuid4().hex[:6].upper()


@contextmanager
def faults(demo: Demo, partner_id: str, **switches: Any) -> Iterator[None]:
    """The sandbox's fault switch on for the block, off after it whatever happens."""
    url = f"{demo.url(partner_id)}/_sandbox/faults"
    httpx.put(url, json=switches, timeout=15).raise_for_status()
    try:
        yield
    finally:
        httpx.put(url, json={}, timeout=15).raise_for_status()


# --- the canonical referral the caseworker app sends (fictional child) -----------------------

def app_referral(mark: str, receivers: list[str]) -> dict[str, Any]:
    return {
        "kind": "referral",
        "sender": {"partner": CASEWORKER_APP, "unit": "CP unit, Gambella"},
        "receiver": {"partner": "progres-eth"},
        "external_reference": f"APP-REF-{mark}",
        "subject": {
            "identifiers": [{"system": "primero_case", "value": f"CP-DEMO-{mark}"}],
            "given_name": "Amani", "family_name": "Demoperson",
            "birth_date": "2015-06-01", "sex": "female", "is_minor": True,
        },
        "case": {"reference": f"CASE-DEMO-{mark}", "module": "child_protection",
                 "risk_level": "high"},
        "source_record": {"type": "bia", "reference": f"BIA-DEMO-{mark}"},
        "services": [{"type": "family_tracing_reunification", "urgency": "urgent"}],
        "reason": "Separated from her mother at the border; needs family tracing.",
        "consent": {
            "given_by": "caregiver", "form": "written", "date": "2026-11-01",
            "scope": {"purposes": ["referral"], "receivers": receivers,
                      "data_categories": ["identity", "demographics", "protection"]},
            "child_assent": True, "bia_reference": f"BIA-DEMO-{mark}",
        },
    }


def submit(app: httpx.Client, document: dict[str, Any]) -> httpx.Response:
    return app.post("/v1/referrals", json=document,
                    headers={"Idempotency-Key": uuid.uuid4().hex})


# --- 1. Primero → proGres ---------------------------------------------------------------------

def primero_to_progres(demo: Demo) -> str:
    say = demo.say
    caseworker = demo.primero("primero-ssd", "gbv_worker")
    say("    A GBV caseworker in South Sudan refers a girl survivor (fictional) to UNHCR "
        "Ethiopia for a Best Interests Assessment, from Primero's GBV module.")
    # The GBV module's consent rule: consent for services alone lets the referral go (she
    # and her caregiver agreed to the service; nothing is disclosed for other purposes).
    # No incident details: the referral says what is asked, not what happened.
    case = data(caseworker.post("/cases", json={"data": {
        "module_id": "primeromodule-gbv", "name_first": "Nyaluak", "name_last": f"Demo{tag()}",
        "sex": "female", "date_of_birth": "2011-09-14", "risk_level": "high",
        "protection_concerns": ["gbv_survivor"], "consent_source": "caregiver",
        "consent_for_services": True, "disclosure_other_orgs": False,
        "services_section": [{"service_type": "bia_service",
                              "service_response_type": "service_provision",
                              "service_response_timeframe": "3_days"}]}}),
        "Primero case", 200)
    referral = data(caseworker.post(f"/cases/{case['id']}/referrals", json={"data": {
        "transitioned_to": PRIMERO_GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
        "service": "bia_service",
        "service_record_id": case["services_section"][0]["unique_id"],
        "notes": "Best Interests Assessment requested for a child survivor (fictional)."}}),
        "Primero referral")
    sent = f"{case['id']}/referrals/{referral['id']}"
    referral_id = demo.wait("the gateway to discover the referral in Primero",
                            lambda: demo.referral_from("primero-ssd", sent))
    say(f"  ✓ discovered by the poller: referral {referral_id}")
    say(f"    console: {demo.console(referral_id)}")
    received = demo.wait("delivery to proGres",
                         lambda: demo.native_id(referral_id, "progres-eth"))
    officer = demo.progres(PROGRES_CASEWORKER)
    reviewer = demo.progres(PROGRES_REVIEWER)
    row = progres_row(officer, received)
    asked = label(row, "_progres_interventiontype_value")
    expect("the intervention asked of proGres", asked, "Best Interests Assessment")
    say(f"  ✓ delivered — proGres: {label(row, 'statuscode')}, {asked} · Primero: "
        f"{transition(caseworker, sent)['status']}")

    Step = tuple[httpx.Client, int, dict[str, Any], str, str]
    steps: tuple[Step, ...] = ((officer, PENDING_ACTION, {}, "in_progress", "acknowledged"),
             (reviewer, ACCEPTED, {}, "accepted", "accepted"),
             (officer, COMPLETED, {"progres_outcome": 125080000, "progres_outcomenotes": NOTE},
              "done", "completed"))
    for who, code, extra, primero_status, state in steps:
        progres_set(who, received, statuscode=code, **extra)
        def told(state: str = state, primero_status: str = primero_status) -> bool:
            return (demo.status(referral_id) == state
                    and transition(caseworker, sent)["status"] == primero_status)
        demo.wait(f"{state} to reach Primero", told)
        say(f"  ✓ {state} — proGres: {label(progres_row(officer, received), 'statuscode')}"
            f" · Primero: {transition(caseworker, sent)['status']}")

    done = transition(caseworker, sent)
    expect("the outcome note in Primero", done.get("rejection_note"), NOTE)
    say(f"    Primero shows proGres's outcome note: \"{done['rejection_note']}\"")
    expect("the proGres status", label(progres_row(officer, received), "statuscode"),
           "Completed")
    expect("referrals in proGres with this id", len(progres_rows(officer, referral_id)), 1)
    return "proGres: Completed · Primero: done, with the outcome note"


# What UNHCR writes back when the assessment is done (fictional; nothing of the incident).
NOTE = "BIA completed (fictional); follow-up agreed with the GBV caseworker."


# --- 2. consent refused at the gateway, then recorded ------------------------------------------

def consent_then_through(demo: Demo) -> str:
    say = demo.say
    app = demo.caseworker_app()
    mark = tag()
    found = expect_status(app.get("/v1/directory/services", params={
        "service_type": "family_tracing_reunification", "area": "Nguenyyiel", "age": 11,
        "sex": "female"}), 200, "the directory search")["items"]
    say("    The caseworker app asks the service directory who traces families for a girl of "
        "11 in Nguenyyiel camp:")
    for service in found[:3]:
        say(f"      [{service['availability']['status']}] {service['name']} — "
            f"{service['organization']['name']} (partner {service['organization']['partner']})")
    if not any(s["organization"]["partner"] == "progres-eth" for s in found):
        raise StoryFailed("the directory lists no family tracing by progres-eth in Nguenyyiel")
    say("    It refers her to UNHCR's, but the consent recorded names only Primero South "
        "Sudan as a receiver.")
    refused = submit(app, app_referral(mark, ["primero-ssd"]))
    problem = expect_status(refused, 422, "the refusal")
    pointers = [e.get("pointer") for e in problem.get("errors", [])]
    say(f"  ✓ refused at the gateway, nothing stored: HTTP 422 {problem.get('title')}")
    for error in problem.get("errors", []):
        say(f"      {error.get('pointer')}: {error.get('detail')}")
    if not any("consent" in str(p) for p in pointers):
        raise StoryFailed(f"the refusal names no consent field: {pointers}")
    say("    The caseworker records the caregiver's consent to share with UNHCR; the same "
        "referral goes again.")
    created = expect_status(submit(app, app_referral(mark, ["progres-eth"])), 201,
                            "the second submission")
    referral_id = str(created["id"])
    say(f"  ✓ accepted by the gateway: referral {referral_id} ({created['status']})")
    say(f"    console: {demo.console(referral_id)}")
    officer = demo.progres(PROGRES_CASEWORKER)
    rows = demo.wait("delivery to proGres", lambda: progres_rows(officer, referral_id))
    expect("referrals in proGres", len(rows), 1)
    words = label(rows[0], "statuscode")
    say(f"  ✓ delivered — proGres: {words} · gateway: {demo.status(referral_id)}")
    expect("the proGres status", words, "Pending Acknowledgement")
    return "gateway: refused, then delivered · proGres: Pending Acknowledgement"


# --- 3. Primero → Primero, across a border -----------------------------------------------------

def cross_border_transfer(demo: Demo) -> str:
    say = demo.say
    caseworker = demo.primero("primero-ssd", "cp_worker")
    say("    The child's family moves to Uganda: the South Sudan caseworker transfers the "
        "whole case to the Uganda agency, in Primero.")
    case = data(caseworker.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": "Ayen", "name_last": f"Demo{tag()}",
        "sex": "female", "date_of_birth": "2013-08-19", "risk_level": "medium",
        "language": ["dinka"], "protection_concerns": ["refugee"],
        "consent_source": "caregiver", "consent_for_services": True,
        "disclosure_other_orgs": True}}), "Primero case")
    transfer = data(caseworker.post(f"/cases/{case['id']}/transfers", json={"data": {
        "transitioned_to": PRIMERO_GATEWAY_USER, "transitioned_to_agency": "agency-cpims-uga",
        "notes": "The family has settled in a fictional settlement in Uganda."}}),
        "Primero transfer")
    sent = f"{case['id']}/transfers/{transfer['id']}"
    referral_id = demo.wait("the gateway to discover the transfer in South Sudan",
                            lambda: demo.referral_from("primero-ssd", sent))
    say(f"  ✓ discovered by the poller: transfer {referral_id}")
    say(f"    console: {demo.console(referral_id)}")
    received = demo.wait("delivery to Uganda",
                         lambda: demo.native_id(referral_id, "primero-uga"))
    manager = demo.primero("primero-uga", "cp_manager")
    uga_case, _, transfer_id = received.split("/")
    say(f"  ✓ delivered — Primero Uganda: {transition(manager, received)['status']} "
        f"· Primero South Sudan: {transition(caseworker, sent)['status']}")

    data(manager.patch(f"/cases/{uga_case}/transfers/{transfer_id}",
                       json={"data": {"status": "accepted"}}), "the acceptance")
    say("    The Uganda manager accepts the transfer.")
    gateway_user = demo.primero("primero-ssd", PRIMERO_GATEWAY_USER)
    demo.wait("the acceptance to reach South Sudan", lambda: (
        demo.status(referral_id) == "completed"
        and transition(gateway_user, sent)["status"] == "accepted"))
    taken = data(manager.get(f"/cases/{uga_case}"), "the Uganda case")
    expect("the Uganda case's owner", taken["owned_by"], "cp_manager")
    closed = data(gateway_user.get(f"/cases/{case['id']}"), "the South Sudan case")
    expect("the South Sudan case's owner", closed["owned_by"], PRIMERO_GATEWAY_USER)
    expect("the South Sudan caseworker's access",
           caseworker.get(f"/cases/{case['id']}").status_code, 403)
    expect("cases in Primero Uganda for this transfer",
           len(data_list(manager.get("/cases", params={"casebridge_referral_id": referral_id}),
                         "the Uganda cases")), 1)
    say(f"  ✓ ownership moved — Primero Uganda: {transition(manager, received)['status']}, "
        f"owned by {taken['owned_by']} · Primero South Sudan: "
        f"{transition(gateway_user, sent)['status']}, the caseworker's part closed")
    return "Uganda: accepted, case owned there · South Sudan: accepted, sender's part closed"


# --- 5. a receiver down: retries, dead letter, re-drive ----------------------------------------

def receiver_down(demo: Demo) -> str:
    say = demo.say
    app = demo.caseworker_app()
    operator = demo.operator()
    officer = demo.progres(PROGRES_CASEWORKER)
    say("    proGres goes down: its sandbox answers every request with HTTP 500. The worker "
        "retries on the ladder (here 1, 2 and 4 s; CASEBRIDGE_RETRY_DELAYS), then gives up.")
    with faults(demo, "progres-eth", failure_rate=1.0):
        created = expect_status(submit(app, app_referral(tag(), ["progres-eth"])), 201,
                                "the submission")
        referral_id = str(created["id"])
        say(f"  ✓ accepted by the gateway: referral {referral_id}")
        say(f"    console: {demo.console(referral_id)}")

        shown = 0

        def dead() -> Any:
            nonlocal shown
            for attempt, outcome, detail in demo.attempts(referral_id)[shown:]:
                say(f"    attempt {attempt}: {outcome} ({(detail or '')[:60]})")
                shown += 1
            letters = expect_status(operator.get("/v1/ops/dead-letters",
                                                 params={"partner": "progres-eth"}),
                                    200, "the dead letters")
            return [d for d in letters if d["referral_id"] == referral_id]
        [letter] = demo.wait("retries on the ladder, then the dead letter", dead, timeout=90)
        say(f"  ✓ dead letter {letter['id']} after {letter['attempts']} attempts: "
            f"{letter['reason']}")
    say("    proGres is back. An operator re-drives the dead letter "
        f"(console: Dead letters; or `casebridge redrive {letter['id']}`).")
    redriven = expect_status(operator.post("/v1/ops/dead-letters/redrive",
                                           json={"ids": [letter["id"]]}), 200, "the re-drive")
    expect("the dead letters re-driven", redriven["redriven"], [letter["id"]])
    rows = demo.wait("delivery to proGres", lambda: progres_rows(officer, referral_id))
    time.sleep(2)  # a duplicate, if any, would arrive now
    rows = progres_rows(officer, referral_id)
    expect("referrals in proGres with this id", len(rows), 1)
    say(f"  ✓ delivered — proGres: {label(rows[0], 'statuscode')} · gateway: "
        f"{demo.status(referral_id)}")
    say("    Counted in proGres: one referral — nothing lost, nothing duplicated.")
    return "proGres: exactly one referral, Pending Acknowledgement"


# --- 4. nDelius N07 → N03 ---------------------------------------------------------------------

def transfer_nsi(crn: str, *, nsi_type: str = "TRF01", **form: Any) -> dict[str, Any]:
    """An NSI as a London (N07) practitioner raises it towards Wales (N03) (fictional)."""
    return {
        "type": nsi_type, "offenderCrn": crn, "intendedProvider": "N03",
        "notes": "Moving to Cardiff to live with her sister (fictional).",
        "transferForm": {
            "receivingPdu": "N03A", "reason": "FAM",
            "reasonDetails": "Her sister offers stable accommodation and childcare support.",
            "sentenceType": "LIC", "roshLevel": "H", "mappa": {"category": "2", "level": "2"},
            "victimContact": True,
            "proposedAddress": {"addressLine1": "14 Fictional Terrace", "town": "Cardiff",
                                "postcode": "CF10 1AA"},
            "moveStartDate": "2027-01-11", **form}}


def nsi_status(officer: httpx.Client, nsi_id: str) -> str:
    nsi = expect_status(officer.get(f"/nsi/{nsi_id}"), 200, "the NSI")
    return str(nsi["nsiStatus"]["code"])


def set_nsi(officer: httpx.Client, nsi_id: str, status: str, **extra: Any) -> None:
    expect_status(officer.put(f"/nsi/{nsi_id}/status", json={"status": status, **extra}),
                  200, f"NSI status {status}")


def manager_provider(officer: httpx.Client, crn: str) -> str:
    person = expect_status(officer.get(f"/person/{crn}"), 200, "the person")
    return str(person["manager"]["provider"]["code"])


def raise_in_london(demo: Demo, practitioner: httpx.Client, body: dict[str, Any]
                    ) -> tuple[str, str, str]:
    sent = str(expect_status(practitioner.post("/nsi", json=body), 201, "the NSI")["id"])
    referral_id = demo.wait("the gateway to discover the NSI at N07",
                            lambda: demo.referral_from("ndelius-n07", sent))
    received = demo.wait("delivery to N03", lambda: demo.native_id(referral_id, "ndelius-n03"))
    return referral_id, sent, received


def both_at(demo: Demo, referral_id: str, state: str, london: tuple[httpx.Client, str],
            wales: tuple[httpx.Client, str], codes: tuple[str, str]) -> None:
    """Wait until the gateway holds `state` and each nDelius shows its code for it."""
    demo.wait(f"{state} at both providers", lambda: (
        demo.status(referral_id) == state
        and nsi_status(*london) == codes[0] and nsi_status(*wales) == codes[1]))
    demo.say(f"  ✓ {state} — nDelius N07: {codes[0]} · nDelius N03: {codes[1]}")


def probation_transfer(demo: Demo) -> str:
    say = demo.say
    practitioner = demo.delius("ndelius-n07", "N07AOM1")
    say("    A London practitioner raises a case transfer to Wales in nDelius (fictional "
        "person on licence, high risk of serious harm).")
    referral_id, sent, received = raise_in_london(demo, practitioner, transfer_nsi("X070002"))
    say(f"  ✓ delivered: transfer {referral_id}")
    say(f"    console: {demo.console(referral_id)}")
    spo = demo.delius("ndelius-n03", "N03ACT1")
    london, wales = (practitioner, sent), (spo, received)
    set_nsi(spo, received, "AWAL")
    both_at(demo, referral_id, "acknowledged", london, wales, ("AWAL", "AWAL"))
    expect_status(spo.put(f"/nsi/{received}/manager",
                          json={"team": "N03AOM", "staff": "N03AOM1"}), 200, "allocation")
    receiving = demo.delius("ndelius-n03", "N03AOM1")
    wales = (receiving, received)
    set_nsi(receiving, received, "ACC", notes="Address assessed as suitable.")
    both_at(demo, referral_id, "accepted", london, wales, ("ACC", "ACC"))
    say("    Wales challenges on risk grounds: the victim lives nearby.")
    set_nsi(receiving, received, "CHAL", outcome="CHRISK",
            notes="The victim lives two streets from the proposed address.")
    both_at(demo, referral_id, "challenged", london, wales, ("CHAL", "CHAL"))
    say("    London agrees a risk plan with the victim liaison unit and upholds the transfer.")
    set_nsi(practitioner, sent, "ACC", notes="Risk plan agreed with the victim liaison unit.")
    both_at(demo, referral_id, "accepted", london, wales, ("ACC", "ACC"))
    set_nsi(receiving, received, "COMP", notes="Handover meeting held.")
    both_at(demo, referral_id, "completed", london, wales, ("COMP", "COMP"))
    expect("the managing provider at N07", manager_provider(practitioner, "X070002"), "N03")
    expect("the managing provider at N03", manager_provider(receiving, "X070002"), "N03")
    expect("NSIs at N03 for this transfer", nsis_for(receiving, referral_id), 1)
    say("    The person is now managed by N03, in both nDelius instances.")

    say("    Alongside: a temporary move of another person (fictional) to Wales for work.")
    move_id, move_sent, move_received = raise_in_london(demo, practitioner, transfer_nsi(
        "X070004", nsi_type="TMV01", reason="EMP", receivingTeam="N03AOM", sentenceType="CO",
        roshLevel="L", mappa=None, victimContact=False, moveEndDate="2027-03-26"))
    say(f"    console: {demo.console(move_id)}")
    for code, state in (("AWAL", "acknowledged"), ("ACC", "accepted"),
                        ("INPROG", "in_progress"), ("COMP", "completed")):
        set_nsi(receiving, move_received, code)
        both_at(demo, move_id, state, (practitioner, move_sent), (receiving, move_received),
                (code, code))
    expect("the managing provider after the temporary move",
           manager_provider(practitioner, "X070004"), "N07")
    expect("NSIs at N03 for the temporary move", nsis_for(receiving, move_id), 1)
    say("    The temporary move ends with the case still managed in London.")
    return "transfer: COMP at both, managed by N03 · temporary move: COMP, still N07"


# --- 6. an acknowledgement that does not come in time -----------------------------------------

def primero_referral_to_progres(demo: Demo, caseworker: httpx.Client, given: str) -> str:
    """A Primero caseworker's family-tracing referral to UNHCR Ethiopia; its native id."""
    case = data(caseworker.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": given, "name_last": f"Demo{tag()}",
        "sex": "female", "date_of_birth": "2013-02-11", "risk_level": "medium",
        "protection_concerns": ["refugee"], "consent_source": "caregiver",
        "consent_for_services": True, "disclosure_other_orgs": True,
        "services_section": [{"service_type": "family_seunification_service",
                              "service_response_type": "service_provision"}]}}),
        "Primero case")
    referral = data(caseworker.post(f"/cases/{case['id']}/referrals", json={"data": {
        "transitioned_to": PRIMERO_GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
        "service": "family_seunification_service",
        "service_record_id": case["services_section"][0]["unique_id"]}}),
        "Primero referral")
    return f"{case['id']}/referrals/{referral['id']}"


def overdue_then_cleared(demo: Demo) -> str:
    say = demo.say
    caseworker = demo.primero("primero-ssd", "cp_worker")
    say("    A South Sudan caseworker refers a child (fictional) to UNHCR Ethiopia; the "
        "Ethiopia deadline policy gives proGres 2 working days to acknowledge.")
    sent = primero_referral_to_progres(demo, caseworker, "Nyandeng")
    case_id = sent.split("/")[0]
    referral_id = demo.wait("the gateway to discover the referral in Primero",
                            lambda: demo.referral_from("primero-ssd", sent))
    say(f"    console: {demo.console(referral_id)}")
    received = demo.wait("delivery to proGres",
                         lambda: demo.native_id(referral_id, "progres-eth"))
    due = demo.wait("the scheduler to start the acknowledgement deadline",
                    lambda: demo.deadline_due(referral_id, "acknowledge"))
    say(f"  ✓ delivered; acknowledgement due {due:%Y-%m-%d %H:%M} UTC")
    say("    Nobody in proGres acknowledges. The demo moves the deadline keeper's clock to a "
        "minute past the due time (the running scheduler would do this in 2 working days).")
    demo.keep(due + timedelta(minutes=1))
    officer = demo.progres(PROGRES_CASEWORKER)
    guid = received.split("(", 1)[1].rstrip(")")

    def flags() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = data(caseworker.get(f"/cases/{case_id}/flags"),
                                           "Primero flags")  # type: ignore[assignment]
        return found

    def open_tasks() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = expect_status(officer.get("/tasks", params={
            "$filter": f"_regardingobjectid_value eq {guid} and statecode eq 0"}),
            200, "proGres tasks")["value"]
        return found

    raised = demo.wait("the overdue flag in Primero", lambda: [
        f for f in flags() if not f["removed"]])
    tasks = demo.wait("the overdue task in proGres", open_tasks)
    say(f"  ✓ overdue — Primero flag: \"{raised[0]['message'][:70]}…\" · proGres task: "
        f"\"{tasks[0]['subject'][:70]}\"")
    observer = demo.client(demo.gateway, Authorization=f"Bearer {OBSERVER_KEY}")
    seen = demo.wait("the alert to the agreement's observer", lambda: [
        a for a in expect_status(observer.get("/v1/alerts"), 200, "the alerts")["items"]
        if a["referral_id"] == referral_id and a["flag"] == "overdue"])
    say(f"  ✓ the agreement's observer ({OBSERVER}) reads the alert at GET /v1/alerts: "
        f"{seen[0]['flag']} as {seen[0]['role']}, no personal data")
    say("    The proGres caseworker acknowledges the referral.")
    progres_set(officer, received, statuscode=PENDING_ACTION)
    demo.wait("the acknowledgement in the gateway",
              lambda: demo.status(referral_id) == "acknowledged")
    demo.wait("the scheduler to apply it", lambda: demo.applied(referral_id))
    demo.keep(due + timedelta(minutes=2))
    demo.wait("the Primero flag to come down",
              lambda: flags() and all(f["removed"] for f in flags()))
    demo.wait("the proGres task to be completed", lambda: open_tasks() == [])
    say("  ✓ cleared — Primero: flag removed · proGres: task completed")
    return "overdue shown in Primero and proGres, then cleared in both"


@dataclass(frozen=True)
class Story:
    number: int
    title: str
    run: Callable[[Demo], str] | None  # None: skipped, for `skipped`
    skipped: str = ""


STORIES = (
    Story(1, "a GBV referral from Primero to UNHCR in proGres, completed with the outcome note",
          primero_to_progres),
    Story(2, "refused for consent, then through once consent is recorded",
          consent_then_through),
    Story(3, "a cross-border transfer between two Primero agencies", cross_border_transfer),
    Story(4, "a probation case transfer between two nDelius providers, and a temporary move",
          probation_transfer),
    Story(5, "a receiver down: retries, dead letter, re-drive, delivered once",
          receiver_down),
    Story(6, "an acknowledgement that does not come in time: overdue, then cleared",
          overdue_then_cleared),
)
