"""Console login throttling on a frozen clock: growing waits, lockouts that lock a username
out from one address only, a cap per address, and nothing kept of unknown usernames."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.console import throttle
from gateway.store.db import make_engine, make_sessionmaker, upgrade
from gateway.store.models import LoginThrottle

POLICY = throttle.Policy(free_failures=3, lockout_failures=10,
                         lockout=timedelta(minutes=15), address_failures=50)
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ALICE, MALLORY, ELSEWHERE = "10.0.0.5", "10.0.0.66", "10.0.0.7"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('throttle') / 'store.db'}"
    upgrade(url)
    return url


@pytest.fixture
def session(store: str) -> Iterator[Session]:
    engine = make_engine(store)
    with make_sessionmaker(engine)() as session:
        yield session
        session.rollback()  # each test starts from no failures
    engine.dispose()


def fail(session: Session, times: int, *, at: datetime, username: str = "olga",
         address: str = MALLORY, known: bool = True, step: timedelta = timedelta(minutes=2)
         ) -> throttle.Failure:
    counted = None
    for n in range(times):
        counted = throttle.failed(session, username=username, known=known, address=address,
                                  now=at + n * step, policy=POLICY)
    assert counted is not None
    return counted


def held(session: Session, at: datetime, username: str = "olga", address: str = MALLORY
         ) -> throttle.Held | None:
    return throttle.held(session, username=username, address=address, now=at, policy=POLICY)


def test_the_first_failures_are_free_then_each_wait_doubles(session: Session) -> None:
    counted = fail(session, 3, at=START)
    last = START + 4 * timedelta(minutes=1)
    assert counted.wait == timedelta(0) and held(session, last) is None
    waits = []
    for n in range(4, 10):
        counted = throttle.failed(session, username="olga", known=True, address=MALLORY,
                                  now=last, policy=POLICY)
        assert counted.failures == n
        wait = held(session, last)
        assert wait is not None and not wait.locked and wait.scope == "user_address"
        waits.append(wait.seconds(last))
        assert held(session, last + counted.wait) is None  # not a second longer
        last += counted.wait
    assert waits == [2, 4, 8, 16, 32, 60]


def test_a_lockout_locks_the_username_from_that_address_only(session: Session) -> None:
    counted = fail(session, 10, at=START)
    [lock] = counted.locked
    assert lock.scope == "user_address" and lock.locked
    now = START + 9 * timedelta(minutes=2)
    assert lock.until == now + timedelta(minutes=15)
    assert held(session, now + timedelta(minutes=14)) == lock
    # the real user, from her own computer, is not locked out
    assert held(session, now, address=ALICE) is None
    # nor is anyone else from the guessing computer, within the address cap
    assert held(session, now, username="imre") is None


def test_after_a_lockout_one_more_failure_locks_again(session: Session) -> None:
    fail(session, 10, at=START)
    after = START + 18 * timedelta(minutes=1) + timedelta(minutes=15, seconds=1)
    assert held(session, after) is None
    again = throttle.failed(session, username="olga", known=True, address=MALLORY, now=after,
                            policy=POLICY)
    assert again.failures == 11 and [lock.scope for lock in again.locked] == ["user_address"]


def test_one_address_trying_many_usernames_is_locked_out(session: Session) -> None:
    for n in range(49):
        fail(session, 1, at=START + timedelta(seconds=n), username=f"guess{n}", known=False)
    assert held(session, START + timedelta(minutes=1), username="new-name") is None
    counted = fail(session, 1, at=START + timedelta(minutes=1), username="guess49",
                   known=False)
    assert [lock.scope for lock in counted.locked] == ["address"]
    lock = held(session, START + timedelta(minutes=2), username="imre")
    assert lock is not None and lock.scope == "address" and lock.locked
    assert held(session, START + timedelta(minutes=2), address=ALICE) is None


def test_an_unknown_username_is_counted_alike_and_never_kept(session: Session) -> None:
    fail(session, 5, at=START, username="my-secret-passphrase", known=False)
    wait = held(session, START + 4 * timedelta(minutes=2), username="my-secret-passphrase")
    assert wait is not None and not wait.locked
    rows = session.scalars(select(LoginThrottle)).all()
    assert {row.username for row in rows} == {None}
    assert all("passphrase" not in f"{row.key}{row.address}" for row in rows)


def test_a_right_password_starts_the_users_count_again_but_not_the_addresss(
    session: Session
) -> None:
    fail(session, 5, at=START, address=ALICE)
    throttle.succeeded(session, username="olga", address=ALICE)
    assert held(session, START + 9 * timedelta(minutes=1), address=ALICE) is None
    after = fail(session, 1, at=START + timedelta(minutes=10), address=ALICE)
    assert after.failures == 1
    address_row = session.scalars(select(LoginThrottle).where(
        LoginThrottle.scope == "address")).one()
    assert address_row.failures == 6


def test_a_day_without_failures_forgets_them(session: Session) -> None:
    fail(session, 9, at=START)
    later = START + timedelta(hours=25)
    assert held(session, later) is None
    assert fail(session, 1, at=later).failures == 1


def test_an_administrator_lifts_a_lockout(session: Session) -> None:
    fail(session, 10, at=START)
    fail(session, 2, at=START, username="imre")
    now = START + timedelta(minutes=20)
    assert [row.username for row in throttle.in_force(session, now=now)] == ["olga"]
    assert throttle.unlock(session, username="olga") == 1
    assert held(session, now) is None and throttle.in_force(session, now=now) == []
    assert throttle.unlock(session, address=MALLORY) == 2  # imre's count and the address's
    assert throttle.unlock(session) == 0
