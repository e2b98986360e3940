"""Group commit (gateway/store/group_commit.py) on SQLite and PostgreSQL: works waiting at
the same moment share one transaction; each caller gets its own result or error; one
failing work takes nothing of the others with it."""

import asyncio
import contextvars
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from gateway.casework import Submitted, submit_referral
from gateway.contracts import Contracts
from gateway.errors import ConsentProblem, IdempotencyConflict, NotFound
from gateway.partners import register_partner
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import after_commit, insert_now
from gateway.store.group_commit import GROUPED, GroupCommit, once_per_group, write_together
from gateway.store.models import (
    AuditEntry,
    AuditHead,
    Partner,
    Referral,
    StatusEvent,
    new_id,
    utcnow,
)
from sharing import write_agreement

caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


def register(partner_id: str) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        register_partner(session=session, partner_id=partner_id, name=partner_id,
                         system="other")
        return f"{partner_id} by {caller.get()} grouped={bool(session.info.get(GROUPED))}"
    return work


def refuses(session: Session) -> None:
    raise NotFound("nothing of the kind")  # a problem: raised before any write


def stored(sessions: sessionmaker[Session], prefix: str) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Partner.id).where(Partner.id.like(f"{prefix}%"))))


async def held_then(writes: GroupCommit, works: list[Callable[[Session], Any]],
                    prefix: str) -> tuple[Any, list[Any]]:
    """A first work that waits until `works` are all queued behind it, so that they make
    the next group together; what the first gave, and what each of `works` gave."""
    queued = threading.Event()

    def first(session: Session) -> str:
        assert queued.wait(10)
        return register(f"{prefix}first")(session)

    async def as_caller(name: str, work: Callable[[Session], Any]) -> Any:
        caller.set(name)
        return await writes.run(work)

    head = asyncio.ensure_future(as_caller("caller-0", first))
    await asyncio.sleep(0.05)  # the first group (the first work alone) is being written
    rest = [asyncio.ensure_future(as_caller(f"caller-{n}", work))
            for n, work in enumerate(works, 1)]
    await asyncio.sleep(0.05)
    queued.set()
    return await head, await asyncio.gather(*rest, return_exceptions=True)


