"""Nothing lost, nothing duplicated: partner faults, killed workers, a broker restart.

Each test ends with the accounting the issue asks for: every referral sent is either
delivered or dead-lettered, and the receiver holds exactly one record per referral.
"""

import os
import random
import shutil
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from gateway import ROOT
from gateway.delivery.dead_letters import find, redrive
from gateway.store.db import unit_of_work
from gateway.store.models import Delivery
from servers import rabbitmqctl, vhost_of
from stack import SandboxSpec, Stack, wait_for

RECEIVER, SENDER = "primero-ssd", "sender-api"
# Faults hit each HTTP request, and one delivery to Primero takes 3–4 requests, so at a 30%
# request fault rate about 70% of delivery attempts fail: the ladder needs many rungs.
LONG_LADDER = [1] * 8 + [2] * 8 + [3] * 8


def receiver_records(stack: Stack) -> Counter[str]:
    """Cases per CaseBridge referral id, read from the receiving sandbox's own store."""
    with sqlite3.connect(stack.folder / f"{RECEIVER}.db") as db:
        rows = db.execute("SELECT json_extract(data, '$.casebridge_referral_id') FROM cases "
                          "WHERE json_extract(data, '$.casebridge_referral_id') IS NOT NULL")
        return Counter(row[0] for row in rows)


def account(stack: Stack, sent: list[str]) -> None:
    """sent = delivered + dead-lettered, and one receiver record per delivered referral."""
    statuses = stack.statuses(sent)
    dead = {d.referral_id for d in stack.dead_letters() if d.referral_id in set(sent)}
    delivered = statuses.get("delivered", 0)
    letters = [(d.reason, d.detail) for d in stack.dead_letters()]
    assert delivered + len(dead) == len(sent), (statuses, letters)
    records = receiver_records(stack)
    assert all(records[r] <= 1 for r in sent), "a referral stored twice"
    assert all(records[r] == 1 for r in sent if r not in dead), "a delivered referral is missing"
    print(f"accounting: sent {len(sent)} = delivered {delivered} + dead-lettered {len(dead)}; "
          f"receiver records {sum(records.values())} for {len(records)} distinct referrals")


def submit_many(stack: Stack, count: int, make_referral) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: stack.submit(SENDER, make_referral(SENDER, RECEIVER)),
                             range(count)))


@pytest.mark.timeout(900)
def test_a_thousand_referrals_reach_a_receiver_failing_thirty_percent(
    make_stack, make_referral
) -> None:
    count = int(os.environ.get("CASEBRIDGE_FAULT_REFERRALS", "1000"))
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], worker_threads=0,
                       retry_delays=LONG_LADDER)
    stack.set_faults(RECEIVER, failure_rate=0.1, drop_rate=0.05, lost_response_rate=0.05,
                     throttle_rate=0.1, retry_after=1, seed=11)
    for _ in range(2):
        stack.start_worker_process()
    sent = submit_many(stack, count, make_referral)
    settled = lambda: sum(stack.statuses(sent).get(s, 0) for s in ("delivered", "failed"))  # noqa: E731
    wait_for(lambda: settled() == count, timeout=600, what=f"{count} referrals settled")
    account(stack, sent)
    # Whatever died of bad luck on the ladder, an operator re-drives; the receiver may hold
    # it already (its answer was lost), and the idempotent create finds it there.
    dead = [d for d in stack.dead_letters() if d.redriven_at is None]
    with unit_of_work(stack.sessions) as session:
        redrive(session=session, contracts=stack.contracts, actor="test",
                letters=find(session=session, ids=[d.id for d in dead]))
    wait_for(lambda: stack.statuses(sent) == {"delivered": count}, timeout=300,
             what="re-driven referrals delivered")
    stack.set_faults(RECEIVER)
    records = receiver_records(stack)
    assert [records[r] for r in sent] == [1] * count, "a referral stored twice or not at all"
    print(f"after re-driving {len(dead)} dead letters: {count} delivered, "
          f"{sum(records[r] for r in sent)} receiver records")


def test_delivery_on_postgresql_through_the_mappings_and_adapters(
    make_stack, make_referral
) -> None:
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], database="postgresql",
                       retry_delays=LONG_LADDER)
    stack.set_faults(RECEIVER, failure_rate=0.1, lost_response_rate=0.1, throttle_rate=0.1,
                     retry_after=1, seed=3)
    sent = submit_many(stack, 40, make_referral)
    wait_for(lambda: stack.statuses(sent).get("delivered", 0) == len(sent), timeout=180,
             what="40 referrals delivered on PostgreSQL")
    account(stack, sent)
    with stack.sessions() as session:
        hashes = set(session.scalars(select(Delivery.mapping_hash).where(
            Delivery.referral_id.in_(sent), Delivery.outcome == "delivered")))
    assert len(hashes) == 1 and next(iter(hashes)).startswith("sha256:")


