"""Data-sharing agreements: the files IM officers keep, checked, in force, and which one applies.

One agreement per file, `agreements/<id>.yaml`, holding a `contracts/agreement.json`
document. `check_agreement_file` reports every problem of a file as
`file:line:column: rule: detail`; `AgreementRegistry` keeps the agreements in force,
rereads a file when it changes (a stat per file, cheap enough for every request), refuses
a file that fails its check while the last good version of it stays in force, and answers
which agreement covers a referral, or why none does. No agreement: nothing leaves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

import structlog
from ruamel.yaml.comments import CommentedMap

from gateway.checked_files import CheckedFiles, Refusal
from gateway.contracts import Contracts
from gateway.errors import ConsentProblem, FieldError
from gateway.json_pointer import tokens
from gateway.yamlpos import (
    Pos,
    Problems,
    display_path,
    follow,
    plain,
    pointer_pos,
    read_yaml,
    value_pos,
)

log = structlog.get_logger()

CONTRACT = "agreement"
PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
OutsideConsent = Literal["remove", "refuse"]
OnErasure = Literal["erase", "restrict"]


@dataclass(frozen=True)
class Agreement:
    """One data-sharing agreement in force, as its file says."""

    id: str
    title: str
    parties: frozenset[str]
    purposes: frozenset[str]
    service_types: frozenset[str] | None  # None: any service
    categories: dict[str, frozenset[str]] = field(hash=False)  # purpose → categories allowed
    retention_days: int
    requires_bia_for_children: bool
    requires_child_assent: bool
    outside_consent: OutsideConsent
    valid_from: date | None
    valid_to: date | None
    file: str
    content_hash: str
    on_erasure_request: OnErasure = "erase"
    # Parties that record consent in their own system and send none with a referral.
    consent_recorded_by: frozenset[str] = frozenset()
    # Partners told of the overdue deadlines of referrals under it (ids and times only).
    observers: frozenset[str] = frozenset()

    def valid_on(self, day: date) -> bool:
        """Whether the agreement applies on `day` (both ends included)."""
        return ((self.valid_from is None or self.valid_from <= day)
                and (self.valid_to is None or day <= self.valid_to))

    def allows(self, service_types: Iterable[str]) -> bool:
        """Whether every one of these services may be referred under this agreement."""
        return self.service_types is None or all(s in self.service_types for s in service_types)


# ---------------------------------------------------------------------------- checking


def check_agreement_file(path: Path, contracts: Contracts) -> tuple[Agreement | None, list[str]]:
    """The agreement in the file at `path`, or None and every problem found in it."""
    file = display_path(path)
    problems = Problems(file)
    raw, tree = read_yaml(path, problems)
    if problems:
        return None, [str(p) for p in problems]
    document = plain(tree)
    for error in contracts.validate(CONTRACT, document):
        problems.add(_position(tree, error), error.rule, _detail(error, document))
    if isinstance(document, dict):
        _check_meaning(path, tree, document, problems)
    if problems:
        return None, [str(p) for p in problems]
    return _agreement(document, file, "sha256:" + hashlib.sha256(raw).hexdigest()), []


def _check_meaning(path: Path, tree: CommentedMap, document: dict[str, Any],
                   problems: Problems) -> None:
    """The rules a JSON Schema cannot say: the file's name, dates in order, observers that
    are not parties."""
    agreement_id = document.get("id")
    if isinstance(agreement_id, str) and path.name != f"{agreement_id}.yaml":
        problems.add(value_pos(tree, "id"), "file-name",
                     f"the file of agreement '{agreement_id}' must be named {agreement_id}.yaml")
    valid_from, valid_to = _date_or_none(document, "valid_from"), _date_or_none(document,
                                                                               "valid_to")
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        problems.add(value_pos(tree, "valid_to"), "validity",
                     "valid_to must not be before valid_from")
    parties, observers = document.get("parties"), document.get("observers")
    if isinstance(parties, list) and isinstance(observers, list):
        for index, observer in enumerate(observers):
            if observer in parties:
                problems.add(pointer_pos(tree, ["observers", str(index)]), "observer-is-party",
                             f"'{observer}' is a party: parties hear of their own "
                             "referrals' deadlines already")
    for index, recorder in enumerate(document.get("consent_recorded_by") or []):
        if isinstance(parties, list) and recorder not in parties:
            problems.add(pointer_pos(tree, ["consent_recorded_by", str(index)]), "party",
                         "consent_recorded_by may only name parties of the agreement")


def _date_or_none(document: dict[str, Any], key: str) -> date | None:
    try:
        return date.fromisoformat(document[key])
    except (KeyError, TypeError, ValueError):
        return None


def _agreement(document: dict[str, Any], file: str, content_hash: str) -> Agreement:
    services = document.get("service_types")
    return Agreement(
        id=document["id"],
        title=document.get("title", ""),
        parties=frozenset(document["parties"]),
        purposes=frozenset(document["purposes"]),
        service_types=frozenset(services) if services is not None else None,
        categories={purpose: frozenset(categories)
                    for purpose, categories in document["data_categories"].items()},
        retention_days=document["retention_days"],
        requires_bia_for_children=document.get("requires_bia_for_children", False),
        requires_child_assent=document.get("requires_child_assent", False),
        outside_consent=cast(OutsideConsent, document.get("outside_consent", "remove")),
        valid_from=_date(document.get("valid_from")),
        valid_to=_date(document.get("valid_to")),
        file=file,
        content_hash=content_hash,
        on_erasure_request=cast(OnErasure, document.get("on_erasure_request", "erase")),
        consent_recorded_by=frozenset(document.get("consent_recorded_by", ())),
        observers=frozenset(document.get("observers", ())),
    )


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _detail(error: FieldError, document: Any) -> str:
    """The contract's explanation with the field it is about, never the value written."""
    parts = tokens(error.pointer)
    name = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts).lstrip(".")
    if not name:
        return ("the file must hold one agreement: keys and their values"
                if error.rule == "type" else error.detail)
    detail = error.detail
    if error.rule == "uniqueItems" and error.pointer == "/parties":
        parties = document.get("parties", [])
        twice = _first_repeat(parties)
        shown = str(parties[twice]) if twice is not None else ""
        detail = (f"lists '{shown}' twice: parties must be distinct"
                  if PARTNER_ID.fullmatch(shown) else "lists a party twice: parties must be "
                  "distinct")
    elif error.rule == "uniqueItems":
        detail = "lists the same code twice"
    elif error.rule == "minProperties":
        detail = "must name the categories allowed for at least one purpose"
    return f"'{name}' {detail}"


