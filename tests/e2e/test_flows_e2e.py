"""The four flows of the issue, end to end, across real sandboxes and a whole running gateway.

Staff act in their own systems only, through each sandbox's HTTP API, as its UI would. The
gateway does the rest by itself: the poller discovers what staff raised or changed, the
gateway stores it and relays it over RabbitMQ, the worker delivers it with the mappings,
and every status travels back to the other side in that side's own words.

1. Primero (South Sudan) → proGres (Ethiopia): a family-tracing referral for a child,
   acknowledged, accepted and completed in proGres; each step reaches Primero.
2. proGres → Primero: a child-protection referral raised from a BIA, rejected in Primero
   with a reason that proGres shows as its own rejection reason.
3. Primero (South Sudan) → Primero (Uganda): a cross-border transfer accepted at the
   receiver; the sending caseworker's part is closed.
4. nDelius N07 → N03: a case transfer challenged on risk grounds, enforced and completed
   (the manager moves to N03 on both sides); and a temporary move that completes with the
   manager staying at N07.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from sandboxes.progres.schema import ReferralStatus as R
from sandboxes.progres.seed import intervention_type_id
from stack import SandboxSpec, Stack, wait_for

PRIMERO_SSD = SandboxSpec("primero-ssd", "primero", {"instance": "cpims-ssd"})
PRIMERO_UGA = SandboxSpec("primero-uga", "primero", {"instance": "cpims-uga"})
PROGRES_ETH = SandboxSpec("progres-eth", "progres")
NDELIUS_N07 = SandboxSpec("ndelius-n07", "ndelius", {"provider": "N07"})
NDELIUS_N03 = SandboxSpec("ndelius-n03", "ndelius", {"provider": "N03"})

STEP = 20.0  # seconds for one hop: a poll (0.5 s apart), the relay, a worker delivery
DATAVERSE = "/api/data/v9.2"
REFERRALS = "progres_interoperabilityreferrals"
REVIEWER = ("progres-reviewer", "reviewer-secret")
CASEWORKER = ("progres-caseworker", "caseworker-secret")


@pytest.fixture
def staff() -> Iterator[list[httpx.Client]]:
    """Every staff session a test opens, closed at the end."""
    sessions: list[httpx.Client] = []
    yield sessions
    for session in sessions:
        session.close()


def started(make_stack: Any, *specs: SandboxSpec) -> Stack:
    """A stack whose poller has looked once at every sandbox, so staff actions are news."""
    stack: Stack = make_stack(list(specs))
    wait_for(stack.polled_once, timeout=STEP, what="first poll of every sandbox")
    return stack


def settled(stack: Stack, referral_id: str, state: str, *tell: str) -> None:
    """Wait until the gateway holds `state` and has set it in each system of `tell`."""
    wait_for(lambda: stack.referral(referral_id).status == state, timeout=STEP,
             what=f"gateway at {state}")
    for partner in tell:
        wait_for(lambda p=partner: state in stack.told(referral_id, p), timeout=STEP,  # type: ignore[misc]
                 what=f"{state} set at {partner}")


def no_dead_letters(stack: Stack) -> None:
    assert [(d.direction, d.reason, d.detail) for d in stack.dead_letters()] == []


# --- acting as staff in each system ----------------------------------------------------------

def primero_user(stack: Stack, partner: str, user: str, sessions: list[httpx.Client]
                 ) -> httpx.Client:
    """A Primero user's own session (the Primero UI's calls)."""
    url = stack.sandbox_url(partner)
    answer = httpx.post(f"{url}/api/v2/tokens",
                        json={"user": {"user_name": user, "password": SANDBOX_PASSWORD}})
    assert answer.status_code == 200, answer.text
    session = httpx.Client(base_url=f"{url}/api/v2", timeout=10, headers={
        "Authorization": f"Bearer {answer.json()['token']}"})
    sessions.append(session)
    return session


def progres_user(stack: Stack, who: tuple[str, str], sessions: list[httpx.Client]
                 ) -> httpx.Client:
    """A proGres user's own session (a proGres form's Dataverse calls)."""
    url = stack.sandbox_url("progres-eth")
    client_id, secret = who
    answer = httpx.post(f"{url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": f"{url}/.default"})
    assert answer.status_code == 200, answer.text
    session = httpx.Client(base_url=f"{url}{DATAVERSE}", timeout=10, headers={
        "Authorization": f"Bearer {answer.json()['access_token']}", "OData-Version": "4.0",
        "Accept": "application/json"})
    sessions.append(session)
    return session


def delius_officer(stack: Stack, partner: str, staff_code: str, sessions: list[httpx.Client]
                   ) -> httpx.Client:
    """A member of probation staff in one nDelius (the Delius UI's client, as that officer)."""
    url = stack.sandbox_url(partner)
    token = httpx.post(f"{url}/auth/oauth/token", auth=("delius-ui", "delius-ui-sandbox-secret"),
                       params={"grant_type": "client_credentials", "username": staff_code})
    assert token.status_code == 200, token.text
    session = httpx.Client(base_url=url, timeout=10, headers={
        "Authorization": f"Bearer {token.json()['access_token']}"})
    sessions.append(session)
    return session


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def data(answer: httpx.Response) -> dict[str, Any]:
    found: dict[str, Any] = ok(answer)["data"]
    return found


def progres_set(session: httpx.Client, native_id: str, **columns: Any) -> None:
    ok(session.patch(f"/{native_id}", json=columns, headers={"If-Match": "*"}), 204)


def progres_row(session: httpx.Client, native_id: str) -> dict[str, Any]:
    """The row as a proGres form shows it, with the labels of its option sets."""
    row: dict[str, Any] = ok(session.get(f"/{native_id}", headers={
        "Prefer": 'odata.include-annotations="*"'}))
    return row


def label(row: dict[str, Any], column: str) -> str:
    return str(row[f"{column}@OData.Community.Display.V1.FormattedValue"])


def transition_of(session: httpx.Client, native_id: str) -> dict[str, Any]:
    """A Primero referral or transfer, read through the Primero API (`case/kind/id`)."""
    case_id, path, transition_id = native_id.split("/")
    transitions: list[dict[str, Any]] = ok(session.get(f"/cases/{case_id}/{path}"))["data"]
    [found] = [t for t in transitions if t["id"] == transition_id]
    return found


def nsi_of(officer: httpx.Client, nsi_id: str) -> dict[str, Any]:
    nsi: dict[str, Any] = ok(officer.get(f"/nsi/{nsi_id}"))
    return nsi


def set_nsi_status(officer: httpx.Client, nsi_id: str, status: str, **extra: Any) -> None:
    ok(officer.put(f"/nsi/{nsi_id}/status", json={"status": status, **extra}))


def manager_of(officer: httpx.Client, crn: str) -> tuple[str, str, str]:
    manager = ok(officer.get(f"/person/{crn}"))["manager"]
    return manager["provider"]["code"], manager["team"]["code"], manager["staff"]["code"]


# --- 1. Primero → proGres ---------------------------------------------------------------------

def test_a_primero_referral_is_acknowledged_accepted_and_completed_in_progres(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack = started(make_stack, PRIMERO_SSD, PROGRES_ETH)
    caseworker = primero_user(stack, "primero-ssd", "cp_worker", staff)

    # A South Sudan caseworker refers a separated child to UNHCR Ethiopia for family tracing,
    # through the gateway's Primero user.
    case = data(caseworker.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": "Kiden", "name_last": "Testwell",
        "sex": "female", "date_of_birth": "2012-04-03", "risk_level": "high",
        "protection_concerns": ["refugee"], "consent_source": "caregiver",
        "consent_for_services": True, "disclosure_other_orgs": True,
        "services_section": [{"service_type": "family_seunification_service",
                              "service_response_type": "service_provision",
                              "service_response_timeframe": "1_day"}]}}))
    referral = data(caseworker.post(f"/cases/{case['id']}/referrals", json={"data": {
        "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
        "service": "family_seunification_service",
        "service_record_id": case["services_section"][0]["unique_id"],
        "notes": "Cross-border tracing; the mother may be in Gambella (fictional)."}}))
    sent = f"{case['id']}/referrals/{referral['id']}"

    referral_id = wait_for(lambda: stack.referral_from("primero-ssd", sent), timeout=STEP,
                           what="the referral discovered in Primero")
    settled(stack, referral_id, "delivered")
    received = stack.native_id(referral_id, "progres-eth")
    assert received is not None and received.startswith(f"{REFERRALS}(")

    # proGres holds an incoming family-tracing referral, waiting for acknowledgement.
    officer = progres_user(stack, CASEWORKER, staff)
    reviewer = progres_user(stack, REVIEWER, staff)
    row = progres_row(officer, received)
    assert (label(row, "statuscode"), label(row, "progres_direction")) == (
        "Pending Acknowledgement", "Incoming")
    assert row["progres_orgreferralid"] == referral_id
    assert row["_progres_interventiontype_value"] == intervention_type_id("FTR")
    assert (row["progres_givenname"], row["progres_familyname"]) == ("Kiden", "Testwell")
    assert transition_of(caseworker, sent)["status"] == "in_progress"

    # Each proGres step, and what Primero shows for it.
    progres_set(officer, received, statuscode=R.PENDING_ACTION)
    settled(stack, referral_id, "acknowledged", "primero-ssd")
    assert transition_of(caseworker, sent)["status"] == "in_progress"

    progres_set(reviewer, received, statuscode=R.ACCEPTED)
    settled(stack, referral_id, "accepted", "primero-ssd")
    assert transition_of(caseworker, sent)["status"] == "accepted"

    progres_set(officer, received, statuscode=R.COMPLETED, progres_outcome=125080000,
                progres_outcomenotes="Mother traced in a fictional camp; reunified.")
    settled(stack, referral_id, "completed", "primero-ssd")
    done = transition_of(caseworker, sent)
    assert done["status"] == "done"
    assert done["rejection_note"] == "Mother traced in a fictional camp; reunified."

    # No "in progress" was reported: proGres went from Accepted to Completed directly.
    assert stack.events(referral_id) == [
        ("submitted", "sender", False), ("delivered", "gateway", False),
        ("acknowledged", "receiver", False), ("accepted", "receiver", False),
        ("completed", "receiver", False)]
    assert label(progres_row(officer, received), "statuscode") == "Completed"
    no_dead_letters(stack)


