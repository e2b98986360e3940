"""The poller against real proGres sandboxes and both databases: nothing a partner raises
is lost, one bad record or partner never stops the others, and inbound dead letters are
kept (encrypted), shown and re-driven once."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.contracts import Contracts
from gateway.delivery.poller import Poller, run_poller
from gateway.errors import TransientDeliveryError
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, DeadLetter, Partner, PartnerCursor, Referral
from sandboxes.progres.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app
from sandboxes.progres.schema import ReferralStatus as R
from sandboxes.progres.seed import individual_id, intervention_type_id, sid
from servers import LiveServer
from sharing import write_agreement
from stack import wait_for

API = "/api/data/v9.2"
REFERRALS = "progres_interoperabilityreferrals"
RECEIVER = "primero-ssd"  # UNICEF's Primero, in mappings/progres/codes/partner.yaml
CREDENTIALS = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


@pytest.fixture
def poll_settings(settings: Settings, isolated_database_url: str) -> Settings:
    return settings.model_copy(update={"database_url": isolated_database_url})


@pytest.fixture
def sessions(poll_settings: Settings) -> Any:
    sessions = make_sessionmaker(make_engine(poll_settings.database_url))
    with unit_of_work(sessions) as session:
        if session.get(Partner, RECEIVER) is None:
            register_partner(session=session, partner_id=RECEIVER, name="UNICEF",
                             system="primero")
    return sessions


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[[], LiveServer]]:
    """proGres sandboxes, as many as a test asks for."""
    servers: list[LiveServer] = []

    def start() -> LiveServer:
        server = LiveServer(create_app(database=tmp_path / f"progres-{len(servers)}.db"))
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def connect(sessions: Any, poll_settings: Settings) -> Callable[..., str]:
    """A proGres partner of the gateway, connected to `server`, sharing with UNICEF."""

    def make(server: LiveServer, credentials: dict[str, Any] | None = None) -> str:
        partner_id = f"progres-{uuid.uuid4().hex[:8]}"
        with unit_of_work(sessions) as session:
            partner, _ = register_partner(session=session, partner_id=partner_id,
                                          name="UNHCR", system="progres")
            partner.connection = {"base_url": server.url,
                                  "credentials": credentials or CREDENTIALS}
        write_agreement(poll_settings.agreements_dir, f"poll-{partner_id}",
                        [partner_id, RECEIVER])
        return partner_id

    return make


@pytest.fixture
def poller(sessions: Any, poll_settings: Settings, connect: Any) -> Poller:
    contracts = Contracts(poll_settings.contracts_dir)
    return Poller(sessions=sessions, contracts=contracts,
                  agreements=AgreementRegistry(poll_settings.agreements_dir, contracts),
                  translator=MappingTranslator(poll_settings.mappings_dir, contracts=contracts))


def staff(server: LiveServer) -> httpx.Client:
    """A proGres caseworker's own session on the sandbox."""
    token = httpx.post(f"{server.url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": "progres-caseworker",
        "client_secret": "caseworker-secret", "scope": f"{server.url}/.default"})
    assert token.status_code == 200, token.text
    return httpx.Client(base_url=f"{server.url}{API}", timeout=10, headers={
        "Authorization": f"Bearer {token.json()['access_token']}", "OData-Version": "4.0"})


def raise_referral(client: httpx.Client, *, case: bool = True, **columns: Any) -> str:
    """A caseworker refers Testa (a fictional child) to UNICEF; it leaves proGres."""
    body = {
        "progres_interoperabilityreferralrouteto": 125080000,
        "progres_partnerid@odata.bind": f"/progres_partners({sid('progres_partner:unicef')})",
        "progres_individualid@odata.bind": f"/progres_individuals({individual_id('testa')})",
        "progres_caseid@odata.bind": f"/progres_cases({sid('progres_case:testa')})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id('ALTC')})",
        "progres_urgency": 125080001, "progres_duedate": "2026-12-01",
        "progres_reasonforreferral": "<p>Fictional: needs interim care.</p>",
        "progres_consentobtained": True, "progres_consentdate": "2026-09-15",
        "progres_consentgivenby": 125080003, "progres_consentform": 125080000,
        "progres_childassent": True, "statuscode": R.PENDING_REVIEW, **columns}
    if not case:
        del body["progres_caseid@odata.bind"]
    made = client.post(f"/{REFERRALS}", json=body)
    assert made.status_code == 204, made.text
    native_id = made.headers["OData-EntityId"].rsplit("/", 1)[1]
    change(client, native_id, statuscode=R.PENDING_ACKNOWLEDGEMENT)
    return native_id