def _first_repeat(items: list[Any]) -> int | None:
    seen: list[Any] = []
    for index, item in enumerate(items):
        if item in seen:
            return index
        seen.append(item)
    return None


def _position(tree: Any, error: FieldError) -> Pos:
    """Where in the YAML the field named by the error's JSON Pointer is written; a repeated
    item of a list at its second appearance."""
    parts = tokens(error.pointer)
    if error.rule == "uniqueItems":
        repeat = _first_repeat(plain(follow(tree, parts)) or [])
        if repeat is not None:
            parts = [*parts, str(repeat)]
    return pointer_pos(tree, parts, at_key=error.rule == "additionalProperties")


# ---------------------------------------------------------------------------- in force


class AgreementRegistry:
    """Every agreement under `root` (`<id>.yaml`), reread when its file changes."""

    def __init__(self, root: Path, contracts: Contracts, *, max_refusals: int = 200) -> None:
        self.root = root
        self.contracts = contracts
        self._files = CheckedFiles(root, "*.yaml", lambda path: check_agreement_file(
            path, contracts), kind="agreement", max_refusals=max_refusals)

    @property
    def refusals(self) -> list[Refusal]:
        """The file versions refused, oldest first."""
        return self._files.refusals

    def in_force(self) -> list[Agreement]:
        """Every agreement in force now (after looking for changed files), by id."""
        self.refresh()
        return sorted(self._files.in_force().values(), key=lambda a: a.id)

    def refresh(self) -> list[str]:
        """Look for new, changed and removed files; return the files put in force just now."""
        return self._files.refresh()

    def observers(self, agreement_id: str | None) -> frozenset[str]:
        """The observers the agreement in force under this id names (none if it is gone)."""
        self.refresh()
        found = next((a for a in self._files.in_force().values() if a.id == agreement_id), None)
        return found.observers if found is not None else frozenset()

    def covering(self, *, sender: str, receiver: str, purpose: str,
                 service_types: Sequence[str], on: date,
                 among: Sequence[Agreement] | None = None) -> Agreement:
        """The most protective agreement covering this exchange, or ConsentProblem saying why.
        `among`: what `in_force()` gave, when read already (intake reads it once a group)."""
        between = [a for a in (self.in_force() if among is None else among)
                   if sender in a.parties and receiver in a.parties]
        if not between:
            raise _none_covers(sender, receiver, purpose, [FieldError(
                "/receiver/partner", "agreement-parties",
                f"no data-sharing agreement in force between '{sender}' and '{receiver}'")])
        for_purpose = [a for a in between if purpose in a.purposes]
        if not for_purpose:
            raise _none_covers(sender, receiver, purpose, [FieldError(
                "/kind", "agreement-purpose",
                f"{_named(between)} between '{sender}' and '{receiver}' "
                f"{_does(between)} not cover {purpose}s")])
        for_services = [a for a in for_purpose if a.allows(service_types)]
        if not for_services:
            raise _none_covers(sender, receiver, purpose,
                               _service_errors(for_purpose, service_types))
        valid = [a for a in for_services if a.valid_on(on)]
        if not valid:
            refusal = _none_covers(sender, receiver, purpose, [FieldError(
                "/receiver/partner", "agreement-validity", _validity(a, on))
                for a in for_services])
            # The one agreement that would cover it but is not in force: for the register.
            refusal.agreement = for_services[0].id if len(for_services) == 1 else None
            raise refusal
        return min(valid, key=lambda a: (len(a.categories.get(purpose, ())), a.id))


