"""Operators see each partner's poll health (console and /metrics), the partner's own
reason on a dead letter, and can re-drive an inbound dead letter from the console."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from console_testkit import csrf_of

from adapters.base import NativeChange
from gateway.delivery.poller import Poller, Refusal
from gateway.errors import TransientDeliveryError
from gateway.partners import register_partner
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry, DeadLetter
from servers import LiveServer


def partner(sessions: Any) -> str:
    partner_id = f"progres-{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id=partner_id, name="UNHCR",
                         system="progres")
    return partner_id


def poller_on(sessions: Any) -> Poller:
    # Only the store matters here: no change is translated or submitted.
    return Poller(sessions=sessions, contracts=None, agreements=None,  # type: ignore[arg-type]
                  translator=None)  # type: ignore[arg-type]


def test_a_failing_partner_shows_on_the_console_and_in_metrics(
        sessions: Any, console: LiveServer, users: Any,
        login: Callable[..., httpx.Client]) -> None:
    partner_id = partner(sessions)
    poller = poller_on(sessions)
    for _ in range(3):
        poller.record_failure(partner_id, TransientDeliveryError(
            "proGres answered 503 to discover", partner_status=503))

    page = login(users.operator).get("/console/deliveries")
    assert page.status_code == 200
    row = page.text.split(f'id="poll-{partner_id}"', 1)[1].split("</tr>", 1)[0]
    assert "never" in row and ">3<" in row and "partner-unavailable 503" in row

    metrics = httpx.get(f"{console.url}/metrics")
    assert metrics.status_code == 200
    assert f'casebridge_poll_consecutive_failures{{partner="{partner_id}"}} 3.0' in metrics.text
    assert (f'casebridge_poll_last_error_info{{error="partner-unavailable 503",'
            f'partner="{partner_id}"}} 1.0') in metrics.text


def test_an_inbound_dead_letter_shows_and_is_redriven_from_the_console(
        sessions: Any, users: Any, login: Callable[..., httpx.Client]) -> None:
    partner_id = partner(sessions)
    change = NativeChange(kind="status", native_id=f"progres_x({uuid.uuid4()})",
                          record={"referral": {"statuscode": 125080004}},
                          referral_id=str(uuid.uuid4()), changed_at="2026-12-07T08:00:00Z")
    poller_on(sessions)._refuse(partner_id, change, Refusal(
        "unknown-referral", "the status change is for a record the gateway does not know"))
    with sessions() as session:
        letter = session.query(DeadLetter).filter_by(partner_id=partner_id).one()

    operator = login(users.operator)
    listing = operator.get("/console/dead-letters", params={"partner": partner_id})
    assert f'name="ids" value="{letter.id}"' in listing.text
    assert "inbound/status" in listing.text and "unknown-referral" in listing.text
    done = operator.post("/console/dead-letters/redrive", data={
        "csrf": csrf_of(listing), "ids": str(letter.id), "partner": partner_id},
        follow_redirects=True)
    assert f"Re-driven: {letter.id}" in done.text
    with sessions() as session:
        stored = session.get_one(DeadLetter, letter.id)
        assert stored.redriven_by == f"user:{users.operator}" and stored.change is not None
        assert session.query(AuditEntry).filter_by(
            action="redrive", partner_id=partner_id).count() == 1