def change(client: httpx.Client, native_id: str, **columns: Any) -> None:
    answer = client.patch(f"/{native_id}", json=columns, headers={"If-Match": "*"})
    assert answer.status_code == 204, answer.text


def letters(sessions: Any, partner_id: str) -> list[DeadLetter]:
    with sessions() as session:
        return list(session.scalars(select(DeadLetter).where(
            DeadLetter.partner_id == partner_id).order_by(DeadLetter.id)))



def test_a_row_naming_a_referral_the_gateway_does_not_know_is_dead_lettered_and_the_round_goes_on(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any) -> None:
    first, second = sandbox(), sandbox()
    partner_a, partner_b = connect(first), connect(second)
    for partner_id in (partner_a, partner_b):
        poller.poll(partner_id)  # the first poll starts from now
    with staff(first) as a, staff(second) as b:
        stray = raise_referral(a)
        change(a, stray, progres_orgreferralid=f"cbr-{uuid.uuid4()}")  # not ours
        good_a = raise_referral(a)
        good_b = raise_referral(b)

    result_a = poller.poll(partner_a)
    result_b = poller.poll(partner_b)

    assert (len(result_a.submitted), result_a.refused) == (1, 1)
    assert (len(result_b.submitted), result_b.refused) == (1, 0)
    [letter] = letters(sessions, partner_a)
    assert (letter.direction, letter.reason, letter.referral_id) == (
        "inbound", "unknown-referral", None)
    assert letter.change is not None and letter.change["native_id"] == stray
    assert letter.change["kind"] == "status" and len(letter.message_id) <= 64
    assert poller.poll(partner_a).refused == 0  # the cursor moved on past the stray row
    with sessions() as session:
        for partner_id, native_id in ((partner_a, good_a), (partner_b, good_b)):
            assert session.scalar(select(Referral.id).where(
                Referral.sender_id == partner_id,
                Referral.idempotency_key == f"native:{native_id}")) is not None
        assert session.get_one(PartnerCursor, partner_a).last_success_at is not None


def test_the_poll_loop_outlives_a_partner_that_fails_in_any_way_and_backs_off(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any) -> None:
    server = sandbox()
    # An operator mistyped the connection: building its adapter raises a TypeError.
    broken = connect(server, {**CREDENTIALS, "tennant": "unhcr"})
    good = connect(server)
    poller.poll(good)
    with staff(server) as client:
        native_id = raise_referral(client)
    stop = threading.Event()
    thread = threading.Thread(target=run_poller, kwargs={
        "poller": poller, "interval": 0.2, "stop": stop}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: letters_or_referral(sessions, good, native_id))
        time.sleep(3)
        assert thread.is_alive()
        with sessions() as session:
            health = session.get_one(PartnerCursor, broken)
            assert health.last_error == "TypeError" and health.last_success_at is None
            # 15 rounds in 3 s without backoff; waiting 0.4, 0.8, 1.6 s … leaves ≤ 4.
            assert 1 <= health.consecutive_failures <= 4
            healthy = session.get_one(PartnerCursor, good)
            assert healthy.consecutive_failures == 0 and healthy.last_success_at is not None
    finally:
        stop.set()
        thread.join(timeout=10)


def letters_or_referral(sessions: Any, partner_id: str, native_id: str) -> bool:
    with sessions() as session:
        return session.scalar(select(Referral.id).where(
            Referral.sender_id == partner_id,
            Referral.idempotency_key == f"native:{native_id}")) is not None


