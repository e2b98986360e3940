"""Deadline alerts (`contracts/alert.json`) as the gateway hands them to an adapter."""

import uuid
from typing import Any

MESSAGES = {
    "overdue": "Referral {short} is overdue: {deadline} was due 2027-01-07.",
    "escalated": "Referral {short} is still overdue: {deadline} was due 2027-01-07; "
                 "escalated.",
    "cleared": "Referral {short} is no longer overdue: {deadline} met.",
}
AT = {"overdue": "2027-01-07T21:00:05Z", "escalated": "2027-01-08T21:00:05Z",
      "cleared": "2027-01-09T08:00:00Z"}


def make_alert(flag: str, *, referral_id: str, deadline: str = "acknowledge",
               state: str = "delivered", alert_id: str | None = None,
               role: str = "receiver") -> dict[str, Any]:
    """A valid alert of `flag` for one deadline of `referral_id` (a new alert id unless given)."""
    return {
        "alert_id": alert_id or str(uuid.uuid4()), "referral_id": referral_id,
        "kind": "referral", "flag": flag, "deadline": deadline,
        "policy": "humanitarian-referrals-ethiopia", "state": state,
        "due_at": "2027-01-07T21:00:00Z", "escalate_at": "2027-01-08T21:00:00Z",
        "at": AT[flag], "role": role,
        "message": MESSAGES[flag].format(short=referral_id[:8], deadline=deadline),
    }
