"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (
    Mapper,
    Session,
    SessionTransaction,
    make_transient_to_detached,
    object_mapper,
    sessionmaker,
)

from gateway.store.group_commit import GROUPED

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_AFTER_COMMIT = "casebridge.after_commit"  # (context, call) to make once committed
_WAITING_ROWS = "casebridge.waiting_rows"  # a group's rows, by (table, columns), until commit
_RANKS: dict[MetaData, dict[Table, int]] = {}
WRITE_LOCK_TIMEOUT = 30.0


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                             hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failing statement's message must never quote personal values.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           hide_parameters=True, pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted and overwritten content is zeroed, not left in free pages: a purged
        # referral, or a value re-encrypted from plain text, is gone from the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine`; on SQLite, writers of this process queue on one lock."""
    factory = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "sqlite":
        _serialize_writers(factory)
    return factory


def _serialize_writers(factory: sessionmaker[Session]) -> None:
    """SQLite has one writer at a time, and a writer that finds the file locked sleeps and
    retries with growing pauses (up to 100 ms). Queuing this process's writers on a lock,
    taken at a session's first flush and given back when its transaction ends, hands the
    file over as soon as it is free. Other processes still meet SQLite's busy timeout."""
    lock = threading.Lock()

    def _take(session: Session, *_: Any) -> None:
        if not session.info.get("holds_write_lock"):
            if not lock.acquire(timeout=WRITE_LOCK_TIMEOUT):
                raise TimeoutError("no turn to write to the SQLite store")
            session.info["holds_write_lock"] = True

    event.listen(factory, "before_flush", _take)
    factory.kw["info"] = {"take_write_turn": _take}

    @event.listens_for(factory, "after_transaction_end")
    def _give_back(session: Session, transaction: SessionTransaction) -> None:
        # The outermost transaction ends on commit, rollback and close alike.
        if transaction.parent is None and session.info.pop("holds_write_lock", False):
            lock.release()


def take_write_turn(session: Session) -> None:
    """Queue for this process's SQLite writer lock before a Core write (ORM flushes do it)."""
    take = session.info.get("take_write_turn")
    if take is not None:
        take(session)


def insert_now(session: Session, *objects: object, wait: bool = True) -> None:
    """INSERT new ORM objects at once, without the unit of work: one statement per table
    and set of columns given, in the order each first appears (so give parents first).

    For hot paths (intake, the worker's record of a delivery): the ORM's flush costs
    several times what the statements do. Columns left unset get their defaults; set
    foreign-key columns themselves, not only relationships. An object whose primary key
    is known (not left to the database) then joins the session as the stored row: a
    later change to it is written like any other, and a read of it finds this object.

    In a group commit (gateway/store/group_commit.py), unless `wait` is false (for a
    writer running just before the commit), the rows wait for the commit and go
    with the rows of the group's other works, one statement per table and set of columns,
    parents first: a query in the group does not see them (intake's works read nothing
    another work of the group writes; two works of one key meet at the commit as a
    duplicate, and the group is split).
    """
    batches: dict[tuple[Table, tuple[str, ...]], list[dict[str, object]]] = {}
    stored = []
    for instance in objects:
        mapper = object_mapper(instance)
        table, columns, keys = _columns_of(mapper)
        values = instance.__dict__
        for attribute, _, fill in columns:
            # Defaults given to the object itself, so that joined to the session it holds
            # every value of its row and reading one does not load the row again.
            if fill is not None and attribute not in values:
                setattr(instance, attribute, fill())
        row = {column: values[attribute] for attribute, column, _ in columns
               if attribute in values}
        batches.setdefault((table, tuple(row)), []).append(row)
        if all(values.get(attribute) is not None for attribute in keys):
            stored.append(instance)
    if wait and session.info.get(GROUPED):
        waiting: dict[tuple[Table, tuple[str, ...]], list[dict[str, object]]] = (
            session.info.setdefault(_WAITING_ROWS, {}))
        for batch, rows in batches.items():
            waiting.setdefault(batch, []).extend(rows)
    else:
        # On the session's connection: the session's own execute adds ORM machinery that
        # costs more than the statement (what the session holds unwritten goes first).
        take_write_turn(session)
        session.flush()
        connection = session.connection()
        for (table, _), rows in batches.items():
            connection.execute(_insert_into(table), rows)
    # All made persistent before any joins: adding one cascades to those it refers to.
    for instance in stored:
        make_transient_to_detached(instance)
    session.add_all(stored)