def _none_covers(sender: str, receiver: str, purpose: str,
                 errors: list[FieldError]) -> ConsentProblem:
    return ConsentProblem(
        f"No data-sharing agreement in force covers this {purpose} from '{sender}' to "
        f"'{receiver}'; nothing was stored.", errors,
        title="No data-sharing agreement covers this", slug="no-agreement", status=422)


def _service_errors(agreements: list[Agreement], service_types: Sequence[str]
                    ) -> list[FieldError]:
    """The services no agreement allows; or, if each is allowed by some, every one not by all."""
    named = _named(agreements)
    nowhere = [(i, s) for i, s in enumerate(service_types)
               if not any(a.allows([s]) for a in agreements)]
    if nowhere:
        return [FieldError(f"/services/{i}/type", "agreement-service-type",
                           f"{named} {_does(agreements)} not cover the service '{s}'")
                for i, s in nowhere]
    return [FieldError(f"/services/{i}/type", "agreement-service-type",
                       f"no single agreement covers every service asked ({named} considered); "
                       "send this service in a referral of its own")
            for i, s in enumerate(service_types) if not all(a.allows([s]) for a in agreements)]


def _validity(agreement: Agreement, on: date) -> str:
    if agreement.valid_to is not None and agreement.valid_to < on:
        return f"agreement '{agreement.id}' ended on {agreement.valid_to.isoformat()}"
    since = agreement.valid_from.isoformat() if agreement.valid_from is not None else "?"
    return f"agreement '{agreement.id}' applies only from {since}"


def _named(agreements: list[Agreement]) -> str:
    ids = ", ".join(f"'{a.id}'" for a in sorted(agreements, key=lambda a: a.id))
    return f"agreement {ids}" if len(agreements) == 1 else f"agreements {ids}"


def _does(agreements: list[Agreement]) -> str:
    return "does" if len(agreements) == 1 else "do"