# --- 2. proGres → Primero ---------------------------------------------------------------------

def test_a_progres_referral_from_a_bia_is_rejected_in_primero_with_a_reason_progres_shows(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack = started(make_stack, PROGRES_ETH, PRIMERO_SSD)
    officer = progres_user(stack, CASEWORKER, staff)

    # A proGres caseworker refers Testa (a fictional child) from her Best Interests
    # Assessment to UNICEF, the partner that runs Primero (mappings/progres/codes/partner);
    # the review lets it out (Pending Review → Pending Acknowledgement).
    made = officer.post(f"/{REFERRALS}", json={
        "progres_interoperabilityreferralrouteto": 125080000,  # Partner
        "progres_partnerid@odata.bind": f"/progres_partners({sid('progres_partner:unicef')})",
        "progres_individualid@odata.bind": f"/progres_individuals({individual_id('testa')})",
        "progres_caseid@odata.bind": f"/progres_cases({sid('progres_case:testa')})",
        "regardingobjectid_progres_bestinterestsassessment@odata.bind":
            f"/progres_bestinterestsassessments({sid('progres_bestinterestsassessment:testa')})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id('ALTC')})",
        "progres_urgency": 125080001, "progres_duedate": "2026-12-01",
        "progres_reasonforreferral": "<p>Fictional: needs interim care while tracing runs.</p>",
        "progres_consentobtained": True, "progres_consentdate": "2026-09-15",
        "progres_consentgivenby": 125080003, "progres_consentform": 125080000,
        "progres_childassent": True, "statuscode": R.PENDING_REVIEW})
    assert made.status_code == 204, made.text
    sent = made.headers["OData-EntityId"].rsplit("/", 1)[1]
    progres_set(progres_user(stack, REVIEWER, staff), sent,
                statuscode=R.PENDING_ACKNOWLEDGEMENT)

    referral_id = wait_for(lambda: stack.referral_from("progres-eth", sent), timeout=STEP,
                           what="the referral discovered in proGres")
    settled(stack, referral_id, "delivered", "progres-eth")
    document = stack.referral(referral_id).content
    assert (document["kind"], document["receiver"], document["source_record"]["type"]) == (
        "referral", {"partner": "primero-ssd"}, "bia")
    row = progres_row(officer, sent)
    assert (row["progres_orgreferralid"], label(row, "statuscode")) == (
        referral_id, "Pending Acknowledgement")

    # Primero holds a child-protection case referred to the module's intake user.
    received = stack.native_id(referral_id, "primero-ssd")
    assert received is not None
    manager = primero_user(stack, "primero-ssd", "cp_manager", staff)
    case_id, _, transition_id = received.split("/")
    case = data(manager.get(f"/cases/{case_id}"))
    assert (case["module_id"], case["name_first"]) == ("primeromodule-cp", "Testa")
    waiting = transition_of(manager, received)
    assert (waiting["status"], waiting["transitioned_to"]) == ("in_progress", "cp_manager")

    # The manager declines: no capacity.
    data(manager.patch(f"/cases/{case_id}/referrals/{transition_id}", json={"data": {
        "status": "rejected", "rejected_reason": "no_capacity"}}))
    settled(stack, referral_id, "rejected", "progres-eth")
    assert stack.events(referral_id) == [
        ("submitted", "sender", False), ("delivered", "gateway", False),
        ("rejected", "receiver", False)]
    assert stack.referral(referral_id).events[-1].reason_code == "lack_of_capacity"

    # proGres shows it in its own words: Rejected, for lack of capacity.
    row = progres_row(officer, sent)
    assert label(row, "statuscode") == "Rejected"
    assert label(row, "progres_interoperabiltyreferralrejectionreason") == "Lack of capacity"
    assert label(row, "progres_reviewdecision") == "Rejected"
    assert transition_of(manager, received)["status"] == "rejected"
    no_dead_letters(stack)
