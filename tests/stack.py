"""A whole CaseBridge on one machine, for end-to-end tests: sandboxes, API, relay, poller, workers.

Sandboxes and the gateway API are real uvicorn servers on 127.0.0.1. The relay and the
poller run as threads; workers run as threads, or as real `casebridge worker` processes
when a test must kill them.
"""

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.delivery.consumer import run_worker
from gateway.delivery.poller import Poller, run_poller
from gateway.delivery.relay import run_relay
from gateway.directory.registry import DirectoryRegistry
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import (
    DeadLetter,
    Delivery,
    Partner,
    PartnerCursor,
    PartnerRecord,
    Referral,
    StatusEvent,
)
from sandboxes import SANDBOXES
from servers import LiveServer

# Log files of the worker processes stacks started, for the personal-data scan.
LOG_FILES: list[Path] = []
# The queue that copies every broker message of the end-to-end run, for the same scan.
TAP_QUEUE = "casebridge.test-tap"

# What the gateway's adapters log in with at each sandbox (the sandboxes' defaults).
CREDENTIALS = {
    "progres": {"client_id": "casebridge", "client_secret": "sandbox-secret"},
    "primero": {"user": "casebridge", "password": "sandbox-passw0rd"},
    "ndelius": {"client_id": "casebridge", "client_secret": "casebridge-sandbox-secret"},
}


