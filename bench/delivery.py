"""End-to-end delivery throughput of a whole CaseBridge, beside a bare-broker baseline.

What is measured
    A whole stack runs as real processes, exactly as deployed: a Primero sandbox
    (``casebridge sandbox primero``), the API (``casebridge serve``), the outbox relay
    (``casebridge relay``) and N delivery workers (``casebridge worker``, default 2), on a
    store that is a SQLite file in a temporary folder or (``--database postgresql``) a fresh
    PostgreSQL database, and on a RabbitMQ virtual host of their own. Two partners are
    registered with the CLI: ``sender-api`` (an API-only partner) and ``primero-ssd``,
    connected to the sandbox. After a warm-up, a thread pool submits canonical referrals
    (``POST /v1/referrals``, 201 each) from ``sender-api`` to ``primero-ssd``, while the relay
    and the workers carry them on: outbox row -> publish with confirm -> quorum queue ->
    worker -> mapping -> Primero adapter (three HTTP calls to the sandbox for a new case)
    -> the worker records the ``delivered`` status event (and, through the outbox, a status
    message back to the sender, which a worker settles without an HTTP call).

    For each referral, latency = its ``delivered`` status event's ``recorded_at`` (written
    right after the sandbox stored the case) minus the referral's ``created_at`` (intake).
    Throughput = referrals / (from the first POST to the last ``delivered``). At the end,
    the sandbox's own SQLite file must hold exactly one case per referral submitted, the
    store exactly one ``delivered`` event per referral and no dead letter: else exit 1.

Why the baseline is what it is
    The gateway's delivery path is built on RabbitMQ: one relay publishing outbox rows in
    batches with publisher confirms to a durable quorum queue, and workers consuming with a
    prefetch and acknowledging each message. On a small machine the broker and the
    processes share the same cores, so absolute numbers mostly describe the machine. The
    baseline is the bare messaging ceiling of that design on the same broker in the same
    run: the same number of messages, each a real ``deliver`` envelope taken from the
    outbox (same size, same persistent properties, a fresh message id each), published one
    by one with confirms through the ``casebridge`` exchange to a quorum queue declared
    with the partner queues' arguments, consumed by as many consumer processes as there
    are workers, with the workers' prefetch, and acknowledged. No database, no HTTP, no
    mapping. ``end-to-end / baseline`` is therefore the fraction of the broker ceiling that
    delivery reaches; the rest is intake, the outbox, the store writes, the mapping and
    the partner's API. It is comparable across machines. The baseline runs once between
    the warm-up and the measured run, while the stack idles, so that both see the same
    machine.

The last line printed is ``ratio: X``: end-to-end referrals/s / baseline messages/s.

    .venv/bin/python bench/delivery.py                         # 500 referrals, 2 workers, SQLite
    .venv/bin/python bench/delivery.py --quick                 # smoke run: 100 referrals
    .venv/bin/python bench/delivery.py --database postgresql --workers 4 --referrals 2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import Empty
from typing import Any

import httpx
import pika
import psycopg
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ChannelClosedByBroker
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from common import (
    DATABASES,
    BenchError,
    Run,
    arguments,
    free_port,
    machine_lines,
    percentile_ms,
    postgresql_failure,
    postgresql_line,
    require_counts,
    run_to_the_end,
    store_database,
    table,
    tail,
)
from gateway import ROOT
from gateway.delivery import broker, topology
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import DeadLetter, OutboxMessage, Referral, StatusEvent
from sharing import allow, referral_document

AMQP_URL = os.environ.get("CASEBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SENDER, RECEIVER = "sender-api", "primero-ssd"
# What the Primero adapter logs in with at the sandbox (the sandbox's seeded account).
PRIMERO_CREDENTIALS = {"user": "casebridge", "password": "sandbox-passw0rd"}
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
MAX_ERROR_SAMPLES = 5
POLL_SECONDS = 0.2


@dataclass
class Stages:
    """Where a measured referral spent its time, and what the client saw."""

    post: list[float]  # client-side POST /v1/referrals latency
    submit_seconds: float  # first POST sent -> last 201 received
    to_published: list[float]  # created_at -> the relay's confirmed publish (published_at)
    to_delivered: list[float]  # published_at -> delivered (broker, worker, adapter, store)
    window: float  # first POST -> last delivered, wall clock
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per component


@dataclass
class Result:
    database: str
    workers: int
    end_to_end: Run
    baseline: Run
    stages: Stages
    envelope_bytes: int
    checked: int  # referrals checked exactly once at the receiver (warm-up included)
    vhost: str

    @property
    def ratio(self) -> float:
        return self.end_to_end.throughput / self.baseline.throughput


# --- the workload --------------------------------------------------------------------------


@dataclass
class Submission:
    ids: list[str]
    started: float  # wall clock (time.time()) when the first POST was sent
    seconds: float
    latencies: list[float]


def submit(base_url: str, api_key: str, count: int, concurrency: int) -> Submission:
    """POST `count` referrals from a pool of `concurrency` threads; every answer must be 201."""
    bodies = [json.dumps(referral_document(SENDER, RECEIVER)).encode() for _ in range(count)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.Client(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT,
                          headers={"Authorization": f"Bearer {api_key}",
                                   "Content-Type": "application/json"})
    ids: list[str] = []
    latencies: list[float] = []
    samples: list[str] = []
    lock = threading.Lock()

    def post(body: bytes) -> None:
        started = time.perf_counter()
        try:
            answer = client.post("/v1/referrals", content=body,
                                 headers={"Idempotency-Key": str(uuid.uuid4())})
        except httpx.HTTPError as error:
            with lock:
                samples.append(f"{type(error).__name__}: {error}")
            return
        elapsed = time.perf_counter() - started
        with lock:
            if answer.status_code == 201:
                ids.append(str(answer.json()["id"]))
                latencies.append(elapsed)
            else:
                samples.append(f"{answer.status_code}: {answer.text[:300]}")

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="submit")
    try:
        # Open the connections before the clock starts, so setup is not measured.
        list(pool.map(lambda _: client.get("/healthz"), range(concurrency)))
        wall, started = time.time(), time.perf_counter()
        list(pool.map(post, bodies))
        seconds = time.perf_counter() - started
    finally:
        # On Ctrl-C, do not wait for the queued submissions: drop them.
        pool.shutdown(wait=False, cancel_futures=True)
        client.close()
    if samples:
        raise BenchError(f"{len(samples)} of {count} submissions failed, e.g.\n  "
                         + "\n  ".join(samples[:MAX_ERROR_SAMPLES]))
    return Submission(ids, wall, seconds, latencies)


# --- the store ----------------------------------------------------------------------------


class Store:
    """Read-only looks at the gateway's store while the stack runs."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def delivered(self) -> dict[str, list[datetime]]:
        """recorded_at of every `delivered` status event, by referral id."""
        with self.sessions() as session:
            rows = session.execute(select(StatusEvent.referral_id, StatusEvent.recorded_at)
                                   .where(StatusEvent.to_state == "delivered")).all()
        found: dict[str, list[datetime]] = {}
        for referral_id, recorded_at in rows:
            found.setdefault(referral_id, []).append(recorded_at)
        return found

    def created(self) -> dict[str, datetime]:
        with self.sessions() as session:
            rows = session.execute(select(Referral.id, Referral.created_at)).all()
        return {referral_id: created_at for referral_id, created_at in rows}

    def published(self) -> dict[str, datetime]:
        """When the relay's publish of each referral's `deliver` message was confirmed."""
        with self.sessions() as session:
            rows = session.execute(select(OutboxMessage.referral_id, OutboxMessage.published_at)
                                   .where(OutboxMessage.message_type == "deliver")).all()
        return {referral_id: at for referral_id, at in rows if at is not None}

    def unpublished(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.published_at.is_(None))) or 0

    def dead_letters(self) -> list[tuple[str, str | None]]:
        with self.sessions() as session:
            return [(d.reason, d.detail) for d in session.scalars(select(DeadLetter))]

    def envelope(self) -> dict[str, Any]:
        """A real `deliver` envelope from the outbox."""
        with self.sessions() as session:
            envelope = session.scalar(select(OutboxMessage.envelope)
                                      .where(OutboxMessage.message_type == "deliver")
                                      .order_by(OutboxMessage.id).limit(1))
        if envelope is None:
            raise BenchError("no deliver envelope in the outbox after the warm-up")
        return dict(envelope)


