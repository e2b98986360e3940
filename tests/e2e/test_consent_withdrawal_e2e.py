"""Consent withdrawn after a referral was sent: pending deliveries stop, the receiver is told.

A whole stack: the gateway API, relay and workers on RabbitMQ, and a Primero sandbox as
the receiver, which shows in its own store what reached it.
"""

import sqlite3

import httpx

from gateway.protection import audit
from gateway.store.models import AuditEntry, Delivery
from stack import SandboxSpec, Stack, wait_for

RECEIVER, SENDER = "primero-ssd", "sender-api"


def primero_state(stack: Stack, referral_id: str) -> tuple[int, list[str]]:
    """How many cases the receiving Primero holds for the referral, and their transitions."""
    with sqlite3.connect(stack.folder / f"{RECEIVER}.db") as db:
        case_ids = [row[0] for row in db.execute(
            "SELECT id FROM cases WHERE json_extract(data, '$.casebridge_referral_id') = ?",
            (referral_id,))]
        states = [row[0] for case_id in case_ids for row in db.execute(
            "SELECT json_extract(data, '$.status') FROM transitions WHERE record_id = ?",
            (case_id,))]
    return len(case_ids), states


def withdraw(stack: Stack, referral_id: str) -> httpx.Response:
    with stack.api(SENDER) as client:
        return client.post(f"/v1/referrals/{referral_id}/consent-withdrawal",
                           json={"withdrawn_date": "2026-11-20"})


def test_withdrawal_before_delivery_stops_it_and_after_delivery_tells_the_receiver(
    make_stack, make_referral
) -> None:
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], worker_threads=0)
    # Before delivery: no worker runs yet, so the referral waits in its queue.
    pending = stack.submit(SENDER, make_referral(SENDER, RECEIVER))
    answer = withdraw(stack, pending)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "withdrawn"
    assert answer.json()["content"]["consent"]["withdrawn"] is True
    assert withdraw(stack, pending).json()["status"] == "withdrawn"  # repeating changes nothing

    stack.start_worker_thread()
    delivered = stack.submit(SENDER, make_referral(SENDER, RECEIVER))
    wait_for(lambda: stack.history(delivered)[-1] == "delivered", timeout=60,
             what="the second referral delivered")
    assert primero_state(stack, pending) == (0, [])  # the first never reached Primero

    # After delivery: the receiver's Primero is told, in its own vocabulary.
    assert withdraw(stack, delivered).json()["status"] == "withdrawn"
    wait_for(lambda: "revoked" in primero_state(stack, delivered)[1], timeout=60,
             what="the referral revoked in Primero")
    with stack.sessions() as session:
        actions = [(e.action, e.referral_id) for e in session.query(AuditEntry)]
        assert ("consent.withdraw", pending) in actions
        assert ("delivery.withhold", pending) in actions  # the queued delivery, stopped
        assert ("consent.withdraw", delivered) in actions
        outcomes = {d.outcome for d in session.query(Delivery).filter_by(referral_id=pending)}
        assert "delivered" not in outcomes
        assert audit.verify(session).ok