@pytest.mark.timeout(600)
def test_workers_killed_at_random_moments_lose_and_duplicate_nothing(
    make_stack, make_referral
) -> None:
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], worker_threads=0,
                       retry_delays=LONG_LADDER, delivery_limit=20)
    stack.set_faults(RECEIVER, latency_ms=30)  # deliveries take long enough to be cut short
    workers = [stack.start_worker_process() for _ in range(2)]
    sent = submit_many(stack, 300, make_referral)
    rng, kills = random.Random(5), 0
    # A worker process needs a second or two to start consuming; kill after that, while it
    # is in the middle of deliveries.
    while stack.statuses(sent).get("delivered", 0) < len(sent) and kills < 8:
        time.sleep(rng.uniform(2.0, 4.0))
        victim = workers.pop(rng.randrange(len(workers)))
        victim.kill()  # SIGKILL: no clean-up, no ack
        victim.wait()
        kills += 1
        workers.append(stack.start_worker_process())
    assert kills >= 3
    wait_for(lambda: stack.statuses(sent).get("delivered", 0) == len(sent), timeout=150,
             what="every referral delivered after the last kill")
    account(stack, sent)
    print(f"workers killed with SIGKILL: {kills}")


@pytest.mark.broker_restart
@pytest.mark.skipif(os.geteuid() != 0, reason="stopping the broker needs rabbitmqctl as root")
def test_a_broker_restart_during_delivery_loses_nothing(make_stack, make_referral) -> None:
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], worker_threads=1)
    stack.set_faults(RECEIVER, latency_ms=20)
    first = submit_many(stack, 60, make_referral)
    wait_for(lambda: stack.statuses(first).get("delivered", 0) >= 5, what="delivery under way")
    assert rabbitmqctl("stop_app")
    try:
        # The API still takes referrals: they wait in the outbox while the broker is away.
        second = submit_many(stack, 40, make_referral)
        time.sleep(3)
    finally:
        assert rabbitmqctl("start_app")
        rabbitmqctl("trace_on", "-p", vhost_of(stack.settings.amqp_url))  # for the PII scan
    sent = first + second
    wait_for(lambda: stack.statuses(sent).get("delivered", 0) == len(sent), timeout=180,
             what="relay and worker reconnected by themselves and delivered everything")
    account(stack, sent)


def test_an_unmappable_record_is_dead_lettered_and_redriven_once_the_mapping_is_fixed(
    make_stack, make_referral, tmp_path
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER], mappings_dir=mappings)
    document = make_referral(SENDER, RECEIVER)
    document["case"]["module"] = "protection"  # Primero has no module for it yet
    referral_id = stack.submit(SENDER, document)
    wait_for(lambda: stack.referral(referral_id).status == "failed", what="dead-lettered")
    [letter] = [d for d in stack.dead_letters() if d.referral_id == referral_id]
    assert letter.reason == "mapping_error"
    assert "referral-to-case.out.yaml" in letter.detail and "module" in letter.detail
    assert "Zawadi" not in letter.detail and "2014-03-09" not in letter.detail
    assert receiver_records(stack)[referral_id] == 0

    # The IM officer maps general protection cases to Primero's child-protection module.
    for name in ("module", "intake-user"):
        path = mappings / "primero" / "codes" / f"{name}.yaml"
        native = "primeromodule-cp" if name == "module" else "cp_manager"
        text = path.read_text().replace("unmapped: [protection, rsd, probation]",
                                        "unmapped: [rsd, probation]")
        text = text.replace("codes:\n", f"codes:\n  - {{native: {native}, canonical: protection, "
                                        "only: outbound}\n", 1)
        path.write_text(text)
    time.sleep(6)  # the running worker reloads changed mapping files every 5 s
    with unit_of_work(stack.sessions) as session:
        assert redrive(session=session, contracts=stack.contracts, actor="im-officer",
                       letters=find(session=session, ids=[letter.id])) == [letter.id]
    wait_for(lambda: stack.referral(referral_id).status == "delivered", what="re-driven")
    assert stack.history(referral_id) == ["submitted", "failed", "submitted", "delivered"]
    assert receiver_records(stack)[referral_id] == 1
