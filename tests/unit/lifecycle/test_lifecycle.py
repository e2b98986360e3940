"""The canonical lifecycle: property-based checks over arbitrary event sequences."""

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import LifecycleViolation
from gateway.lifecycle import (
    INITIAL,
    TERMINAL,
    Actor,
    Kind,
    State,
    allowed_next,
    catch_up,
    check_transition,
    transitions,
)

events = st.lists(st.tuples(st.sampled_from(State), st.sampled_from(Actor)), max_size=40)


def replay(kind: Kind, sequence: list[tuple[State, Actor]]) -> list[State]:
    """Apply each event the machine accepts; return the states passed through."""
    path = [INITIAL]
    for requested, actor in sequence:
        try:
            if check_transition(kind=kind, current=path[-1], requested=requested, actor=actor):
                path.append(requested)
        except LifecycleViolation:
            pass
    return path


def reachable(kind: Kind, start: State, *, avoiding: State | None = None) -> set[State]:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in transitions(kind, todo.popleft()):
            if nxt not in seen and nxt != avoiding:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@given(kind=st.sampled_from(Kind), sequence=events)
def test_no_sequence_of_events_leaves_the_machine(kind: Kind, sequence: list) -> None:
    path = replay(kind, sequence)
    assert all(isinstance(s, State) for s in path)
    for before, after in zip(path, path[1:], strict=False):
        assert after in transitions(kind, before)


@given(kind=st.sampled_from(Kind), sequence=events)
def test_nothing_leaves_a_terminal_state(kind: Kind, sequence: list) -> None:
    path = replay(kind, sequence)
    for i, state in enumerate(path):
        if state in TERMINAL:
            assert i == len(path) - 1


@given(kind=st.sampled_from(Kind), sequence=events)
def test_receiver_states_are_never_reached_without_delivery(kind: Kind, sequence: list) -> None:
    path = replay(kind, sequence)
    receiver_states = {State.ACKNOWLEDGED, State.ACCEPTED, State.IN_PROGRESS, State.CHALLENGED,
                       State.COMPLETED, State.REJECTED}
    for i, state in enumerate(path):
        if state in receiver_states:
            assert State.DELIVERED in path[:i]


@given(kind=st.sampled_from(Kind), sequence=events)
def test_completion_always_passes_acceptance(kind: Kind, sequence: list) -> None:
    path = replay(kind, sequence)
    if State.COMPLETED in path:
        assert State.ACCEPTED in path[: path.index(State.COMPLETED)]


@given(sequence=events)
def test_a_referral_is_never_challenged(sequence: list) -> None:
    assert State.CHALLENGED not in replay(Kind.REFERRAL, sequence)


@given(kind=st.sampled_from(Kind), state=st.sampled_from(State), actor=st.sampled_from(Actor))
def test_a_repeated_event_is_idempotent(kind: Kind, state: State, actor: Actor) -> None:
    assert check_transition(kind=kind, current=state, requested=state, actor=actor) is False


@given(kind=st.sampled_from(Kind), current=st.sampled_from(State),
       requested=st.sampled_from(State), actor=st.sampled_from(Actor))
def test_a_refusal_names_the_current_and_allowed_states(
    kind: Kind, current: State, requested: State, actor: Actor
) -> None:
    try:
        check_transition(kind=kind, current=current, requested=requested, actor=actor)
    except LifecycleViolation as refused:
        assert refused.extensions["current_state"] == current
        assert set(refused.extensions["allowed_next_states"]) <= set(transitions(kind, current))
        assert requested not in allowed_next(kind, current, actor)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_state_is_reachable_and_every_live_state_can_end(kind: Kind) -> None:
    everywhere = reachable(kind, INITIAL)
    expected = set(State) - ({State.CHALLENGED} if kind is Kind.REFERRAL else set())
    assert everywhere == expected
    for state in everywhere - TERMINAL:
        assert reachable(kind, state) & TERMINAL, f"{state} can never end"


def test_transfer_challenge_is_answered_by_the_sender() -> None:
    assert allowed_next(Kind.TRANSFER, State.CHALLENGED, Actor.SENDER) == [
        State.ACCEPTED, State.WITHDRAWN]
    with pytest.raises(LifecycleViolation, match="only the sender"):
        check_transition(kind=Kind.TRANSFER, current=State.CHALLENGED,
                         requested=State.ACCEPTED, actor=Actor.RECEIVER)


def test_only_redrive_leaves_failed() -> None:
    assert transitions(Kind.REFERRAL, State.FAILED) == {State.SUBMITTED: Actor.GATEWAY}


@given(kind=st.sampled_from(Kind), current=st.sampled_from(State),
       requested=st.sampled_from(State), actor=st.sampled_from(Actor))
def test_catch_up_is_a_valid_run_of_the_actors_own_steps(
    kind: Kind, current: State, requested: State, actor: Actor
) -> None:
    path = catch_up(kind, current, requested, actor)
    if path is None:
        return
    assert path[-1] is requested and path
    state = current
    for step in path:
        assert transitions(kind, state).get(step) is actor
        state = step


def test_catch_up_fills_what_a_receiver_did_between_two_polls() -> None:
    assert catch_up(Kind.REFERRAL, State.DELIVERED, State.IN_PROGRESS, Actor.RECEIVER) == [
        State.ACCEPTED, State.IN_PROGRESS]
    assert catch_up(Kind.REFERRAL, State.SUBMITTED, State.ACCEPTED, Actor.RECEIVER) is None
    assert catch_up(Kind.REFERRAL, State.COMPLETED, State.ACCEPTED, Actor.RECEIVER) is None
