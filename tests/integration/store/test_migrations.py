"""Migrations: the same Alembic history builds the same store on SQLite and PostgreSQL."""

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from gateway.store.db import make_engine, upgrade
from gateway.store.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    before = sorted(inspect(engine).get_table_names())
    upgrade(database_url)
    assert sorted(inspect(engine).get_table_names()) == before
    assert {"partners", "referrals", "status_events", "deliveries", "outbox"} <= set(before)
    engine.dispose()


def test_sqlite_store_runs_in_wal_mode(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_a_store_holding_referrals_upgrades_from_0007_to_head(database_url, tmp_path) -> None:
    """Columns are added in place: a migration that copied a table (as Alembic does on SQLite
    for a column with an SQL-expression default) would fail on the foreign keys of a store
    that holds data, and its service types become rows for the console's filter."""
    from servers import drop_pg_database, fresh_pg_database

    url = (f"sqlite:///{tmp_path / 'old.db'}" if database_url.startswith("sqlite")
           else fresh_pg_database())
    try:
        upgrade(url, "0007")
        engine = make_engine(url)
        at = "2026-01-01 00:00:00+00:00"
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO partners (id, name, system, active, created_at) VALUES "
                "('old-a', 'A', 'other', true, :at), ('old-b', 'B', 'other', true, :at)"),
                {"at": at})
            connection.execute(text(
                "INSERT INTO referrals (id, kind, sender_id, receiver_id, status, "
                "correlation_id, request_hash, content, withheld, created_at, updated_at) "
                "VALUES ('r-old', 'referral', 'old-a', 'old-b', 'delivered', 'c', 'h', '{}', "
                "'[]', :at, :at)"), {"at": at})
            connection.execute(text(
                "INSERT INTO status_events (id, referral_id, seq, to_state, actor, content, "
                "occurred_at, recorded_at) VALUES ('e-old', 'r-old', 1, 'submitted', "
                "'sender', '{}', :at, :at)"), {"at": at})
            connection.execute(text(
                "INSERT INTO deliveries (referral_id, status_event_id, partner_id, attempt, "
                "outcome, started_at) VALUES ('r-old', 'e-old', 'old-b', 1, 'delivered', :at)"),
                {"at": at})
        upgrade(url, "0008")
        with engine.begin() as connection:
            connection.execute(text("UPDATE referrals SET service_types = :s"),
                               {"s": '["legal_aid", "education"]'})
        upgrade(url)
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT inferred FROM status_events")).scalar() in (False, 0)
            assert sorted(connection.execute(text(
                "SELECT service_type FROM referral_services")).scalars()) == [
                "education", "legal_aid"]
            assert connection.execute(text(
                "SELECT delivery_failures FROM partners WHERE id = 'old-a'")).scalar() == 0
        engine.dispose()
    finally:
        if not url.startswith("sqlite"):
            drop_pg_database(url)


def test_a_fresh_test_store_is_the_migrated_store_and_empty(database_url, tmp_path) -> None:
    """Tests copy one migrated store per process (tests/servers.py): each copy matches the
    models like a store migrated itself, holds no rows, and SQLite's is in WAL mode."""
    from servers import fresh_store

    for _ in range(2):  # the first copy makes the template, the second only copies it
        with fresh_store(database_url, tmp_path / uuid.uuid4().hex) as url:
            engine = make_engine(url)
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, Base.metadata) == []
                assert connection.execute(text("SELECT count(*) FROM referrals")).scalar() == 0
                if url.startswith("sqlite"):
                    assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            engine.dispose()
