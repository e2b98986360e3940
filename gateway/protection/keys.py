"""Key rotation: which keys the stored values need, and re-encryption under the active key.

Personal data is stored in `referrals.content` and `status_events.content`, what partners
said or sent that could not be taken in `deliveries.partner_error`, `dead_letters.change`
and `dead_letters.partner_error`, and the credentials the gateway uses at partner systems
in `partners.connection` (and sends to FHIR partners' notification endpoints, in
`fhir_subscriptions.channel`); each value is `cb1:<key id>:…` or, for rows written before
encryption existed, plain JSON.
`rotate` re-encrypts every value that is not under the active key, a batch per
transaction, and rewrites each re-encrypted referral's identifier digests with it; a
stopped rotation resumes where it stopped, and a finished one leaves nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy import Select, Text, case, column, func, select, table, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.sql.elements import ColumnElement

from gateway.protection import audit
from gateway.protection.crypto import PREFIX, DecryptionError, Keyring, keyring
from gateway.protection.identifiers import store_digests
from gateway.store.db import take_write_turn
from gateway.store.models import (
    DeadLetter,
    Delivery,
    FhirSubscription,
    Partner,
    Referral,
    StatusEvent,
)

ACTOR = "system:keys-rotate"

# The encrypted columns, the model that holds each, and the same table seen raw (the stored
# text, not the decrypted document).
MODELS: dict[str, type[Referral | StatusEvent | Partner | Delivery | DeadLetter
                       | FhirSubscription]] = {
    "referrals.content": Referral,
    "status_events.content": StatusEvent,
    "partners.connection": Partner,
    "deliveries.partner_error": Delivery,
    "dead_letters.change": DeadLetter,
    "dead_letters.partner_error": DeadLetter,
    "fhir_subscriptions.channel": FhirSubscription,
}
COLUMNS = tuple(MODELS)


def _raw(name: str) -> tuple[ColumnElement[Any], ColumnElement[str]]:
    """(id, content) of an encrypted column's table, the content typed as plain text."""
    table_name, column_name = name.split(".")
    id_type = MODELS[name].__table__.c.id.type
    raw = table(table_name, column("id", id_type), column(column_name, Text))
    return raw.c.id, raw.c[column_name]


class ColumnStatus(TypedDict):
    """The values of one encrypted column: how many under each key id, how many in clear."""

    keys: dict[str, int]
    unencrypted: int


def key_status(session: Session) -> dict[str, ColumnStatus]:
    """Per encrypted column, the number of values under each key id and of unencrypted ones."""
    status: dict[str, ColumnStatus] = {}
    for name in COLUMNS:
        _, content = _raw(name)
        key_id = case((func.substr(content, 1, len(PREFIX) + 1) == f"{PREFIX}:",
                       _key_id_of(content, session)), else_=None).label("key_id")
        keyed = select(key_id).where(content.is_not(None)).subquery()
        counts = session.execute(
            select(keyed.c.key_id, func.count()).group_by(keyed.c.key_id)).all()
        keys = {key: count for key, count in counts if key is not None}
        status[name] = ColumnStatus(keys=dict(sorted(keys.items())),
                                    unencrypted=sum(c for k, c in counts if k is None))
    return status


