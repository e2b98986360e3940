"""Deadline policies: the YAML files IM officers keep in `deadlines/`, checked and matched.

One policy per file, `deadlines/<id>.yaml`. It says to which referrals or transfers it
applies (kind, subtype, case module, service type, sender, receiver, receiver's country),
in which working-day calendar it counts, and for each deadline: the state that starts the
clock, how long it may run (working days, calendar hours, or by a date the referral
carries), the states that meet it, the states in which it pauses because the referral waits
on the sender, and when an overdue deadline escalates. `check_policy_file` reports every
problem as `file:line:column: rule: message`, for the CLI and for a registry that keeps the
last good version of each file in force.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.lifecycle import TERMINAL, State
from gateway.yamlpos import (
    Node,
    Pos,
    Problem,
    Problems,
    display_path,
    read_top_mapping,
    suggest,
)

POLICY_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,99}")
DEADLINE_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")
Unit = Literal["working_days", "calendar_hours"]
UNITS: dict[str, int] = {"working_days": 365, "calendar_hours": 24 * 365}  # unit → most
# A date the referral itself carries, that a deadline may fall due on.
DateField = Literal["services.due_date", "transfer.return_date"]
DATE_FIELDS = ("services.due_date", "transfer.return_date")
STATES = tuple(s.value for s in State)
MATCH_KEYS = ("kind", "subtypes", "case_modules", "service_types", "senders", "receivers",
              "countries")
POLICY_KEYS = ("id", "title", "applies_to", "calendar", "deadlines")
DEADLINE_KEYS = ("name", "state", "within", "by", "met_by", "pauses_in", "escalate_after_due")


@dataclass(frozen=True)
class Duration:
    """An amount of time in one unit: working days of a calendar, or elapsed hours."""

    unit: Unit
    amount: int


@dataclass(frozen=True)
class Rule:
    """One deadline of a policy: from `state`, `within` a time or `by` a date."""

    name: str
    state: str
    within: Duration | None
    by: DateField | None
    met_by: frozenset[str] | None  # None: leaving `state` for any state meets it
    pauses_in: frozenset[str]
    escalate_after_due: Duration | None

    def outcome_of(self, state: str) -> Literal["running", "paused", "met", "ended"]:
        """What moving to `state` does to this deadline's clock once it has started."""
        if state in self.pauses_in:
            return "paused"
        if state == self.state:
            return "running"
        if self.met_by is None:  # any answer meets it; a withdrawal or a failure is none
            return "ended" if state in (State.WITHDRAWN, State.FAILED) else "met"
        if state in self.met_by:
            return "met"
        return "ended" if state in TERMINAL or state == State.FAILED else "running"


@dataclass(frozen=True)
class Match:
    """Which referrals a policy applies to; an unset key matches any referral."""

    kind: str
    subtypes: frozenset[str] | None = None
    case_modules: frozenset[str] | None = None
    service_types: frozenset[str] | None = None
    senders: frozenset[str] | None = None
    receivers: frozenset[str] | None = None
    countries: frozenset[str] | None = None

    def specificity(self) -> int:
        """How many keys narrow it: the most specific policy wins for the same deadline."""
        return sum(1 for key in MATCH_KEYS[1:] if getattr(self, key) is not None)

    def matches(self, document: Mapping[str, Any], receiver_country: str | None) -> bool:
        """Whether the canonical referral `document` is one this policy applies to."""
        services = {s.get("type") for s in document.get("services") or []
                    if isinstance(s, dict)}
        return (document.get("kind") == self.kind
                and _within(self.subtypes, document.get("subtype"))
                and _within(self.case_modules, (document.get("case") or {}).get("module"))
                and (self.service_types is None or bool(services & self.service_types))
                and _within(self.senders, (document.get("sender") or {}).get("partner"))
                and _within(self.receivers, (document.get("receiver") or {}).get("partner"))
                and _within(self.countries, receiver_country))


def _within(allowed: frozenset[str] | None, value: Any) -> bool:
    return allowed is None or value in allowed


@dataclass(frozen=True)
class Policy:
    """One deadline policy in force, as its file says."""

    id: str
    title: str
    applies_to: Match
    calendar: str
    rules: tuple[Rule, ...]
    file: str
    content_hash: str


# ---------------------------------------------------------------------------- checking


