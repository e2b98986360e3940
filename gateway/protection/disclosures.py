"""The disclosure register: what left, for whom, under which agreement — aggregates only.

For a period, per data-sharing agreement and partner pair: referrals and transfers made,
the data categories they carried and those the need-to-know filter removed (by the
agreement's rule or the consent's), refusals by reason, consent withdrawals and
data-subject erasures and restrictions with how fast each reached the receiver, and
retention purges.

Every figure is read from the audit trail, which outlives the referrals (a purge leaves
their entries) and is hash-chained: the register names the trail's head it was computed
up to, so an auditor can recompute it from `casebridge audit export` and trust it as far
as `casebridge audit verify` vouches for the trail. Nothing in it is personal: partner
and agreement ids, category and reason codes, counts and seconds.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import ConsentProblem, FieldError, MalformedRequest, ServiceNotOffered
from gateway.store.models import AuditEntry, AuditHead

# Why a referral was refused, from its problem and rules (see `refusal_reason`).
REFUSAL_REASONS = ("no_consent", "no_agreement", "agreement_not_valid", "outside_consent",
                   "child_safeguards", "not_enough_allowed")
REFUSAL_LABELS = {
    "no_consent": "no consent covering it",
    "no_agreement": "no agreement between the partners for it",
    "agreement_not_valid": "the agreement had ended or not begun",
    "outside_consent": "fields outside the consent (the agreement refuses them)",
    "child_safeguards": "a child's assent or Best Interests Assessment missing",
    "not_enough_allowed": "too little may be shared to make a referral",
}
# Whether a withdrawal, erasure or restriction reached the receiver (see `_reach`).
REACH = ("told", "pending", "nothing_to_tell", "tell_directly")
REACH_LABELS = {
    "told": "the receiver was told",
    "pending": "not yet told",
    "nothing_to_tell": "it had never reached the receiver",
    "tell_directly": "closed: staff must tell the receiver",
}
STOPS = {"consent.withdraw": "withdrawals", "subject.erase": "erasures",
         "subject.restrict": "restrictions"}
ACTIONS = ("referral.create", "referral.refuse", "referral.purge", *STOPS)
BATCH = 1000
DEFAULT_DAYS = 365


def refusal_facts(refusal: ConsentProblem | ServiceNotOffered) -> dict[str, Any]:
    """What the audit entry of a refusal keeps: its problem, its rules and, where the
    gateway established them, the receiver and the agreement (ids and codes only)."""
    facts: dict[str, Any] = {"problem": refusal.slug,
                             "rules": sorted({e.rule for e in refusal.errors})}
    if isinstance(refusal, ConsentProblem) and refusal.receiver is not None:
        facts["receiver"] = refusal.receiver
    if isinstance(refusal, ConsentProblem) and refusal.agreement is not None:
        facts["agreement"] = refusal.agreement
    return facts


def refusal_reason(problem: str | None, rules: Iterable[str]) -> str | None:
    """The register's reason for a refusal; None for a problem that is not about consent
    or agreements (a mapping or contract error of an inbound change, say)."""
    found = set(rules)
    if problem == "no-agreement":
        return "agreement_not_valid" if found == {"agreement-validity"} else "no_agreement"
    if problem == "child-safeguard-required":
        return "child_safeguards"
    if problem == "consent-required":
        if "consent-category" in found:
            return "outside_consent"
        if "needed-category" in found:
            return "not_enough_allowed"
        return "no_consent"
    return None


@dataclass
class Told:
    """How the withdrawals, erasures and restrictions of a row reached the receiver.

    told: the withdrawal reached the receiver's system (or the receiver read it through
    the API), after `seconds`; pending: not yet; nothing_to_tell: the referral had never
    reached the receiver; tell_directly: it had, but was closed, so no status could carry
    the news and staff must tell the receiver themselves.
    """

    counts: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def add(self, other: Told) -> None:
        self.counts.update(other.counts)
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**{outcome: self.counts[outcome] for outcome in REACH},
                "median_seconds": _round(statistics.median(self.seconds))
                if self.seconds else None,
                "max_seconds": _round(max(self.seconds)) if self.seconds else None}


@dataclass
class Row:
    """The register for one agreement and one partner pair (or the sum of several)."""

    agreement: str | None
    sender: str | None
    receiver: str | None
    referrals: int = 0
    transfers: int = 0
    categories_sent: Counter[str] = field(default_factory=Counter)
    removed_by_agreement: Counter[str] = field(default_factory=Counter)
    removed_by_consent: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    withdrawals: int = 0
    erasures: int = 0
    restrictions: int = 0
    told: Told = field(default_factory=Told)
    purges: int = 0

    def add(self, other: Row) -> None:
        for name in ("referrals", "transfers", "withdrawals", "erasures", "restrictions",
                     "purges"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("categories_sent", "removed_by_agreement", "removed_by_consent",
                     "refusals"):
            getattr(self, name).update(getattr(other, name))
        self.told.add(other.told)

    def as_dict(self, categories: Sequence[str]) -> dict[str, Any]:
        return {
            "agreement": self.agreement, "sender": self.sender, "receiver": self.receiver,
            "referrals": self.referrals, "transfers": self.transfers,
            "categories_sent": _counts(self.categories_sent, categories),
            "categories_removed": {
                "by_agreement": _counts(self.removed_by_agreement, categories),
                "by_consent": _counts(self.removed_by_consent, categories)},
            "refusals": _counts(self.refusals, REFUSAL_REASONS),
            "withdrawals": self.withdrawals, "erasures": self.erasures,
            "restrictions": self.restrictions, "receiver_told": self.told.as_dict(),
            "purges": self.purges,
        }


@dataclass
class Register:
    """The register of one period, computed from the audit trail up to `head_seq`."""

    since: datetime
    until: datetime
    generated_at: datetime
    head_seq: int
    head_hash: str
    categories: list[str]
    rows: list[Row]

    def by_agreement(self) -> list[Row]:
        """One row per agreement (None: refusals no agreement covered), each the sum of its
        partner pairs."""
        sums: dict[str | None, Row] = {}
        for row in self.rows:
            sums.setdefault(row.agreement, Row(row.agreement, None, None)).add(row)
        return sorted(sums.values(), key=lambda r: (r.agreement is None, r.agreement or ""))

    def total(self) -> Row:
        total = Row(None, None, None)
        for row in self.rows:
            total.add(row)
        return total

    def for_agreement(self, agreement_id: str) -> list[Row]:
        return [row for row in self.rows if row.agreement == agreement_id]

    def as_dict(self) -> dict[str, Any]:
        """The register as JSON: the period, the trail's head, rows, per agreement, total."""
        return {
            "period": {"since": self.since.isoformat(), "until": self.until.isoformat()},
            "generated_at": self.generated_at.isoformat(),
            "audit_head": {"seq": self.head_seq, "hash": self.head_hash},
            "rows": [row.as_dict(self.categories) for row in self.rows],
            "agreements": [row.as_dict(self.categories) for row in self.by_agreement()],
            "total": self.total().as_dict(self.categories),
        }

    def as_csv(self) -> str:
        """One line per agreement and partner pair, then per agreement (sender and receiver
        `*`), then the total (agreement `*`): the columns of a spreadsheet."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self._csv_header())
        for row in self.rows:
            writer.writerow(self._csv_row(row, row.agreement or "", row.sender or "",
                                          row.receiver or ""))
        for row in self.by_agreement():
            writer.writerow(self._csv_row(row, row.agreement or "", "*", "*"))
        writer.writerow(self._csv_row(self.total(), "*", "*", "*"))
        return out.getvalue()

    def _csv_header(self) -> list[str]:
        return ["agreement", "sender", "receiver", "referrals", "transfers",
                *(f"sent_{c}" for c in self.categories),
                *(f"removed_by_agreement_{c}" for c in self.categories),
                *(f"removed_by_consent_{c}" for c in self.categories),
                *(f"refused_{r}" for r in REFUSAL_REASONS),
                "withdrawals", "erasures", "restrictions",
                *(f"receiver_{o}" for o in REACH),
                "receiver_told_median_seconds", "receiver_told_max_seconds", "purges"]

    def _csv_row(self, row: Row, agreement: str, sender: str, receiver: str) -> list[Any]:
        told = row.told.as_dict()
        return [agreement, sender, receiver, row.referrals, row.transfers,
                *(row.categories_sent[c] for c in self.categories),
                *(row.removed_by_agreement[c] for c in self.categories),
                *(row.removed_by_consent[c] for c in self.categories),
                *(row.refusals[r] for r in REFUSAL_REASONS),
                row.withdrawals, row.erasures, row.restrictions,
                *(told[o] for o in REACH),
                _blank(told["median_seconds"]), _blank(told["max_seconds"]), row.purges]


def period(since: str | None, until: str | None, *, now: datetime
           ) -> tuple[datetime, datetime]:
    """The period from ISO 8601 dates or times (UTC when no zone is given; `until` not
    included); by default the 365 days up to `now`. MalformedRequest names a bad one."""
    end = _instant(until, "/until") if until else now
    start = _instant(since, "/since") if since else end - timedelta(days=DEFAULT_DAYS)
    if end <= start:
        raise MalformedRequest("The period ends before it begins.", slug="invalid-parameter",
                               errors=[FieldError("/until", "after-since",
                                                  "must be later than since")])
    return start, end


def _instant(value: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MalformedRequest("A date of the period cannot be read.", slug="invalid-parameter",
                               errors=[FieldError(where, "date-time",
                                                  "an ISO 8601 date or time, e.g. 2026-01-01")]
                               ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def register(session: Session, *, since: datetime, until: datetime, now: datetime,
             categories: Sequence[str]) -> Register:
    """The register of the entries written from `since` up to (not including) `until`."""
    head = session.get_one(AuditHead, 1)
    head_seq, head_hash = head.seq, head.hash
    rows: dict[tuple[str | None, str | None, str | None], Row] = {}

    def row(agreement: str | None, sender: str | None, receiver: str | None) -> Row:
        key = (agreement, sender, receiver)
        found = rows.get(key)
        if found is None:
            found = rows[key] = Row(agreement, sender, receiver)
        return found

    stops: list[AuditEntry] = []
    purges: list[AuditEntry] = []
    for entry in entries_of(session, ACTIONS, since=since, until=until, head=head_seq):
        detail = entry.detail or {}
        if entry.action == "referral.create":
            made = row(detail.get("agreement"), entry.partner_id, detail.get("receiver"))
            if detail.get("kind") == "transfer":
                made.transfers += 1
            else:
                made.referrals += 1
            made.categories_sent.update(detail.get("categories") or ())
            removed = detail.get("removed") or {}
            made.removed_by_agreement.update(removed.get("agreement") or ())
            made.removed_by_consent.update(removed.get("consent") or ())
        elif entry.action == "referral.refuse":
            reason = refusal_reason(detail.get("problem"), detail.get("rules") or ())
            if reason is not None and detail.get("redrive") != "failed":
                row(detail.get("agreement"), entry.partner_id,
                    detail.get("receiver")).refusals[reason] += 1
        elif entry.action == "referral.purge":
            purges.append(entry)
        else:
            stops.append(entry)
    made_by = _creations(session, [e.referral_id for e in (*stops, *purges) if e.referral_id],
                         head=head_seq)
    for entry in purges:
        detail = entry.detail or {}
        row(detail.get("agreement"), entry.partner_id, detail.get("receiver")).purges += 1
    later = _after(session, [e.referral_id for e in stops if e.referral_id], head=head_seq)
    for entry in stops:
        created = made_by.get(entry.referral_id or "", {})
        detail = entry.detail or {}
        receiver = detail.get("receiver") or created.get("receiver")
        stopped = row(detail.get("agreement", created.get("agreement")), entry.partner_id,
                      receiver)
        name = STOPS[entry.action]
        setattr(stopped, name, getattr(stopped, name) + 1)
        outcome, seconds = _reach(entry, receiver, later.get(entry.referral_id or "", []))
        stopped.told.counts[outcome] += 1
        if seconds is not None:
            stopped.told.seconds.append(seconds)
    ordered = sorted(rows.values(), key=lambda r: (r.agreement is None, r.agreement or "",
                                                   r.sender or "", r.receiver or ""))
    return Register(since, until, now, head_seq, head_hash, list(categories), ordered)


def entries_of(session: Session, actions: Sequence[str], *, since: datetime, until: datetime,
             head: int) -> Iterator[AuditEntry]:
    """The entries of `actions` in the period, in order, read in batches (on the index of
    action and time)."""
    after = 0
    while True:
        batch = list(session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(actions), AuditEntry.at >= since,
                                     AuditEntry.at < until, AuditEntry.seq > after,
                                     AuditEntry.seq <= head)
            .order_by(AuditEntry.seq).limit(BATCH)))
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


def _by_referral(session: Session, referral_ids: Sequence[str], actions: Sequence[str], *,
                 head: int) -> Iterator[AuditEntry]:
    """Every entry of `actions` about these referrals, whenever written, in order."""
    unique = sorted(set(referral_ids))
    for start in range(0, len(unique), BATCH):
        yield from session.scalars(
            select(AuditEntry).where(AuditEntry.referral_id.in_(unique[start:start + BATCH]),
                                     AuditEntry.action.in_(actions), AuditEntry.seq <= head)
            .order_by(AuditEntry.seq))


def _creations(session: Session, referral_ids: Sequence[str], *, head: int
               ) -> dict[str, dict[str, Any]]:
    """The detail of each referral's creation entry: its receiver and agreement."""
    return {e.referral_id or "": e.detail or {}
            for e in _by_referral(session, referral_ids, ["referral.create"], head=head)}


