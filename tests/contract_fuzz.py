"""Property-based checks of the gateway against its own OpenAPI document (schemathesis).

What `tests/integration/api/test_openapi_contract.py` runs briefly in `make test` and
`bench/api_fuzz.py` runs longer: a gateway of its own on 127.0.0.1 whose store knows the
partners the contract examples name (each pair under a data-sharing agreement), so that
the examples are accepted and the stateful phase follows real referrals; credentials
chosen per request as a partner system would; and one check of our own beside
schemathesis' built-in ones.
"""

from __future__ import annotations

import itertools
import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.engine import events, from_schema

from gateway import ROOT
from gateway.partners import KEY_PREFIX, hash_api_key, register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import Partner
from servers import LiveServer
from sharing import write_agreement

CONFIG = ROOT / "schemathesis.toml"
OPERATOR_KEY = "operator-key-of-the-contract-run"
# Every JSON Schema keyword the contracts use: a 422 to a request the schema allows must
# name a rule of the gateway instead (consent, agreement, known partner, not-future…).
SCHEMA_RULES = frozenset({
    "type", "enum", "const", "required", "additionalProperties", "pattern", "format",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "minProperties", "maxProperties", "not", "anyOf", "oneOf", "allOf", "if", "then",
    "dependentRequired", "contains", "propertyNames", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "items", "prefixItems", "unevaluatedProperties",
})


