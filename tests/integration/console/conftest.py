"""Console fixtures: a gateway serving the console over plain HTTP on 127.0.0.1, one user
of each role, and a failed referral about a fictional child stored straight through the ORM."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from console_testkit import PASSWORD, StoredReferral, store_failed_referral

from gateway.console.users import create_user
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from servers import LiveServer


@pytest.fixture(scope="module")
def console(settings: Settings) -> Iterator[LiveServer]:
    """The gateway with its console; the cookie without Secure, as on http://127.0.0.1."""
    with LiveServer(settings.model_copy(update={"console_secure_cookie": False})) as server:
        yield server


@pytest.fixture(scope="module")
def sessions(settings: Settings) -> Any:
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@dataclass(frozen=True)
class Users:
    operator: str
    im_officer: str
    auditor: str


@pytest.fixture(scope="module")
def users(sessions: Any) -> Users:
    """One user of each role, with names of this module alone (the store is shared)."""
    suffix = uuid.uuid4().hex[:6]
    made = Users(f"olga.{suffix}", f"imre.{suffix}", f"aude.{suffix}")
    with unit_of_work(sessions) as session:
        for name, role in ((made.operator, "operator"), (made.im_officer, "im_officer"),
                           (made.auditor, "auditor")):
            create_user(session=session, username=name, role=role, password=PASSWORD)
    return made


@pytest.fixture
def login(console: LiveServer) -> Iterator[Callable[..., httpx.Client]]:
    """A client logged in as a user (a fresh cookie jar each)."""
    clients: list[httpx.Client] = []

    def make(username: str, password: str = PASSWORD) -> httpx.Client:
        client = httpx.Client(base_url=console.url, timeout=60)  # audit verify walks the chain
        clients.append(client)
        answer = client.post("/console/login", data={"username": username,
                                                     "password": password})
        assert answer.status_code == 303, answer.text
        assert "casebridge_console" in client.cookies
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def failed_referral(sessions: Any, make_referral: Callable[..., dict[str, Any]]
                    ) -> StoredReferral:
    """A failed referral about a fictional child, with its dead letter (see the testkit)."""
    return store_failed_referral(sessions, make_referral)
