"""`insert_now`: new rows written with Core INSERTs, parents first, defaults applied, on
SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.partners import register_partner
from gateway.store.db import insert_now, make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import IdentifierDigest, OutboxMessage, Referral, StatusEvent, new_id

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def referral(sender: str, receiver: str) -> Referral:
    return Referral(id=new_id(), kind="referral", sender_id=sender, receiver_id=receiver,
                    status="submitted", correlation_id="corr-insert-now", request_hash="0" * 64,
                    idempotency_key=new_id(),
                    content={"subject": {"given_name": "Zawadi"}}, created_at=NOW,
                    updated_at=NOW)


def store_with(url: str, *partners: str) -> sessionmaker[Session]:
    """Sessions on the test store, with `partners` registered."""
    sessions = make_sessionmaker(make_engine(url))
    with unit_of_work(sessions) as session:
        for partner in partners:
            register_partner(session=session, partner_id=partner, name=partner,
                             system="other")
    return sessions


def test_rows_land_parents_first_with_their_defaults_and_keyed_objects_join_the_session(
        isolated_database_url: str) -> None:
    sessions = store_with(isolated_database_url, "in-a", "in-b")
    first, second = referral("in-a", "in-b"), referral("in-a", "in-b")
    event = StatusEvent(id=new_id(), referral_id=first.id, seq=1, to_state="submitted",
                        actor="sender", occurred_at=NOW, recorded_at=NOW)
    outbox = OutboxMessage(referral_id=first.id, message_type="deliver",
                           routing_key="deliver.in-b", envelope={"type": "deliver"})
    with unit_of_work(sessions) as session:
        # children of `first` given between the two parents: its row must still go first
        insert_now(session, first, event, second,
                   IdentifierDigest(referral_id=first.id, digest="a" * 64),
                   IdentifierDigest(referral_id=second.id, digest="b" * 64), outbox)
        # What has its key is the stored row in the session: read, it is this object, and
        # a change to it is written; what the database numbers stays out.
        assert all(inspect(o).persistent for o in (first, second, event))
        assert session.get(Referral, first.id) is first and inspect(outbox).transient
        second.mapping_hash = "sha256:" + "c" * 64
    with sessions() as session:
        stored = session.get(Referral, first.id)
        assert stored is not None and stored.content == first.content  # decrypted back
        assert session.get_one(Referral, second.id).mapping_hash == "sha256:" + "c" * 64
        assert stored.withheld == []  # the column's default
        event_back = session.get(StatusEvent, event.id)
        assert event_back is not None and event_back.content == {} and not event_back.inferred
        outbox = session.scalars(select(OutboxMessage)).one()
        assert (outbox.publish_attempts, outbox.published_at) == (0, None)
        assert sorted(d.digest[0] for d in session.scalars(select(IdentifierDigest))) == [
            "a", "b"]


def test_a_duplicate_raises_and_the_transaction_rolls_back_whole(
        isolated_database_url: str) -> None:
    sessions = store_with(isolated_database_url, "dup-a", "dup-b")
    kept = referral("dup-a", "dup-b")
    with unit_of_work(sessions) as session:
        insert_now(session, kept)
    again = referral("dup-a", "dup-b")
    again.idempotency_key = kept.idempotency_key  # same sender and key: refused
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        insert_now(session, referral("dup-a", "dup-b"), again)
    with sessions() as session:
        assert session.scalars(select(Referral.id).where(Referral.sender_id == "dup-a")
                               ).all() == [kept.id]