def example_partners() -> list[str]:
    """The partners the valid referral examples name, senders and receivers."""
    named: set[str] = set()
    for path in (ROOT / "contracts" / "examples" / "referral").glob("valid-*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        named |= {document["sender"]["partner"], document["receiver"]["partner"]}
    return sorted(named)


@dataclass(frozen=True)
class Target:
    """A gateway to check, and the API key of each partner its store knows."""

    url: str
    keys: dict[str, str]
    default_partner: str

    @property
    def openapi_url(self) -> str:
        return f"{self.url}/openapi.json"


@contextmanager
def gateway_under_test(settings: Settings, folder: Path) -> Iterator[Target]:
    """A gateway on `settings`' store with the example partners, a partner of its own
    (whose key is used unless the body names another sender) and the operations API on."""
    sessions = make_sessionmaker(make_engine(settings.database_url))
    default = f"fuzz-{uuid.uuid4().hex[:8]}"
    keys: dict[str, str] = {}
    with unit_of_work(sessions) as session:
        for partner_id in [*example_partners(), default]:
            keys[partner_id] = key = KEY_PREFIX + secrets.token_urlsafe(32)
            partner = session.get(Partner, partner_id)
            if partner is None:
                register_partner(session=session, partner_id=partner_id, name=partner_id,
                                 system="other", api_key=key)
            else:  # made by an earlier run on this store: its key is lost, give a new one
                partner.api_key_hash = hash_api_key(key)
    agreements = folder / "agreements"
    for first, second in itertools.combinations(sorted(keys), 2):
        write_agreement(agreements, f"fuzz-{first}-{second}", [first, second])
    checked = settings.model_copy(update={"operator_key": OPERATOR_KEY,
                                          "agreements_dir": agreements})
    with LiveServer(checked) as server:
        yield Target(server.url, keys, default)


class GatewayAuth:
    """Credentials as the caller would send them: the operator key on /v1/ops/, else the
    key of the partner the body names as sender (if the store knows it), else the run's
    own partner's. schemathesis removes or spoils them to check they are enforced."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def get(self, case: Case, _: Any) -> str:
        if case.path.startswith("/v1/ops/"):
            return OPERATOR_KEY
        sender = case.body.get("sender") if isinstance(case.body, dict) else None
        named = sender.get("partner") if isinstance(sender, dict) else None
        return self.target.keys.get(named) if isinstance(named, str) and named in \
            self.target.keys else self.target.keys[self.target.default_partner]

    def set(self, case: Case, data: str, _: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


_KEYS = itertools.count(1)


def as_a_partner_sends_it(case: Case, target: Target) -> Case:
    """A generated referral as a partner system sends one: with an Idempotency-Key of its
    own (schemathesis repeats one value, and a key reused with another body is refused 409
    before the body is even read), and, when valid, between partners the store knows, so
    that it goes past the sender check into the consent gate, the agreement and the store.
    What is invalid stays exactly as invalid as it was made."""
    if case.operation.label != "POST /v1/referrals":
        return case
    headers = case.headers or {}
    name = next((h for h in headers if h.lower() == "idempotency-key"), None)
    if name is not None and isinstance(headers[name], str) and 1 <= len(headers[name]) <= 200:
        headers[name] = f"fuzz-{next(_KEYS)}"
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive \
            or not isinstance(body, dict):
        return case
    sender, receiver, consent = (body.get(k) for k in ("sender", "receiver", "consent"))
    if not (isinstance(sender, dict) and isinstance(receiver, dict)):
        return case
    if sender.get("partner") not in target.keys:
        sender["partner"] = target.default_partner
    if receiver.get("partner") not in target.keys or receiver["partner"] == sender["partner"]:
        receiver["partner"] = next(p for p in sorted(target.keys) if p != sender["partner"])
        scope = consent.get("scope") if isinstance(consent, dict) else None
        if isinstance(scope, dict) and isinstance(scope.get("receivers"), list):
            scope["receivers"] = [receiver["partner"]]
    return case


@dataclass(frozen=True)
class Found:
    """One failure: what broke, where, and the request that shows it."""

    operation: str
    check: str
    message: str
    curl: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.check}\n{self.message}\n{self.curl}"


@dataclass
class Outcome:
    """What a run did and found."""

    seconds: float = 0.0
    requests: int = 0
    statuses: list[int] = field(default_factory=list)  # of every answer
    scenarios: dict[str, int] = field(default_factory=dict)  # by phase
    operations: set[str] = field(default_factory=set)
    failures: list[Found] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""


def run(target: Target, *, max_examples: int, seed: int) -> Outcome:
    """Every phase (examples, coverage, fuzzing, stateful) and every check of schemathesis
    against `target`, as `st run --checks all` would, with our config, auth and check."""
    config = schemathesis.Config.from_path(CONFIG)
    config.update(seed=seed, max_failures=None)
    config.projects.override.generation.update(max_examples=max_examples, deterministic=True,
                                               database="none")
    schema = schemathesis.openapi.from_url(target.openapi_url, config=config)
    schema.auth.providers.append(GatewayAuth(target))
    schema.hook("map_case")(lambda _, case: as_a_partner_sends_it(case, target))
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.scenarios[str(event.phase)] = outcome.scenarios.get(str(event.phase), 0) + 1
            interactions = event.recorder.interactions.values()
            outcome.requests += len(interactions)
            outcome.statuses.extend(i.response.status_code for i in interactions
                                    if i.response is not None)
            outcome.operations.add(event.recorder.label)
            outcome.failures.extend(_found(event.recorder))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(f"{getattr(event, 'label', '')}: {event.info.format()}"
                                  if isinstance(event, events.NonFatalError)
                                  else repr(event.exception))
        elif isinstance(event, events.EngineFinished):
            outcome.seconds = event.running_time
            outcome.stop_reason = str(event.stop_reason)
    return outcome


def _found(recorder: Any) -> Iterator[Found]:
    seen: set[tuple[str, str]] = set()
    for checks in recorder.checks.values():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            failure = info.failure
            key = (failure.operation or recorder.label, failure.title)
            if key not in seen:
                seen.add(key)
                yield Found(key[0], f"{check.name}: {failure.title}", failure.message,
                            info.code_sample)


@schemathesis.check
def refusals_of_valid_requests_name_gateway_rules(ctx: Any, response: Any, case: Case
                                                  ) -> bool | None:
    """A 422 to a request generated from the schema names only rules beyond the schema
    (consent, agreement, known partners, dates); the operations schemathesis.toml lets
    answer 422 to valid data are still held to that."""
    meta = case.meta
    if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return None
    try:
        errors = json.loads(response.content).get("errors") or []
    except ValueError:
        return None
    broken = sorted({e.get("rule") for e in errors if e.get("rule") in SCHEMA_RULES})
    assert not broken, (
        f"the request satisfies the documented schema, yet the 422 names its rules {broken}: "
        "the OpenAPI document and the gateway disagree")
    return None
