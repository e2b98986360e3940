"""Task search parameters: read from a query string or a Subscription's criteria, checked,
and turned into store conditions or a test of one Task.

    owner=Organization/<partner id>      the receiver (several, comma-separated: any of them)
    requester=Organization/<partner id>  the sender
    status=<Task status>                 requested, received, accepted, rejected, in-progress,
                                         on-hold, completed, cancelled, failed
    _id=<referral id>
    _lastUpdated=gt|ge|lt|le<instant>    changed after, at or after, before, at or before
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from sqlalchemy import ColumnElement

from gateway.errors import FieldError, MalformedRequest
from gateway.store.models import Referral

PARAMETERS = ("owner", "requester", "status", "_id", "_lastUpdated")
TASK_STATUSES = frozenset({"draft", "requested", "received", "accepted", "rejected", "ready",
                           "cancelled", "in-progress", "on-hold", "failed", "completed",
                           "entered-in-error"})
_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_REFERRAL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_COMPARATORS = {"gt": "__gt__", "ge": "__ge__", "lt": "__lt__", "le": "__le__"}


@dataclass(frozen=True)
class TaskQuery:
    """What a search or a subscription asks of Tasks; each part narrows, an empty one not."""

    owners: frozenset[str] = frozenset()
    requesters: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    updated: tuple[tuple[str, datetime], ...] = ()

    def conditions(self, states_of: Callable[[Iterable[str]], list[str]]
                   ) -> list[ColumnElement[bool]]:
        """Store conditions on referrals; `states_of` gives the canonical states shown as
        these Task statuses."""
        found: list[ColumnElement[bool]] = []
        if self.owners:
            found.append(Referral.receiver_id.in_(sorted(self.owners)))
        if self.requesters:
            found.append(Referral.sender_id.in_(sorted(self.requesters)))
        if self.statuses:
            found.append(Referral.status.in_(states_of(self.statuses)))
        if self.ids:
            found.append(Referral.id.in_(sorted(self.ids)))
        for prefix, instant in self.updated:
            found.append(getattr(Referral.updated_at, _COMPARATORS[prefix])(instant))
        return found

    def matches(self, referral: Referral, task_status: str) -> bool:
        """Whether the Task of `referral`, now in `task_status`, is one this query asks for."""
        return ((not self.owners or referral.receiver_id in self.owners)
                and (not self.requesters or referral.sender_id in self.requesters)
                and (not self.statuses or task_status in self.statuses)
                and (not self.ids or referral.id in self.ids))


def parse(items: Iterable[tuple[str, str]], *, allowed: Iterable[str] = PARAMETERS
          ) -> TaskQuery:
    """A TaskQuery from (name, value) pairs; MalformedRequest names each bad parameter."""
    allowed = set(allowed)
    values: dict[str, set[str]] = {"owner": set(), "requester": set(), "status": set(),
                                   "_id": set()}
    updated: list[tuple[str, datetime]] = []
    errors: list[FieldError] = []
    for name, value in items:
        if name not in allowed:
            errors.append(FieldError(f"/{name}", "unknown-parameter", "not a search parameter "
                                     f"here; use {', '.join(sorted(allowed))}"))
        elif name == "_lastUpdated":
            instant = _prefixed_instant(value)
            if instant is None:
                errors.append(FieldError("/_lastUpdated", "format",
                                         "gt, ge, lt or le followed by a date or an instant, "
                                         "e.g. gt2026-11-20T08:00:00Z"))
            else:
                updated.append(instant)
        else:
            for one in value.split(","):
                error = _check(name, one)
                if error:
                    errors.append(FieldError(f"/{name}", "format", error))
                else:
                    values[name].add(_partner(one) if name in ("owner", "requester") else one)
    if errors:
        raise MalformedRequest("A search parameter is not valid.", slug="invalid-parameter",
                               errors=errors)
    return TaskQuery(owners=frozenset(values["owner"]),
                     requesters=frozenset(values["requester"]),
                     statuses=frozenset(values["status"]), ids=frozenset(values["_id"]),
                     updated=tuple(updated))


def parse_criteria(criteria: str) -> TaskQuery:
    """The TaskQuery of a Subscription's criteria: `Task` or `Task?<parameters>`."""
    resource, _, query = criteria.partition("?")
    if resource != "Task":
        raise MalformedRequest("A subscription watches Tasks.", errors=[FieldError(
            "/criteria", "criteria", "Task, or Task?<owner, requester, status or _id>")])
    try:
        return parse(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)),
                     allowed=("owner", "requester", "status", "_id"))
    except ValueError:
        raise MalformedRequest("The criteria are not a query string.", errors=[FieldError(
            "/criteria", "criteria", "Task?name=value&name=value")]) from None
    except MalformedRequest as error:
        raise MalformedRequest("The criteria are not valid.", errors=[
            FieldError("/criteria", e["rule"], f"{e['pointer'][1:]}: {e['detail']}")
            for e in error.extensions["errors"]]) from None


def _partner(reference: str) -> str:
    return reference.rsplit("Organization/", 1)[-1]


def _check(name: str, value: str) -> str | None:
    """Why a value of a search parameter is not valid, or None."""
    if name in ("owner", "requester"):
        return None if _PARTNER_ID.match(_partner(value)) else \
            "Organization/<partner id>, or the partner id"
    if name == "status":
        return None if value in TASK_STATUSES else \
            f"a Task status: {', '.join(sorted(TASK_STATUSES))}"
    return None if _REFERRAL_ID.match(value) else "a Task id (the referral id, a UUID)"


def _prefixed_instant(value: str) -> tuple[str, datetime] | None:
    prefix, text = value[:2], value[2:]
    if prefix not in _COMPARATORS:
        return None
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return prefix, instant if instant.tzinfo else instant.replace(tzinfo=UTC)
