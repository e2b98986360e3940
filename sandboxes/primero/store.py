"""The sandbox's own SQLite store: users, agencies, login tokens, cases, transitions, flags.

Like Primero, a case is one JSON document (Primero keeps it in a JSONB `data` column) and
a transition is one row of an STI table (`type` = Referral, Transfer, Assign). Writes run
one at a time under a lock: a read-modify-write of a case and its transition must not
interleave with another's. The endpoints are coroutines that never await inside a
transaction, so on the event loop they cannot interleave anyway (and a thread hop per
request cost more than the request's own work); the lock still guards callers on other
threads (tests, the seed). WAL lets readers go on while a write is under way.
"""

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("user_name", String, primary_key=True),
    Column("data", JSON, nullable=False),
)
agencies = Table(
    "agencies", metadata,
    Column("unique_id", String, primary_key=True),
    Column("data", JSON, nullable=False),
)
tokens = Table(
    "tokens", metadata,
    Column("token", String, primary_key=True),
    Column("user_name", String, nullable=False),
    Column("expires_at", Float, nullable=False),
)
cases = Table(
    "cases", metadata,
    Column("id", String, primary_key=True),
    # Indexed: a new case takes the highest seq plus one, which without the index read
    # every case: each create cost more than the one before (a 10,000-referral drain).
    Column("seq", Integer, nullable=False, index=True),
    Column("data", JSON, nullable=False),
)
# Cases are looked up by their CaseBridge referral id (`GET /cases?casebridge_referral_id=`).
Index("ix_cases_casebridge_referral_id",
      func.json_extract(cases.c.data, "$.casebridge_referral_id"))
transitions = Table(
    "transitions", metadata,
    Column("id", String, primary_key=True),
    Column("record_id", String, nullable=False, index=True),
    Column("data", JSON, nullable=False),
)
# Primero's `flags` table: integer ids, polymorphic on the record (here always a case).
flags = Table(
    "flags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String, nullable=False, index=True),
    Column("data", JSON, nullable=False),
)


# Statements built once: building one per call (and its cache key) cost more than running it.
_USER = select(users.c.data).where(users.c.user_name == bindparam("user_name"))
_TOKEN = select(tokens.c.user_name, tokens.c.expires_at).where(tokens.c.token == bindparam("token"))
_CASE = select(cases.c.data).where(cases.c.id == bindparam("id"))
_LAST_SEQ = select(cases.c.seq).order_by(cases.c.seq.desc()).limit(1)
_INSERT_CASE = insert(cases)
_SAVE_CASE = update(cases).where(cases.c.id == bindparam("case_id"))
_TRANSITION = select(transitions.c.data).where(transitions.c.id == bindparam("id"))
_TRANSITIONS_OF = select(transitions.c.data).where(
    transitions.c.record_id == bindparam("record_id"))
_INSERT_TRANSITION = insert(transitions)
_SAVE_TRANSITION = update(transitions).where(transitions.c.id == bindparam("transition_id"))


def now_iso() -> str:
    """The current time as Primero writes it: ISO-8601 UTC with milliseconds and a Z."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """`moment` as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hash_password(password: str) -> str:
    """A salted-enough digest for fictional sandbox accounts (never real credentials)."""
    return hashlib.sha256(f"primero-sandbox:{password}".encode()).hexdigest()


