"""Deadline alerts: what a partner is told when a deadline is missed (overdue), still missed
at the second threshold (escalated), or no longer missed (cleared) — `contracts/alert.json`.

An alert is built from its deadline event and the envelope that addressed it to one
partner, so the worker (which hands it to the partner's system) and the API (where a
partner without an adapter, or an observer, reads it) give the same document. Envelope
data only: ids, states, deadline names and instants, never anything about the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from gateway.store.models import DeadlineEvent

Flag = Literal["overdue", "escalated", "cleared"]
Role = Literal["sender", "receiver", "observer"]
# The deadline event that records each flag.
EVENT_OF: dict[Flag, str] = {"overdue": "raised", "escalated": "escalated",
                             "cleared": "cleared"}


def alert_id(deadline_event_id: int) -> str:
    """The alert's id: one per deadline event, the same however often it is sent."""
    return f"alert-{deadline_event_id}"


def instant(at: datetime | None) -> str | None:
    """An instant as the alert writes it: ISO 8601 in UTC."""
    return None if at is None else at.isoformat()


def alert_document(event: DeadlineEvent, *, kind: str, role: str) -> dict[str, Any]:
    """The alert `event` (a raised, escalated or cleared deadline event) makes for a partner
    in `role` on a referral of `kind`."""
    detail: Mapping[str, Any] = event.detail
    flag: Flag = detail["flag"]
    document: dict[str, Any] = {
        "alert_id": alert_id(event.id), "referral_id": event.referral_id, "kind": kind,
        "flag": flag, "deadline": detail["deadline"], "policy": detail["policy"],
        "state": detail["state"], "due_at": detail["due_at"], "at": instant(event.at),
        "role": role,
    }
    if detail.get("escalate_at"):
        document["escalate_at"] = detail["escalate_at"]
    document["message"] = message(document)
    return document


_TOLD = {
    "receiver": " Please act on it, or update its status.",
    "sender": " The receiver is told too.",
    "observer": " You are told as an observer named in the data-sharing agreement.",
}


def message(alert: Mapping[str, Any]) -> str:
    """One plain sentence for the caseworker, made from the alert's fields only."""
    kind, flag = alert["kind"], alert["flag"]
    due = _readable(alert["due_at"])
    what = (f"The {kind} {alert['referral_id']}: its deadline '{alert['deadline']}' (from "
            f"{alert['state'].replace('_', ' ')})")
    if flag == "cleared":
        return f"{what} is no longer overdue: the {kind} moved on."
    if flag == "escalated":
        return f"{what} fell due {due} and is still not met: it is escalated.{_TOLD[alert['role']]}"
    later = (f" It escalates {_readable(alert['escalate_at'])} if still not met."
             if alert.get("escalate_at") else "")
    return (f"{what} fell due {due} and the {kind} has not moved on: it is overdue.{later}"
            f"{_TOLD[alert['role']]}")


def _readable(text: str) -> str:
    return f"on {datetime.fromisoformat(text):%Y-%m-%d at %H:%M} UTC"
