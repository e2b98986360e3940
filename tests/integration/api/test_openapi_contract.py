"""The API is its OpenAPI: schemathesis checks every operation of /openapi.json against the
live gateway, with every check on, through all its phases (the contract examples, boundary
values, fuzzing, then the stateful phase following links between operations), with a fixed
seed and a small example count so that it stays short. bench/api_fuzz.py runs it longer.

schemathesis' own pytest plugin (`@schema.parametrize`) cannot run under pytest 9.2 (it
renames test nodes through an attribute pytest dropped), so the test drives the engine
behind `st run` and fails with each failure's description and the curl that reproduces it.

It runs on PostgreSQL alone, to stay short: what the document promises does not depend on
the store, and PostgreSQL is the store that refuses more (NUL characters, integers out of
range). bench/api_fuzz.py runs on both.
"""

from collections.abc import Iterator

import pytest
from contract_fuzz import Target, gateway_under_test, run

from gateway.settings import Settings
from gateway.store.db import upgrade

EXAMPLES = 4  # per operation and phase: enough to catch a lie, short enough for make test
SEED = 202612


@pytest.fixture(scope="module")
def target(pg_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    upgrade(pg_url)
    folder = tmp_path_factory.mktemp("contract")
    settings = Settings(database_url=pg_url, amqp_url=amqp_url, agreements_dir=folder)
    with gateway_under_test(settings, folder) as target:
        yield target


def test_every_operation_answers_as_the_openapi_document_says(target: Target) -> None:
    outcome = run(target, max_examples=EXAMPLES, seed=SEED)
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, "\n\n".join(map(str, outcome.failures))
    assert outcome.stop_reason == "completed"
    # Every phase ran, over every documented operation, and the stateful phase went deep.
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(outcome.scenarios), outcome
    assert len(outcome.operations) >= 12 and outcome.requests > 500, outcome