def check_policy_file(path: Path, *, calendar_ids: Collection[str] | None = None,
                      contracts: Contracts | None = None) -> tuple[Policy | None, list[Problem]]:
    """The policy in the file at `path`, or None and every problem found in it.

    `calendar_ids`: the calendars a policy may name (None: any id is taken on trust, as
    when a file is checked without its calendars).
    """
    file = display_path(path)
    problems = Problems(file)
    raw, node = read_top_mapping(path, problems, "a deadline policy", "id, applies_to, …")
    if node is None:
        return None, list(problems)
    codes = contracts or Contracts(ROOT / "contracts")
    node.check_keys(POLICY_KEYS, required=("id", "applies_to", "calendar", "deadlines"))
    policy_id = node.text("id")
    if policy_id is not None:
        if not POLICY_ID.fullmatch(policy_id):
            problems.add(node.value_pos("id"), "bad-value",
                         "id: lower-case letters, digits and dashes, 2 to 100 characters")
        elif path.name != f"{policy_id}.yaml":
            problems.add(node.value_pos("id"), "file-name",
                         f"the file of policy '{policy_id}' must be named {policy_id}.yaml")
    match = _match(node, codes) if "applies_to" in node else None
    calendar = node.text("calendar")
    if calendar is not None and calendar_ids is not None and calendar not in calendar_ids:
        problems.add(node.value_pos("calendar"), "unknown-calendar",
                     f"no calendar '{calendar}'{suggest(calendar, calendar_ids)}: a built-in "
                     "one (gb-eng, co, et …) or the id of a file in calendars/")
    rules = _rules(node, match) if "deadlines" in node else []
    if problems or policy_id is None or match is None or calendar is None:
        return None, list(problems)
    return Policy(id=policy_id, title=node.text("title") or "", applies_to=match,
                  calendar=calendar, rules=tuple(rules), file=file,
                  content_hash="sha256:" + hashlib.sha256(raw).hexdigest()), []


def _match(node: Node, codes: Contracts) -> Match | None:
    where = node.child("applies_to", "what the policy applies to")
    if where is None:
        return None
    where.check_keys(MATCH_KEYS, required=("kind",))
    kind = where.text("kind")
    if kind is not None and kind not in ("referral", "transfer"):
        where.problems.add(where.value_pos("kind"), "bad-value",
                           f"kind is referral or transfer, not '{kind}'")
    lists = {
        "subtypes": None,
        "case_modules": codes.codes("case-module"),
        "service_types": codes.codes("service-type"),
        "senders": None,
        "receivers": None,
        "countries": None,
    }
    found = {key: _names(where, key, allowed) for key, allowed in lists.items()}
    for pos, country in _positions(where, "countries"):
        if not re.fullmatch(r"[A-Z]{3}", country):
            where.problems.add(pos, "bad-value",
                               f"'{country}' is not a three-letter ISO country code (e.g. ETH)")
    if kind is None:
        return None
    return Match(kind=kind, **found)


def _names(node: Node, key: str, allowed: list[str] | None) -> frozenset[str] | None:
    """The texts listed under `key`, each checked against `allowed` when given."""
    if key not in node:
        return None
    names: set[str] = set()
    for pos, item in node.items(key):
        if not isinstance(item, str) or not item.strip():
            node.problems.add(pos, "bad-value", f"each item of '{key}' is a non-empty text")
        elif allowed is not None and item not in allowed:
            node.problems.add(pos, "unknown-code", f"'{item}' is not one of the {key}"
                              f"{suggest(item, allowed)}")
        else:
            names.add(item)
    return frozenset(names)


def _positions(node: Node, key: str) -> list[tuple[Pos, str]]:
    value = node.get(key)
    if not isinstance(value, list):
        return []
    return [(pos, item) for pos, item in node.items(key) if isinstance(item, str)]


def _rules(node: Node, match: Match | None) -> list[Rule]:
    rules: list[Rule] = []
    seen: set[tuple[str, str]] = set()
    for pos, item in node.items("deadlines"):
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value", "each deadline is a mapping: name, state, "
                              "within or by, …")
            continue
        rule = _rule(Node(item, node.problems, "a deadline"), match)
        if rule is None:
            continue
        if (rule.state, rule.name) in seen:
            node.problems.add(pos, "duplicate-deadline",
                              f"a second deadline '{rule.name}' from state {rule.state}")
            continue
        seen.add((rule.state, rule.name))
        rules.append(rule)
    return rules


