"""Data-subject requests: a person's referrals found by identifier, exported for them, and
restricted or erased on their request.

A data-protection officer (a console auditor, or someone at the server's command line)
acts for one person, always with a reason from `REASONS` and the reference of the
request (a ticket or letter number): both go into the audit trail, which never holds
the identifier searched for, only how many.

- `find`: the referrals about the person, by the keyed hashes of their identifiers.
- `export`: each referral as the person may read it — who received which data
  categories, when, under which agreement and consent, and the data itself.
- `restrict`: the gateway's copy is kept but frozen: nothing more leaves, no partner sees
  its content, the retention purge still ends it.
- `erase`: every personal value of the gateway's copy goes at once (content, status
  notes, partners' error messages, identifier hashes); the envelope (ids, states, times)
  stays until the retention purge, so the receiver can still be told. Where the
  agreement says `on_erasure_request: restrict` (records kept by law), it is restricted
  instead.

Both tell the receiver as a consent withdrawal does: an open referral is withdrawn and
the status event goes out through the outbox; a closed one cannot carry the news, and
the result says so (`receiver_told: false`), for staff to tell the receiver directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from gateway.casework import tell_receiver
from gateway.contracts import Contracts
from gateway.errors import FieldError, ValidationProblem
from gateway.json_pointer import pointer, tokens
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.identifiers import lookup_digests
from gateway.protection.need_to_know import categories_in, category_at
from gateway.store.models import (
    DeadLetter,
    Delivery,
    IdentifierDigest,
    Partner,
    Referral,
    utcnow,
)

log = structlog.get_logger()

REASONS = {
    "access_request": "the person asked for their data",
    "representative_request": "the person's legal representative asked for their data",
    "erasure_request": "the person asked for their data to be erased",
    "restriction_request": "the person asked to restrict the use of their data",
    "complaint": "a complaint is being investigated",
    "legal_obligation": "a court, regulator or law requires it",
}
# A ticket, case or letter number: enough to find the request, never a name.
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")
IDENTIFIER = re.compile(r"^[A-Za-z0-9_.-]{1,60}:.{1,240}$", re.S)
MAX_IDENTIFIERS = 20

ERASE_NOTE = ("The person asked for their data to be erased: erase your copy too, where "
              "your agreement and the law allow.")
RESTRICT_NOTE = ("The person asked to restrict the use of their data: keep your copy but "
                 "stop using it, where your agreement and the law allow.")


@dataclass(frozen=True)
class Request:
    """Who acts on a person's data, and why: what the audit trail keeps of the request."""

    actor: str
    reason: str
    reference: str

    def detail(self) -> dict[str, str]:
        return {"reason": self.reason, "reference": self.reference}


def request(*, actor: str, reason: str, reference: str) -> Request:
    """A checked request, or ValidationProblem naming each field that is not right."""
    errors = []
    if reason not in REASONS:
        errors.append(FieldError("/reason", "enum", f"one of {', '.join(REASONS)}"))
    if not REFERENCE.match(reference):
        errors.append(FieldError("/reference", "pattern",
                                 "the request's ticket or letter number: letters, digits and "
                                 ". _ : / # - (up to 64), never a name"))
    if errors:
        raise ValidationProblem("Say why, and which request this is.", errors)
    return Request(actor, reason, reference)


def identifiers_of(lines: Sequence[str]) -> list[str]:
    """`<system>:<value>` identifiers, one a line (blank lines ignored), or ValidationProblem."""
    terms = [line.strip() for line in lines if line.strip()]
    errors = [FieldError(f"/identifiers/{i}", "pattern", "write <system>:<value>, e.g. "
                         "primero_case:CP-123 or external_reference:REF-9")
              for i, term in enumerate(terms) if not IDENTIFIER.match(term)]
    if not terms:
        errors.append(FieldError("/identifiers", "minItems", "give at least one identifier"))
    if len(terms) > MAX_IDENTIFIERS:
        errors.append(FieldError("/identifiers", "maxItems",
                                 f"at most {MAX_IDENTIFIERS} identifiers"))
    if errors:
        raise ValidationProblem("The identifiers cannot be searched for.", errors)
    return terms


def find(session: Session, *, identifiers: Sequence[str], why: Request) -> list[Referral]:
    """The referrals about the person these identifiers name, oldest first; audited with
    the reason, the reference and how many identifiers were searched (never which)."""
    terms = identifiers_of(identifiers)
    digests = [d for term in terms for d in lookup_digests(term)]
    found = list(session.scalars(
        select(Referral).where(Referral.id.in_(
            select(IdentifierDigest.referral_id).where(IdentifierDigest.digest.in_(digests))))
        .options(selectinload(Referral.events)).order_by(Referral.created_at, Referral.id)))
    audit.record(session, actor=why.actor, action="subject.lookup",
                 detail={**why.detail(), "identifiers": len(terms), "found": len(found)})
    log.info("subject_lookup", found=len(found), reason=why.reason)
    return found


