"""What every adapter needs to show a deadline alert on a partner's record, and find it again.

An alert (`contracts/alert.json`) says that one deadline of a referral went overdue,
escalated or was cleared. Each adapter shows it in its own system's construct (a Primero
flag, a proGres task, an nDelius alert contact), and writes one **mark** into it:

    urn:casebridge:alert:<deadline key>:<alert key>

`<deadline key>` is the same for the overdue, escalated and cleared alerts of one deadline
(a digest of the referral id, the state that started the clock and the deadline's name), so
a cleared alert finds the flags its deadline raised; `<alert key>` is a digest of the
alert id, so an alert delivered twice finds what it made the first time. Digests, so that
the mark is short (a Primero flag reason shows 255 characters) and the same in every
system; `read_alert(alert).mark` computes it, to search a partner's records for.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.errors import PermanentDeliveryError

Flag = Literal["overdue", "escalated", "cleared"]
FLAGS: tuple[Flag, ...] = ("overdue", "escalated", "cleared")
PREFIX = "urn:casebridge:alert:"
_MARK = re.compile(rf"{re.escape(PREFIX)}([0-9a-f]{{16}}):([0-9a-f]{{16}})")
_REQUIRED = ("alert_id", "referral_id", "deadline", "state", "due_at", "at", "message")


@dataclass(frozen=True)
class Mark:
    """The mark an adapter writes into the flag, task or contact that shows an alert."""

    deadline: str
    alert: str

    def __str__(self) -> str:
        return f"{self.of_deadline}{self.alert}"

    @property
    def of_deadline(self) -> str:
        """How every mark of this deadline's alerts begins."""
        return f"{PREFIX}{self.deadline}:"

    @classmethod
    def found_in(cls, text: Any) -> "Mark | None":
        """The mark written in `text` (a flag reason, a task column, a contact reference)."""
        match = _MARK.search(text) if isinstance(text, str) else None
        return cls(deadline=match[1], alert=match[2]) if match else None


@dataclass(frozen=True)
class Alert:
    """A checked alert: the fields an adapter renders, and its mark."""

    alert_id: str
    flag: Flag
    due_at: datetime
    at: datetime
    message: str
    mark: Mark

    @property
    def raised(self) -> bool:
        """Whether it puts a flag up (overdue, escalated) rather than taking one down."""
        return self.flag != "cleared"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _instant(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentDeliveryError(f"the alert's {name} is not a date-time",
                                     partner_code="invalid_alert") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def read_alert(alert: dict[str, Any]) -> Alert:
    """The alert an adapter was given, checked; a malformed one is a permanent error."""
    missing = [k for k in _REQUIRED if not isinstance(alert.get(k), str) or not alert[k]]
    flag = alert.get("flag")
    if missing or flag not in FLAGS:
        what = ", ".join(missing) if missing else "flag"
        raise PermanentDeliveryError(f"the alert has no valid {what}",
                                     partner_code="invalid_alert")
    deadline = _digest(f"{alert['referral_id']}\n{alert['state']}\n{alert['deadline']}")
    return Alert(alert_id=alert["alert_id"], flag=flag,
                 due_at=_instant(alert["due_at"], "due_at"), at=_instant(alert["at"], "at"),
                 message=alert["message"],
                 mark=Mark(deadline=deadline, alert=_digest(alert["alert_id"])))


def shortened(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