def _rule(node: Node, match: Match | None) -> Rule | None:
    problems_before = len(node.problems.items)
    node.check_keys(DEADLINE_KEYS, required=("name", "state"))
    name = node.text("name")
    if name is not None and not DEADLINE_NAME.fullmatch(name):
        node.problems.add(node.value_pos("name"), "bad-value",
                          "name: lower-case letters, digits and _, starting with a letter")
    state = _state(node, "state")
    if state is not None and (state in TERMINAL or state == State.FAILED):
        node.problems.add(node.value_pos("state"), "bad-value",
                          f"'{state}' is final: no deadline can start from it")
    met_by = _states(node, "met_by")
    if met_by == frozenset() and node.get("met_by") == []:
        node.problems.add(node.value_pos("met_by"), "bad-value", "'met_by' lists no state: "
                          "leave it out to meet the deadline by leaving the state")
    pauses_in = _states(node, "pauses_in") or frozenset()
    if state is not None and met_by is not None and state in met_by:
        node.problems.add(node.value_pos("met_by"), "bad-value",
                          f"'{state}' starts the clock: it cannot also meet the deadline")
    for clash in sorted(pauses_in & (met_by or frozenset())):
        node.problems.add(node.value_pos("pauses_in"), "bad-value",
                          f"'{clash}' is in both met_by and pauses_in")
    if state is not None and state in pauses_in:
        node.problems.add(node.value_pos("pauses_in"), "bad-value",
                          f"'{state}' starts the clock: it cannot pause it")
    within = _duration(node, "within") if "within" in node else None
    by = _by(node, match)
    if ("within" in node) == ("by" in node):
        node.problems.add(node.pos, "within-or-by",
                          "a deadline needs exactly one of 'within' (a time) and 'by' (a date)")
    escalate = (_duration(node, "escalate_after_due") if "escalate_after_due" in node
                else None)
    if len(node.problems.items) > problems_before or name is None or state is None:
        return None
    return Rule(name=name, state=state, within=within, by=by, met_by=met_by,
                pauses_in=pauses_in, escalate_after_due=escalate)


def _state(node: Node, key: str) -> str | None:
    value = node.text(key)
    if value is not None and value not in STATES:
        node.problems.add(node.value_pos(key), "unknown-state",
                          f"'{value}' is not a state{suggest(value, STATES)}")
        return None
    return value


def _states(node: Node, key: str) -> frozenset[str] | None:
    return _names(node, key, list(STATES))


def _duration(node: Node, key: str) -> Duration | None:
    """`{working_days: N}` or `{calendar_hours: N}` under `key`."""
    child = node.child(key, "a time: working_days or calendar_hours")
    if child is None:
        return None
    child.check_keys(UNITS)
    units = [unit for unit in UNITS if unit in child]
    if len(units) != 1:
        node.problems.add(node.value_pos(key), "bad-value",
                          f"'{key}' takes one of working_days or calendar_hours")
        return None
    unit = units[0]
    amount = child.get(unit)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= UNITS[unit]:
        child.problems.add(child.value_pos(unit), "bad-value",
                           f"{unit} is a whole number from 1 to {UNITS[unit]}")
        return None
    return Duration(unit="working_days" if unit == "working_days" else "calendar_hours",
                    amount=int(amount))


def _by(node: Node, match: Match | None) -> DateField | None:
    value = node.text("by") if "by" in node else None
    if value is None:
        return None
    if value not in DATE_FIELDS:
        node.problems.add(node.value_pos("by"), "bad-value",
                          f"'{value}' is not a date a referral carries{suggest(value, DATE_FIELDS)}"
                          f": one of {', '.join(DATE_FIELDS)}")
        return None
    if value == "transfer.return_date" and match is not None and match.kind != "transfer":
        node.problems.add(node.value_pos("by"), "bad-value",
                          "only a transfer carries transfer.return_date")
        return None
    return "services.due_date" if value == "services.due_date" else "transfer.return_date"


# ---------------------------------------------------------------------------- folders


def policy_files(folder: Path | None) -> list[Path]:
    """The policy files directly in `folder` (none when there is no folder)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def load_policies(paths: Iterable[Path], *, calendar_ids: Collection[str] | None = None,
                  contracts: Contracts | None = None) -> tuple[list[Policy], list[Problem]]:
    """The good policies among `paths`, and the problems of the others."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    codes = contracts or Contracts(ROOT / "contracts")
    for path in paths:
        policy, found = check_policy_file(path, calendar_ids=calendar_ids, contracts=codes)
        problems += found
        if policy is not None:
            policies.append(policy)
    return policies, problems
