"""The disclosure register and agreement health against a seeded history with known answers.

The history is made by the gateway's own services on a store of its own (SQLite and
PostgreSQL): submissions and refusals, deliveries and status changes by the worker's
code (with an in-memory partner system instead of an adapter), a consent withdrawal, an
erasure, a retention purge — on a clock the test sets, so each figure is known.
"""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fictional import find_personal
from gateway.casework import record_status_event, submit_referral, withdraw_consent
from gateway.contracts import Contracts
from gateway.delivery.worker import Deliverer
from gateway.errors import ConsentProblem
from gateway.lifecycle import Actor
from gateway.partners import register_partner
from gateway.protection import agreement_health, audit, disclosures, subject_requests
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.retention import purge
from gateway.store.db import unit_of_work
from gateway.store.models import OutboxMessage, Partner, Referral, utcnow
from sharing import write_agreement

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
S, R1, R2, R3 = "dr-sender", "dr-receiver-one", "dr-receiver-two", "dr-stranger"
CATEGORIES_A = ["identity", "demographics", "protection", "case-notes"]  # not risk


class Clock:
    """The audit trail's clock, set by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, **delta: float) -> None:
        self.now = T0 + timedelta(**delta)


class MemoryPartner:
    """A partner system that keeps what it is sent (ids only), instead of an adapter."""

    channel = None

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        return f"native-{referral_id}"

    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]
                      ) -> None:
        self.statuses.append((referral_id, status["status"]))


class SameWords:
    def outbound(self, system: str, kind: str, canonical: dict[str, Any], *,
                 channel: str | None = None) -> tuple[dict[str, Any], str]:
        return {"kind": kind}, "sha256:test"

    def status_out(self, system: str, kind: str, event: dict[str, Any], *,
                   channel: str | None = None) -> dict[str, Any]:
        return {"status": event["status"]}


class Worker(Deliverer):
    def __init__(self, partner: MemoryPartner, **kwargs: Any) -> None:
        super().__init__(translator=SameWords(), **kwargs)  # type: ignore[arg-type]
        self.partner = partner

    def adapter_for(self, partner: Partner) -> Any:
        return self.partner


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(audit, "utcnow", clock)
    return clock


def deliver_pending(sessions, worker: Worker) -> None:
    """What the relay and a worker do with the outbox, without the broker."""
    with sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))
                               .order_by(OutboxMessage.id)).all()
        envelopes = [(row.id, row.envelope) for row in rows]
    for row_id, envelope in envelopes:
        worker.handle(envelope, 1)
        with unit_of_work(sessions) as session:
            session.get_one(OutboxMessage, row_id).published_at = utcnow()


def test_the_register_counts_a_seeded_history_exactly(
    sessions, settings, tmp_path, make_referral, clock
) -> None:
    contracts = Contracts(settings.contracts_dir)
    write_agreement(tmp_path, "isp-a", [S, R1], purposes=["referral"],
                    data_categories={"referral": CATEGORIES_A},
                    requires_bia_for_children=True)
    write_agreement(tmp_path, "isp-b", [S, R2])
    agreements = AgreementRegistry(tmp_path, contracts)
    partner = MemoryPartner()
    worker = Worker(partner, sessions=sessions, contracts=contracts)
    with unit_of_work(sessions) as session:
        for partner_id in (S, R1, R2, R3):
            registered, _ = register_partner(session=session, partner_id=partner_id,
                                             name=partner_id, system="other")
            # The gateway writes to each one's system (here the MemoryPartner).
            registered.connection = {"base_url": "http://127.0.0.1:9"}

    def submit(document: dict[str, Any]) -> str:
        with unit_of_work(sessions) as session:
            return submit_referral(session=session, contracts=contracts, agreements=agreements,
                                   sender=session.get_one(Partner, S), document=document,
                                   idempotency_key=uuid.uuid4().hex,
                                   correlation_id="corr-register").referral.id

    def refused(document: dict[str, Any]) -> None:
        """Refused, and audited as the API does it."""
        with pytest.raises(ConsentProblem) as caught, unit_of_work(sessions) as session:
            submit_referral(session=session, contracts=contracts, agreements=agreements,
                            sender=session.get_one(Partner, S), document=document,
                            idempotency_key=uuid.uuid4().hex, correlation_id="corr-refused")
        audit.record_apart(sessions, actor=f"partner:{S}", action="referral.refuse",
                           partner_id=S, detail=disclosures.refusal_facts(caught.value))

    clock.at(hours=-1)
    submit(make_referral(S, R1))  # before the period
    clock.at(minutes=1)
    r1, r2 = submit(make_referral(S, R1)), submit(make_referral(S, R1))
    no_notes = make_referral(S, R2)
    no_notes["consent"]["scope"]["data_categories"].remove("case-notes")
    r3, r4 = submit(no_notes), submit(make_referral(S, R2, kind="transfer"))
    not_r1 = make_referral(S, R1)
    not_r1["consent"]["scope"]["receivers"] = [R2]
    refused(not_r1)
    no_bia = make_referral(S, R1)
    del no_bia["consent"]["bia_reference"]
    refused(no_bia)
    refused(make_referral(S, R3))

    with unit_of_work(sessions) as session:  # r4 is withdrawn before it is delivered
        withdraw_consent(session=session, contracts=contracts,
                         referral=session.get_one(Referral, r4),
                         partner=session.get_one(Partner, S), withdrawn_on=T0.date())
    clock.at(minutes=2)
    deliver_pending(sessions, worker)
    with unit_of_work(sessions) as session:  # r3 is done with
        for state in ("accepted", "completed"):
            record_status_event(session=session, contracts=contracts,
                                referral=session.get_one(Referral, r3), actor=Actor.RECEIVER,
                                actor_partner=session.get_one(Partner, R2),
                                document={"status": state})
    deliver_pending(sessions, worker)

    clock.at(minutes=10)
    with unit_of_work(sessions) as session:
        withdraw_consent(session=session, contracts=contracts,
                         referral=session.get_one(Referral, r1),
                         partner=session.get_one(Partner, S), withdrawn_on=T0.date())
    clock.at(minutes=11, seconds=30)
    deliver_pending(sessions, worker)
    why = subject_requests.request(actor="user:dpo", reason="erasure_request",
                                   reference="DSR-2026-7")
    clock.at(minutes=20)
    with unit_of_work(sessions) as session:
        for referral_id in (r2, r3):
            subject_requests.erase(session, contracts=contracts, agreements=agreements,
                                   referral=session.get_one(Referral, referral_id), why=why)
    clock.at(minutes=20, seconds=30)
    deliver_pending(sessions, worker)
    assert (r1, "withdrawn") in partner.statuses and (r2, "withdrawn") in partner.statuses

    clock.at(minutes=40)
    assert sorted(purge(sessions, now=utcnow() + timedelta(days=400)).purged) == sorted(
        [r1, r2, r3, r4])
    clock.at(days=1, minutes=1)
    submit(make_referral(S, R1))  # after the period

    with sessions() as session:
        register = disclosures.register(session, since=T0, until=T0 + timedelta(days=1),
                                        now=T0 + timedelta(days=2),
                                        categories=contracts.codes("data-category"))
        assert audit.verify(session).ok
    rows = {(r["agreement"], r["sender"], r["receiver"]): r
            for r in register.as_dict()["rows"]}
    assert set(rows) == {("isp-a", S, R1), ("isp-b", S, R2), (None, S, R1), (None, S, R3)}

    a = rows[("isp-a", S, R1)]
    assert (a["referrals"], a["transfers"]) == (2, 0)
    assert nonzero(a["categories_sent"]) == {c: 2 for c in CATEGORIES_A}
    assert nonzero(a["categories_removed"]["by_agreement"]) == {"risk": 2}
    assert nonzero(a["categories_removed"]["by_consent"]) == {}
    assert nonzero(a["refusals"]) == {"child_safeguards": 1}
    assert (a["withdrawals"], a["erasures"], a["restrictions"], a["purges"]) == (1, 1, 0, 2)
    assert a["receiver_told"] == {"told": 2, "pending": 0, "nothing_to_tell": 0,
                                  "tell_directly": 0, "median_seconds": 60.0,
                                  "max_seconds": 90.0}

    b = rows[("isp-b", S, R2)]
    assert (b["referrals"], b["transfers"]) == (1, 1)
    assert nonzero(b["categories_sent"]) == {"identity": 2, "demographics": 2,
                                             "protection": 2, "risk": 2, "case-notes": 1}
    assert nonzero(b["categories_removed"]["by_consent"]) == {"case-notes": 1}
    assert nonzero(b["categories_removed"]["by_agreement"]) == {}
    assert (b["withdrawals"], b["erasures"], b["purges"]) == (1, 1, 2)
    assert b["receiver_told"] == {"told": 0, "pending": 0, "nothing_to_tell": 1,
                                  "tell_directly": 1, "median_seconds": None,
                                  "max_seconds": None}

    assert nonzero(rows[(None, S, R1)]["refusals"]) == {"no_consent": 1}
    assert nonzero(rows[(None, S, R3)]["refusals"]) == {"no_agreement": 1}
    total = register.as_dict()["total"]
    assert (total["referrals"], total["transfers"], sum(total["refusals"].values())) == (3, 1, 3)

    table = list(csv.DictReader(io.StringIO(register.as_csv())))
    # Then per agreement (refusals that no agreement covered under none), then the total.
    assert [(r["agreement"], r["sender"], r["receiver"]) for r in table[-4:]] == [
        ("isp-a", "*", "*"), ("isp-b", "*", "*"), ("", "*", "*"), ("*", "*", "*")]
    assert table[-1]["referrals"] == "3" and table[-1]["refused_no_agreement"] == "1"
    assert table[-1]["removed_by_agreement_risk"] == "2"
    # Aggregates only: no name, date of birth or identifier of the people referred.
    shown = json.dumps(register.as_dict()) + register.as_csv()
    assert find_personal(shown) == set()

    # Agreement health on the same history: isp-a ends in 30 days, and was used.
    write_agreement(tmp_path, "isp-a", [S, R1], purposes=["referral"],
                    data_categories={"referral": CATEGORIES_A},
                    valid_to=(T0 + timedelta(days=30)).date().isoformat())
    with sessions() as session:
        found = agreement_health.health(session, agreements=agreements.in_force(),
                                        now=T0 + timedelta(hours=1))
    assert [(t.agreement.id, t.standing, t.days_left) for t in found.attention] == [
        ("isp-a", "ending", 30)]
    # Its three referrals in the 30 days before (one before the register's period).
    assert [(s.agreement, s.sender, s.receiver, s.sent) for s in found.sending] == [
        ("isp-a", S, R1, 3)]
    assert dict(found.removed) == {("isp-a", "risk"): 3}


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}