def _after(session: Session, referral_ids: Sequence[str], *, head: int
           ) -> dict[str, list[AuditEntry]]:
    """The deliveries and receiver reads of each referral, in order."""
    found: dict[str, list[AuditEntry]] = {}
    for entry in _by_referral(session, referral_ids, ["delivery.deliver", "referral.read"],
                              head=head):
        found.setdefault(entry.referral_id or "", []).append(entry)
    return found


def _reach(stop: AuditEntry, receiver: str | None, later: list[AuditEntry]
           ) -> tuple[str, float | None]:
    """Whether, and after how many seconds, a withdrawal reached the receiver."""
    for entry in later:
        detail = entry.detail or {}
        if entry.seq <= stop.seq:
            continue
        told = (entry.action == "delivery.deliver" and detail.get("type") == "status"
                and detail.get("state") == "withdrawn" and entry.partner_id == receiver)
        read = entry.action == "referral.read" and entry.partner_id == receiver
        if told or read:
            return "told", (entry.at - stop.at).total_seconds()
    if not any(e.action == "delivery.deliver" and (e.detail or {}).get("type") == "deliver"
               for e in later):
        return "nothing_to_tell", None
    if not (stop.detail or {}).get("receiver_told"):
        return "tell_directly", None
    return "pending", None


def _counts(counter: Counter[str], keys: Sequence[str]) -> dict[str, int]:
    return {key: counter[key] for key in keys}


def _round(seconds: float) -> float:
    return round(seconds, 1)


def _blank(value: Any) -> Any:
    return "" if value is None else value