def test_an_unreadable_change_is_dead_lettered_then_redriven_once_when_progres_lets_us_read_it(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any, cli: Any,
        poll_settings: Settings) -> None:
    server = sandbox()
    partner_id = connect(server)
    poller.poll(partner_id)
    # A proGres administrator takes the case table out of the gateway's security role.
    assert httpx.put(f"{server.url}/_sandbox/privileges",
                     json={"read_denied": ["progres_cases"]}).status_code == 200
    with staff(server) as client:
        native_id = raise_referral(client)
        later = raise_referral(client, case=False)  # no case: readable

    result = poller.poll(partner_id)
    assert (result.refused, len(result.submitted)) == (1, 1)
    assert poller.poll(partner_id).refused == 0  # the cursor moved on; no second letter
    [letter] = letters(sessions, partner_id)
    assert (letter.reason, letter.message_type) == ("unreadable-change", "referral")
    assert "403 (0x80040220)" in (letter.detail or "")
    assert letter.change is not None and letter.change["native_id"] == native_id
    assert letters_or_referral(sessions, partner_id, later)
    db = {"database_url": poll_settings.database_url}
    listed = cli("dead-letters", "--partner", partner_id, **db)
    assert listed.exit_code == 0 and "unreadable-change" in listed.output

    httpx.put(f"{server.url}/_sandbox/privileges", json={"read_denied": []})
    redriven = cli("redrive", str(letter.id), "--actor", "user:tester", **db)
    assert redriven.exit_code == 0, redriven.output
    assert f"re-driven: 1 {letter.id}" in redriven.output
    assert cli("redrive", str(letter.id), **db).output.startswith("re-driven: 0")

    result = poller.poll(partner_id)
    assert (result.retaken, len(result.submitted)) == (1, 1)
    assert poller.poll(partner_id).retaken == 0  # once
    [letter] = letters(sessions, partner_id)
    assert letter.redriven_by == "user:tester" and letter.change is None
    assert letter.referral_id == result.submitted[0]
    assert letters_or_referral(sessions, partner_id, native_id)
    with sessions() as session:
        assert session.scalar(select(AuditEntry.seq).where(
            AuditEntry.action == "redrive", AuditEntry.actor == "user:tester",
            AuditEntry.partner_id == partner_id)) is not None


def test_a_redrive_that_fails_again_leaves_the_letter_open_with_the_new_reason(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any, cli: Any,
        poll_settings: Settings) -> None:
    server = sandbox()
    partner_id = connect(server)
    poller.poll(partner_id)
    with staff(server) as client:
        stray = raise_referral(client)
        change(client, stray, progres_orgreferralid=f"cbr-{uuid.uuid4()}")
    poller.poll(partner_id)
    [letter] = letters(sessions, partner_id)
    assert cli("redrive", str(letter.id), database_url=poll_settings.database_url
               ).exit_code == 0

    assert poller.poll(partner_id).retaken == 0
    [letter] = letters(sessions, partner_id)
    assert (letter.reason, letter.attempts, letter.redriven_at) == ("unknown-referral", 2, None)
    assert letter.change is not None  # still there to re-drive once the referral exists


def test_each_refusal_of_one_record_is_its_own_dead_letter_and_a_repeat_poll_adds_none(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any) -> None:
    server = sandbox()
    partner_id = connect(server)
    poller.poll(partner_id)
    with staff(server) as client:
        stray = raise_referral(client)
        change(client, stray, progres_orgreferralid=f"cbr-{uuid.uuid4()}")
        poller.poll(partner_id)
        with sessions() as session:
            cursor_after_first = session.get_one(PartnerCursor, partner_id).cursor
        time.sleep(1.1)  # Dataverse keeps whole seconds: the next change is a new moment
        change(client, stray, statuscode=R.PENDING_ACTION)
        poller.poll(partner_id)

    assert [lt.reason for lt in letters(sessions, partner_id)] == ["unknown-referral"] * 2
    first, second = letters(sessions, partner_id)
    assert first.message_id != second.message_id
    assert first.change and second.change
    assert first.change["changed_at"] != second.change["changed_at"]
    # The same change reported again (the cursor set back) makes no third letter.
    with unit_of_work(sessions) as session:
        session.get_one(PartnerCursor, partner_id).cursor = cursor_after_first
    poller.poll(partner_id)
    assert len(letters(sessions, partner_id)) == 2


def test_a_redriven_change_waits_while_the_partner_is_down_and_is_taken_when_it_is_back(
        sandbox: Any, connect: Any, poller: Poller, sessions: Any, cli: Any,
        poll_settings: Settings) -> None:
    server = sandbox()
    partner_id = connect(server)
    poller.poll(partner_id)
    httpx.put(f"{server.url}/_sandbox/privileges", json={"read_denied": ["progres_cases"]})
    with staff(server) as client:
        native_id = raise_referral(client)
    poller.poll(partner_id)
    [letter] = letters(sessions, partner_id)
    httpx.put(f"{server.url}/_sandbox/privileges", json={"read_denied": []})
    assert cli("redrive", str(letter.id), database_url=poll_settings.database_url
               ).exit_code == 0

    httpx.put(f"{server.url}/_sandbox/faults", json={"failure_rate": 1.0})
    with pytest.raises(TransientDeliveryError):
        poller.poll(partner_id)
    [letter] = letters(sessions, partner_id)
    assert letter.redriven_at is not None and letter.change is not None  # still queued

    httpx.put(f"{server.url}/_sandbox/faults", json={"failure_rate": 0.0})
    assert poller.poll(partner_id).retaken == 1
    assert letters_or_referral(sessions, partner_id, native_id)
