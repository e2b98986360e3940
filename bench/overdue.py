"""The overdue scan over a million stored deadlines, beside a full count of the same table.

What is measured
    A fresh store (a SQLite file in a temporary folder, and a fresh PostgreSQL database) is
    migrated to head and filled, in the database itself (INSERT … SELECT over
    generate_series on PostgreSQL, a recursive CTE on SQLite), with N deadline rows (default
    1,000,000) on N/4 referrals, four deadlines each. Like a store that has run for a while,
    97 % of them are done (met, cleared or escalated: no alert owed) and 3 % open, due
    between a day ago and four weeks ahead, so about one open deadline in thirty owes its
    overdue flag now. The tables are then ANALYZEd.

    scan: the gateway's own `find_overdue(session, now)` (one range read on the partial
    index of `deadlines.next_alert_at`, rows loaded as ORM objects; on PostgreSQL with
    FOR UPDATE SKIP LOCKED, as a scanner runs it), with a batch large enough to take every
    overdue row at once. Baseline: `SELECT count(*) FROM deadlines` on the same store in the
    same run, the cheapest question that reads the whole table. Each is run 5 times after
    one warm-up; the median is printed.

The ratio, `count(*) seconds / scan seconds`, says how many times cheaper than one look at
the whole table the scan is: above 1 it reads less than the table, and it grows with the
table as long as the scan stays on its index. The last line is the PostgreSQL ratio (the
SQLite one when PostgreSQL is not measured).

    .venv/bin/python bench/overdue.py                 # 1,000,000 deadlines, both databases
    .venv/bin/python bench/overdue.py --quick         # smoke run: 20,000 deadlines
    .venv/bin/python bench/overdue.py --rows 200000 --databases postgresql
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import Engine, func, select, text

from common import (
    REPEATS,
    arguments,
    machine_lines,
    median_seconds,
    postgresql_failure,
    postgresql_line,
    store_database,
)
from gateway.deadlines.service import find_overdue
from gateway.store.db import make_engine, make_sessionmaker, upgrade
from gateway.store.models import TrackedDeadline

DATABASES = ("sqlite", "postgresql")
NOW = datetime(2027, 4, 22, 9, 0, tzinfo=UTC)
PER_REFERRAL = 4
# Four (state, deadline) pairs per referral, as the shipped policies give a case transfer.
PAIRS = ("delivered:acknowledge", "delivered:address_assessment",
         "delivered:transfer_decision", "accepted:complete")

# One statement per table: rows are made by the database, not sent one by one.
POSTGRESQL_FILL = (
    """INSERT INTO partners (id, name, system, active, created_at)
       VALUES ('bench-sender', 'Bench sender', 'other', true, now()),
              ('bench-receiver', 'Bench receiver', 'other', true, now())""",
    """INSERT INTO referrals (id, kind, sender_id, receiver_id, status, correlation_id,
                              request_hash, content, withheld, created_at, updated_at)
       SELECT 'ref-' || g, 'transfer', 'bench-sender', 'bench-receiver', 'delivered',
              'corr-' || g, 'h', '{}', '[]', now(), now()
       FROM generate_series(1, :referrals) AS g""",
    """INSERT INTO deadlines (referral_id, state, name, policy_id, calendar_id, started_at,
                              due_at, next_alert_at, met_at, paused_seconds)
       SELECT 'ref-' || ((g - 1) / 4 + 1),
              split_part(pair, ':', 1), split_part(pair, ':', 2), 'bench', 'gb-eng',
              due - interval '20 days', due,
              CASE WHEN g % 100 >= 97 THEN due END,
              CASE WHEN g % 100 < 97 THEN due - interval '1 day' END, 0
       FROM generate_series(1, :rows) AS g,
            LATERAL (SELECT (ARRAY[:p1, :p2, :p3, :p4])[(g - 1) % 4 + 1] AS pair) AS p,
            LATERAL (SELECT CASE WHEN g % 100 >= 97
                      THEN :now - interval '1 day'
                           + ((g::bigint * 7919) % 2592000) * interval '1 second'
                      ELSE :now - interval '400 days'
                           + ((g::bigint * 7919) % 31536000) * interval '1 second'
                      END AS due) AS d""",
)
SQLITE_FILL = (
    """INSERT INTO partners (id, name, system, active, created_at)
       VALUES ('bench-sender', 'Bench sender', 'other', 1, :now),
              ('bench-receiver', 'Bench receiver', 'other', 1, :now)""",
    """INSERT INTO referrals (id, kind, sender_id, receiver_id, status, correlation_id,
                              request_hash, content, withheld, created_at, updated_at)
       WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :referrals)
       SELECT 'ref-' || n, 'transfer', 'bench-sender', 'bench-receiver', 'delivered',
              'corr-' || n, 'h', '{}', '[]', :now, :now FROM g""",
    # SQLAlchemy keeps SQLite datetimes as text, 'YYYY-MM-DD HH:MM:SS.ffffff', compared as text.
    """INSERT INTO deadlines (referral_id, state, name, policy_id, calendar_id, started_at,
                              due_at, next_alert_at, met_at, paused_seconds)
       WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :rows),
       rows AS (
         SELECT n, CASE (n - 1) % 4 WHEN 0 THEN :p1 WHEN 1 THEN :p2 WHEN 2 THEN :p3
                   ELSE :p4 END AS pair,
                datetime(:now, CASE WHEN n % 100 >= 97
                  THEN printf('%d seconds', -86400 + (n * 7919) % 2592000)
                  ELSE printf('%d seconds', -34560000 + (n * 7919) % 31536000) END)
                || '.000000' AS due
         FROM g)
       SELECT 'ref-' || ((n - 1) / 4 + 1), substr(pair, 1, instr(pair, ':') - 1),
              substr(pair, instr(pair, ':') + 1), 'bench', 'gb-eng',
              datetime(due, '-20 days') || '.000000', due,
              CASE WHEN n % 100 >= 97 THEN due END,
              CASE WHEN n % 100 < 97 THEN datetime(due, '-1 days') || '.000000' END, 0
       FROM rows""",
)


@dataclass
class Result:
    database: str
    rows: int
    fill_s: float
    found: int
    scan_s: float
    count_s: float

    @property
    def ratio(self) -> float:
        return self.count_s / self.scan_s


def fill(engine: Engine, rows: int) -> None:
    """Partners, referrals and `rows` deadlines, made by the database; then ANALYZE."""
    postgresql = engine.dialect.name == "postgresql"
    now: datetime | str = NOW if postgresql else NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    params = {"rows": rows, "referrals": -(-rows // PER_REFERRAL), "now": now,
              **{f"p{i + 1}": pair for i, pair in enumerate(PAIRS)}}
    with engine.begin() as connection:
        for statement in POSTGRESQL_FILL if postgresql else SQLITE_FILL:
            connection.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def bench_database(database: str, rows: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="casebridge-bench-") as folder, \
            store_database(database, Path(folder)) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            fill(engine, rows)
            fill_s = time.perf_counter() - started
            sessions = make_sessionmaker(engine)

            def scan() -> int:
                with sessions() as session:  # rolled back on close: the locks are let go
                    return len(find_overdue(session, NOW, limit=rows))

            def count() -> int:
                with sessions() as session:
                    return session.scalar(select(func.count()).select_from(TrackedDeadline)) or 0

            scan_s, found = median_seconds(scan)
            count_s, counted = median_seconds(count)
        finally:
            engine.dispose()
    if counted != rows:
        raise SystemExit(f"FAILED: {database} holds {counted} deadlines, not {rows}")
    assert isinstance(found, int)
    return Result(database, rows, fill_s, found, scan_s, count_s)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="smoke run: 20,000 rows")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="deadline rows stored (default 1,000,000)")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help="comma-separated: sqlite,postgresql (default both)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 20_000
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases: choose among {', '.join(DATABASES)}")
    if args.rows < PER_REFERRAL:
        parser.error(f"--rows must be at least {PER_REFERRAL}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for line in machine_lines(f"sqlite {sqlite3.sqlite_version}"):
            print(line)
        if "postgresql" in args.databases:
            print(postgresql_line())
        print(f"parameters: {args.rows} deadlines on {-(-args.rows // PER_REFERRAL)} referrals,"
              f" 3 % open; scan = find_overdue at {NOW:%Y-%m-%d %H:%M}Z, baseline = count(*);"
              f" median of {REPEATS}\n", flush=True)
        results = []
        for database in args.databases:
            r = bench_database(database, args.rows)
            results.append(r)
            print(f"{database}: rows {r.rows}, filled in {r.fill_s:.1f} s, overdue found "
                  f"{r.found}, scan_s: {r.scan_s:.4f}, count_s: {r.count_s:.4f}, "
                  f"count/scan {r.ratio:.1f}", flush=True)
    except psycopg.OperationalError as error:
        print(f"\nFAILED: {postgresql_failure(error)}", file=sys.stderr)
        return 1
    last = next((r for r in results if r.database == "postgresql"), results[-1])
    print(f"\nratio = {last.database} count(*) seconds / scan seconds")
    print(f"ratio: {last.ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
