"""Referral intake throughput of the gateway over real HTTP, beside a no-op baseline.

What is measured
    For each database (a SQLite file in a temporary folder, and a fresh PostgreSQL database
    created for the run and dropped at the end) the store is migrated, two partners are
    registered, and the gateway is started with uvicorn in a separate process, exactly as it
    is deployed. From this process, an asyncio client (httpx, one connection per concurrent
    worker) then submits canonical referrals: ``POST /v1/referrals`` with a Bearer key and a
    unique Idempotency-Key each. Every answer must be 201. Each submission validates the
    document against the referral contract, checks consent, and stores the referral, its
    first status event and its outbox row in one committed transaction. We report the
    accepted referrals per second and the p50/p99 latency seen by the client.

Why the baseline is what it is
    The client and the server share the machine (two cores on the reference box), and the
    HTTP stack (client, uvicorn, FastAPI routing, middleware, the thread pool that runs sync
    endpoints) costs a large share of every request. So absolute numbers mostly describe the
    machine. The baseline is the same server process, the same client, the same concurrency
    and the same number of requests against ``GET /v1/noop``: a sync endpoint that does no
    work, behind the same middleware. ``intake / baseline`` is therefore the fraction of the
    bare HTTP ceiling that referral intake reaches, and what is left is the cost of
    authentication, validation and the database. It is comparable across machines and runs.
    Baseline and intake alternate in rounds, so both see the same load from whatever else
    runs on the machine.
    On a small machine the baseline is often limited by the client's own CPU (one asyncio
    thread); that is intended: it is the ceiling this harness can observe at all.

The last line printed is ``ratio: X``: SQLite intake throughput / SQLite baseline throughput.

    .venv/bin/python bench/intake.py                 # 2000 referrals, 8 connections, both DBs
    .venv/bin/python bench/intake.py --quick         # smoke run: 200 requests
    .venv/bin/python bench/intake.py --databases sqlite --requests 5000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, select

import common
from gateway import ROOT
from gateway.partners import register_partner
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import OutboxMessage, Referral
from sharing import allow, referral_document

SENDER, RECEIVER = "bench-primero", "bench-progres"
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
MAX_ERROR_SAMPLES = 5


@dataclass
class Result:
    database: str
    intake: common.Run
    baseline: common.Run
    stored: int  # referrals in the store at the end (warm-up included)
    # the server process's CPU (user + system, /proc) per request of each, in milliseconds
    intake_cpu_ms: float | None = None
    baseline_cpu_ms: float | None = None

    @property
    def ratio(self) -> float:
        return self.intake.throughput / self.baseline.throughput


# --- the workload --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One prepared request; bodies are serialized before the clock starts."""

    method: str
    path: str
    expected: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def referral_calls(count: int) -> list[Call]:
    return [Call("POST", "/v1/referrals", 201,
                 {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
                 json.dumps(referral_document(SENDER, RECEIVER)).encode())
            for _ in range(count)]


def noop_calls(count: int) -> list[Call]:
    return [Call("GET", "/v1/noop", 200) for _ in range(count)]


async def _load(base_url: str, api_key: str, calls: list[Call], concurrency: int,
                label: str) -> common.Run:
    """Send `calls` over `concurrency` keep-alive connections, each worker one at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {api_key}"}
    latencies: list[float] = []
    samples: list[str] = []
    errors = 0
    pending = iter(calls)

    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=REQUEST_TIMEOUT) as client:

        async def worker() -> None:
            nonlocal errors
            for call in pending:  # a shared iterator: each call is taken once
                started = time.perf_counter()
                try:
                    response = await client.request(call.method, call.path, headers=call.headers,
                                                    content=call.body)
                except httpx.HTTPError as error:
                    errors += 1
                    if len(samples) < MAX_ERROR_SAMPLES:
                        samples.append(f"{type(error).__name__}: {error}")
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code == call.expected:
                    latencies.append(elapsed)
                else:
                    errors += 1
                    if len(samples) < MAX_ERROR_SAMPLES:
                        samples.append(f"{response.status_code}: {response.text[:300]}")

        # Open every connection before the clock starts, so setup is not measured.
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return common.Run(label, len(calls), seconds, latencies, errors, samples)


def load(base_url: str, api_key: str, calls: list[Call], concurrency: int,
         label: str) -> common.Run:
    run = asyncio.run(_load(base_url, api_key, calls, concurrency, label))
    if run.errors:
        raise common.BenchError(f"{label}: {run.errors} of {run.count} requests failed, "
                                "e.g.\n  " + "\n  ".join(run.samples))
    return run


# --- the store and the server --------------------------------------------------------------


def prepare_store(url: str) -> str:
    """Migrate the store and register the two partners; returns the sender's API key."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            _, key = register_partner(session=session, partner_id=SENDER,
                                      name="Bench Primero", system="primero")
            register_partner(session=session, partner_id=RECEIVER,
                             name="Bench proGres", system="progres")
    finally:
        engine.dispose()
    return key


