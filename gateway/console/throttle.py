"""Console login throttling: guessing passwords is slow, and a lockout never locks a user
out everywhere.

Failures are counted per username *and* client address: after a few free ones each next
attempt must wait twice as long as the last (2, 4, 8 … up to 60 s), and at the lockout
count that username is locked from that address for a while. Someone guessing a known
username from their own machine so locks only themselves out; the user, from theirs, logs
in as usual. A second, higher count per address alone (any usernames) stops one machine
from trying many usernames. An attempt held back is refused before its password is
checked, without counting, and a password is never kept.

The counts live in the store (`login_throttles`): every API process sees the same ones,
and a restart forgets nothing. A username nobody has is counted like one that exists (so
the answers do not tell which exist) but stored only as a keyed hash; an address's counts
are forgotten a day after its last failure.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.protection.crypto import keyring
from gateway.settings import Settings
from gateway.store.db import take_write_turn
from gateway.store.models import LoginThrottle

USER_ADDRESS, ADDRESS = "user_address", "address"
FORGET_AFTER = timedelta(hours=24)
MAX_DELAY = timedelta(seconds=60)


@dataclass(frozen=True)
class Policy:
    """How many failures are free, lock a username from an address, or lock an address."""

    free_failures: int
    lockout_failures: int
    lockout: timedelta
    address_failures: int

    @classmethod
    def of(cls, settings: Settings) -> "Policy":
        return cls(settings.console_login_free_failures, settings.console_login_lockout_failures,
                   timedelta(minutes=settings.console_login_lockout_minutes),
                   settings.console_login_address_failures)

    @property
    def lockout_minutes(self) -> int:
        return max(1, round(self.lockout.total_seconds() / 60))

    def delay(self, failures: int) -> timedelta:
        """The wait before the next attempt after `failures` in a row."""
        if failures <= self.free_failures:
            return timedelta(0)
        return min(MAX_DELAY, timedelta(seconds=2 ** (failures - self.free_failures)))


@dataclass(frozen=True)
class Held:
    """Why an attempt is refused before its password is checked, and until when."""

    scope: str  # USER_ADDRESS or ADDRESS
    until: datetime
    locked: bool  # a lockout (else the growing wait between attempts)

    def seconds(self, now: datetime) -> int:
        """Whole seconds left to wait (at least 1)."""
        return max(1, math.ceil((self.until - now).total_seconds()))


@dataclass(frozen=True)
class Failure:
    """A failed attempt as counted: the failures in a row from this address for this
    username, the wait it sets, and the lockouts it started."""

    failures: int
    wait: timedelta
    locked: list[Held]


def _key(scope: str, *parts: str) -> str:
    return keyring().digest("\0".join(["console-login", scope, *parts]))


def held(session: Session, *, username: str, address: str, now: datetime,
         policy: Policy) -> Held | None:
    """Whether an attempt to log in as `username` from `address` must wait, and why."""
    rows = {row.scope: row for row in session.scalars(select(LoginThrottle).where(
        LoginThrottle.key.in_([_key(USER_ADDRESS, username, address), _key(ADDRESS, address)])))}
    for scope in (ADDRESS, USER_ADDRESS):
        row = rows.get(scope)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return Held(scope, row.locked_until, locked=True)
    pair = rows.get(USER_ADDRESS)
    if pair is not None and pair.last_failure_at > now - FORGET_AFTER:
        ready = pair.last_failure_at + policy.delay(pair.failures)
        if ready > now:
            return Held(USER_ADDRESS, ready, locked=False)
    return None


def failed(session: Session, *, username: str, known: bool, address: str, now: datetime,
           policy: Policy) -> Failure:
    """Count a failed attempt against the username from this address, and the address."""
    take_write_turn(session)
    in_a_row, user_lock = _count(
        session, USER_ADDRESS, _key(USER_ADDRESS, username, address),
        username if known else None, address, now, policy.lockout_failures, policy.lockout)
    _, address_lock = _count(session, ADDRESS, _key(ADDRESS, address), None, address, now,
                             policy.address_failures, policy.lockout)
    return Failure(in_a_row, policy.delay(in_a_row),
                   [lock for lock in (user_lock, address_lock) if lock is not None])


def succeeded(session: Session, *, username: str, address: str) -> None:
    """A right password from this address: its count for this username starts again (the
    address's own count does not: one good account must not reset a spray of guesses)."""
    take_write_turn(session)
    session.execute(delete(LoginThrottle).where(
        LoginThrottle.key == _key(USER_ADDRESS, username, address)))


def in_force(session: Session, *, now: datetime) -> list[LoginThrottle]:
    """The lockouts not yet over, latest first (for the auditor)."""
    return list(session.scalars(select(LoginThrottle).where(LoginThrottle.locked_until > now)
                                .order_by(LoginThrottle.locked_until.desc())))


def unlock(session: Session, *, username: str | None = None, address: str | None = None
           ) -> int:
    """Forget the failures of a username (from every address) and/or of an address."""
    take_write_turn(session)
    conditions = ([LoginThrottle.username == username] if username else []) + (
        [LoginThrottle.address == address] if address else [])
    if not conditions:
        return 0
    rows = session.scalars(select(LoginThrottle).where(or_(*conditions))).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def _count(session: Session, scope: str, key: str, username: str | None, address: str,
           now: datetime, threshold: int, lockout: timedelta) -> tuple[int, Held | None]:
    """One more failure under `key` (a count quiet for FORGET_AFTER starts again), in one
    statement so that two attempts at once both count; at `threshold` it locks for
    `lockout`. The failures in a row, and the lockout if this one started it."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stale = LoginThrottle.last_failure_at < now - FORGET_AFTER
    insert = dialect.insert(LoginThrottle).values(
        key=key, scope=scope, username=username, address=address, failures=1,
        first_failure_at=now, last_failure_at=now, locked_until=None)
    upsert = insert.on_conflict_do_update(index_elements=[LoginThrottle.key], set_={
        "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
        "first_failure_at": case((stale, now), else_=LoginThrottle.first_failure_at),
        "last_failure_at": now,
        "username": insert.excluded.username,
    }).returning(LoginThrottle.failures, LoginThrottle.locked_until)
    failures, locked_until = session.execute(upsert).one()
    if failures < threshold:
        return int(failures), None
    row = session.get_one(LoginThrottle, key, populate_existing=True)
    row.locked_until = now + lockout  # a failure while locked (two at once) moves the end
    session.flush()
    started = locked_until is None or locked_until <= now
    return int(failures), Held(scope, row.locked_until, locked=True) if started else None