def chosen(found: Sequence[Referral], ids: Sequence[str]) -> list[Referral]:
    """The referrals among those found whose ids were chosen (all when none was)."""
    wanted = set(ids)
    return [r for r in found if not wanted or r.id in wanted]


# ---------------------------------------------------------------------------- export


@dataclass(frozen=True)
class Item:
    """One field of what the receiver got, for people to read."""

    pointer: str
    label: str
    category: str | None
    value: Any


@dataclass
class Disclosure:
    """One referral about the person, as they may read it."""

    referral_id: str
    kind: str
    state: str
    sender: dict[str, str]
    receiver: dict[str, str]
    submitted_at: datetime
    delivered_at: datetime | None
    agreement: dict[str, Any]
    consent: dict[str, Any]
    categories: list[str]
    withheld: list[dict[str, str | None]]
    items: list[Item]
    content: dict[str, Any]
    history: list[dict[str, Any]]
    consent_withdrawn_at: datetime | None
    restricted_at: datetime | None
    erased_at: datetime | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "referral_id": self.referral_id, "kind": self.kind, "state": self.state,
            "sender": self.sender, "receiver": self.receiver,
            "submitted_at": _iso(self.submitted_at), "delivered_at": _iso(self.delivered_at),
            "agreement": self.agreement, "consent": self.consent,
            "categories_received": self.categories, "withheld": self.withheld,
            "received": self.content, "history": [
                {**h, "at": _iso(h["at"])} for h in self.history],
            "consent_withdrawn_at": _iso(self.consent_withdrawn_at),
            "restricted_at": _iso(self.restricted_at), "erased_at": _iso(self.erased_at),
            "notes": self.notes,
        }


def export(session: Session, *, referrals: Sequence[Referral], contracts: Contracts,
           agreements: AgreementRegistry, why: Request, form: str) -> list[Disclosure]:
    """Each referral as the person may read it; each export is audited per referral."""
    in_force = {a.id: a for a in agreements.in_force()}
    names = {p.id: p.name for p in session.scalars(select(Partner).where(Partner.id.in_(
        {r.sender_id for r in referrals} | {r.receiver_id for r in referrals})))}
    disclosures = []
    for referral in referrals:
        disclosures.append(_disclosure(session, referral, contracts, in_force, names))
        audit.record(session, actor=why.actor, action="subject.export",
                     partner_id=referral.sender_id, referral_id=referral.id,
                     correlation_id=referral.correlation_id,
                     detail={**why.detail(), "format": form})
    log.info("subject_exported", referrals=len(referrals), reason=why.reason)
    return disclosures


def _disclosure(session: Session, referral: Referral, contracts: Contracts,
                in_force: dict[str, Any], names: dict[str, str]) -> Disclosure:
    delivered_at = session.scalar(
        select(Delivery.finished_at).where(
            Delivery.referral_id == referral.id, Delivery.partner_id == referral.receiver_id,
            Delivery.status_event_id.is_(None), Delivery.outcome == "delivered")
        .order_by(Delivery.id).limit(1))
    agreement = in_force.get(referral.agreement_id or "")
    content = referral.content or {}
    notes = []
    if referral.erased_at is not None:
        notes.append("Erased on request: the gateway keeps none of the person's data.")
    if referral.restricted_at is not None:
        notes.append("Restricted on request: kept, but nothing more is sent and no partner "
                     "sees it.")
    if referral.consent_withdrawn_at is not None:
        notes.append("Consent was withdrawn: nothing more was sent after that.")
    if delivered_at is None:
        notes.append("The gateway has no record of delivering it to the receiver's system.")
    return Disclosure(
        referral_id=referral.id, kind=referral.kind, state=referral.status,
        sender={"id": referral.sender_id, "name": names.get(referral.sender_id, "")},
        receiver={"id": referral.receiver_id, "name": names.get(referral.receiver_id, "")},
        submitted_at=referral.created_at, delivered_at=delivered_at,
        agreement={"id": referral.agreement_id,
                   "title": agreement.title if agreement is not None else None,
                   "retention_days": referral.retention_days},
        consent=dict(content.get("consent") or {}),
        categories=sorted(categories_in(content, contracts=contracts)),
        withheld=[{"field": p, "label": label(p), "category": category_at(contracts, p)}
                  for p in referral.withheld or []],
        items=list(_items(content, contracts)), content=content,
        history=[{"state": e.to_state, "at": e.occurred_at, "by": e.actor}
                 for e in referral.events],
        consent_withdrawn_at=referral.consent_withdrawn_at,
        restricted_at=referral.restricted_at, erased_at=referral.erased_at, notes=notes)


