"""The sandbox's SQLite store: one SQL table per entity set, named as the OData properties.

Safe under concurrent requests: WAL lets readers run beside the writer, writes are
serialised by one lock (uvicorn runs the sync endpoints in a thread pool), and SQLite
waits rather than fails when the file is busy. Text compares case-insensitively, like
Dataverse on SQL Server.
"""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.types import TypeEngine

from sandboxes.progres.schema import BY_LOGICAL, ENTITIES, Entity, Kind

SEQ = "_seq"  # insertion order: the tie-breaker of every sort, never exposed


def type_of(kind: Kind, max_length: int | None) -> TypeEngine[Any]:
    if kind in (Kind.STRING, Kind.GUID):
        return String(max_length or 36, collation="NOCASE")
    if kind == Kind.MEMO:
        return Text(collation="NOCASE")
    if kind in (Kind.INT, Kind.CHOICE):
        return Integer()
    if kind == Kind.BOOL:
        return Boolean()
    if kind == Kind.DATE:
        return Date()
    return DateTime()


def polymorphic_type_column(attribute: str) -> str:
    """The hidden column naming the target table of a polymorphic lookup."""
    return f"{attribute}_type"


def build_table(entity: Entity, metadata: MetaData) -> Table:
    columns: list[Column[Any]] = [Column(SEQ, Integer, primary_key=True, autoincrement=True)]
    for col in entity.all_columns().values():
        columns.append(Column(col.name, type_of(col.kind, col.max_length),
                              unique=col.name == entity.key, nullable=col.name != entity.key))
    for lookup in entity.all_lookups().values():
        columns.append(Column(lookup.attribute, String(36, collation="NOCASE")))
        if len(lookup.targets) > 1:
            columns.append(Column(polymorphic_type_column(lookup.attribute), String(100)))
    table = Table(entity.logical, metadata, *columns)
    Index(f"ix_{entity.logical}_modifiedon", table.c.modifiedon)
    for key in entity.alternate_keys:
        Index(f"uq_{entity.logical}_{key}", table.c[key], unique=True)
    return table


def utcnow() -> datetime:
    """Now, as Dataverse keeps it: UTC to the second."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class Store:
    def __init__(self, path: Path) -> None:
        self.engine: Engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(self.engine, "connect", _pragmas)
        self.metadata = MetaData()
        self.tables = {e.logical: build_table(e, self.metadata) for e in ENTITIES}
        self.counters = Table("sandbox_counters", self.metadata,
                              Column("name", String(100), primary_key=True),
                              Column("value", Integer, nullable=False))
        self.metadata.create_all(self.engine)
        self._write_lock = threading.RLock()

    def table(self, entity: Entity) -> Table:
        return self.tables[entity.logical]

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction at a time: commit on success, roll back and re-raise."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def next_value(self, conn: Connection, name: str) -> int:
        current = conn.execute(select(self.counters.c.value)
                               .where(self.counters.c.name == name)).scalar()
        if current is None:
            conn.execute(insert(self.counters).values(name=name, value=1))
            return 1
        conn.execute(update(self.counters).where(self.counters.c.name == name)
                     .values(value=current + 1))
        return int(current) + 1

    def get(self, conn: Connection, entity: Entity, key: str) -> dict[str, Any] | None:
        table = self.table(entity)
        row = conn.execute(select(table).where(table.c[entity.key] == key.lower())).mappings()
        found = row.first()
        return dict(found) if found else None

    def find(self, conn: Connection, entity: Entity, column: str,
             value: Any) -> dict[str, Any] | None:
        table = self.table(entity)
        found = conn.execute(select(table).where(table.c[column] == value)).mappings().first()
        return dict(found) if found else None

    def exists(self, conn: Connection, logical: str, key: str) -> bool:
        entity = BY_LOGICAL[logical]
        table = self.table(entity)
        query = select(func.count()).select_from(table).where(table.c[entity.key] == key.lower())
        return bool(conn.execute(query).scalar())

    def primary_name(self, conn: Connection, logical: str, key: str) -> str | None:
        entity = BY_LOGICAL[logical]
        table = self.table(entity)
        query = select(table.c[entity.primary_name]).where(table.c[entity.key] == key.lower())
        value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def insert(self, conn: Connection, entity: Entity, values: dict[str, Any], *,
               user_id: str, now: datetime) -> dict[str, Any]:
        """Insert a row, stamping the system columns."""
        key = str(values.get(entity.key) or uuid.uuid4()).lower()
        owner = values.get("_ownerid_value") or user_id
        row = {**values, entity.key: key,
               "createdon": values.get("createdon") or now,
               "modifiedon": values.get("modifiedon") or now,
               "versionnumber": self.next_value(conn, "versionnumber"),
               "_createdby_value": user_id, "_modifiedby_value": user_id,
               "_ownerid_value": owner,
               "_owningbusinessunit_value": self._unit_of(conn, owner)}
        conn.execute(insert(self.table(entity)).values(**row))
        stored = self.get(conn, entity, key)
        assert stored is not None
        return stored

    def _unit_of(self, conn: Connection, user_id: str) -> str | None:
        """The business unit of a user (None while the users are being seeded)."""
        users = self.table(BY_LOGICAL["systemuser"])
        unit = conn.execute(select(users.c["_businessunitid_value"]).where(
            users.c.systemuserid == user_id.lower())).scalar()
        return None if unit is None else str(unit)

    def update(self, conn: Connection, entity: Entity, key: str, values: dict[str, Any], *,
               user_id: str, now: datetime) -> dict[str, Any]:
        """Update a row, stamping modifiedon, modifiedby and a new version."""
        table = self.table(entity)
        changes = {**values, "modifiedon": now, "_modifiedby_value": user_id,
                   "versionnumber": self.next_value(conn, "versionnumber")}
        if values.get("_ownerid_value"):  # assigned to someone else: their unit owns it now
            changes["_owningbusinessunit_value"] = self._unit_of(conn, values["_ownerid_value"])
        conn.execute(update(table).where(table.c[entity.key] == key).values(**changes))
        stored = self.get(conn, entity, key)
        assert stored is not None
        return stored

    def delete(self, conn: Connection, entity: Entity, key: str) -> None:
        table = self.table(entity)
        conn.execute(table.delete().where(table.c[entity.key] == key))

    def is_empty(self, conn: Connection, entity: Entity) -> bool:
        return not conn.execute(select(func.count()).select_from(self.table(entity))).scalar()


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
