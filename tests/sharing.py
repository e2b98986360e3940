"""Data-sharing agreements for tests: written as files, as an IM officer would."""

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, Partner

CATEGORIES = ["identity", "contact", "demographics", "protection", "incident", "health",
              "legal", "risk", "case-notes"]


def write_agreement(folder: Path, agreement_id: str, parties: list[str], **fields: Any
                    ) -> Path:
    """A data-sharing agreement file; by default both purposes and every category."""
    document: dict[str, Any] = {
        "id": agreement_id, "title": f"Test agreement {agreement_id}", "parties": parties,
        "purposes": ["referral", "transfer"],
        "data_categories": {"referral": CATEGORIES, "transfer": CATEGORIES},
        "retention_days": 365, **fields}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{agreement_id}.yaml"
    draft = path.with_suffix(".draft")
    draft.write_text(json.dumps(document, indent=2))  # JSON is YAML
    draft.replace(path)  # a running gateway never reads half a file
    return path


def agreed(settings: Settings, *parties: str) -> AgreementRegistry:
    """The agreements in `settings.agreements_dir`, after adding one between `parties`."""
    write_agreement(settings.agreements_dir, f"test-{uuid.uuid4().hex[:12]}", list(parties))
    return AgreementRegistry(settings.agreements_dir, Contracts(settings.contracts_dir))


def stored_referral(settings: Settings, document: Callable[[str, str], dict[str, Any]], *,
                    prefix: str) -> tuple[str, str, str]:
    """A referral submitted through the gateway's own service, between two new partners
    that share an agreement: (referral id, sender id, receiver id)."""
    sessions = make_sessionmaker(make_engine(settings.database_url))
    sender_id, receiver_id = (f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with unit_of_work(sessions) as session:
        for partner_id in (sender_id, receiver_id):
            register_partner(session=session, partner_id=partner_id, name="x", system="other")
        referral = submit_referral(
            session=session, contracts=Contracts(settings.contracts_dir),
            agreements=agreed(settings, sender_id, receiver_id),
            sender=session.get_one(Partner, sender_id),
            document=document(sender_id, receiver_id), idempotency_key=uuid.uuid4().hex,
            correlation_id=f"corr-{sender_id}").referral
    return referral.id, sender_id, receiver_id


def two_partners(new_partner: Callable[..., tuple[str, str]], settings: Settings, *,
                 agree: bool = True, **fields: Any) -> tuple[str, str, str, str]:
    """Sender and receiver (ids and API keys) with an agreement of `fields` (none with
    agree=False)."""
    (sender, sender_key), (receiver, receiver_key) = (new_partner(agreement=False),
                                                      new_partner(agreement=False))
    if agree:
        write_agreement(settings.agreements_dir, f"isp-{uuid.uuid4().hex[:8]}",
                        [sender, receiver], **fields)
    return sender, sender_key, receiver, receiver_key


def audit_actions(settings: Settings, partner_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(action, detail) of every audit entry about `partner_id`, oldest first."""
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        return [(e.action, e.detail) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.partner_id == partner_id)
            .order_by(AuditEntry.seq))]
