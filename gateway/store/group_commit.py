"""Group commit: the units of work of one moment written in one transaction.

A request that writes hands its work to a `GroupCommit` and waits. The works that arrive
while a transaction is being written wait together and go in the next one: one turn on a
worker thread, one commit (on PostgreSQL one WAL flush) and one turn on the audit trail's
head row for all of them, instead of one each. Nothing is answered before its transaction
committed, so a 201 still means stored.

Each work runs in the context (correlation id, log fields) of the request that gave it.
What a work returns, or the problem (`CaseBridgeError`) it raises, is given back to that
request alone. A work raising a problem must have written nothing: intake's refusals come
before its writes (a refusal's own audit entry is written by the work, which then returns
the problem instead of raising it). Any other exception — a database error, a duplicate
key lost in a race, a bug — rolls the whole transaction back, and each work of it is then
run again in a transaction of its own, as if it had come alone: one failure never takes
another request's work with it, and never leaves half of it stored. While a work runs
inside a group, `session.info[GROUPED]` is true: a work that would roll back (to retry a
race, say) must raise instead and let its own transaction do it. What every work of a
group would read alike (the calling partner, the directory's files) is read once per
group through `once_per_group`. A work that came alone is a group of one: its rows and
audit entries are still written together at the commit (each audit entry chained on its
own would cost a turn on the head row, three statements, per entry), and should it fail
it runs again as any split group's works do.

    writes = GroupCommit(sessions, turns=1)
    referral = await writes.run(lambda session: submit(session, ...))

A delivery worker, which has no event loop, writes the outcomes of the messages it holds
with `write_together` directly, the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.to_thread
import structlog
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import CaseBridgeError

log = structlog.get_logger()

T = TypeVar("T")
GROUPED = "casebridge.grouped"
_KEPT = "casebridge.kept"


@dataclass
class _Work(Generic[T]):
    work: Callable[[Session], T]
    context: contextvars.Context
    future: asyncio.Future[T]
    outcome: tuple[bool, Any] = field(default=(False, None))  # (succeeded, value or error)


class GroupCommit:
    """Writes works in shared transactions, `turns` transactions at a time, at most
    `largest` works each."""

    def __init__(self, sessions: sessionmaker[Session], *, turns: int, largest: int = 32):
        self._sessions = sessions
        self._turns = turns
        self._largest = largest
        self._waiting: list[_Work[Any]] = []
        self._writing = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)`'s result once its transaction committed (or its problem)."""
        item = _Work(work, contextvars.copy_context(),
                     asyncio.get_running_loop().create_future())
        self._waiting.append(item)
        self._start()
        # A request cancelled while waiting (the client went away) leaves its work to be
        # written: the answer is lost, not the referral, and a retry replays it.
        try:
            return await asyncio.shield(item.future)
        except asyncio.CancelledError:
            item.future.add_done_callback(_taken)  # an error no one awaits is no warning
            raise

    def _start(self) -> None:
        while self._waiting and self._writing < self._turns:
            group, self._waiting = (self._waiting[:self._largest],
                                    self._waiting[self._largest:])
            self._writing += 1
            task = asyncio.create_task(self._write(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, group: list[_Work[Any]]) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._write_group, group,
                                               limiter=anyio.CapacityLimiter(1))
        except BaseException as error:  # the thread itself failed: every work hears of it
            for item in group:
                item.outcome = (False, error)
        finally:
            self._writing -= 1
            for item in group:
                if not item.future.done():
                    succeeded, value = item.outcome
                    if succeeded:
                        item.future.set_result(value)
                    else:
                        item.future.set_exception(value)
            self._start()

    def _write_group(self, group: list[_Work[Any]]) -> None:
        """On a worker thread: all of `group` in one transaction, else each in its own."""
        outcomes = write_together(self._sessions,
                                  [(item.context, item.work) for item in group])
        for item, outcome in zip(group, outcomes, strict=True):
            item.outcome = outcome


def write_together(sessions: sessionmaker[Session],
                   works: list[tuple[contextvars.Context, Callable[[Session], Any]]], *,
                   problems: tuple[type[Exception], ...] = (CaseBridgeError,)
                   ) -> list[tuple[bool, Any]]:
    """Run each `(context, work)` in its context, all in one transaction (also a lone
    work: a group of one); should it fail, each again in a transaction of its own. Gives,
    in order, (True, what the work returned) or (False, the exception it raised). A work
    raising one of `problems` must have written nothing: the others still commit with it.
    Any other exception rolls the shared transaction back and splits the group."""
    if works:
        with sessions() as session:
            session.info[GROUPED] = True
            try:
                together = [context.run(_attempt, work, session, problems)
                            for context, work in works]
                session.commit()
                return together
            except Exception as error:
                session.rollback()
                log.info("group_commit_split", works=len(works), error=type(error).__name__)
    outcomes: list[tuple[bool, Any]] = []
    for context, work in works:
        with sessions() as session:
            try:
                outcome = context.run(_attempt, work, session, problems)
                session.commit()
            except Exception as error:
                session.rollback()
                outcome = (False, error)
        outcomes.append(outcome)
    return outcomes


def _taken(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def once_per_group(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """`read()`, or in a group what it gave the first time this group asked for `key`: the
    works of a group share one transaction, so they would read the same. (Outside a group,
    simply `read()`.) An exception is not kept: the next work reads again."""
    if not session.info.get(GROUPED):
        return read()
    kept: dict[Hashable, Any] = session.info.setdefault(_KEPT, {})
    if key not in kept:
        kept[key] = read()
    return cast(T, kept[key])


def _attempt(work: Callable[[Session], Any], session: Session,
             problems: tuple[type[Exception], ...]) -> tuple[bool, Any]:
    """(True, what `work` returned) or (False, the problem it raised); anything else
    propagates."""
    try:
        return True, work(session)
    except problems as problem:
        return False, problem
