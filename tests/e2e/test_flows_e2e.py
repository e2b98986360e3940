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
from sandboxes.progres.seed import individual_id, intervention_type_id, sid
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
        wait_for(lambda p=partner: state in stack.told(referral_id, p), timeout=STEP,
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
    # In Primero the referral is rejected, and the manager who declined no longer sees it.
    assert manager.get(f"/cases/{case_id}").status_code == 403
    gateway = primero_user(stack, "primero-ssd", GATEWAY_USER, staff)
    declined = transition_of(gateway, received)
    assert (declined["status"], declined["rejected_reason"]) == ("rejected", "no_capacity")
    no_dead_letters(stack)


# --- 3. Primero → Primero, across a border ----------------------------------------------------

def test_a_cross_border_transfer_accepted_in_uganda_closes_the_south_sudan_part(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack = started(make_stack, PRIMERO_SSD, PRIMERO_UGA)
    caseworker = primero_user(stack, "primero-ssd", "cp_worker", staff)

    # A South Sudan caseworker transfers a child's case to Uganda through the gateway user.
    case = data(caseworker.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": "Ayen", "name_last": "Sandboxdottir",
        "sex": "female", "date_of_birth": "2013-08-19", "risk_level": "medium",
        "language": ["dinka"], "protection_concerns": ["refugee"],
        "consent_source": "caregiver", "consent_for_services": True,
        "disclosure_other_orgs": True}}))
    transfer = data(caseworker.post(f"/cases/{case['id']}/transfers", json={"data": {
        "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-cpims-uga",
        "notes": "The family has settled in a fictional settlement in Uganda."}}))
    sent = f"{case['id']}/transfers/{transfer['id']}"

    referral_id = wait_for(lambda: stack.referral_from("primero-ssd", sent), timeout=STEP,
                           what="the transfer discovered in South Sudan")
    settled(stack, referral_id, "delivered")
    stored = stack.referral(referral_id)
    assert (stored.kind, stored.subtype, stored.receiver_id) == (
        "transfer", "cross_border", "primero-uga")

    # Uganda holds the case, owned by the gateway user, transferred to its intake manager.
    received = stack.native_id(referral_id, "primero-uga")
    assert received is not None
    manager = primero_user(stack, "primero-uga", "cp_manager", staff)
    uga_case, _, transfer_id = received.split("/")
    arrived = data(manager.get(f"/cases/{uga_case}"))
    assert (arrived["name_first"], arrived["language"], arrived["owned_by"]) == (
        "Ayen", ["dinka"], GATEWAY_USER)
    waiting = transition_of(manager, received)
    assert (waiting["status"], waiting["transitioned_to"]) == ("in_progress", "cp_manager")

    # The Uganda manager accepts: the case is theirs at once, which is completion.
    data(manager.patch(f"/cases/{uga_case}/transfers/{transfer_id}",
                       json={"data": {"status": "accepted"}}))
    settled(stack, referral_id, "completed", "primero-ssd")
    assert stack.events(referral_id) == [
        ("submitted", "sender", False), ("delivered", "gateway", False),
        ("accepted", "receiver", True), ("completed", "receiver", False)]
    assert stack.told(referral_id, "primero-ssd") == ["delivered", "accepted", "completed"]
    taken = data(manager.get(f"/cases/{uga_case}"))
    assert (taken["owned_by"], taken["previously_owned_by"]) == ("cp_manager", GATEWAY_USER)
    assert transition_of(manager, received)["status"] == "accepted"

    # South Sudan: the transfer is accepted and the case has left the caseworker for the
    # gateway user, which closes the sender's part.
    assert caseworker.get(f"/cases/{case['id']}").status_code == 403
    gateway = primero_user(stack, "primero-ssd", GATEWAY_USER, staff)
    closed = data(gateway.get(f"/cases/{case['id']}"))
    assert (closed["owned_by"], closed["previously_owned_by"]) == (GATEWAY_USER, "cp_worker")
    assert transition_of(gateway, sent)["status"] == "accepted"
    no_dead_letters(stack)


# --- 4. nDelius N07 → N03 ---------------------------------------------------------------------

def transfer_nsi(crn: str, *, nsi_type: str = "TRF01", **form: Any) -> dict[str, Any]:
    """An NSI as a London (N07) practitioner raises it towards Wales (N03)."""
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


def raise_in_london(stack: Stack, practitioner: httpx.Client, body: dict[str, Any]
                    ) -> tuple[str, str, str]:
    """Raise the NSI at N07 and wait for the gateway to deliver it to N03.

    Returns (referral id, N07's NSI id, N03's NSI id)."""
    sent = str(ok(practitioner.post("/nsi", json=body), 201)["id"])
    referral_id = wait_for(lambda: stack.referral_from("ndelius-n07", sent), timeout=STEP,
                           what="the NSI discovered at N07")
    settled(stack, referral_id, "delivered", "ndelius-n07")
    received = stack.native_id(referral_id, "ndelius-n03")
    assert received is not None
    return referral_id, sent, received


