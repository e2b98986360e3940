"""The console's referral list over a million referrals: one page for each filter, the
first and one deep in the list, beside a full count of the same table.

What is measured
    A fresh store (a SQLite file in a temporary folder, and a fresh PostgreSQL database) is
    migrated to head and filled, in the database itself (INSERT … SELECT over
    generate_series on PostgreSQL, a recursive CTE on SQLite), with N referrals (default
    1,000,000) submitted over two years: 5 senders, 20 receivers, 1 in 10 a transfer, the
    states spread as in a store that has run for a while (most completed, 1 in 20 still
    submitted), one or two service types each (a row each in referral_services), and 1 in
    3,000 overdue now (an open overdue deadline: a few hundred, as in a store whose open
    referrals are a small part of two years' work). The tables are then ANALYZEd.

    The overdue filter starts from the referrals overdue now (the partial index of open
    overdue deadlines) and sorts them: its cost grows with how many are overdue at once,
    not with the table; the other filters read 51 rows of their index whatever the table.

    page: the console's own query (`filtered` and `list_page` in gateway/console/referrals.py,
    50 rows, newest first, keyed by (created_at, id)) for each filter the page offers —
    none, state (common and rare), kind, sender, receiver, service type, overdue now, a week
    of submission, and receiver with state — once for the first page and once for a page
    half-way down the list (its cursor taken beforehand, not timed). Baseline:
    `SELECT count(*) FROM referrals` on the same store in the same run, the cheapest
    question that reads the whole table. Each is the median of 5 runs after one warm-up.

The ratio, `count(*) seconds / slowest page seconds`, says how many times cheaper than one
look at the whole table the slowest page of any filter is: above 1 every page reads less
than the table, and it grows with the table as long as each filter stays on its index. The
last line is the PostgreSQL ratio (the SQLite one when PostgreSQL is not measured).

    .venv/bin/python bench/console_referrals.py                # 1,000,000, both databases
    .venv/bin/python bench/console_referrals.py --quick        # smoke run: 20,000 referrals
    .venv/bin/python bench/console_referrals.py --referrals 200000 --databases postgresql
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    table,
)
from gateway.console.referrals import FILTERS, cursor_of, filtered, list_page
from gateway.store.db import make_engine, make_sessionmaker, upgrade
from gateway.store.models import Referral

DATABASES = ("sqlite", "postgresql")
NOW = datetime(2027, 4, 22, 9, 0, tzinfo=UTC)
SERVICES = ("psychosocial_support", "legal_aid", "medical_care", "case_management",
            "safe_shelter", "education", "livelihoods", "documentation")
# The filters measured: what an operator would choose on the page.
CASES: dict[str, dict[str, str]] = {
    "none": {},
    "state=completed": {"state": "completed"},
    "state=submitted": {"state": "submitted"},
    "kind=transfer": {"kind": "transfer"},
    "sender": {"sender": "bench-s1"},
    "receiver": {"receiver": "bench-r7"},
    "service=legal_aid": {"service": "legal_aid"},
    "overdue": {"overdue": "yes"},
    "one week": {"from": "2026-10-05", "to": "2026-10-11"},
    "receiver+state": {"receiver": "bench-r7", "state": "accepted"},
}
# 20 buckets of states: most completed, some open, a few refused or failed.
STATE_BUCKETS = ("submitted", "failed", "delivered", "delivered", "acknowledged",
                 "acknowledged", "accepted", "accepted", "accepted", "rejected",
                 "in_progress", *["completed"] * 9)

POSTGRESQL_FILL = (
    """INSERT INTO partners (id, name, system, active, created_at, delivery_failures)
       SELECT 'bench-s' || g, 'Bench sender', 'other', true, now(), 0
       FROM generate_series(0, 4) AS g
       UNION ALL SELECT 'bench-r' || g, 'Bench receiver', 'other', true, now(), 0
       FROM generate_series(0, 19) AS g""",
    """INSERT INTO referrals (id, kind, sender_id, receiver_id, status, correlation_id,
                              request_hash, content, withheld, created_at, updated_at,
                              service_types)
       SELECT 'ref-' || g, CASE WHEN g % 10 = 0 THEN 'transfer' ELSE 'referral' END,
              'bench-s' || (g % 5), 'bench-r' || ((g / 5) % 20),
              (CAST(:states AS text[]))[((g::bigint * 7919) % 1009 % 20) + 1], 'corr-' || g,
              'h', '{}', '[]', at, at, NULL
       FROM generate_series(1, :referrals) AS g,
            LATERAL (SELECT :now - ((g::bigint * 104729) % 63072000) * interval '1 second'
                     AS at) AS t""",
    """INSERT INTO referral_services (referral_id, service_type, created_at)
       SELECT r.id, (CAST(:services AS text[]))[s.i + 1], r.created_at
       FROM referrals r, LATERAL (
         SELECT (substr(r.id, 5)::bigint * 31) % 8 AS i
         UNION SELECT (substr(r.id, 5)::bigint * 31 + 3) % 8
         WHERE substr(r.id, 5)::bigint % 10 < 3) AS s""",
    """INSERT INTO deadlines (referral_id, state, name, policy_id, calendar_id, started_at,
                              due_at, raised_at, paused_seconds)
       SELECT id, 'delivered', 'acknowledge', 'bench', 'gb-eng', created_at,
              created_at + interval '2 days', created_at + interval '2 days', 0
       FROM referrals WHERE substr(id, 5)::bigint % 3000 = 0""",
)
SQLITE_FILL = (
    """INSERT INTO partners (id, name, system, active, created_at, delivery_failures)
       WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 19)
       SELECT 'bench-s' || n, 'Bench sender', 'other', 1, :now, 0 FROM g WHERE n < 5
       UNION ALL SELECT 'bench-r' || n, 'Bench receiver', 'other', 1, :now, 0 FROM g""",
    # SQLAlchemy keeps SQLite datetimes as text, 'YYYY-MM-DD HH:MM:SS.ffffff', compared as text.
    """INSERT INTO referrals (id, kind, sender_id, receiver_id, status, correlation_id,
                              request_hash, content, withheld, created_at, updated_at)
       WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :referrals),
       rows AS (SELECT n, datetime(:now, printf('-%d seconds', (n * 104729) % 63072000))
                          || '.000000' AS at FROM g)
       SELECT 'ref-' || n, CASE WHEN n % 10 = 0 THEN 'transfer' ELSE 'referral' END,
              'bench-s' || (n % 5), 'bench-r' || ((n / 5) % 20),
              json_extract(:states, '$[' || ((n * 7919) % 1009 % 20) || ']'), 'corr-' || n,
              'h', '{}', '[]', at, at FROM rows""",
    """INSERT INTO referral_services (referral_id, service_type, created_at)
       SELECT id, json_extract(:services, '$[' || ((CAST(substr(id, 5) AS INTEGER) * 31) % 8)
                                          || ']'), created_at FROM referrals
       UNION SELECT id, json_extract(:services, '$[' ||
                                     ((CAST(substr(id, 5) AS INTEGER) * 31 + 3) % 8) || ']'),
                    created_at
       FROM referrals WHERE CAST(substr(id, 5) AS INTEGER) % 10 < 3""",
    """INSERT INTO deadlines (referral_id, state, name, policy_id, calendar_id, started_at,
                              due_at, raised_at, paused_seconds)
       SELECT id, 'delivered', 'acknowledge', 'bench', 'gb-eng', created_at,
              datetime(created_at, '+2 days') || '.000000',
              datetime(created_at, '+2 days') || '.000000', 0
       FROM referrals WHERE CAST(substr(id, 5) AS INTEGER) % 3000 = 0""",
)


@dataclass
class Result:
    database: str
    referrals: int
    fill_s: float
    count_s: float
    pages: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # first, deep, n

    @property
    def slowest(self) -> float:
        return max(max(first, deep) for first, deep, _ in self.pages.values())

    @property
    def ratio(self) -> float:
        return self.count_s / self.slowest


def fill(engine: Engine, referrals: int) -> None:
    """Partners, referrals, their services and overdue deadlines, made by the database;
    then ANALYZE."""
    import json

    postgresql = engine.dialect.name == "postgresql"
    params: dict[str, object] = {
        "referrals": referrals,
        "now": NOW if postgresql else NOW.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "states": list(STATE_BUCKETS) if postgresql else json.dumps(STATE_BUCKETS),
        "services": list(SERVICES) if postgresql else json.dumps(SERVICES)}
    with engine.begin() as connection:
        for statement in POSTGRESQL_FILL if postgresql else SQLITE_FILL:
            connection.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def bench_database(database: str, referrals: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="casebridge-bench-") as folder, \
            store_database(database, Path(folder)) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            fill(engine, referrals)
            result = Result(database, referrals, time.perf_counter() - started, 0.0)
            sessions = make_sessionmaker(engine)

            def count() -> int:
                with sessions() as session:
                    return session.scalar(select(func.count()).select_from(Referral)) or 0

            result.count_s, counted = median_seconds(count)
            if counted != referrals:
                raise SystemExit(f"FAILED: {database} holds {counted} referrals, "
                                 f"not {referrals}")
            for name, chosen in CASES.items():
                filters = {key: chosen.get(key, "") for key in FILTERS}
                result.pages[name] = measure(sessions, filters)
        finally:
            engine.dispose()
    return result


def measure(sessions: Callable[[], object], filters: dict[str, str]
            ) -> tuple[float, float, int]:
    """Seconds for the first page and for one half-way down, and the rows on the first."""
    query = filtered(filters)
    with sessions() as session:  # type: ignore[attr-defined]
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        middle = session.execute(query.order_by(Referral.created_at.desc(),
                                                Referral.id.desc())
                                 .offset(total // 2).limit(1)).first()
    deep = cursor_of(middle.created_at, middle.id) if middle else ""

    def page(after: str) -> Callable[[], int]:
        def run() -> int:
            with sessions() as session:  # type: ignore[attr-defined]
                rows, _ = list_page(session, query, filters, after=after)
                return len(rows)
        return run

    first_s, shown = median_seconds(page(""))
    deep_s, _ = median_seconds(page(deep))
    assert isinstance(shown, int)
    if total and not shown:
        raise SystemExit(f"FAILED: a filter with {total} referrals showed none: {filters}")
    return first_s, deep_s, shown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="smoke run: 20,000 referrals")
    parser.add_argument("--referrals", type=int, default=1_000_000,
                        help="referrals stored (default 1,000,000)")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help="comma-separated: sqlite,postgresql (default both)")
    args = parser.parse_args(argv)
    if args.quick:
        args.referrals = 20_000
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases: choose among {', '.join(DATABASES)}")
    if args.referrals < 1000:
        parser.error("--referrals must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for line in machine_lines(f"sqlite {sqlite3.sqlite_version}"):
            print(line)
        if "postgresql" in args.databases:
            print(postgresql_line())
        print(f"parameters: {args.referrals} referrals over two years; a page = 50 rows of "
              f"the console's list, first and half-way down; baseline = count(*); median of "
              f"{REPEATS}\n", flush=True)
        results = []
        for database in args.databases:
            r = bench_database(database, args.referrals)
            results.append(r)
            print(f"{database}: referrals {r.referrals}, filled in {r.fill_s:.1f} s", flush=True)
            for line in table(f"  {'filter':<18} {'first page s':>12} {'deep page s':>12} "
                              f"{'rows':>5}",
                              (f"  {name:<18} {first:>12.4f} {deep:>12.4f} {n:>5}"
                               for name, (first, deep, n) in r.pages.items())):
                print(line)
            print(f"{database}: slowest_page_s: {r.slowest:.4f}, count_s: {r.count_s:.4f}, "
                  f"count/slowest {r.ratio:.1f}\n", flush=True)
    except psycopg.OperationalError as error:
        print(f"\nFAILED: {postgresql_failure(error)}", file=sys.stderr)
        return 1
    last = next((r for r in results if r.database == "postgresql"), results[-1])
    print(f"ratio = {last.database} count(*) seconds / slowest page seconds")
    print(f"ratio: {last.ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