def test_works_waiting_together_share_one_transaction_and_keep_their_callers(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, commits = counted_sessions
    before = commits[0]
    writes = GroupCommit(factory, turns=1)
    first, rest = asyncio.run(held_then(writes, [register(f"gc-{n}") for n in range(3)], "gc-"))
    assert first == "gc-first by caller-0 grouped=True"  # alone: a group of one
    assert rest == [f"gc-{n} by caller-{n + 1} grouped=True" for n in range(3)]
    assert commits[0] - before == 2
    assert stored(factory, "gc-") == {"gc-first", "gc-0", "gc-1", "gc-2"}


def test_a_failing_work_takes_nothing_of_the_others_with_it(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions

    def breaks(session: Session) -> None:
        register("gf-broken")(session)  # written, then the work fails: must not be kept
        raise RuntimeError("a bug in a work")

    writes = GroupCommit(factory, turns=1)
    _, rest = asyncio.run(held_then(writes, [register("gf-0"), breaks, refuses,
                                             register("gf-1")], "gf-"))
    assert rest[0] == "gf-0 by caller-1 grouped=False"  # run again alone after the split
    assert isinstance(rest[1], RuntimeError) and str(rest[1]) == "a bug in a work"
    assert isinstance(rest[2], NotFound)
    assert rest[3] == "gf-1 by caller-4 grouped=False"
    assert stored(factory, "gf-") == {"gf-first", "gf-0", "gf-1"}


def test_a_lone_work_is_a_group_of_one_and_failing_runs_again_on_its_own(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, commits = counted_sessions
    runs: list[bool] = []

    def fails_grouped(session: Session) -> str:
        runs.append(bool(session.info.get(GROUPED)))
        if session.info.get(GROUPED):
            register("gl-rolled-back")(session)
            raise RuntimeError("a duplicate key, say")
        return register("gl-alone")(session)

    before = commits[0]
    assert write_together(factory, [(contextvars.copy_context(), register("gl-0"))]) == [
        (True, "gl-0 by nobody grouped=True")]
    assert write_together(factory, [(contextvars.copy_context(), fails_grouped)]) == [
        (True, "gl-alone by nobody grouped=False")]
    assert runs == [True, False] and commits[0] - before == 2
    assert stored(factory, "gl-") == {"gl-0", "gl-alone"}


def test_a_problem_goes_to_its_caller_alone_and_the_group_commits(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions
    writes = GroupCommit(factory, turns=1)
    _, rest = asyncio.run(held_then(writes, [register("gp-0"), refuses, register("gp-1")],
                                       "gp-"))
    assert rest[0] == "gp-0 by caller-1 grouped=True"
    assert isinstance(rest[1], NotFound)
    assert rest[2] == "gp-1 by caller-3 grouped=True"
    assert stored(factory, "gp-") == {"gp-first", "gp-0", "gp-1"}


def test_a_caller_that_goes_away_leaves_its_work_written(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions
    writes = GroupCommit(factory, turns=1)
    started = threading.Event()
    finish = threading.Event()

    def slow(session: Session) -> str:
        started.set()
        assert finish.wait(10)
        return register("gw-kept")(session)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(writes.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        waiting.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await waiting
        finish.set()
        while not stored(factory, "gw-"):
            await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(scenario(), 20))
    assert stored(factory, "gw-") == {"gw-kept"}


def test_once_per_group_reads_once_in_a_group_and_each_time_outside(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        return len(reads)

    with factory() as session:
        assert [once_per_group(session, "k", read) for _ in range(3)] == [1, 2, 3]
    with factory() as session:
        session.info[GROUPED] = True
        assert [once_per_group(session, "k", read) for _ in range(3)] == [4, 4, 4]
        assert once_per_group(session, "other", read) == 5


def test_a_groups_audit_entries_chain_on_from_the_head_and_leave_it_at_the_last(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions
    with factory() as session:
        before = session.execute(select(AuditHead.seq, AuditHead.hash)).one()

    def audited(n: int) -> Callable[[Session], AuditEntry]:
        def work(session: Session) -> AuditEntry:
            entry = audit.record(session, actor="system:test", action="keys.rotate",
                                 detail={"n": n})
            assert entry.seq is None  # numbered and chained just before the group commits
            return entry
        return work

    writes = GroupCommit(factory, turns=1)
    _, entries = asyncio.run(held_then(writes, [audited(1), refuses, audited(2),
                                                audited(3)], "ga-"))
    assert isinstance(entries.pop(1), NotFound)
    # a partner registered first (no entry), then three entries numbered on from the head
    assert [(e.seq, e.detail) for e in entries] == [
        (before.seq + 1, {"n": 1}), (before.seq + 2, {"n": 2}), (before.seq + 3, {"n": 3})]
    with factory() as session:
        head = session.execute(select(AuditHead.seq, AuditHead.hash)).one()
        assert head.seq == before.seq + 3
        assert head.hash == session.scalar(select(AuditEntry.hash).where(
            AuditEntry.seq == head.seq))
        assert audit.verify(session).ok
    # and a transaction of its own afterwards goes on from the head the group wrote
    with factory() as session:
        assert audit.record(session, actor="system:test", action="keys.rotate").seq == (
            before.seq + 4)
        session.commit()
        assert audit.verify(session).ok


def test_a_groups_rows_wait_for_its_commit_and_a_duplicate_splits_it(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, commits = counted_sessions
    with factory() as session:
        for partner in ("gr-a", "gr-b"):
            register_partner(session=session, partner_id=partner, name=partner, system="other")
        session.commit()
    now = utcnow()
    first_id = new_id()

    def submits(referral_id: str) -> Callable[[Session], int]:
        def work(session: Session) -> int:
            referral = Referral(
                id=referral_id, kind="referral", sender_id="gr-a", receiver_id="gr-b",
                status="submitted", correlation_id="corr-group", request_hash="0" * 64,
                idempotency_key=new_id(), content={"subject": {"given_name": "Zawadi"}},
                created_at=now, updated_at=now)
            insert_now(session, referral)
            insert_now(session, StatusEvent(id=new_id(), referral_id=referral_id, seq=1,
                                            to_state="submitted", actor="sender",
                                            occurred_at=now, recorded_at=now))
            return session.scalar(select(func.count()).select_from(Referral).where(
                Referral.sender_id == "gr-a")) or 0
        return work

    writes = GroupCommit(factory, turns=1)
    before = commits[0]
    _, seen = asyncio.run(held_then(writes, [submits(first_id), submits(new_id())], "gr-"))
    assert seen == [0, 0]  # in the group, not yet written
    assert commits[0] - before == 2  # the first work alone, then the group of two
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.sender_id == "gr-a")) == 2
        assert session.scalar(select(func.count()).select_from(StatusEvent).join(Referral)
                              .where(Referral.sender_id == "gr-a")) == 2
    # the same referral twice in one group: the group is split, the second fails alone
    again = new_id()
    _, outcomes = asyncio.run(held_then(writes, [submits(again), submits(first_id)], "gs-"))
    assert outcomes[0] == 3  # written alone after the split: it sees itself
    assert isinstance(outcomes[1], IntegrityError)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.sender_id == "gr-a")) == 3


def test_a_repeat_in_a_group_gets_its_first_answer_even_refused_meanwhile(
        counted_sessions: tuple[sessionmaker[Session], list[int]], settings: Settings,
        make_referral: Callable[..., dict[str, Any]]) -> None:
    """In a group, intake does not look for a repeated Idempotency-Key first: the store
    finds it (the group splits), or a refusal on the repeat's way looks for it then."""
    factory, _ = counted_sessions
    sender, receiver = (f"gk-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with factory() as session:
        for partner in (sender, receiver):
            register_partner(session=session, partner_id=partner, name=partner, system="other")
        session.commit()
    folder = settings.agreements_dir
    agreement = write_agreement(folder, f"gk-{uuid.uuid4().hex[:8]}", [sender, receiver])
    contracts = Contracts(settings.contracts_dir)
    agreements = AgreementRegistry(folder, contracts)
    documents = {key: make_referral(sender, receiver) for key in ("first", "second", "new")}

    def submits(key: str, document: dict[str, Any]) -> Callable[[Session], Submitted]:
        def work(session: Session) -> Submitted:
            return submit_referral(
                session=session, contracts=contracts, agreements=agreements,
                sender=session.get_one(Partner, sender), document=document,
                idempotency_key=key, correlation_id=f"corr-{key}")
        return work

    writes = GroupCommit(factory, turns=1)
    _, stored_first = asyncio.run(held_then(writes, [
        submits("first", documents["first"]), submits("second", documents["second"])], "gk-"))
    assert [s.replayed for s in stored_first] == [False, False]
    first_id, second_id = (s.referral.id for s in stored_first)

    # the same key and body, the same key with another body, a new key: the group splits
    # on the repeat's id and each is answered alone
    with capture_logs() as logs:
        _, answers = asyncio.run(held_then(writes, [
            submits("first", documents["first"]), submits("second", documents["new"]),
            submits("new", documents["new"])], "gl-"))
    assert isinstance(answers[0], Submitted) and answers[0].replayed
    assert answers[0].referral.id == first_id
    assert isinstance(answers[1], IdempotencyConflict)
    assert isinstance(answers[2], Submitted) and not answers[2].replayed
    # said of what was stored only: not of the repeats, once of the new one (its works ran
    # twice: in the group that rolled back, then alone)
    assert "group_commit_split" in [line["event"] for line in logs]
    assert [line["referral_id"] for line in logs if line["event"] == "referral_submitted"
            and line["sender"] == sender] == [answers[2].referral.id]

    # the agreement has ended since: a new submission is refused, a repeat of a stored one
    # still gets its first answer (not the refusal), and one with another body its 409
    write_agreement(folder, agreement.stem, [sender, receiver], valid_to="2020-12-31")
    _, answers = asyncio.run(held_then(writes, [
        submits("second", documents["second"]), submits("first", documents["new"]),
        submits("late", make_referral(sender, receiver))], "gm-"))
    assert isinstance(answers[0], Submitted) and answers[0].replayed
    assert answers[0].referral.id == second_id
    assert isinstance(answers[1], IdempotencyConflict)
    assert isinstance(answers[2], ConsentProblem)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.sender_id == sender)) == 3


said: contextvars.ContextVar[str] = contextvars.ContextVar("said")


def test_after_commit_is_called_in_its_callers_context_only_once_committed(
        counted_sessions: tuple[sessionmaker[Session], list[int]]) -> None:
    factory, _ = counted_sessions
    heard: list[str] = []

    def register(session: Session, what: str) -> None:
        said.set(what)  # in the caller's own context, not the committer's
        after_commit(session, lambda: heard.append(said.get()))

    for end in ("commit", "rollback", "close"):
        with factory() as session:
            session.connection()  # a transaction begun
            contextvars.copy_context().run(register, session, end)
            if end == "commit":
                session.commit()
            elif end == "rollback":
                session.rollback()
        with factory() as session:  # a later transaction hears nothing of earlier ones
            session.connection()
            session.commit()
    assert heard == ["commit"]
