"""The one small interface the gateway calls on every partner system.

An adapter speaks its system's native API (auth and token refresh, paging, rate limits,
native errors) and nothing else: no business rules, no mapping. It takes and returns
*native records* — plain dicts in the shape the system's mapping files describe — and
classifies every failure as `TransientDeliveryError` (retry) or `PermanentDeliveryError`
(dead-letter). Every create is idempotent: the gateway's referral id is written into
the partner's record (an external reference field) and looked up before creating, so a
retry never makes a second record. Alerts likewise: what shows an alert carries its mark
(`adapters.alerts`), so an alert delivered twice shows once.
"""

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ChangeKind = Literal["referral", "transfer", "status"]


@dataclass(frozen=True)
class NativeChange:
    """Something that happened at the partner since the last poll.

    `kind` is `referral` or `transfer` for a new outgoing record raised at the partner, or
    `status` for a status change of a record exchanged through the gateway.
    `referral_id` is the gateway's id when the record carries one (status changes of
    records the gateway created), else None (a new outgoing record).
    `problem` says why the adapter could not read a change it was told of (a feed event
    without the fields it needs, a record that answers garbage): the poller records such a
    change as an inbound dead letter instead of losing it. Ids and codes only, no values.
    `channel` is the system's channel the record came by (None: its main one), which
    decides the mapping that reads it.
    """

    kind: ChangeKind
    native_id: str
    record: dict[str, Any]
    referral_id: str | None = None
    changed_at: str | None = None
    problem: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Discovery:
    """One poll's findings and the cursor to pass to the next poll."""

    changes: list[NativeChange] = field(default_factory=list)
    cursor: str | None = None


class PartnerAdapter(Protocol):
    """What the gateway needs from a partner system."""

    system: str
    channel: str | None
    """Which of the system's channels the adapter speaks (None: its main one): the gateway
    translates its records with the mapping files of that channel."""
    shows_alerts: bool
    """Whether `alert` shows deadline alerts in the partner's system; when False the worker
    does not call it and the alerts wait at GET /v1/alerts."""

    def discover(self, *, cursor: str | None) -> Discovery:
        """New outgoing referrals/transfers and status changes since `cursor` (None: from now)."""
        ...

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        """Create the referral or transfer at the partner, or find the one made before.

        Returns the partner's native id. Calling it twice with the same `referral_id`
        returns the same native id and creates nothing new.
        """
        ...

    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]) -> None:
        """Set the status of a record at the partner; `status` is the native status record."""
        ...

    def read(self, *, native_id: str) -> dict[str, Any]:
        """The native record as the partner holds it now."""
        ...

    def alert(self, *, native_id: str, referral_id: str, alert: dict[str, Any]) -> None:
        """Show a deadline alert (`contracts/alert.json`) on the partner's record `native_id`.

        `overdue` and `escalated` put a flag up in the system's own construct; `cleared`
        takes down what that deadline put up (or, where the system cannot, records that it
        cleared). The same `alert_id` delivered twice changes nothing the second time.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
