"""End-to-end fixtures: a whole stack per test, on a store of its own."""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest

from gateway import ROOT
from gateway.logs import configure_logging
from gateway.settings import Settings
from gateway.store.db import upgrade
from servers import drop_pg_database, fresh_pg_database, rabbitmqctl, vhost_of
from sharing import write_agreement
from stack import TAP_QUEUE, SandboxSpec, Stack


@pytest.fixture(scope="session", params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """End-to-end stacks make their own store (`make_stack(database=…)`): SQLite by default."""
    return "unused"


@pytest.fixture(scope="session", autouse=True)
def personal_data_watch(amqp_url: str, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[Path]:
    """Every log line of the end-to-end run goes to one file, and RabbitMQ's firehose
    copies every message published (deliveries, retries, dead letters) to a tap queue,
    for test_zz_no_personal_data to scan after every other end-to-end test has run.

    The firehose (`rabbitmqctl trace_on`) copies without changing routing: a queue bound
    to the gateway's own exchange would make unroutable messages routable."""
    log_file = tmp_path_factory.mktemp("logs") / "e2e.log"
    vhost = vhost_of(amqp_url)
    tracing = rabbitmqctl("trace_on", "-p", vhost)
    with log_file.open("a", buffering=1) as stream:
        configure_logging(level="debug", json=True, stream=stream)
        if tracing:
            with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
                channel = connection.channel()
                # Quorum: its copies outlive the broker restart one test makes.
                channel.queue_declare(TAP_QUEUE, durable=True,
                                      arguments={"x-queue-type": "quorum"})
                channel.queue_bind(TAP_QUEUE, "amq.rabbitmq.trace", routing_key="publish.#")
        yield log_file
        configure_logging(level="info", json=True)
    if tracing:
        rabbitmqctl("trace_off", "-p", vhost)



@pytest.fixture
def make_stack(tmp_path, amqp_url) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    databases: list[str] = []

    def make(sandboxes: list[SandboxSpec], api_partners: list[str] = (), *,
             worker_threads: int = 1, database: str = "sqlite", **settings: object) -> Stack:
        if database == "postgresql":
            url = fresh_pg_database()
            databases.append(url)
        else:
            url = f"sqlite:///{tmp_path / 'gateway.db'}"
        upgrade(url)
        agreements = tmp_path / "agreements"
        shutil.copytree(ROOT / "agreements", agreements, dirs_exist_ok=True)
        if api_partners:
            write_agreement(agreements, "test-e2e-api-partners",
                            [*api_partners, *(s.partner_id for s in sandboxes)])
        base = Settings(database_url=url, amqp_url=amqp_url, retry_delays=[1, 2, 4],
                        delivery_limit=5, poll_interval=0.5, relay_interval=0.1,
                        log_level="warning", agreements_dir=agreements)
        stack = Stack(settings=base.model_copy(update=settings), folder=tmp_path,
                      sandboxes=sandboxes, api_partners=list(api_partners))
        stacks.append(stack)
        return stack.start(worker_threads=worker_threads)

    yield make
    for stack in stacks:
        stack.stop()
        stack.sessions.kw["bind"].dispose()
    for url in databases:
        drop_pg_database(url)
