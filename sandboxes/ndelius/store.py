"""The sandbox's own SQLite store: WAL, a busy timeout, and one writer at a time."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from sandboxes.ndelius.models import Base

LONDON = ZoneInfo("Europe/London")


def now() -> datetime:
    """Delius times are zoned in Europe/London (§6.5)."""
    return datetime.now(LONDON)


def london(moment: datetime | None) -> datetime | None:
    """A client's datetime in Europe/London (naive values are taken as London time)."""
    if moment is None:
        return None
    return moment.astimezone(LONDON) if moment.tzinfo else moment.replace(tzinfo=LONDON)


def iso(moment: datetime | None) -> str | None:
    """A stored datetime as ISO-8601 with its Europe/London offset."""
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives back naive values; they were stored as London time
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(LONDON).isoformat(timespec="seconds")


# England & Wales bank holidays; filled a year at a time as dates are asked, hence the lock.
_ENGLAND = holidays.country_holidays("GB", subdiv="ENG")
_ENGLAND_LOCK = threading.Lock()


def add_working_days(start: date, days: int) -> date:
    """`days` (at least 1) working days after `start`: weekends and bank holidays skipped."""
    with _ENGLAND_LOCK:
        return _ENGLAND.get_nth_working_day(start, days)


class Store:
    """Engine and sessions of one sandbox database.

    Uvicorn runs sync endpoints in a thread pool. Readers share WAL snapshots; writers take
    `write()`, which serialises them so domain-event sequence numbers follow commit order
    (a poller that has read up to N can never later find an event below N).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True)
        event.listen(self.engine, "connect", _pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commit at the end, or roll back and re-raise."""
        with self._write_lock, self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
