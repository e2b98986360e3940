"""The audit trail: append-only, hash-chained, no personal data.

Every entry says who (`actor`: "partner:<id>", "user:<name>", "system:<process>"), for
which partner, did what (`action`, see ACTIONS) to which referral, under which
correlation id, when, with a few codes in `detail` (never a personal value). Each entry's
`hash` is SHA-256 over its own fields and the previous entry's hash, so editing,
inserting or removing any entry breaks the chain from there on: `verify` finds it.

Entries are written in the transaction of the change they record, so a change and its
entry commit or roll back together. Writers take turns on the one `audit_head` row
(a row lock on PostgreSQL, the write lock on SQLite), which keeps the chain a line. The
works of a group commit (gateway/store/group_commit.py) chain their entries one after the
other in their shared transaction: numbered, chained and written together just before
it commits, so the head row is held only from there to the end of the commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, bindparam, event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.store.db import insert_now, pipelined, take_write_turn, unit_of_work
from gateway.store.group_commit import GROUPED
from gateway.store.models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
# Core statements on the table (an ORM-enabled UPDATE would flush the session first).
_HEAD: Table = AuditHead.__table__  # type: ignore[assignment]
_ADVANCE = (update(_HEAD).where(_HEAD.c.id == 1)
            .values(seq=_HEAD.c.seq + bindparam("count", type_=Integer))
            .returning(_HEAD.c.seq, _HEAD.c.hash))
_SET_HEAD = update(_HEAD).where(_HEAD.c.id == 1)
_UNCHAINED = "casebridge.audit_unchained"  # a group's entries, chained just before commit

ACTIONS = frozenset({
    "referral.create", "referral.refuse", "referral.read", "referral.list", "referral.deny",
    "referral.timeline",
    "referral.purge", "status.change", "delivery.deliver", "delivery.dead_letter",
    "delivery.withhold", "redrive", "consent.withdraw", "keys.rotate", "console.login",
    "console.lockout", "console.view", "console.user", "audit.export", "token.issue",
    "report.disclosures", "subject.lookup", "subject.export", "subject.erase",
    "subject.restrict", "deadline.alert", "directory.availability",
    "fhir.subscription", "partner.rotate_key", "partner.suspend", "partner.resume",
})


def record(
    session: Session, *, actor: str, action: str, partner_id: str | None = None,
    referral_id: str | None = None, correlation_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in `session`'s transaction; it commits with the change it records.

    In a group commit the entry is numbered and chained just before the group commits
    (its `seq`, `prev_hash` and `hash` are set then), together with the group's others.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(at=utcnow(), actor=actor, partner_id=partner_id, action=action,
                       referral_id=referral_id, correlation_id=correlation_id,
                       detail=detail or {})
    if session.info.get(GROUPED):
        session.info.setdefault(_UNCHAINED, []).append(entry)
    else:
        _chain(session, [entry])
    return entry


def _chain(session: Session, new: list[AuditEntry]) -> None:
    """Number `new` on from the head, chain, write them and the head: the head row is
    held from here to the end of the transaction."""
    take_write_turn(session)
    session.flush()  # what the session holds unwritten goes first, not in the pipeline
    connection = session.connection()
    last, prev_hash = connection.execute(_ADVANCE, {"count": len(new)}).one()
    for seq, entry in enumerate(new, last - len(new) + 1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = entry_hash(entry)
    # written at once (the trail has no foreign keys to wait for), also in a group, whose
    # waiting rows were written before this (see _chain_group_entries); on PostgreSQL the
    # entries and the head in one round trip
    with pipelined(connection):
        insert_now(session, *new, wait=False)
        connection.execute(_SET_HEAD, {"hash": prev_hash})


# Registered after gateway.store.db's writer of a group's waiting rows (this module
# imports that one), so it runs after it: the head row is held only for the entries,
# the head and the commit, not while the group's other rows are written.
@event.listens_for(Session, "before_commit")
def _chain_group_entries(session: Session) -> None:
    new = session.info.pop(_UNCHAINED, None)
    if new:
        _chain(session, new)


@event.listens_for(Session, "after_rollback")
def _drop_group_entries(session: Session) -> None:
    session.info.pop(_UNCHAINED, None)


def record_apart(sessions: sessionmaker[Session], **fields: Any) -> None:
    """Append an entry in a transaction of its own: for refusals and denials, whose
    request rolls back but must still leave a trace. Call it before the request writes."""
    with unit_of_work(sessions) as session:
        record(session, **fields)


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 of the entry's fields (canonical JSON) and the previous entry's hash."""
    return hashlib.sha256(json.dumps(
        _fields(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    ).encode()).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": _instant(entry.at), "actor": entry.actor,
            "partner_id": entry.partner_id, "action": entry.action,
            "referral_id": entry.referral_id, "correlation_id": entry.correlation_id,
            "detail": entry.detail, "prev_hash": entry.prev_hash}


def _instant(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def as_record(entry: AuditEntry) -> dict[str, Any]:
    """The entry as an auditor receives it: every field, its hash, nothing personal."""
    return {**_fields(entry), "hash": entry.hash}


@dataclass(frozen=True)
class Break:
    """Where the chain is broken, and how."""

    seq: int
    problem: str


@dataclass(frozen=True)
class Verification:
    entries: int
    head_seq: int
    head_hash: str
    breaks: list[Break]

    @property
    def ok(self) -> bool:
        return not self.breaks


def entries(session: Session, *, batch: int = 1000, since: datetime | None = None,
            until: datetime | None = None) -> Iterator[AuditEntry]:
    """The trail in order, read in batches."""
    after = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.seq > after)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        rows = list(session.scalars(query.order_by(AuditEntry.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> Verification:
    """Walk the whole chain: every hash recomputed, every link and number checked.

    Catches an edited entry (its hash no longer matches), a removed or inserted one (the
    next entry's `prev_hash` or number no longer follows), and a removed tail (the head
    row names an entry that is not there).
    """
    breaks: list[Break] = []
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries(session):
        count += 1
        if entry.seq != expected_seq:
            gone = (f"entry {expected_seq}" if entry.seq - 1 == expected_seq
                    else f"entries {expected_seq} to {entry.seq - 1}")
            breaks.append(Break(entry.seq, f"{gone} missing before it"))
        if entry.prev_hash != expected_prev:
            breaks.append(Break(entry.seq, "does not follow the entry before it "
                                           "(an entry was removed, inserted or rewritten)"))
        if entry_hash(entry) != entry.hash:
            breaks.append(Break(entry.seq, "edited after it was written (hash does not match)"))
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    head_seq, head_hash = session.execute(
        text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    if head_seq != expected_seq - 1 or head_hash != expected_prev:
        breaks.append(Break(head_seq, f"the trail ends at entry {expected_seq - 1} but its "
                                      f"head names entry {head_seq}: entries were removed"))
    return Verification(count, expected_seq - 1, expected_prev, breaks)
