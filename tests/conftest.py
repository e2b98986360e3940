"""Fixtures shared by every test: settings, fictional people, databases, a live gateway."""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx._transports.default as httpx_transports
import pytest
from hypothesis_budget import load_profile
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from adapters.http import tls
from fictional import remember
from gateway.console import users
from gateway.partners import register_partner
from gateway.protection import crypto
from gateway.protection.crypto import new_key_line
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from servers import LiveServer, drop_pg_database, fresh_pg_database, fresh_store, rabbitmqctl
from sharing import write_agreement

# One encryption key for this run, in the environment so that every process the tests
# start (gateway, workers, CLI) finds it, as a deployment's processes find theirs.
os.environ.setdefault("CASEBRIDGE_KEYS", new_key_line("test-run"))
load_profile()

# Console users made in this process get scrypt at N=2^10 (1 MiB, a millisecond a check)
# instead of the gateway's 2^15 (32 MiB, 50-100 ms): the suite makes and logs in hundreds.
# A hash records its parameters and is checked with them, so nothing else changes; a test
# of what the gateway stores asks for `real_password_hashing`.
QUICK_SCRYPT_N = 2**10
REAL_SCRYPT_N = users.SCRYPT_N


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "SCRYPT_N", QUICK_SCRYPT_N)
        users._decoy.cache_clear()
        yield
    users._decoy.cache_clear()


@pytest.fixture
def real_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords hashed with the gateway's own scrypt parameters in this test."""
    monkeypatch.setattr(users, "SCRYPT_N", REAL_SCRYPT_N)


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context() -> Iterator[None]:
    """The httpx clients tests make (hundreds) share the gateway's one default TLS context
    (adapters.http.tls) instead of reading the CA bundle again each (20-50 ms of CPU); no
    test speaks TLS, and any other verify or cert still gets a context of its own."""
    make = httpx_transports.create_ssl_context

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is True and cert is None and trust_env:
            return tls()
        return make(verify=verify, cert=cert, trust_env=trust_env)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx_transports, "create_ssl_context", shared)
        yield


@pytest.fixture(autouse=True)
def _keyring_kept() -> Iterator[None]:
    """The process's key ring as each test found it: a test (or a command it runs in this
    process) that puts other keys in use cannot leave them to the next test."""
    before = crypto._ring
    yield
    crypto._ring = before


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    url = fresh_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store's URL, migrated to head: every integration test runs on both databases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'casebridge.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def isolated_database_url(database_url: str, tmp_path_factory: pytest.TempPathFactory
                          ) -> Iterator[str]:
    """A store of the same kind as `database_url`, for this test module alone.

    Tests that run relays and workers use it, so that they never pick up the outbox
    rows and partners of other tests.
    """
    with fresh_store(database_url, tmp_path_factory.mktemp("isolated")) as url:
        yield url


@pytest.fixture
def counted_sessions(isolated_database_url: str
                     ) -> Iterator[tuple[sessionmaker[Session], list[int]]]:
    """Sessions on the module's own store, and the commits made on it, counted by the
    engine (how many transactions a group of writes took)."""
    engine = make_engine(isolated_database_url)
    commits = [0]
    event.listen(engine, "commit", lambda _connection: commits.__setitem__(0, commits[0] + 1))
    yield make_sessionmaker(engine), commits
    engine.dispose()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this test run alone, deleted with all its queues at the end.

    Falls back to the default virtual host where rabbitmqctl cannot be used.
    """
    default = Settings().amqp_url
    vhost = f"casebridge-test-{uuid.uuid4().hex[:8]}"
    if not rabbitmqctl("add_vhost", vhost):
        yield default
        return
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield default.rsplit("/", 1)[0] + "/" + vhost
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def settings(database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Settings:
    return Settings(database_url=database_url, amqp_url=amqp_url, log_json=True,
                    agreements_dir=tmp_path_factory.mktemp("agreements"))


@pytest.fixture(scope="session")
def gateway(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


Partner = tuple[str, str]  # (partner id, api key)


@pytest.fixture
def new_partner(settings: Settings) -> Callable[..., Partner]:
    """Register a partner with a unique id in the store; returns (id, api key).

    The partners one test makes share a data-sharing agreement allowing everything
    (`settings.agreements_dir`), unless made with `agreement=False`.
    """
    sessions = make_sessionmaker(make_engine(settings.database_url))
    agreement_id, parties = f"test-{uuid.uuid4().hex[:12]}", []

    def make(system: str = "primero", *, agreement: bool = True) -> Partner:
        partner_id = f"{system}-{uuid.uuid4().hex[:10]}"
        with unit_of_work(sessions) as session:
            _, key = register_partner(session=session, partner_id=partner_id,
                                      name=f"Test {system}", system=system)
        if agreement:
            parties.append(partner_id)
            if len(parties) > 1:
                write_agreement(settings.agreements_dir, agreement_id, parties)
        return partner_id, key

    return make


@pytest.fixture
def client_for(gateway: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    """An HTTP client authenticated as a partner."""
    clients: list[httpx.Client] = []

    def make(api_key: str) -> httpx.Client:
        client = httpx.Client(base_url=gateway.url, timeout=10,
                              headers={"Authorization": f"Bearer {api_key}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_referral() -> Callable[..., dict[str, Any]]:
    """A valid canonical referral about a fictional child, from `sender` to `receiver`."""

    def make(sender: str, receiver: str, *, kind: str = "referral",
             **changes: Any) -> dict[str, Any]:
        case_number = f"CP-{uuid.uuid4().hex[:6]}"
        remember(case_number)
        document: dict[str, Any] = {
            "kind": kind,
            "sender": {"partner": sender, "unit": "CP unit Juba"},
            "receiver": {"partner": receiver},
            "external_reference": f"REF-{uuid.uuid4().hex[:8]}",
            "subject": {
                "identifiers": [{"system": "primero_case", "value": case_number}],
                "given_name": "Zawadi",
                "family_name": "Fictionalson",
                "birth_date": "2014-03-09",
                "sex": "female",
                "is_minor": True,
            },
            "case": {"reference": "CASE-0001", "module": "child_protection", "risk_level": "high"},
            "source_record": {"type": "bia", "reference": "BIA-2026-0042"},
            "reason": "Needs family tracing after separation at the border.",
            "consent": {
                "given_by": "caregiver",
                "form": "written",
                "date": "2026-11-01",
                "scope": {"purposes": [kind], "receivers": [receiver],
                          "data_categories": ["identity", "demographics", "protection",
                                              "risk", "case-notes"]},
                "child_assent": True,
                "bia_reference": "BIA-2026-0042",
            },
        }
        if kind == "referral":
            document["services"] = [{"type": "family_tracing_reunification", "urgency": "urgent"}]
        else:
            document["transfer"] = {"include_related": ["child_protection"]}
        document.update(changes)
        return document

    return make


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Run `casebridge …` in-process with these CASEBRIDGE_* variables."""
    from typer.testing import CliRunner

    from gateway.cli import app
    from gateway.logs import ensure_logging
    from gateway.settings import get_settings

    # Commands set up logging when nothing has: do it here, on the test run's own output,
    # not on the runner's stream that closes when the command returns.
    ensure_logging(level="info", json=True)

    def invoke(*args: str, **env: str) -> Any:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env={
                f"CASEBRIDGE_{k.upper()}": v for k, v in env.items()})
        finally:
            get_settings.cache_clear()

    return invoke
