"""Agreement health: renew before referrals start failing.

- agreements ending within `HORIZON_DAYS` (and those ended or not yet in force);
- partners still sending under an agreement about to end, or refused because the
  agreement that would cover them has ended (or has not begun), over the last
  `WINDOW_DAYS`;
- data categories senders keep sending that the agreement never allows (the need-to-know
  filter removes them): a sign the agreement or the sender's mapping needs a look.

Read from the agreements in force and the audit trail; ids, codes and counts only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from gateway.protection.agreements import Agreement
from gateway.protection.disclosures import entries_of
from gateway.store.models import AuditHead

HORIZON_DAYS = 60
WINDOW_DAYS = 30

Standing = Literal["ended", "ending", "not_yet", "in_force"]


@dataclass(frozen=True)
class Term:
    """Where one agreement stands on a day."""

    agreement: Agreement
    standing: Standing
    days_left: int | None  # days until its last day (0: ends today); None: open-ended

    @property
    def ends(self) -> date | None:
        return self.agreement.valid_to


@dataclass(frozen=True)
class Sending:
    """Referrals of one partner pair in the window under an agreement ending or ended."""

    agreement: str | None
    sender: str
    receiver: str | None
    sent: int
    refused: int
    days_left: int | None


@dataclass
class Health:
    today: date
    since: datetime
    terms: list[Term]
    sending: list[Sending]
    removed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (agreement, category)

    @property
    def removed_rows(self) -> list[tuple[str, str, int]]:
        """(agreement, category, referrals) of the categories never allowed, in order."""
        return [(agreement, category, count)
                for (agreement, category), count in sorted(self.removed.items())]

    def as_dict(self) -> dict[str, Any]:
        """Health as JSON."""
        return {
            "today": self.today.isoformat(), "horizon_days": HORIZON_DAYS,
            "window": {"days": WINDOW_DAYS, "since": self.since.isoformat()},
            "agreements": [{
                "agreement": t.agreement.id, "standing": t.standing, "days_left": t.days_left,
                "valid_from": _day(t.agreement.valid_from), "valid_to": _day(t.ends)}
                for t in self.terms],
            "sending": [{"agreement": s.agreement, "sender": s.sender, "receiver": s.receiver,
                         "sent": s.sent, "refused_not_valid": s.refused,
                         "days_left": s.days_left} for s in self.sending],
            "categories_not_allowed": [
                {"agreement": agreement, "category": category, "referrals": count}
                for agreement, category, count in self.removed_rows],
        }

    @property
    def attention(self) -> list[Term]:
        """Agreements ended, ending within the horizon, or not in force yet, soonest first."""
        return sorted((t for t in self.terms if t.standing != "in_force"),
                      key=lambda t: (t.days_left if t.days_left is not None else 10**6,
                                     t.agreement.id))


def term(agreement: Agreement, today: date) -> Term:
    """Where `agreement` stands on `today`."""
    days_left = (agreement.valid_to - today).days if agreement.valid_to is not None else None
    if days_left is not None and days_left < 0:
        standing: Standing = "ended"
    elif agreement.valid_from is not None and today < agreement.valid_from:
        standing = "not_yet"
    elif days_left is not None and days_left <= HORIZON_DAYS:
        standing = "ending"
    else:
        standing = "in_force"
    return Term(agreement, standing, days_left)


def health(session: Session, *, agreements: list[Agreement], now: datetime) -> Health:
    """Agreement health on `now`'s date, with the last `WINDOW_DAYS` of the audit trail."""
    today = now.date()
    terms = {a.id: term(a, today) for a in agreements}
    since = now - timedelta(days=WINDOW_DAYS)
    head = session.get(AuditHead, 1)
    sent: Counter[tuple[str | None, str, str | None]] = Counter()
    refused: Counter[tuple[str | None, str, str | None]] = Counter()
    removed: Counter[tuple[str, str]] = Counter()
    for entry in entries_of(session, ("referral.create", "referral.refuse"), since=since,
                            until=now, head=head.seq if head else 0):
        detail = entry.detail or {}
        pair = (detail.get("agreement"), entry.partner_id or "", detail.get("receiver"))
        if entry.action == "referral.create":
            standing = terms.get(pair[0] or "")
            if standing is not None and standing.standing in ("ending", "ended"):
                sent[pair] += 1
            for category in (detail.get("removed") or {}).get("agreement") or ():
                removed[(pair[0] or "", category)] += 1
        elif "agreement-validity" in (detail.get("rules") or ()) and \
                detail.get("redrive") != "failed":
            refused[pair] += 1
    sending = [Sending(pair[0], pair[1], pair[2], sent[pair], refused[pair],
                       terms[pair[0]].days_left if pair[0] in terms else None)
               for pair in sorted(set(sent) | set(refused),
                                  key=lambda p: (p[0] or "", p[1], p[2] or ""))]
    return Health(today, since, sorted(terms.values(), key=lambda t: t.agreement.id),
                  sending, removed)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