def test_a_case_transfer_challenged_on_risk_is_enforced_and_completed_at_both_providers(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack = started(make_stack, NDELIUS_N07, NDELIUS_N03)
    practitioner = delius_officer(stack, "ndelius-n07", "N07AOM1", staff)
    referral_id, sent, received = raise_in_london(stack, practitioner,
                                                  transfer_nsi("X070002"))
    assert (stack.referral(referral_id).kind, stack.referral(referral_id).subtype) == (
        "transfer", "permanent")
    assert nsi_of(practitioner, sent)["externalReference"] == referral_id

    # Wales holds the NSI, routed to its case-transfer SPOC, with London's form.
    spo = delius_officer(stack, "ndelius-n03", "N03ACT1", staff)
    nsi = nsi_of(spo, received)
    assert (nsi["nsiType"]["code"], nsi["nsiStatus"]["code"], nsi["externalReference"]) == (
        "TRF01", "REQ", referral_id)
    assert nsi["manager"]["team"]["code"] == "N03ACT"
    form = nsi["transferForm"]
    assert (form["reason"]["code"], form["roshLevel"]["code"], form["victimContact"]) == (
        "FAM", "H", True)

    # Wales acknowledges, allocates and accepts.
    set_nsi_status(spo, received, "AWAL")
    settled(stack, referral_id, "acknowledged", "ndelius-n07")
    assert nsi_of(practitioner, sent)["nsiStatus"]["code"] == "AWAL"
    ok(spo.put(f"/nsi/{received}/manager", json={"team": "N03AOM", "staff": "N03AOM1"}))
    receiving = delius_officer(stack, "ndelius-n03", "N03AOM1", staff)
    set_nsi_status(receiving, received, "ACC", notes="Address assessed as suitable.")
    settled(stack, referral_id, "accepted", "ndelius-n07")
    assert nsi_of(practitioner, sent)["nsiStatus"]["code"] == "ACC"

    # Wales challenges on risk grounds; London sees the challenge with its outcome.
    set_nsi_status(receiving, received, "CHAL", outcome="CHRISK",
                   notes="The victim lives two streets from the proposed address.")
    settled(stack, referral_id, "challenged", "ndelius-n07")
    challenged = nsi_of(practitioner, sent)
    assert (challenged["nsiStatus"]["code"], challenged["nsiOutcome"]["code"]) == ("CHAL", "CHRISK")

    # London enforces the transfer: accepted again, on both sides.
    set_nsi_status(practitioner, sent, "ACC",
                   notes="Risk plan agreed with the victim liaison unit.")
    wait_for(lambda: len(stack.events(referral_id)) == 6, timeout=STEP,
             what="the sender's enforcement recorded")
    settled(stack, referral_id, "accepted", "ndelius-n03")
    wait_for(lambda: nsi_of(receiving, received)["nsiStatus"]["code"] == "ACC", timeout=STEP,
             what="ACC at N03 again")
    assert manager_of(practitioner, "X070002")[0] == "N07"  # nothing moves before completion

    # Wales completes: the person is managed in Wales, in both nDelius instances.
    set_nsi_status(receiving, received, "COMP", notes="Handover meeting held.")
    settled(stack, referral_id, "completed", "ndelius-n07")
    done = nsi_of(practitioner, sent)
    assert (done["nsiStatus"]["code"], done["nsiOutcome"]["code"]) == ("COMP", "TRFC")
    assert [h["status"]["code"] for h in done["statusHistory"]] == [
        "REQ", "AWAL", "ACC", "CHAL", "ACC", "COMP"]
    assert manager_of(receiving, "X070002") == ("N03", "N03AOM", "N03AOM1")
    assert manager_of(practitioner, "X070002")[0] == "N03"

    events = stack.referral(referral_id).events
    assert [(e.to_state, e.actor, e.actor_partner_id) for e in events] == [
        ("submitted", "sender", "ndelius-n07"), ("delivered", "gateway", None),
        ("acknowledged", "receiver", "ndelius-n03"), ("accepted", "receiver", "ndelius-n03"),
        ("challenged", "receiver", "ndelius-n03"), ("accepted", "sender", "ndelius-n07"),
        ("completed", "receiver", "ndelius-n03")]
    assert events[4].reason_code == "risk_concerns"
    no_dead_letters(stack)


def test_a_temporary_move_completes_with_the_manager_staying_at_the_sender(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack = started(make_stack, NDELIUS_N07, NDELIUS_N03)
    practitioner = delius_officer(stack, "ndelius-n07", "N07AOM1", staff)
    referral_id, sent, received = raise_in_london(stack, practitioner, transfer_nsi(
        "X070004", nsi_type="TMV01", reason="EMP", receivingTeam="N03AOM", sentenceType="CO",
        roshLevel="L", mappa=None, victimContact=False, moveEndDate="2027-03-26"))
    stored = stack.referral(referral_id)
    assert (stored.kind, stored.subtype) == ("transfer", "temporary_move")
    assert stored.content["transfer"]["return_date"] == "2027-03-26"

    host = delius_officer(stack, "ndelius-n03", "N03AOM1", staff)
    assert (nsi_of(host, received)["nsiType"]["code"], nsi_of(host, received)["expectedEndDate"]
            ) == ("TMV01", "2027-03-26")
    for native, state in (("AWAL", "acknowledged"), ("ACC", "accepted"),
                          ("INPROG", "in_progress"), ("COMP", "completed")):
        set_nsi_status(host, received, native)
        settled(stack, referral_id, state, "ndelius-n07")
        assert nsi_of(practitioner, sent)["nsiStatus"]["code"] == native

    done = nsi_of(practitioner, sent)
    assert done["nsiOutcome"]["code"] == "TMVE"
    # Supervision support only: the case never left London.
    assert manager_of(practitioner, "X070004")[0] == "N07"
    assert manager_of(host, "X070004")[0] == "N07"
    assert stack.events(referral_id) == [
        ("submitted", "sender", False), ("delivered", "gateway", False),
        ("acknowledged", "receiver", False), ("accepted", "receiver", False),
        ("in_progress", "receiver", False), ("completed", "receiver", False)]
    no_dead_letters(stack)
