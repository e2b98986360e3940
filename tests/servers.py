"""Real servers for tests: ASGI apps served by uvicorn on 127.0.0.1, fresh PostgreSQL databases."""

import atexit
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.casework import record_status_event
from gateway.contracts import Contracts
from gateway.lifecycle import Actor
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import Referral

PG_ADMIN_URL = os.environ.get("CASEBRIDGE_TEST_PG_ADMIN",
                              "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A real uvicorn serving an app (the gateway by default) on 127.0.0.1 in a thread."""

    def __init__(self, app: "Settings | FastAPI", port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if isinstance(app, Settings):
            app = create_app(app)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                log_level="critical", access_log=False, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class TcpProxy:
    """A TCP relay on 127.0.0.1 in front of a real server (RabbitMQ, say), that a test can
    stop and start again on the same port: to every client an outage of that server, and
    the server's way back, without touching the server other tests share."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()  # each socket is the source of one pump: closed once


def fresh_pg_database(template: str | None = None) -> str:
    """Create an empty PostgreSQL database (a copy of `template`, if named); returns its
    SQLAlchemy URL."""
    name = f"casebridge_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'
                      + (f' TEMPLATE "{template}"' if template else ""))
    server = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{server}/{name}"


# Migrating a store runs every migration (a third of a second and more of CPU, and the
# suite makes a hundred stores): each process migrates one store of each kind once and
# copies it for every fresh store after that.
_templates: dict[str, str] = {}
_templates_lock = threading.RLock()


def _migrated_template(kind: str) -> str:
    """A store of `kind` ("sqlite": its file; "postgresql": its database name) migrated to
    head, made on first use and kept until the process ends."""
    with _templates_lock:
        if kind not in _templates:
            if kind == "sqlite":
                path = Path(tempfile.mkdtemp(prefix="casebridge-template-")) / "template.db"
                upgrade(f"sqlite:///{path}")
                atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
                _templates[kind] = str(path)
            else:
                url = fresh_pg_database()
                upgrade(url)
                atexit.register(drop_pg_database, url)
                _templates[kind] = url.rsplit("/", 1)[1]
        return _templates[kind]


@contextmanager
def fresh_store(kind_of: str, folder: Path) -> Iterator[str]:
    """An empty store, migrated, of the same kind as the URL `kind_of` (SQLite in `folder`,
    or a new PostgreSQL database, dropped afterwards): a copy of the process's migrated one."""
    if kind_of.startswith("sqlite"):
        path = folder / "casebridge.db"
        folder.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(_migrated_template("sqlite"))) as template, \
                closing(sqlite3.connect(path)) as store:
            template.backup(store)
        yield f"sqlite:///{path}"
        return
    with _templates_lock:  # a template database is copied only while nobody is connected
        url = fresh_pg_database(template=_migrated_template("postgresql"))
    try:
        yield url
    finally:
        drop_pg_database(url)


def rabbitmqctl(*args: str) -> bool:
    """Run rabbitmqctl quietly; False where it is missing or fails (not root, say)."""
    ctl = shutil.which("rabbitmqctl")
    return ctl is not None and subprocess.run(
        [ctl, "-q", *args], capture_output=True, timeout=180).returncode == 0


def vhost_of(amqp_url: str) -> str:
    return unquote(urlparse(amqp_url).path.lstrip("/")) or "/"


def drop_pg_database(url: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# -- checking answers ---------------------------------------------------------------
PROBLEM = "application/problem+json"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def pointers(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["pointer"], e["rule"]) for e in body["errors"]}


# -- acting as the gateway -----------------------------------------------------------------
def gateway_marks_delivered(settings, referral_id: str) -> None:
    """What the delivery worker does once the receiver stored the referral."""
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with unit_of_work(sessions) as session:
        referral = session.get(Referral, referral_id)
        record_status_event(session=session, contracts=Contracts(settings.contracts_dir),
                            referral=referral, actor=Actor.GATEWAY, actor_partner=None,
                            document={"status": "delivered"})
