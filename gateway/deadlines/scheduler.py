"""The scheduler process: the deadline keeper ticks every CASEBRIDGE_SCHEDULER_INTERVAL
seconds, one leader at a time.

Several schedulers may run (on several machines for safety, or twice by mistake): only the
leader ticks, the others stand by and take over when it goes. On PostgreSQL the leader holds
a session advisory lock (`pg_try_advisory_lock`) on a connection of its own: the lock goes
with the connection, so a leader that dies or loses the database gives way at once. On
SQLite, whose store one machine holds, the leader holds an exclusive lock on a file beside
the database (`<database file>.scheduler.lock`); the kernel lets it go when the process ends.

Its health is served on CASEBRIDGE_SCHEDULER_PORT: `/healthz` (leader or standby, the last
tick's time and duration; 503 when the leader has not ticked for three intervals) and
`/metrics` (the overdue scan's duration as a histogram, the last tick, leadership).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import TickReport, tick
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.models import utcnow

log = structlog.get_logger()

# The advisory lock every CaseBridge scheduler of one database asks for ("CBSC").
LOCK_KEY = 0x43425343
# The leader is unhealthy when it has not ticked for this many intervals.
STALE_INTERVALS = 3


class Leadership(Protocol):
    """Who ticks: only the process for which `lead()` is true."""

    def lead(self) -> bool:
        """Whether this process leads now (taking the lead if it is free)."""
        ...

    def release(self) -> None:
        """Give the lead up."""
        ...


class PostgresLeadership:
    """A session advisory lock held on a connection kept for it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def lead(self) -> bool:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                log.warning("scheduler_lead_lost")
                self._close()
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                            {"key": LOCK_KEY}).scalar())
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        log.info("scheduler_lead_taken")
        return True

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):  # if the connection is gone, so is the lock
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": LOCK_KEY})
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()  # never back to the pool: a lock may still hang on it
            connection.close()


class FileLeadership:
    """An exclusive lock on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def lead(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        log.info("scheduler_lead_taken", lock_file=str(self.path))
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class SoleLeadership:
    """An in-memory store: no other process can reach it."""

    def lead(self) -> bool:
        return True

    def release(self) -> None:
        return None


def leadership_for(engine: Engine) -> Leadership:
    """The way schedulers of this store agree on a leader."""
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        return SoleLeadership()
    return FileLeadership(Path(f"{database}.scheduler.lock"))


@dataclass
class SchedulerHealth:
    """What the scheduler says of itself: leadership, the last tick, its figures."""

    interval: float
    leader: bool = False
    last_tick_at: datetime | None = None  # the instant the last tick worked from
    last_tick_seconds: float | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.scan_seconds = Histogram(
            "casebridge_deadline_scan_seconds", "Duration of the overdue scan of one tick",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
            registry=self.registry)
        self.tick_seconds = Gauge(
            "casebridge_scheduler_last_tick_duration_seconds",
            "Duration of the last tick (status events applied and the overdue scan)",
            registry=self.registry)
        self.tick_time = Gauge(
            "casebridge_scheduler_last_tick_timestamp_seconds", "Unix time of the last tick",
            registry=self.registry)
        self.leading = Gauge("casebridge_scheduler_leader",
                             "1 when this scheduler leads (ticks), 0 when it stands by",
                             registry=self.registry)

    def led(self, leader: bool) -> None:
        self.leader = leader
        self.leading.set(1 if leader else 0)

    def ticked(self, at: datetime, seconds: float, report: TickReport) -> None:
        self.last_tick_at, self.last_tick_seconds = at, seconds
        self.scan_seconds.observe(report.scan_seconds)
        self.tick_seconds.set(seconds)
        self.tick_time.set(at.timestamp())

    def status(self, now: datetime) -> tuple[int, dict[str, object]]:
        """The HTTP status and body of /healthz."""
        stale = self.leader and (self.last_tick_at is None or (
            now - self.last_tick_at).total_seconds() > STALE_INTERVALS * self.interval + 30)
        body: dict[str, object] = {
            "status": "stale" if stale else "ok", "role": "leader" if self.leader else "standby",
            "interval_seconds": self.interval,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "last_tick_seconds": (round(self.last_tick_seconds, 4)
                                  if self.last_tick_seconds is not None else None)}
        return (503 if stale else 200), body


def serve_health(health: SchedulerHealth, host: str, port: int) -> ThreadingHTTPServer | None:
    """Serve /healthz and /metrics in a thread; None (logged) if the port cannot be had."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            if self.path == "/metrics":
                status, body, kind = 200, generate_latest(health.registry), CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                status, document = health.status(utcnow())
                body, kind = json.dumps(document).encode(), "application/json"
            else:
                status, body, kind = 404, b"not found\n", "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None  # scrapes are not news

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as error:
        log.warning("scheduler_health_unavailable", port=port, error_type=type(error).__name__)
        return None
    threading.Thread(target=server.serve_forever, name="scheduler-health", daemon=True).start()
    log.info("scheduler_health_serving", port=server.server_address[1])
    return server


def run_scheduler(*, settings: Settings, sessions: sessionmaker[Session], book: DeadlineBook,
                  agreements: AgreementRegistry | None, stop: threading.Event,
                  health: SchedulerHealth | None = None,
                  leadership: Leadership | None = None,
                  clock: Callable[[], datetime] = utcnow) -> None:
    """Tick while leading, stand by otherwise, until `stop` is set; ride out database
    outages."""
    health = health or SchedulerHealth(interval=settings.scheduler_interval)
    engine = sessions.kw["bind"]
    leadership = leadership or leadership_for(engine)
    server = (serve_health(health, settings.host, settings.scheduler_port)
              if settings.scheduler_port else None)
    log.info("scheduler_started", interval_s=settings.scheduler_interval)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                health.led(leadership.lead())
                if health.leader:
                    now = clock()
                    report = tick(sessions, book, now, agreements=agreements)
                    health.ticked(now, time.monotonic() - started, report)
                    if report.applied or report.raised or report.escalated or report.cleared:
                        log.info("deadlines_kept", applied=report.applied,
                                 started=report.started, finished=report.finished,
                                 raised=report.raised, escalated=report.escalated,
                                 cleared=report.cleared, failed=report.failed,
                                 scan_ms=round(report.scan_seconds * 1000, 1))
            except OperationalError as error:
                log.warning("database_unavailable", process="scheduler",
                            error_type=type(error).__name__)
            stop.wait(max(0.0, settings.scheduler_interval - (time.monotonic() - started)))
    finally:
        leadership.release()
        if server is not None:
            server.shutdown()
            server.server_close()