# --- the broker ---------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> bool:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return False
    try:
        return subprocess.run([ctl, "-q", *args], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def partner_queues() -> list[str]:
    return [topology.queue_name(kind, partner) for partner in (SENDER, RECEIVER)
            for kind in topology.MESSAGE_TYPES]


@dataclass
class Broker:
    url: str
    vhost: str  # the bench's own virtual host, or the shared one of AMQP_URL (fallback)
    queues: list[str] = field(default_factory=list)  # to delete at the end (fallback only)


@contextmanager
def broker_vhost() -> Iterator[Broker]:
    """A fresh virtual host, deleted with everything in it at the end.

    Without rabbitmqctl (not installed, not root), the default virtual host of AMQP_URL
    is used, provided none of the partner queues exists there already (they could be a
    real gateway's), and the queues the run made are deleted at the end.
    """
    vhost = f"casebridge-bench-{uuid.uuid4().hex[:8]}"
    if rabbitmqctl("add_vhost", vhost):
        try:
            if not rabbitmqctl("set_permissions", "-p", vhost,
                               pika.URLParameters(AMQP_URL).credentials.username,
                               ".*", ".*", ".*"):
                raise BenchError(f"rabbitmqctl could not give permissions on {vhost}")
            yield Broker(AMQP_URL.rsplit("/", 1)[0] + "/" + vhost, vhost)
        finally:
            if not rabbitmqctl("delete_vhost", vhost):
                print(f"WARNING: could not delete the RabbitMQ virtual host {vhost}",
                      file=sys.stderr)
        return
    shared = Broker(AMQP_URL, pika.URLParameters(AMQP_URL).virtual_host + " (shared)")
    taken = [name for name in partner_queues() if queue_exists(AMQP_URL, name)]
    if taken:
        raise BenchError(f"rabbitmqctl cannot make a virtual host, and the default one has "
                         f"{', '.join(taken)} already: not touching them")
    shared.queues = partner_queues()
    try:
        yield shared
    finally:
        delete_queues(shared.url, shared.queues)


def queue_exists(url: str, name: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def delete_queues(url: str, names: list[str]) -> None:
    with suppress(AMQPError, OSError):
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            for name in names:
                channel = connection.channel()
                with suppress(AMQPError):
                    channel.queue_delete(name)
                if channel.is_open:
                    channel.close()
        finally:
            if connection.is_open:
                connection.close()


def queue_state(url: str, name: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        frame = connection.channel().queue_declare(name, passive=True)
        return frame.method.message_count, frame.method.consumer_count
    finally:
        if connection.is_open:
            connection.close()


# --- the baseline: publish with confirm, consume, ack ---------------------------------------


def _consume(url: str, queue: str, prefetch: int, total: int, ready: Any, stop: Any,
             counter: Any, results: Any) -> None:
    """A consumer process: ack every message, note when each arrived (time.monotonic)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops us
    arrived: list[tuple[str, float]] = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)

    def on_message(ch: BlockingChannel, method: Any, props: pika.BasicProperties,
                   _body: bytes) -> None:
        arrived.append((str(props.message_id), time.monotonic()))
        ch.basic_ack(method.delivery_tag)
        with counter.get_lock():
            counter.value += 1

    channel.basic_consume(queue, on_message)
    ready.set()
    while not stop.is_set() and counter.value < total:
        connection.process_data_events(time_limit=0.1)
    results.put(arrived)
    connection.close()


def baseline(url: str, envelope: dict[str, Any], count: int, consumers: int,
             settings: Settings) -> Run:
    """`count` envelopes published one by one with confirms, consumed by `consumers`
    processes with the workers' prefetch, acked; throughput and publish->consume latency."""
    queue = f"bench.baseline.{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in range(consumers)]
    stop = context.Event()
    counter = context.Value("i", 0)
    results = context.Queue()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    processes: list[Any] = []
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        topology.declare(channel, partner_ids=[], delays=settings.retry_delays,
                         delivery_limit=settings.delivery_limit)
        channel.queue_declare(queue, durable=True,
                              arguments=topology.partner_queue_arguments(settings.delivery_limit))
        channel.queue_bind(queue, topology.EXCHANGE, routing_key=queue)
        for event in ready:
            process = context.Process(
                target=_consume, name="bench-consumer", daemon=True,
                args=(url, queue, settings.worker_prefetch, count, event, stop, counter, results))
            process.start()
            processes.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(event.is_set() for event in ready):
            if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
                raise BenchError("a baseline consumer did not start")
            time.sleep(0.05)
        # Prepared before the clock: same body size, a fresh message id each.
        messages = []
        for _ in range(count):
            one = {**envelope, "message_id": str(uuid.uuid4())}
            messages.append((one["message_id"], broker.encode(one),
                             broker.properties(one, attempt=1)))
        sent: dict[str, float] = {}
        started = time.monotonic()
        for message_id, body, props in messages:
            sent[message_id] = time.monotonic()
            channel.basic_publish(topology.EXCHANGE, queue, body, props, mandatory=True)
        deadline = time.monotonic() + START_TIMEOUT + count * 0.05
        while counter.value < count:
            if time.monotonic() > deadline:
                raise BenchError(f"baseline: {counter.value} of {count} messages consumed")
            if not all(p.is_alive() for p in processes):
                raise BenchError("a baseline consumer exited")
            connection.process_data_events(time_limit=0.05)
        arrived: list[tuple[str, float]] = []
        for _ in processes:
            try:
                arrived += results.get(timeout=30)
            except Empty:
                raise BenchError("a baseline consumer did not report") from None
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        with suppress(AMQPError, OSError):
            if connection.is_open:
                connection.channel().queue_delete(queue)
                connection.close()
    seen = Counter(message_id for message_id, _ in arrived)
    if set(seen) != set(sent) or any(n != 1 for n in seen.values()):
        raise BenchError(f"baseline: {len(seen)} distinct of {count} messages consumed, "
                         f"{sum(seen.values())} in all")
    last = max(at for _, at in arrived)
    return Run("baseline", count, last - started, [at - sent[m] for m, at in arrived])


# --- the processes ------------------------------------------------------------------------


def casebridge_command() -> list[str]:
    script = Path(sys.executable).parent / "casebridge"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gateway.cli import app; app()"]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Stack:
    """The stack's processes; `stop` ends them in reverse order of starting."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.children: list[Child] = []

    def cli(self, *args: str) -> str:
        """Run a `casebridge` command to its end; its output, or BenchError."""
        done = subprocess.run([*casebridge_command(), *args], cwd=ROOT, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"casebridge {args[0]} {args[1] if len(args) > 1 else ''} "
                             f"exited with {done.returncode}:\n"
                             + done.stderr.decode(errors="replace")[-2000:])
        return done.stdout.decode()

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            # A session of its own: a Ctrl-C in the terminal reaches the bench only, which
            # then stops everything in order.
            process = subprocess.Popen([*casebridge_command(), *args], cwd=ROOT,
                                       env={**self.env, **(env or {})},
                                       stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise BenchError(f"{child.name} exited with {child.process.returncode}:\n"
                                 + tail(child.log))

    def wait_http(self, child: Child, url: str, auth: tuple[str, str] | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, auth=auth, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{child.name} did not answer {url} in {START_TIMEOUT:.0f} s:\n"
                         + tail(child.log))

    def log_summary(self) -> str:
        """Per process, how often each warning or error event was logged (JSON log lines
        carry the event and the error type only, never record values)."""
        lines = []
        for child in self.children:
            seen: Counter[str] = Counter()
            with suppress(OSError):
                for line in child.log.read_text(errors="replace").splitlines():
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        seen[line[:120]] += 1
                        continue
                    if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                        seen[" ".join(str(entry[k]) for k in ("event", "error_type", "reason")
                                      if k in entry)] += 1
            if seen:
                lines.append(f"  {child.name}: " + "; ".join(
                    f"{what} x{n}" for what, n in seen.most_common(5)))
        return "\n".join(lines) or "  (nothing)"

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds of each running child, summed by kind (worker-1, -2 ...
        count as `workers`), from /proc; empty where /proc is not there."""
        found: dict[str, float] = {}
        for child in self.children:
            spent = process_cpu(child.process.pid)
            if spent is not None:
                kind = "workers" if child.name.startswith("worker") else child.name
                found[kind] = found.get(kind, 0.0) + spent
        return found

    def stop(self) -> None:
        """SIGTERM (each process stops cleanly), then SIGKILL if it does not exit."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(timeout=5)


def process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_cpu() -> float | None:
    """CPU seconds of the RabbitMQ node on this machine (all its work, not ours alone)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with suppress(OSError):
            if comm.read_text().strip() == "beam.smp":
                return process_cpu(int(comm.parent.name))
    return None


def pg_backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each local PostgreSQL backend serving `database`, by pid (a backend
    names its database in its title: ``postgres: user database host(port) state``)."""
    found: dict[int, float] = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):
            title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database} " in title:
                spent = process_cpu(int(cmdline.parent.name))
                if spent is not None:
                    found[int(cmdline.parent.name)] = spent
    return found


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class CpuSnapshot:
    named: dict[str, float]
    pg: dict[int, float]


def cpu_snapshot(stack: Stack, pg_database: str | None) -> CpuSnapshot:
    named = stack.cpu_seconds()
    named["bench client"] = own_cpu()
    rabbit = broker_cpu()
    if rabbit is not None:
        named["rabbitmq (whole node)"] = rabbit
    return CpuSnapshot(named, pg_backends_cpu(pg_database) if pg_database else {})


def cpu_spent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds per component between two snapshots; backends that connected in between
    count from zero (those that left in between are missed: the pools keep theirs)."""
    spent = {k: after.named[k] - before.named[k] for k in after.named if k in before.named}
    if after.pg:
        spent["postgresql backends"] = sum(cpu - before.pg.get(pid, 0.0)
                                           for pid, cpu in after.pg.items())
    return spent


# --- one whole run ------------------------------------------------------------------------


def start_stack(stack: Stack, args: argparse.Namespace) -> tuple[str, str]:
    """Sandbox, store, partners, API, relay and workers; returns (API base URL, API key)."""
    sandbox_port = free_port()
    sandbox = stack.start("sandbox", "sandbox", "primero", "--port", str(sandbox_port),
                          "--database", str(stack.folder / "sandbox-primero.db"))
    stack.cli("db", "upgrade")
    api_key = f"bench-{secrets.token_urlsafe(24)}"
    stack.cli("partners", "add", SENDER, "--name", "Bench sender (API)", "--system", "other",
              "--api-key", api_key)
    stack.cli("partners", "add", RECEIVER, "--name", "Bench Primero South Sudan",
              "--system", "primero")
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    stack.cli("partners", "connect", RECEIVER, "--base-url", sandbox_url,
              *(arg for key, value in PRIMERO_CREDENTIALS.items()
                for arg in ("--credential", f"{key}={value}")))
    stack.wait_http(sandbox, f"{sandbox_url}/api/v2/primero",
                    auth=(PRIMERO_CREDENTIALS["user"], PRIMERO_CREDENTIALS["password"]))
    api_port = free_port()
    api = stack.start("serve", "serve", env={"CASEBRIDGE_PORT": str(api_port)})
    stack.start("relay", "relay")
    for number in range(1, args.workers + 1):
        stack.start(f"worker-{number}", "worker")
    base_url = f"http://127.0.0.1:{api_port}"
    stack.wait_http(api, f"{base_url}/healthz")
    return base_url, api_key


def wait_consumers(stack: Stack, url: str, workers: int) -> None:
    """Every worker consumes the receiver's queue."""
    deadline = time.monotonic() + START_TIMEOUT
    queue = topology.queue_name("deliver", RECEIVER)
    consumers = 0
    while time.monotonic() < deadline:
        stack.check_alive()
        with suppress(AMQPError, OSError):
            consumers = queue_state(url, queue)[1]
            if consumers >= workers:
                return
        time.sleep(0.25)
    raise BenchError(f"{consumers} of {workers} workers consume {queue} after "
                     f"{START_TIMEOUT:.0f} s:\n" + tail(stack.children[-1].log))


def wait_delivered(stack: Stack, store: Store, ids: list[str], timeout: float) -> None:
    """Every referral of `ids` delivered; BenchError at the first dead letter (nothing may
    be lost) or after `timeout` seconds."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    done = 0
    letters: list[tuple[str, str | None]] = []
    while time.monotonic() < deadline:
        done = len(wanted & store.delivered().keys())
        if done == len(wanted):
            return
        stack.check_alive()
        letters = store.dead_letters()
        if letters:
            break
        time.sleep(POLL_SECONDS)
    why = (f"{len(letters)} dead letter(s), e.g. {Counter(letters).most_common(2)}"
           if letters else f"not in {timeout:.0f} s")
    raise BenchError(f"{done} of {len(wanted)} referrals delivered: {why}\n"
                     f"warnings and errors the processes logged:\n{stack.log_summary()}")


def wait_settled(stack: Stack, store: Store, url: str) -> None:
    """The outbox is empty and no message waits in a partner queue: the stack is idle."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        stack.check_alive()
        if store.unpublished() == 0 and all(queue_state(url, q)[0] == 0
                                            for q in partner_queues()):
            time.sleep(0.5)  # the last messages taken are being acknowledged
            return
        time.sleep(POLL_SECONDS)
    raise BenchError("the stack did not settle after the warm-up")


def check_exactly_once(store: Store, sandbox_db: Path, ids: list[str]) -> None:
    """One case per referral at the receiver, one `delivered` event each, no dead letter."""
    with sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT json_extract(data, '$.casebridge_referral_id') FROM cases")
        cases = Counter(row[0] for row in rows if row[0] is not None)
    missing = [r for r in ids if cases[r] == 0]
    doubled = [r for r in ids if cases[r] > 1]
    strangers = set(cases) - set(ids)
    delivered = store.delivered()
    twice = [r for r in ids if len(delivered.get(r, [])) != 1]
    letters = store.dead_letters()
    problems = []
    if missing:
        problems.append(f"{len(missing)} referrals have no case at the receiver")
    if doubled:
        problems.append(f"{len(doubled)} referrals have more than one case at the receiver")
    if strangers:
        problems.append(f"{len(strangers)} cases at the receiver name unknown referrals")
    if twice:
        problems.append(f"{len(twice)} referrals have not exactly one delivered event")
    if letters:
        problems.append(f"{len(letters)} dead letters, e.g. {letters[:3]}")
    if problems:
        raise BenchError("not delivered exactly once: " + "; ".join(problems))


def seconds_between(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def bench(args: argparse.Namespace, folder: Path) -> Result:
    settings = Settings()  # the workers' prefetch and the queues' arguments, as they read them
    with ExitStack() as cleanup:
        amqp = cleanup.enter_context(broker_vhost())
        database_url = cleanup.enter_context(store_database(args.database, folder))
        pg_database = make_url(database_url).database if args.database == "postgresql" else None
        env = {**os.environ, "CASEBRIDGE_DATABASE_URL": database_url,
               "CASEBRIDGE_AMQP_URL": amqp.url, "CASEBRIDGE_LOG_LEVEL": "warning"}
        stack = Stack(env, folder)
        cleanup.callback(stack.stop)
        base_url, api_key = start_stack(stack, args)
        store = Store(database_url)
        cleanup.callback(store.close)
        wait_consumers(stack, amqp.url, args.workers)

        # Warm-up, not counted: logins, connection pools, mappings, code paths.
        warm = submit(base_url, api_key, args.warmup, args.concurrency) if args.warmup else None
        if warm:
            wait_delivered(stack, store, warm.ids, args.timeout)
        wait_settled(stack, store, amqp.url)
        envelope = store.envelope()
        base = baseline(amqp.url, envelope, args.referrals, args.workers, settings)
        stack.check_alive()

        before = cpu_snapshot(stack, pg_database)
        sent = submit(base_url, api_key, args.referrals, args.concurrency)
        wait_delivered(stack, store, sent.ids, args.timeout)
        after = cpu_snapshot(stack, pg_database)

        created, published, delivered = store.created(), store.published(), store.delivered()
        last = max(delivered[r][0] for r in sent.ids)
        window = last.timestamp() - sent.started
        end_to_end = Run("end-to-end", len(sent.ids), window,
                         [seconds_between(delivered[r][0], created[r]) for r in sent.ids])
        stages = Stages(
            post=sent.latencies, submit_seconds=sent.seconds,
            to_published=[seconds_between(published[r], created[r]) for r in sent.ids],
            to_delivered=[seconds_between(delivered[r][0], published[r]) for r in sent.ids],
            window=window, cpu=cpu_spent(before, after))

        stack.stop()  # nothing may happen at the receiver after this: now count
        every = (warm.ids if warm else []) + sent.ids
        check_exactly_once(store, folder / "sandbox-primero.db", every)
    return Result(args.database, args.workers, end_to_end, base, stages,
                  len(broker.encode(envelope)), len(every), amqp.vhost)


# --- reporting ----------------------------------------------------------------------------


def environment_lines(database: str) -> list[str]:
    """The machine, the broker and the database server the run measured."""
    lines = machine_lines(f"sqlite {sqlite3.sqlite_version}, pika {pika.__version__}, "
                          f"httpx {httpx.__version__}")
    with suppress(AMQPError, OSError):
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        server = connection._impl.server_properties  # noqa: SLF001 (no public accessor)
        connection.close()
        version = server.get("version", b"?")
        lines.append(f"rabbitmq: {version.decode() if isinstance(version, bytes) else version}"
                     f" ({pika.URLParameters(AMQP_URL).host})")
    if database == "postgresql":
        lines.append(postgresql_line())
    return lines


def report(result: Result) -> list[str]:
    e, b, s = result.end_to_end, result.baseline, result.stages
    head = f"{'workload':<37}| {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} | {'count':>6} {'s':>7}"
    lines = table(head, (
        f"{label:<37}| {run.throughput:>8.1f} {run.percentile_ms(50):>8.1f} "
        f"{run.percentile_ms(99):>8.1f} | {run.count:>6} {run.seconds:>7.2f}"
        for label, run in ((f"end-to-end ({result.database}, {result.workers} workers)", e),
                           (f"baseline (confirm+consume+ack, {result.workers}c)", b))))
    lines += [
        "",
        "where a referral's time goes (p50 / p99 ms):",
        f"  POST /v1/referrals, client side     {percentile_ms(s.post, 50):>8.1f} "
        f"{percentile_ms(s.post, 99):>8.1f}   (intake alone: "
        f"{len(s.post) / s.submit_seconds:.1f} referrals/s)",
        f"  created -> published (relay)         {percentile_ms(s.to_published, 50):>8.1f} "
        f"{percentile_ms(s.to_published, 99):>8.1f}",
        f"  published -> delivered (worker)      {percentile_ms(s.to_delivered, 50):>8.1f} "
        f"{percentile_ms(s.to_delivered, 99):>8.1f}   (mostly waiting in the queue "
        "when intake outruns delivery)",
        f"  one worker's wall time per delivery  {result.workers * s.window / e.count * 1000:>8.1f}"
        f"            (workers x window / referrals: each worker busy all along)",
    ]
    window = s.window
    if s.cpu and window > 0:
        lines.append(f"CPU seconds during the measured run ({window:.1f} s wall, "
                     f"{e.count} referrals):")
        for name, spent in sorted(s.cpu.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<24}{spent:>7.1f} s  {spent / window:>5.0%} of one core"
                         f"  {spent / e.count * 1000:>6.1f} ms per referral")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="smoke run: 100 referrals, 10 warm-up")
    parser.add_argument("--referrals", type=int, default=500,
                        help="measured referrals, and baseline messages (default 500)")
    parser.add_argument("--workers", type=int, default=2,
                        help="`casebridge worker` processes, and baseline consumers (default 2)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="threads submitting referrals (default 8)")
    parser.add_argument("--database", choices=DATABASES, default="sqlite",
                        help="the store: a temporary SQLite file (default) or a fresh "
                             "PostgreSQL database")
    parser.add_argument("--warmup", type=int, default=20,
                        help="uncounted referrals delivered first (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for every referral to be delivered (default 300)")
    args = parser.parse_args(argv)
    if args.quick:
        args.referrals, args.warmup = 100, 10
    require_counts(parser, args, ("referrals", "workers", "concurrency"))
    return args


def run(args: argparse.Namespace) -> int:
    """Measure end to end and the baseline, then print the report and the ratio."""
    for line in environment_lines(args.database):
        print(line)
    print(f"parameters: referrals {args.referrals}, warm-up {args.warmup}, workers "
          f"{args.workers}, submitting threads {args.concurrency}, database {args.database}")
    print(f"end-to-end: POST /v1/referrals ({SENDER}) -> relay -> RabbitMQ -> worker -> "
          f"Primero sandbox ({RECEIVER}); latency = delivered.recorded_at - created_at")
    print("baseline: the same number of real deliver envelopes, published one by one with "
          "confirms to a quorum queue, consumed and acked by as many processes as workers")
    print(flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="casebridge-bench-delivery-") as folder:
        allow(Path(folder) / "agreements", SENDER, RECEIVER)
        result = bench(args, Path(folder))
    print(f"{args.database}: done in {time.monotonic() - started:.1f} s, vhost "
          f"{result.vhost}, envelope {result.envelope_bytes} bytes, {result.checked} "
          "referrals checked: one case each at the receiver, one delivered event each, "
          "no dead letter", flush=True)
    print()
    for line in report(result):
        print(line)
    print("\nratio = end-to-end referrals/s / baseline messages/s (publish with confirm + "
          "consume + ack)")
    print(f"ratio: {result.ratio:.3f}")
    return 0


def _broker_failure(error: Exception) -> str:
    return f"RabbitMQ: {type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_to_the_end(
        lambda: run(args), interrupted="processes stopped, vhost deleted, database dropped",
        failures={psycopg.OperationalError: postgresql_failure,
                  AMQPError: _broker_failure, ConnectionError: _broker_failure})


if __name__ == "__main__":
    sys.exit(main())