def _items(value: Any, contracts: Contracts, where: str = "") -> Any:
    """Every leaf value of a document with its field, a label for people, its category."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _items(child, contracts, where + pointer([key]))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for index, child in enumerate(value):
            yield from _items(child, contracts, f"{where}/{index}")
    else:
        yield Item(where, label(where), category_at(contracts, where), _shown(value))


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def label(at: str) -> str:
    """A field's JSON Pointer as words: /subject/identifiers/0/value → subject › identifiers
    1 › value."""
    words = [str(int(t) + 1) if t.isdigit() else t.replace("_", " ") for t in tokens(at)]
    out: list[str] = []
    for word in words:
        if word.isdigit() and out:
            out[-1] += f" {word}"
        else:
            out.append(word)
    return " › ".join(out)


def as_json(disclosures: Sequence[Disclosure], *, why: Request, at: datetime) -> dict[str, Any]:
    """The export as one JSON document."""
    return {"exported_at": at.isoformat(), "reason": why.reason, "reference": why.reference,
            "referrals": [d.as_dict() for d in disclosures]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------------------- restrict, erase


@dataclass(frozen=True)
class Stopped:
    """What a restriction or erasure did to one referral."""

    referral_id: str
    outcome: Literal["erased", "restricted", "already erased", "already restricted"]
    receiver: str
    receiver_told: bool
    why: str = ""


def restrict(session: Session, *, contracts: Contracts, referral: Referral, why: Request,
             instead_of_erasure: str | None = None) -> Stopped:
    """Freeze the gateway's copy and tell the receiver; audited."""
    session.refresh(referral, with_for_update=True)  # as it is now, and no one else's turn
    if referral.erased_at is not None:
        return Stopped(referral.id, "already erased", referral.receiver_id, False)
    if referral.restricted_at is not None:
        return Stopped(referral.id, "already restricted", referral.receiver_id, False,
                       instead_of_erasure or "")
    told = tell_receiver(session=session, contracts=contracts, referral=referral,
                         note=RESTRICT_NOTE, audit_actor=why.actor) is not None
    referral.restricted_at = utcnow()
    _audit(session, "subject.restrict", referral, why, told,
           {"instead_of_erasure": True} if instead_of_erasure else {})
    log.info("subject_restricted", referral_id=referral.id, receiver_told=told)
    return Stopped(referral.id, "restricted", referral.receiver_id, told,
                   instead_of_erasure or "")


def erase(session: Session, *, contracts: Contracts, agreements: AgreementRegistry,
          referral: Referral, why: Request) -> Stopped:
    """Empty the gateway's copy of every personal value and tell the receiver; audited.
    Where the agreement keeps such records, restrict instead."""
    session.refresh(referral, with_for_update=True)  # as it is now, and no one else's turn
    if referral.erased_at is not None:
        return Stopped(referral.id, "already erased", referral.receiver_id, False)
    agreement = next((a for a in agreements.in_force() if a.id == referral.agreement_id),
                     None)
    if agreement is not None and agreement.on_erasure_request == "restrict":
        return restrict(session, contracts=contracts, referral=referral, why=why,
                        instead_of_erasure=f"agreement '{agreement.id}' keeps these records "
                                           "(on_erasure_request: restrict)")
    # Told first: the sender's withdrawal is filtered by the consent the copy still holds.
    event = tell_receiver(session=session, contracts=contracts, referral=referral,
                          note=ERASE_NOTE, audit_actor=why.actor)
    referral.content = {}
    for earlier in referral.events:
        if earlier is not event:
            earlier.content = {}
    session.execute(delete(IdentifierDigest).where(IdentifierDigest.referral_id == referral.id))
    for delivery in session.scalars(select(Delivery).where(
            Delivery.referral_id == referral.id, Delivery.partner_error.is_not(None))):
        delivery.partner_error = None
    for letter in session.scalars(select(DeadLetter).where(
            DeadLetter.referral_id == referral.id)):
        letter.partner_error = letter.change = None
    referral.erased_at = utcnow()
    _audit(session, "subject.erase", referral, why, event is not None, {})
    log.info("subject_erased", referral_id=referral.id, receiver_told=event is not None)
    return Stopped(referral.id, "erased", referral.receiver_id, event is not None)


def _audit(session: Session, action: str, referral: Referral, why: Request, told: bool,
           extra: dict[str, Any]) -> None:
    session.flush()
    audit.record(session, actor=why.actor, action=action, partner_id=referral.sender_id,
                 referral_id=referral.id, correlation_id=referral.correlation_id,
                 detail={**why.detail(), "kind": referral.kind,
                         "receiver": referral.receiver_id, "agreement": referral.agreement_id,
                         "state": referral.status, "receiver_told": told, **extra})