def _key_id_of(content: ColumnElement[str], session: Session) -> ColumnElement[str]:
    """The `<key id>` of `cb1:<key id>:…` in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(content, ":", 2)
    rest = func.substr(content, len(PREFIX) + 2)
    return func.substr(rest, 1, func.instr(rest, ":") - 1)


def keys_in_use(status: dict[str, ColumnStatus]) -> set[str]:
    """The key ids some stored value is encrypted under."""
    return {key for column_status in status.values() for key in column_status["keys"]}


def missing_keys(status: dict[str, ColumnStatus], ring: Keyring) -> list[str]:
    """Key ids that stored values need and the ring lacks: those values cannot be read."""
    return sorted(keys_in_use(status) - set(ring.keys))


def removable_keys(status: dict[str, ColumnStatus], ring: Keyring) -> list[str]:
    """Keys of the ring that no stored value needs and that do not encrypt."""
    return sorted(set(ring.keys) - keys_in_use(status) - {ring.active})


@dataclass(frozen=True)
class Batch:
    """One committed batch of a rotation."""

    column: str
    count: int
    done: int  # values of this column re-encrypted so far in this run
    left: int  # values of this column not yet under the active key when the run began


@dataclass
class RotationReport:
    """What one run of `rotate` re-encrypted, and under which key."""

    key_id: str
    rotated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    batches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rotated.values())


def rotate(
    sessions: sessionmaker[Session], *, batch: int = 500,
    on_batch: Callable[[Batch], None] | None = None,
) -> RotationReport:
    """Re-encrypt every value not under the active key (unencrypted ones too), batch by batch.

    Each batch commits on its own with its identifier digests and one `keys.rotate` audit
    entry, so the run can stop at any point and start again. Values under a key the ring
    lacks stop the run before anything changes: the error names the key to put back.
    """
    if batch < 1:
        raise ValueError("a batch holds at least one value")
    ring = keyring()
    started = time.monotonic()
    report = RotationReport(key_id=ring.active)
    with sessions() as session:
        status = key_status(session)
    _refuse_missing_keys(status, ring)
    for name in COLUMNS:
        left = _count_left(status[name], ring.active)
        after: Any = None
        while True:
            with sessions() as session:
                ids = _rotate_batch(session, name, ring, after=after, limit=batch)
                session.commit()
            if not ids:
                break
            after = ids[-1]
            report.rotated[name] += len(ids)
            report.batches += 1
            if on_batch is not None:
                on_batch(Batch(name, len(ids), report.rotated[name], left))
    report.seconds = time.monotonic() - started
    return report


def _count_left(status: ColumnStatus, active: str) -> int:
    return status["unencrypted"] + sum(n for k, n in status["keys"].items() if k != active)


def _refuse_missing_keys(status: dict[str, ColumnStatus], ring: Keyring) -> None:
    missing = missing_keys(status, ring)
    if missing:
        where = ", ".join(f"{status[name]['keys'][key]} in {name}" for key in missing
                          for name in COLUMNS if key in status[name]["keys"])
        names = ", ".join(f"'{key}'" for key in missing)
        keys, them = ("keys", "them") if len(missing) > 1 else ("key", "it")
        raise DecryptionError(
            f"stored values are encrypted under {keys} {names} ({where}), not in the key "
            f"ring: put {them} back in CASEBRIDGE_KEY_FILE and run the rotation again; "
            "nothing was changed")


def _rotate_batch(session: Session, name: str, ring: Keyring, *, after: Any,
                  limit: int) -> list[Any]:
    """Re-encrypt up to `limit` values of `name` with ids after `after`; their ids."""
    _lock_for_writing(session)
    ids = list(session.scalars(_not_under(name, ring.active, after=after, limit=limit)))
    if not ids:
        return ids
    model = MODELS[name]
    try:
        rows = session.scalars(select(model).where(model.id.in_(ids))).all()
    except DecryptionError as error:
        raise DecryptionError(
            f"{name} {_unreadable(session, name, ids, ring)}: {error}; this batch was not "
            "changed") from error
    for row in rows:
        flag_modified(row, name.split(".")[1])
        if isinstance(row, Referral):
            store_digests(session, row)
    session.flush()
    audit.record(session, actor=ACTOR, action="keys.rotate",
                 detail={"column": name, "count": len(ids), "to_key": ring.active})
    return ids


def _not_under(name: str, key_id: str, *, after: Any, limit: int) -> Select[Any]:
    """Ids of the values of `name` not under `key_id`, after `after` (None: from the first),
    locked for update.

    The prefix is compared with `substr … <>`, not `NOT LIKE`: SQLite's LIKE ignores case
    and `_` is a wildcard in it, and key ids may differ only there.
    """
    ident, content = _raw(name)
    prefix = f"{PREFIX}:{key_id}:"
    query = select(ident).where(func.substr(content, 1, len(prefix)) != prefix)
    if after is not None:
        query = query.where(ident > after)
    return query.order_by(ident).limit(limit).with_for_update()


def _lock_for_writing(session: Session) -> None:
    """Hold the write lock from the first read, so no change lands between read and write.

    PostgreSQL locks the selected rows (`FOR UPDATE`). SQLite ignores that and starts a
    transaction only at the first write, so take its write lock up front: otherwise a
    change committed by another process between our read and our write would be lost.
    """
    take_write_turn(session)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))


def _unreadable(session: Session, name: str, ids: list[Any], ring: Keyring) -> str:
    """The id of the first value among `ids` that the ring cannot open (ids name no one)."""
    ident, content = _raw(name)
    aad = name.encode()
    for row_id, stored in session.execute(select(ident, content).where(ident.in_(ids))):
        if stored.startswith(f"{PREFIX}:"):
            try:
                ring.decrypt(stored, aad=aad)
            except DecryptionError:
                return f"row {row_id}"
    return "a row"