def count_stored(url: str) -> tuple[int, int]:
    """Referrals and outbox rows in the store."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            referrals = session.scalar(select(func.count()).select_from(Referral)) or 0
            outbox = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    finally:
        engine.dispose()
    return referrals, outbox


@contextmanager
def gateway_server(url: str, log_path: Path) -> Iterator[tuple[str, int]]:
    """uvicorn serving the gateway on `url` in a child process; yields its base URL and
    process id."""
    port = common.free_port()
    env = {**os.environ, "CASEBRIDGE_DATABASE_URL": url, "CASEBRIDGE_LOG_LEVEL": "warning"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway.api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base_url, log_path)
        yield base_url, process.pid
    finally:
        stop(process)


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise common.BenchError(f"the gateway exited with {process.returncode}:\n"
                                    + common.tail(log_path))
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise common.BenchError(f"the gateway did not answer /healthz in {START_TIMEOUT:.0f} s:\n"
                            + common.tail(log_path))


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it does not exit."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --- one database, the whole run ----------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal positive counts."""
    parts = max(1, min(parts, total))
    return [total // parts + (i < total % parts) for i in range(parts)]


def measure(base_url: str, pid: int, api_key: str, database: str, args: argparse.Namespace
            ) -> tuple[common.Run, common.Run, dict[str, float | None]]:
    """Baseline and intake in alternating rounds (noop, intake, intake, noop, ...), so both
    see the same machine load and drift; each total is the sum over its rounds. Also the
    server's CPU milliseconds per request of each (None without /proc)."""
    baseline = common.Run(f"{database} baseline", 0, 0.0, [])
    intake = common.Run(f"{database} intake", 0, 0.0, [])
    cpu: dict[str, float | None] = {baseline.label: 0.0, intake.label: 0.0}
    for number, count in enumerate(split(args.requests, args.rounds)):
        phases = [(baseline, noop_calls), (intake, referral_calls)]
        for total, calls in phases if number % 2 == 0 else reversed(phases):
            before = common.process_cpu(pid)
            run = load(base_url, api_key, calls(count), args.concurrency, total.label)
            after = common.process_cpu(pid)
            spent = cpu[total.label]
            cpu[total.label] = (None if spent is None or before is None or after is None
                                else spent + after - before)
            total.count += run.count
            total.seconds += run.seconds
            total.latencies += run.latencies
    per_request = {label: None if spent is None else 1000 * spent / args.requests
                   for label, spent in cpu.items()}
    return baseline, intake, per_request


def bench_database(database: str, args: argparse.Namespace, log_folder: Path) -> Result:
    with common.store_database(database, log_folder) as url:
        api_key = prepare_store(url)
        log_path = log_folder / f"gateway-{database}.log"
        with gateway_server(url, log_path) as (base_url, pid):
            # Warm-up, not counted: connection pools, validators, code paths.
            load(base_url, api_key, noop_calls(args.warmup), args.concurrency, "warm-up noop")
            load(base_url, api_key, referral_calls(args.warmup), args.concurrency,
                 "warm-up intake")
            baseline, intake, cpu = measure(base_url, pid, api_key, database, args)
        referrals, outbox = count_stored(url)
        expected = args.warmup + args.requests
        if referrals != expected or outbox != expected:
            raise common.BenchError(f"{database}: {referrals} referrals and {outbox} outbox "
                                    f"rows stored, expected {expected} of each")
    return Result(database, intake, baseline, referrals, cpu[intake.label],
                  cpu[baseline.label])


# --- reporting ----------------------------------------------------------------------------


def results_table(results: list[Result]) -> list[str]:
    """Intake and baseline side by side, a row per database."""
    head = (f"{'database':<11}| {'intake req/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
            f"| {'noop req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'intake/noop':>11}")
    return common.table(head, (
        f"{r.database:<11}| {r.intake.throughput:>12.1f} {r.intake.percentile_ms(50):>7.1f} "
        f"{r.intake.percentile_ms(99):>7.1f} | {r.baseline.throughput:>10.1f} "
        f"{r.baseline.percentile_ms(50):>7.1f} {r.baseline.percentile_ms(99):>7.1f} "
        f"| {r.ratio:>11.2f}" for r in results))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.arguments(__doc__, quick="smoke run: 200 requests, 20 warm-up")
    parser.add_argument("--requests", type=int, default=2000,
                        help="measured requests per workload (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="concurrent connections (default 8)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="uncounted requests of each workload first (default 100)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate baseline and intake in this many rounds (default 4)")
    parser.add_argument("--databases", default=",".join(common.DATABASES),
                        help="comma-separated: sqlite,postgresql (default both)")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = 200, 20
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = sorted(set(args.databases) - set(common.DATABASES))
    if unknown or not args.databases:
        parser.error(f"--databases: choose among {', '.join(common.DATABASES)}")
    common.require_counts(parser, args, ("requests", "concurrency", "rounds"))
    return args


def run(args: argparse.Namespace) -> int:
    """Measure each database, then print the table and the ratio."""
    versions = f"sqlite {sqlite3.sqlite_version}, httpx {httpx.__version__}"
    for line in common.machine_lines(versions):
        print(line)
    if "postgresql" in args.databases:
        print(common.postgresql_line())
    print(f"parameters: requests {args.requests} per workload in {args.rounds} alternating "
          f"rounds, warm-up {args.warmup}, concurrency {args.concurrency}, "
          f"databases {','.join(args.databases)}")
    print("intake: POST /v1/referrals (201 each); baseline (noop): GET /v1/noop (200 each),"
          " same server process, client and concurrency")
    print()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="casebridge-bench-logs-") as logs:
        allow(Path(logs) / "agreements", SENDER, RECEIVER)
        for database in args.databases:
            started = time.monotonic()
            results.append(bench_database(database, args, Path(logs)))
            print(f"{database}: done in {time.monotonic() - started:.1f} s, "
                  f"{results[-1].stored} referrals stored and checked", flush=True)
    print()
    for line in results_table(results):
        print(line)
    print("\nthe server's CPU per request (user + system, from /proc; its database server "
          "not counted):")
    for r in results:
        if r.intake_cpu_ms is not None and r.baseline_cpu_ms is not None:
            print(f"  {r.database:<11} intake {r.intake_cpu_ms:.2f} ms, "
                  f"noop {r.baseline_cpu_ms:.2f} ms")
    sqlite = next((r for r in results if r.database == "sqlite"), None)
    if sqlite is None:
        print("\n(no ratio line: it is defined on SQLite, which was not measured)")
        return 0
    print("\nratio = SQLite intake throughput / SQLite baseline (GET /v1/noop) throughput")
    print(f"ratio: {sqlite.ratio:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run_to_the_end(
        lambda: run(args), interrupted="servers stopped, databases dropped",
        failures={psycopg.OperationalError: common.postgresql_failure})


if __name__ == "__main__":
    sys.exit(main())