@dataclass
class SandboxSpec:
    partner_id: str
    system: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stack:
    settings: Settings
    folder: Path
    sandboxes: list[SandboxSpec]
    api_partners: list[str] = field(default_factory=list)
    servers: dict[str, LiveServer] = field(default_factory=dict)
    apps: dict[str, Any] = field(default_factory=dict)  # the sandboxes' apps
    keys: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(make_engine(self.settings.database_url))
        self.contracts = Contracts(self.settings.contracts_dir)

    # -- start and stop -------------------------------------------------------------------
    def start(self, *, worker_threads: int = 1) -> "Stack":
        for spec in self.sandboxes:
            module = importlib.import_module(SANDBOXES[spec.system])
            self.apps[spec.partner_id] = module.create_app(
                database=self.folder / f"{spec.partner_id}.db", **spec.options)
            self.servers[spec.partner_id] = LiveServer(self.apps[spec.partner_id]).__enter__()
        with unit_of_work(self.sessions) as session:
            for spec in self.sandboxes:
                partner, self.keys[spec.partner_id] = register_partner(
                    session=session, partner_id=spec.partner_id, name=spec.partner_id,
                    system=spec.system)
                partner.connection = {"base_url": self.servers[spec.partner_id].url,
                                      "credentials": CREDENTIALS[spec.system]}
            for partner_id in self.api_partners:
                _, self.keys[partner_id] = register_partner(
                    session=session, partner_id=partner_id, name=partner_id, system="other")
        self.servers["gateway"] = LiveServer(self.settings).__enter__()
        self.translator = MappingTranslator(self.settings.mappings_dir, contracts=self.contracts)
        self.poller = Poller(sessions=self.sessions, contracts=self.contracts,
                             agreements=AgreementRegistry(self.settings.agreements_dir,
                                                          self.contracts),
                             translator=self.translator,
                             directory=DirectoryRegistry(
                                 self.settings.directory_dir, self.contracts,
                                 calendars_dir=self.settings.calendars_dir))
        self._thread(run_relay, settings=self.settings, sessions=self.sessions)
        self._thread(run_poller, poller=self.poller, interval=self.settings.poll_interval)
        for _ in range(worker_threads):
            self.start_worker_thread()
        return self

    def start_worker_thread(self) -> None:
        self._thread(run_worker, settings=self.settings, sessions=self.sessions,
                     contracts=self.contracts, translator=self.translator)

    def _thread(self, target: Callable[..., None], **kwargs: Any) -> None:
        thread = threading.Thread(target=target, kwargs={**kwargs, "stop": self._stop},
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def start_worker_process(self) -> subprocess.Popen[bytes]:
        """A real `casebridge worker` process on this stack's store and broker."""
        env = {**os.environ, "CASEBRIDGE_DATABASE_URL": self.settings.database_url,
               "CASEBRIDGE_AMQP_URL": self.settings.amqp_url,
               "CASEBRIDGE_RETRY_DELAYS": str(self.settings.retry_delays),
               "CASEBRIDGE_DELIVERY_LIMIT": str(self.settings.delivery_limit),
               "CASEBRIDGE_MAPPINGS_DIR": str(self.settings.mappings_dir),
               "CASEBRIDGE_LOG_LEVEL": "info"}
        log_file = self.folder / f"worker-{len(self._processes) + 1}.log"
        LOG_FILES.append(log_file)
        with log_file.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", "from gateway.cli import app; app()", "worker"],
                env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
        self._processes.append(process)
        return process

    def stop(self) -> None:
        self._stop.set()
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for thread in self._threads:
            thread.join(timeout=15)
        for server in self.servers.values():
            server.__exit__()

    # -- acting as partners and staff ---------------------------------------------------------
    def api(self, partner_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.servers["gateway"].url, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[partner_id]}"})

    def submit(self, partner_id: str, document: dict[str, Any]) -> str:
        with self.api(partner_id) as client:
            answer = client.post("/v1/referrals", json=document,
                                 headers={"Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def sandbox_url(self, partner_id: str) -> str:
        return self.servers[partner_id].url

    def stop_sandbox(self, partner_id: str) -> None:
        """The partner's system goes down: its port refuses every connection."""
        self.servers[partner_id].__exit__()

    def start_sandbox(self, partner_id: str) -> None:
        """The partner's system is back, on the same address, with the same store."""
        port = self.servers[partner_id].port
        self.servers[partner_id] = LiveServer(self.apps[partner_id], port=port).__enter__()

    def set_faults(self, partner_id: str, **faults: Any) -> None:
        httpx.put(f"{self.sandbox_url(partner_id)}/_sandbox/faults", json=faults).raise_for_status()

    # -- looking at the gateway ---------------------------------------------------------------
    def referral(self, referral_id: str) -> Referral:
        with self.sessions() as session:
            referral = session.get(Referral, referral_id)
            assert referral is not None
            _ = referral.events  # load the history before the session closes
            return referral

    def history(self, referral_id: str) -> list[str]:
        return [e.to_state for e in self.referral(referral_id).events]

    def statuses(self, referral_ids: list[str]) -> dict[str, int]:
        with self.sessions() as session:
            rows = session.execute(select(Referral.status, func.count()).where(
                Referral.id.in_(referral_ids)).group_by(Referral.status)).all()
        return {status: count for status, count in rows}

    def dead_letters(self) -> list[DeadLetter]:
        with self.sessions() as session:
            return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))

    def events(self, referral_id: str) -> list[tuple[str, str, bool]]:
        """The history as (state, actor, inferred) triples, oldest first."""
        return [(e.to_state, e.actor, bool((e.content or {}).get("inferred")))
                for e in self.referral(referral_id).events]

    def referral_from(self, partner_id: str, native_id: str) -> str | None:
        """The gateway's id of the referral the poller took from a partner's native record."""
        with self.sessions() as session:
            return session.scalar(select(PartnerRecord.referral_id).where(
                PartnerRecord.partner_id == partner_id, PartnerRecord.native_id == native_id))

    def native_id(self, referral_id: str, partner_id: str) -> str | None:
        """The id of the record the partner holds for a referral (sent or received)."""
        with self.sessions() as session:
            return session.scalar(select(PartnerRecord.native_id).where(
                PartnerRecord.referral_id == referral_id,
                PartnerRecord.partner_id == partner_id))

    def told(self, referral_id: str, partner_id: str) -> list[str]:
        """The states whose status event the worker has set in the partner's system."""
        with self.sessions() as session:
            rows = session.execute(
                select(StatusEvent.to_state).join(
                    Delivery, Delivery.status_event_id == StatusEvent.id).where(
                    Delivery.referral_id == referral_id, Delivery.partner_id == partner_id,
                    Delivery.outcome == "delivered").order_by(StatusEvent.seq)).all()
        return list(dict.fromkeys(row[0] for row in rows))

    def polled_once(self) -> bool:
        """Every sandbox has been polled once: from here on, what staff do is news."""
        with self.sessions() as session:
            cursors = set(session.scalars(select(PartnerCursor.partner_id)))
        return all(spec.partner_id in cursors for spec in self.sandboxes)

    def partner(self, partner_id: str) -> Partner:
        with self.sessions() as session:
            partner = session.get(Partner, partner_id)
            assert partner is not None
            return partner


@contextmanager
def relay_and_worker(settings: Settings, sessions: Any, translator: Any) -> Iterator[None]:
    """A relay and a worker (with the dead-letter consumer) in threads of this process, as
    `casebridge relay` and `casebridge worker` run, until the block ends."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=run_relay, daemon=True, kwargs=dict(
            settings=settings, sessions=sessions, stop=stop)),
        threading.Thread(target=run_worker, daemon=True, kwargs=dict(
            settings=settings, sessions=sessions, contracts=Contracts(settings.contracts_dir),
            translator=translator, stop=stop)),
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


class NoTranslation:
    """For a worker serving API partners only: they need no mapping, so any call here is
    a test failure."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected translation: {name}")


def status_of(sessions: Any, referral_id: str) -> str:
    """The referral's state as the store holds it now."""
    with sessions() as session:
        return str(session.get_one(Referral, referral_id).status)


def wait_for(condition: Callable[[], Any], *, timeout: float = 60.0, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout} s: {what} (last: {last!r})")
