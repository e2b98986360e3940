"""Migrations: the same Alembic history builds the same store on SQLite and PostgreSQL."""

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