@functools.cache
def _insert_into(table: Table) -> Insert:
    """An INSERT into `table` that reads nothing back: not even the key the database
    numbers, which a one-row INSERT would otherwise fetch with RETURNING (no row of it can
    be read in a `pipelined` block, and nothing here needs it)."""
    return insert(table).inline()


@functools.cache
def _columns_of(mapper: Mapper[Any]) -> tuple[
        Table, tuple[tuple[str, str, Callable[[], object] | None], ...], tuple[str, ...]]:
    """`mapper`'s table; each column attribute's key, column name and what gives it a
    value when it is unset; the keys of its primary key. (Nothing is given to a primary key,
    which the caller sets or the database numbers, nor to a column whose default only the
    database knows.)"""
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        default = column.default
        fill = (None if column.primary_key or (default is None
                                                and column.server_default is not None)
                else _filler(default))
        columns.append((prop.key, column.key, fill))
    keys = tuple(mapper.get_property_by_column(column).key for column in mapper.primary_key)
    return mapper.local_table, tuple(columns), keys  # type: ignore[return-value]


def _filler(default: Any) -> Callable[[], object]:
    if default is None:
        return lambda: None
    if default.is_callable:
        return lambda: default.arg(None)
    return lambda: default.arg


@event.listens_for(Session, "before_commit")
def _write_waiting_rows(session: Session) -> None:
    """A group's rows, just before it commits: parents' tables first."""
    waiting = session.info.pop(_WAITING_ROWS, None)
    if not waiting:
        return
    take_write_turn(session)
    connection = session.connection()
    with pipelined(connection):
        for (table, _), rows in sorted(waiting.items(),
                                       key=lambda item: _table_rank(item[0][0])):
            connection.execute(_insert_into(table), rows)


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """The statements executed in the block go to PostgreSQL at once and are answered
    together at its end: one round trip for all of them instead of one each (psycopg's
    pipeline mode). For writes whose results are not read: a statement's rows and
    row count are not there in the block. An error in any of them is raised at the end of
    the block as SQLAlchemy raises it (IntegrityError, OperationalError with the connection
    invalidated when it is gone …); the transaction is then failed, as after any error.
    Elsewhere (SQLite: no round trips) the block simply runs.

    Flush the session before the block: an ORM flush reads the row counts it wrote."""
    if connection.dialect.driver != "psycopg":
        yield
        return
    dialect = connection.dialect
    driver_error = dialect.loaded_dbapi.Error
    pooled = connection.connection
    try:
        with pooled.driver_connection.pipeline():  # type: ignore[union-attr]
            yield
    except driver_error as error:
        gone = dialect.is_disconnect(error, pooled.dbapi_connection, None)
        if gone:
            connection.invalidate(error)
        raise DBAPIError.instance(None, None, error, driver_error, hide_parameters=True,
                                  connection_invalidated=gone, dialect=dialect) from error


@event.listens_for(Session, "after_rollback")
def _drop_waiting_rows(session: Session) -> None:
    session.info.pop(_WAITING_ROWS, None)


def after_commit(session: Session, then: Callable[[], object]) -> None:
    """Call `then()` once the session's transaction has committed, in the context (log
    fields) of this call; never if it rolls back. For what must only be said of what is
    stored: a group commit that splits runs its works twice, and only one of those commits."""
    session.info.setdefault(_AFTER_COMMIT, []).append((contextvars.copy_context(), then))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for context, then in session.info.pop(_AFTER_COMMIT, ()):
        context.run(then)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back or closed: nothing of it was stored
        session.info.pop(_AFTER_COMMIT, None)


def _table_rank(table: Table) -> int:
    """Where `table` comes in its metadata's order of dependencies (parents first)."""
    ranks = _RANKS.get(table.metadata)
    if ranks is None:
        ranks = _RANKS[table.metadata] = {t: n for n, t in enumerate(table.metadata.sorted_tables)}
    return ranks[table]


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit at the end, or roll back and re-raise."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> "Config":
    # alembic is imported here, not above: only a migration needs it, and every gateway
    # process imports this module (a quarter of a second saved at each start).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (creating it for SQLite)."""
    engine = make_engine(url)  # creates the SQLite folder and turns WAL on
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    from alembic import command

    command.upgrade(alembic_config(url), revision)