class Store:
    """Tables of one sandbox instance, in one SQLite file."""

    def __init__(self, database: Path) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(
            f"sqlite:///{database}", connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(self.engine, "connect", _tune_sqlite)
        metadata.create_all(self.engine)
        self._write_lock = threading.RLock()
        # Users as committed, by name (JSON text: every caller gets its own copy). Every
        # write of a user goes through `put_user`, which drops its entry; a write
        # transaction that fails drops them all, so nothing uncommitted stays here.
        self._users: dict[str, str] = {}

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One transaction, alone among writers: committed on success, else rolled back."""
        with self._write_lock:
            try:
                with self.engine.begin() as connection:
                    yield connection
            except BaseException:
                self._users.clear()
                raise

    def is_empty(self) -> bool:
        with self.reading() as db:
            return db.execute(select(users.c.user_name).limit(1)).first() is None

    # users, agencies and tokens

    def user(self, db: Connection, user_name: str) -> dict[str, Any] | None:
        known = self._users.get(user_name)
        if known is None:
            row = db.execute(_USER, {"user_name": user_name}).first()
            if row is None:
                return None
            known = self._users[user_name] = json.dumps(row.data)
        found: dict[str, Any] = json.loads(known)
        return found

    def all_users(self, db: Connection) -> list[dict[str, Any]]:
        return [dict(r.data) for r in db.execute(select(users.c.data)
                                                 .order_by(users.c.user_name))]

    def put_user(self, db: Connection, user: dict[str, Any]) -> None:
        self._users.pop(user["user_name"], None)
        if db.execute(_USER, {"user_name": user["user_name"]}).first() is None:
            db.execute(insert(users).values(user_name=user["user_name"], data=user))
        else:
            db.execute(update(users).where(users.c.user_name == user["user_name"])
                       .values(data=user))

    def all_agencies(self, db: Connection) -> list[dict[str, Any]]:
        return [dict(r.data) for r in db.execute(select(agencies.c.data)
                                                 .order_by(agencies.c.unique_id))]

    def put_agency(self, db: Connection, agency: dict[str, Any]) -> None:
        db.execute(insert(agencies).values(unique_id=agency["unique_id"], data=agency))

    def add_token(self, db: Connection, token: str, user_name: str, ttl: float) -> None:
        db.execute(insert(tokens).values(token=token, user_name=user_name,
                                         expires_at=time.time() + ttl))

    def token_user(self, db: Connection, token: str) -> str | None:
        """The user a live token belongs to, or None when unknown or expired."""
        row = db.execute(_TOKEN, {"token": token}).first()
        if row is None or row.expires_at < time.time():
            return None
        return str(row.user_name)

    def drop_token(self, db: Connection, token: str) -> None:
        db.execute(tokens.delete().where(tokens.c.token == token))

    def expire_tokens(self, db: Connection) -> int:
        return db.execute(update(tokens).values(expires_at=0.0)).rowcount

    # cases

    def case(self, db: Connection, case_id: str) -> dict[str, Any] | None:
        row = db.execute(_CASE, {"id": case_id}).first()
        return _copy(row.data) if row else None

    def all_cases(self, db: Connection) -> list[dict[str, Any]]:
        return [_copy(r.data) for r in db.execute(select(cases.c.data).order_by(cases.c.seq))]

    def cases_with_reference(self, db: Connection, referral_id: str) -> list[dict[str, Any]]:
        """Cases carrying this CaseBridge referral id (through the index, not a scan)."""
        query = select(cases.c.data).where(func.json_extract(
            cases.c.data, "$.casebridge_referral_id") == referral_id).order_by(cases.c.seq)
        return [_copy(r.data) for r in db.execute(query)]

    def insert_case(self, db: Connection, case: dict[str, Any]) -> None:
        seq = db.execute(_LAST_SEQ).scalar()
        db.execute(_INSERT_CASE, {"id": case["id"], "seq": (seq or 0) + 1, "data": case})

    def save_case(self, db: Connection, case: dict[str, Any]) -> None:
        db.execute(_SAVE_CASE, {"case_id": case["id"], "data": case})

    # transitions

    def transition(self, db: Connection, transition_id: str) -> dict[str, Any] | None:
        row = db.execute(_TRANSITION, {"id": transition_id}).first()
        return _copy(row.data) if row else None

    def transitions_of(self, db: Connection, record_id: str) -> list[dict[str, Any]]:
        rows = db.execute(_TRANSITIONS_OF, {"record_id": record_id})
        return sorted((_copy(r.data) for r in rows), key=lambda t: (t["created_at"], t["id"]))

    def insert_transition(self, db: Connection, transition: dict[str, Any]) -> None:
        db.execute(_INSERT_TRANSITION, {"id": transition["id"],
                                        "record_id": transition["record_id"],
                                        "data": transition})

    def save_transition(self, db: Connection, transition: dict[str, Any]) -> None:
        db.execute(_SAVE_TRANSITION, {"transition_id": transition["id"], "data": transition})

    # flags

    def flags_of(self, db: Connection, record_id: str) -> list[dict[str, Any]]:
        """The record's flags, removed ones too, oldest first (Primero orders by id)."""
        rows = db.execute(select(flags.c.id, flags.c.data).where(flags.c.record_id == record_id)
                          .order_by(flags.c.id))
        return [{**_copy(r.data), "id": r.id} for r in rows]

    def insert_flag(self, db: Connection, flag: dict[str, Any]) -> dict[str, Any]:
        """Store a new flag; it comes back with its id."""
        made = db.execute(insert(flags).values(record_id=flag["record_id"], data=flag))
        key = made.inserted_primary_key
        assert key is not None
        return {**flag, "id": int(key[0])}

    def save_flag(self, db: Connection, flag: dict[str, Any]) -> None:
        data = {k: v for k, v in flag.items() if k != "id"}
        db.execute(update(flags).where(flags.c.id == flag["id"]).values(data=data))


def _copy(data: Any) -> dict[str, Any]:
    """The row's document; the JSON column decodes a fresh object on every fetch."""
    document: dict[str, Any] = data
    return document


def _tune_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
