"""The canonical lifecycle of referrals and transfers (DESIGN.md §3), and nowhere else.

One state machine for both kinds. Each transition names who may cause it: the
sender, the receiver, or the gateway itself (delivery outcomes and re-drive).
"""

from collections.abc import Mapping
from enum import StrEnum

from gateway.errors import LifecycleViolation


class Kind(StrEnum):
    REFERRAL = "referral"
    TRANSFER = "transfer"


class State(StrEnum):
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    CHALLENGED = "challenged"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"


class Actor(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"
    GATEWAY = "gateway"


S, A, K = State, Actor, Kind

# (from state) -> {to state: who may cause it}; kind-specific extras below.
_COMMON: Mapping[State, Mapping[State, Actor]] = {
    S.SUBMITTED: {S.DELIVERED: A.GATEWAY, S.FAILED: A.GATEWAY, S.WITHDRAWN: A.SENDER},
    S.DELIVERED: {S.ACKNOWLEDGED: A.RECEIVER, S.ACCEPTED: A.RECEIVER, S.REJECTED: A.RECEIVER,
                  S.WITHDRAWN: A.SENDER},
    S.ACKNOWLEDGED: {S.ACCEPTED: A.RECEIVER, S.REJECTED: A.RECEIVER, S.WITHDRAWN: A.SENDER},
    S.ACCEPTED: {S.IN_PROGRESS: A.RECEIVER, S.COMPLETED: A.RECEIVER, S.WITHDRAWN: A.SENDER},
    S.IN_PROGRESS: {S.COMPLETED: A.RECEIVER, S.WITHDRAWN: A.SENDER},
    S.FAILED: {S.SUBMITTED: A.GATEWAY},
}
_TRANSFER_ONLY: Mapping[State, Mapping[State, Actor]] = {
    S.ACCEPTED: {S.CHALLENGED: A.RECEIVER},
    # The sender answers a challenge: enforce the transfer, or recall it.
    S.CHALLENGED: {S.ACCEPTED: A.SENDER, S.WITHDRAWN: A.SENDER},
}

INITIAL = S.SUBMITTED
TERMINAL: frozenset[State] = frozenset({S.COMPLETED, S.REJECTED, S.WITHDRAWN})
REASON_REQUIRED: frozenset[State] = frozenset({S.REJECTED, S.CHALLENGED})


def transitions(kind: Kind, state: State) -> dict[State, Actor]:
    """Every state reachable from `state` in one step, with who may cause each."""
    allowed = dict(_COMMON.get(state, {}))
    if kind is K.TRANSFER:
        allowed.update(_TRANSFER_ONLY.get(state, {}))
    return allowed


def allowed_next(kind: Kind, state: State, actor: Actor | None = None) -> list[State]:
    """States reachable from `state`, optionally only those `actor` may cause, in a stable order."""
    return [s for s, who in transitions(kind, state).items() if actor is None or who is actor]


def catch_up(kind: Kind, current: State, requested: State, actor: Actor) -> list[State] | None:
    """The shortest run of states after `current` ending in `requested`, each caused by `actor`.

    A partner polled now and then may have moved several steps since the last poll (say
    acknowledged, accepted and started the service); the gateway records the steps it
    skipped rather than refusing the change. None when no such run exists.
    """
    paths: dict[State, list[State]] = {current: []}
    frontier = [current]
    while frontier:
        step = []
        for state in frontier:
            for nxt, who in transitions(kind, state).items():
                if who is actor and nxt not in paths:
                    paths[nxt] = [*paths[state], nxt]
                    step.append(nxt)
        frontier = step
    return paths.get(requested) if requested is not current else None


def check_transition(*, kind: Kind, current: State, requested: State, actor: Actor) -> bool:
    """Decide a status change: True to apply it, False when it repeats the current state.

    Raises LifecycleViolation naming the current state and what may come next.
    """
    if requested is current:
        return False  # a repeated event is idempotent
    allowed = transitions(kind, current)
    who = allowed.get(requested)
    if who is None:
        why = (f"'{current}' is final" if current in TERMINAL
               else f"'{requested}' does not follow '{current}' for a {kind}")
        raise LifecycleViolation(current=current, requested=requested,
                                 allowed=allowed_next(kind, current), why=why)
    if who is not actor:
        raise LifecycleViolation(
            current=current, requested=requested, allowed=allowed_next(kind, current, actor),
            why=f"only the {who} may move a {kind} to '{requested}'",
        )
    return True
