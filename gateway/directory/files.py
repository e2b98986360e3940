"""Directory files: the YAML IM officers keep in `directory/`, checked with file:line:column.

One country operation per file, `directory/<id>.yaml`: its areas (admin levels under the
country, with their codes, other names and postcodes) and its organisations, each with
its locations and services. `check_directory_file` reports every problem of a file as
`file:line:column: rule: message`, the way mappings, agreements and deadline policies are
checked, so a registry can keep the last good version of each file in force.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from gateway.directory.model import (
    LEVELS,
    Area,
    Availability,
    AvailabilityStatement,
    Contact,
    Eligibility,
    Hours,
    Location,
    Operation,
    Organization,
    Service,
)
from gateway.yamlpos import Node, Pos, Problem, Problems, display_path, read_top_mapping, suggest

ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
COUNTRY = re.compile(r"[A-Z]{3}")
POSTCODE = re.compile(r"[A-Z]{1,2}(?:[0-9][A-Z0-9]?)?")
LANGUAGE = re.compile(r"[a-z]{2,3}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
OLDEST = 130

TOP_KEYS = ("id", "title", "country", "country_name", "calendar", "areas", "organizations")
AREA_KEYS = ("id", "name", "level", "within", "codes", "aliases", "postcodes")
ORGANIZATION_KEYS = ("id", "name", "description", "partner", "website", "email", "contact",
                     "locations", "services")
LOCATION_KEYS = ("id", "name", "area", "address")
SERVICE_KEYS = ("id", "type", "name", "description", "areas", "at", "eligibility", "languages",
                "contact", "calendar", "hours", "availability")
ELIGIBILITY_KEYS = ("min_age", "max_age", "sex", "profiles", "nationalities", "legal_status",
                    "description")
CONTACT_KEYS = ("team", "name", "email", "phone")
HOURS_KEYS = ("opens", "closes")
AVAILABILITY_KEYS = ("status", "updated_at", "note")
CODE_LISTS = ("service-type", "sex", "profile", "legal-status")


def check_directory_file(path: Path, *, codes: Mapping[str, Collection[str]],
                         calendar_ids: Collection[str] | None = None
                         ) -> tuple[Operation | None, list[Problem]]:
    """The operation in the file at `path`, or None and every problem found in it.

    `codes`: the code lists by name (service-type, sex, profile, legal-status);
    `calendar_ids`: the calendars a file may name (None: any id is taken on trust).
    """
    file = display_path(path)
    problems = Problems(file)
    raw, node = read_top_mapping(path, problems, "a directory file",
                                 "id, country, areas, organizations")
    if node is None:
        return None, list(problems)
    operation = _Checker(node, codes, calendar_ids).operation(path, file)
    if problems or operation is None:
        return None, list(problems)
    return _hashed(operation, "sha256:" + hashlib.sha256(raw).hexdigest()), []


def _hashed(operation: Operation, content_hash: str) -> Operation:
    return replace(operation, content_hash=content_hash)


class _Checker:
    """The checks of one file, collecting every problem before giving up."""

    def __init__(self, top: Node, codes: Mapping[str, Collection[str]],
                 calendar_ids: Collection[str] | None) -> None:
        self.top = top
        self.problems = top.problems
        self.codes = codes
        self.calendar_ids = calendar_ids
        self.areas: dict[str, Area] = {}
        self.ids: dict[str, set[str]] = {"organization": set(), "location": set(),
                                          "service": set()}

    # -- the file ---------------------------------------------------------------------------

    def operation(self, path: Path, file: str) -> Operation | None:
        top = self.top
        top.check_keys(TOP_KEYS, required=("id", "title", "country", "organizations"))
        operation_id = self._id(top, "id", "the directory file")
        if operation_id is not None and path.name != f"{operation_id}.yaml":
            self.problems.add(top.value_pos("id"), "file-name",
                              f"the directory file '{operation_id}' must be named "
                              f"{operation_id}.yaml")
        title = top.text("title")
        country = top.text("country")
        if country is not None and not COUNTRY.fullmatch(country):
            self.problems.add(top.value_pos("country"), "bad-value",
                              f"'{country}' is not a three-letter ISO country code (e.g. ETH)")
            country = None
        country_name = top.text("country_name") if "country_name" in top else None
        calendar = self._calendar(top)
        if country is not None:
            self._areas(top, country)
        organizations = [o for pos, item in self._list(top, "organizations")
                         if (o := self._organization(pos, item)) is not None]
        if operation_id is None or title is None or country is None:
            return None
        return Operation(id=operation_id, title=title, country=country,
                         country_name=country_name or country,
                         areas=tuple(self.areas.values()), organizations=tuple(organizations),
                         calendar=calendar, file=file)

    # -- areas ------------------------------------------------------------------------------

    def _areas(self, top: Node, country: str) -> None:
        root = country.lower()
        for pos, item in self._list(top, "areas", required=False):
            node = self._mapping(pos, item, "an area", "id, name, level, within")
            if node is None:
                continue
            node.check_keys(AREA_KEYS, required=("id", "name"))
            area_id, name = self._id(node, "id", "an area"), node.text("name")
            if area_id is not None and (area_id in self.areas or area_id == root):
                self.problems.add(node.value_pos("id"), "duplicate-id",
                                  f"a second area '{area_id}'" if area_id != root else
                                  f"'{root}' is the country itself: give the area its own id")
                area_id = None
            level = self._choice(node, "level", LEVELS) if "level" in node else None
            within = node.text("within") if "within" in node else None
            if within is not None and within != root:
                parent = self.areas.get(within)
                if parent is None:
                    self.problems.add(node.value_pos("within"), "unknown-area",
                                      f"no area '{within}' above this one"
                                      f"{suggest(within, self.areas)}: list an area after "
                                      "the area it lies within")
                elif (level is not None and parent.level in LEVELS
                      and LEVELS.index(level) <= LEVELS.index(parent.level)):
                    self.problems.add(node.value_pos("level"), "bad-value",
                                      f"a {level} cannot lie within a {parent.level}")
            postcodes = self._texts(node, "postcodes", POSTCODE,
                                    "a postcode area (CF) or district (CF10), in capitals")
            if area_id is None or name is None:
                continue
            self.areas[area_id] = Area(
                id=area_id, name=name, country=country, level=level,
                within=within if within != root else None,
                codes=tuple(self._texts(node, "codes")),
                aliases=tuple(self._texts(node, "aliases")), postcodes=tuple(postcodes))

    def _area_ref(self, node: Node, pos: Pos, area_id: Any) -> str | None:
        country = self.top.get("country")
        known = {*self.areas, str(country).lower()}
        if isinstance(area_id, str) and area_id in known:
            return area_id
        self.problems.add(pos, "unknown-area", f"no area '{area_id}' in this file"
                          f"{suggest(str(area_id), known)}")
        return None

    # -- organisations ----------------------------------------------------------------------

    def _organization(self, pos: Pos, item: Any) -> Organization | None:
        node = self._mapping(pos, item, "an organization", "id, name, description, services")
        if node is None:
            return None
        node.check_keys(ORGANIZATION_KEYS, required=("id", "name", "description", "services"))
        org_id = self._unique(node, "organization")
        name, description = node.text("name"), node.text("description")
        partner = node.text("partner") if "partner" in node else None
        if partner is not None and not ID.fullmatch(partner):
            self.problems.add(node.value_pos("partner"), "bad-value",
                              "partner: a CaseBridge partner id (e.g. progres-eth)")
        website = node.text("website") if "website" in node else None
        if website is not None and not website.startswith(("https://", "http://")):
            self.problems.add(node.value_pos("website"), "bad-value",
                              "website: an address starting with https://")
        email = self._email(node)
        contact = self._contact(node)
        locations = [loc for lpos, litem in self._list(node, "locations", required=False)
                     if (loc := self._location(lpos, litem)) is not None]
        services = [s for spos, sitem in self._list(node, "services")
                    if (s := self._service(spos, sitem, org_id or "", locations)) is not None]
        if org_id is None or name is None or description is None:
            return None
        return Organization(id=org_id, name=name, description=description, partner=partner,
                            website=website, email=email, contact=contact,
                            locations=tuple(locations), services=tuple(services))

    def _location(self, pos: Pos, item: Any) -> Location | None:
        node = self._mapping(pos, item, "a location", "id, name, area, address")
        if node is None:
            return None
        node.check_keys(LOCATION_KEYS, required=("id", "name", "area"))
        location_id, name = self._unique(node, "location"), node.text("name")
        area = self._area_ref(node, node.value_pos("area"), node.get("area")) \
            if "area" in node else None
        address = node.text("address") if "address" in node else None
        if location_id is None or name is None or area is None:
            return None
        return Location(id=location_id, name=name, area=area, address=address)

    def _service(self, pos: Pos, item: Any, org_id: str, locations: list[Location]
                 ) -> Service | None:
        node = self._mapping(pos, item, "a service", "id, type, name, areas, availability")
        if node is None:
            return None
        node.check_keys(SERVICE_KEYS, required=("id", "type", "name", "areas", "availability"))
        service_id, name = self._unique(node, "service"), node.text("name")
        service_type = self._choice(node, "type", self.codes["service-type"])
        areas = [a for apos, item in self._list(node, "areas")
                 if (a := self._area_ref(node, apos, item)) is not None]
        if "areas" in node and isinstance(node.get("areas"), list) and not node.get("areas"):
            self.problems.add(node.value_pos("areas"), "bad-value",
                              "'areas' lists no area: a service is offered somewhere")
        location_ids = {loc.id for loc in locations}
        at = []
        for apos, location in self._list(node, "at", required=False):
            if location in location_ids:
                at.append(str(location))
            else:
                self.problems.add(apos, "unknown-location",
                                  f"no location '{location}' of this organization"
                                  f"{suggest(str(location), location_ids)}")
        availability = self._availability(node)
        # Every part is checked, whatever is wrong elsewhere: all problems at once.
        description = node.text("description") if "description" in node else None
        eligibility = self._eligibility(node)
        languages = self._texts(node, "languages", LANGUAGE,
                                "an ISO 639 language code (e.g. en, ar, nus)")
        contact, calendar, hours = self._contact(node), self._calendar(node), self._hours(node)
        if service_id is None or name is None or service_type is None or not areas \
                or availability is None:
            return None
        return Service(
            id=service_id, organization=org_id, type=service_type, name=name,
            areas=tuple(areas), availability=availability, description=description,
            at=tuple(at), eligibility=eligibility, languages=tuple(languages),
            contact=contact, calendar=calendar, hours=hours)

    def _eligibility(self, service: Node) -> Eligibility:
        if "eligibility" not in service:
            return Eligibility()
        node = service.child("eligibility", "the eligibility")
        if node is None:
            return Eligibility()
        node.check_keys(ELIGIBILITY_KEYS)
        min_age, max_age = self._age(node, "min_age"), self._age(node, "max_age")
        if min_age is not None and max_age is not None and max_age < min_age:
            self.problems.add(node.value_pos("max_age"), "bad-value",
                              "max_age is below min_age")
        return Eligibility(
            min_age=min_age, max_age=max_age,
            sex=frozenset(self._codes(node, "sex", "sex")),
            profiles=frozenset(self._codes(node, "profiles", "profile")),
            nationalities=frozenset(self._texts(node, "nationalities", COUNTRY,
                                                "a three-letter ISO country code (e.g. SSD)")),
            legal_status=frozenset(self._codes(node, "legal_status", "legal-status")),
            description=node.text("description") if "description" in node else None)

    def _availability(self, service: Node) -> AvailabilityStatement | None:
        if "availability" not in service:
            return None
        node = service.child("availability", "the availability")
        if node is None:
            return None
        node.check_keys(AVAILABILITY_KEYS, required=("status", "updated_at"))
        status = self._choice(node, "status", [a.value for a in Availability])
        updated_at = None
        text = node.text("updated_at")
        if text is not None:
            try:
                updated_at = datetime.fromisoformat(text)
            except ValueError:
                updated_at = None
            if updated_at is None or updated_at.tzinfo is None:
                self.problems.add(node.value_pos("updated_at"), "bad-value",
                                  "updated_at: a date and time with its offset, e.g. "
                                  "2026-11-20T09:00:00+03:00")
                updated_at = None
        note = node.text("note") if "note" in node else None
        if status is None or updated_at is None:
            return None
        return AvailabilityStatement(Availability(status), updated_at, note)

    def _hours(self, service: Node) -> Hours | None:
        if "hours" not in service:
            return None
        node = service.child("hours", "the opening hours")
        if node is None:
            return None
        node.check_keys(HOURS_KEYS, required=HOURS_KEYS)
        times = {}
        for key in HOURS_KEYS:
            text = node.text(key)
            if text is not None and not CLOCK.fullmatch(text):
                self.problems.add(node.value_pos(key), "bad-value",
                                  f"{key}: a time of day written HH:MM (e.g. 08:30)")
            elif text is not None:
                times[key] = text
        if len(times) < 2:
            return None
        if times["closes"] <= times["opens"]:
            self.problems.add(node.value_pos("closes"), "bad-value",
                              "closes must be after opens")
            return None
        return Hours(times["opens"], times["closes"])

    def _contact(self, owner: Node) -> Contact | None:
        if "contact" not in owner:
            return None
        node = owner.child("contact", "a contact")
        if node is None:
            return None
        node.check_keys(CONTACT_KEYS)
        if not any(key in node for key in CONTACT_KEYS):
            self.problems.add(node.pos, "bad-value", "a contact says at least a team, a name, "
                              "an email or a phone")
        return Contact(**{key: node.text(key) for key in CONTACT_KEYS if key != "email"
                          and key in node}, email=self._email(node))

    # -- values -----------------------------------------------------------------------------

    def _id(self, node: Node, key: str, what: str) -> str | None:
        value = node.text(key, required=True)
        if value is not None and not ID.fullmatch(value):
            self.problems.add(node.value_pos(key), "bad-value",
                              f"the id of {what}: lower-case letters, digits and dashes, "
                              "2 to 63 characters")
            return None
        return value

    def _unique(self, node: Node, kind: str) -> str | None:
        value = self._id(node, "id", f"a {kind}")
        if value is not None and value in self.ids[kind]:
            self.problems.add(node.value_pos("id"), "duplicate-id", f"a second {kind} '{value}'")
            return None
        if value is not None:
            self.ids[kind].add(value)
        return value

    def _calendar(self, node: Node) -> str | None:
        if "calendar" not in node:
            return None
        calendar = node.text("calendar")
        if calendar is not None and self.calendar_ids is not None \
                and calendar not in self.calendar_ids:
            self.problems.add(node.value_pos("calendar"), "unknown-calendar",
                              f"no calendar '{calendar}'{suggest(calendar, self.calendar_ids)}"
                              ": a built-in one (gb-eng, et, ss, ug …) or a file in calendars/")
            return None
        return calendar

    def _email(self, node: Node) -> str | None:
        email = node.text("email") if "email" in node else None
        if email is not None and not EMAIL.fullmatch(email):
            self.problems.add(node.value_pos("email"), "bad-value",
                              "email: an address like team@example.org")
            return None
        return email

    def _age(self, node: Node, key: str) -> int | None:
        if key not in node:
            return None
        value = node.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= OLDEST:
            return int(value)
        self.problems.add(node.value_pos(key), "bad-value",
                          f"{key}: whole years, 0 to {OLDEST}")
        return None

    def _choice(self, node: Node, key: str, allowed: Collection[str]) -> str | None:
        value = node.text(key, required=True)
        if value is not None and value not in allowed:
            choices = (f": {', '.join(allowed)}" if len(allowed) <= 8
                       else " (the codes are in contracts/codes/)")
            self.problems.add(node.value_pos(key), "unknown-code",
                              f"'{value}' is not a {key}{suggest(value, allowed)}{choices}")
            return None
        return value

    def _codes(self, node: Node, key: str, code_list: str) -> list[str]:
        allowed = self.codes[code_list]
        found = []
        for pos, item in self._list(node, key, required=False):
            if isinstance(item, str) and item in allowed:
                found.append(item)
            else:
                self.problems.add(pos, "unknown-code", f"'{item}' is not a code of "
                                  f"{code_list}{suggest(str(item), allowed)}")
        return found

    def _texts(self, node: Node, key: str, pattern: re.Pattern[str] | None = None,
               shape: str = "") -> list[str]:
        found = []
        for pos, item in self._list(node, key, required=False):
            if not isinstance(item, str) or not item.strip():
                self.problems.add(pos, "bad-value", f"each item of '{key}' is a non-empty text")
            elif pattern is not None and not pattern.fullmatch(item):
                self.problems.add(pos, "bad-value", f"'{item}' is not {shape}")
            else:
                found.append(str(item))
        return found

    def _list(self, node: Node, key: str, *, required: bool = True) -> list[tuple[Pos, Any]]:
        if key not in node:
            if required:
                self.problems.add(node.pos, "missing-key", f"{node.what} needs '{key}'")
            return []
        return node.items(key)

    def _mapping(self, pos: Pos, item: Any, what: str, holds: str) -> Node | None:
        if isinstance(item, CommentedMap):
            return Node(item, self.problems, what)
        self.problems.add(pos, "bad-value", f"each entry is {what}: a mapping of {holds}")
        return None


def directory_files(folder: Path | None) -> list[Path]:
    """The directory files directly in `folder` (none when there is no folder)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())
