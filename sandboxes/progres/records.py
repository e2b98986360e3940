"""Reading, writing and shaping rows as the Dataverse Web API does.

A row leaves as `{"@odata.etag": "W/\"<version>\"", <key>: <guid>, …}` with date-times as
`2026-11-23T08:16:33Z`, lookups as `_<name>_value` GUIDs, and — when the client asked with
`Prefer: odata.include-annotations=…` — `@OData.Community.Display.V1.FormattedValue`
labels, `@Microsoft.Dynamics.CRM.lookuplogicalname` and
`@Microsoft.Dynamics.CRM.associatednavigationproperty`. A row comes in as plain
properties plus `<navprop>@odata.bind: "/<set>(<guid>)"` for lookups.
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from sandboxes.progres import rules
from sandboxes.progres.auth import Principal
from sandboxes.progres.errors import (
    BAD_PAYLOAD,
    BAD_PROPERTY,
    DUPLICATE,
    NOT_FOUND,
    OPTION_OUT_OF_RANGE,
    STALE_ETAG,
    TOO_LONG,
    ODataError,
    bad_property,
    not_found,
)
from sandboxes.progres.odata import (
    MAX_PAGE_SIZE,
    Query,
    after_condition,
    encode_skiptoken,
    parse_datetime,
    parse_query,
    parse_select,
)
from sandboxes.progres.schema import BY_LOGICAL, BY_SET, Column, Entity, Kind
from sandboxes.progres.store import SEQ, Store, polymorphic_type_column, utcnow

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BIND = re.compile(r"^(?:.*/)?(?P<set>[A-Za-z_]+)\((?P<key>[0-9a-fA-F-]{36})\)$")
_ALTERNATE = re.compile(
    r"^(?P<name>[A-Za-z_]+)=(?:'(?P<text>(?:[^']|'')*)'|(?P<guid>[0-9a-fA-F-]{36}))$")


@dataclass(frozen=True)
class Annotations:
    """Which instance annotations the client asked for (`odata.include-annotations`)."""

    wanted: frozenset[str] = field(default_factory=frozenset)

    def includes(self, term: str) -> bool:
        return any(w in ("*", term) or (w.endswith(".*") and term.startswith(w[:-1]))
                   for w in self.wanted)


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S}Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


def formatted(column: Column, value: Any) -> str:
    if column.choices is not None:
        return column.choices.get(value, str(value))
    if column.kind == Kind.BOOL:
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        hour = value.hour % 12 or 12
        return (f"{value.month}/{value.day}/{value.year} {hour}:{value:%M} "
                f"{'AM' if value.hour < 12 else 'PM'}")
    if isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    if column.kind == Kind.INT:
        return f"{value:,}"
    return str(value)


class Shaper:
    """Turns stored rows into Web API rows; caches lookup names for one request."""

    def __init__(self, store: Store, conn: Connection, entity: Entity, *,
                 select: tuple[str, ...] | None, annotations: Annotations) -> None:
        self.store = store
        self.conn = conn
        self.entity = entity
        self.annotations = annotations
        self.columns = entity.all_columns()
        self.lookups = {lk.attribute: lk for lk in entity.all_lookups().values()}
        names = list(select) if select else [*self.columns, *self.lookups]
        if entity.key not in names:
            names.insert(0, entity.key)
        self.names = names
        self._names: dict[tuple[str, str], str | None] = {}

    def shape(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(row)}
        for name in self.names:
            value = row[name]
            out[name] = json_value(value)
            if value is None:
                continue
            if name in self.lookups:
                self._annotate_lookup(out, name, row)
            elif name != self.entity.key and self.annotations.includes(FORMATTED):
                column = self.columns[name]
                if column.kind not in (Kind.STRING, Kind.MEMO, Kind.GUID):
                    out[f"{name}@{FORMATTED}"] = formatted(column, value)
        return out

    def _annotate_lookup(self, out: dict[str, Any], attribute: str,
                         row: Mapping[str, Any]) -> None:
        lookup = self.lookups[attribute]
        target = (row[polymorphic_type_column(attribute)] if len(lookup.targets) > 1
                  else lookup.targets[0])
        if self.annotations.includes(FORMATTED):
            cache_key = (target, row[attribute])
            if cache_key not in self._names:
                self._names[cache_key] = self.store.primary_name(self.conn, target,
                                                                  row[attribute])
            out[f"{attribute}@{FORMATTED}"] = self._names[cache_key]
        if self.annotations.includes(NAVIGATION):
            navprop = next(n for n, t in lookup.navprops.items() if t == target)
            out[f"{attribute}@{NAVIGATION}"] = navprop
        if self.annotations.includes(LOGICAL_NAME):
            out[f"{attribute}@{LOGICAL_NAME}"] = target


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    skiptoken: str | None
    count: int | None


def query_records(store: Store, entity: Entity, params: Mapping[str, str], *,
                  page_size: int, annotations: Annotations) -> Page:
    """One page of a collection query, and the skip token of the next page if there is one."""
    table = store.table(entity)
    query: Query = parse_query(params, entity, table)
    limit = query.top if query.top is not None else min(page_size, MAX_PAGE_SIZE)
    statement = select(table).where(query.where)
    kind = entity.properties()[query.orderby.name] if query.orderby else None
    if query.after is not None:
        statement = statement.where(after_condition(table, SEQ, query.orderby, kind,
                                                    query.after))
    if query.orderby is not None:
        column = table.c[query.orderby.name]
        statement = statement.order_by(column.desc() if query.orderby.descending else column)
    statement = statement.order_by(table.c[SEQ]).limit(limit + 1)
    with store.reading() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
        count = None
        if query.count:
            count = min(MAX_PAGE_SIZE, conn.execute(
                select(func.count()).select_from(table).where(query.where)).scalar() or 0)
        more = len(rows) > limit and query.top is None
        rows = rows[:limit]
        token = None
        if more:
            last = rows[-1]
            value = last[query.orderby.name] if query.orderby else None
            token = encode_skiptoken(value is None, value, last[SEQ])
        shaper = Shaper(store, conn, entity, select=query.select, annotations=annotations)
        return Page(rows=[shaper.shape(r) for r in rows], skiptoken=token, count=count)


def find_key(store: Store, conn: Connection, entity: Entity, segment_key: str) -> str | None:
    """The GUID of the row a key segment names: `(<guid>)`, `(<key>=<guid>)` or an
    alternate key `(progres_orgreferralid='…')`."""
    if _GUID.match(segment_key):
        return segment_key.lower()
    match = _ALTERNATE.match(segment_key)
    if match is None:
        raise ODataError(400, BAD_PROPERTY, f"Bad key segment '({segment_key})'.")
    name = match["name"]
    if name == entity.key and match["guid"]:
        return match["guid"].lower()
    if name not in entity.alternate_keys or match["text"] is None:
        raise ODataError(400, BAD_PROPERTY,
                         f"'{name}' is not a key of {entity.logical}; the keys are "
                         f"{', '.join((entity.key, *entity.alternate_keys))}.")
    row = store.find(conn, entity, name, match["text"].replace("''", "'"))
    return None if row is None else str(row[entity.key])


def read_record(store: Store, entity: Entity, segment_key: str, *,
                select_text: str | None, annotations: Annotations) -> dict[str, Any]:
    names = parse_select(select_text, entity)
    with store.reading() as conn:
        key = find_key(store, conn, entity, segment_key)
        row = store.get(conn, entity, key) if key else None
        if row is None:
            raise not_found(entity.logical, key or segment_key)
        return Shaper(store, conn, entity, select=names, annotations=annotations).shape(row)


def shape_one(store: Store, entity: Entity, row: Mapping[str, Any], *,
              annotations: Annotations) -> dict[str, Any]:
    with store.reading() as conn:
        return Shaper(store, conn, entity, select=None, annotations=annotations).shape(row)


def create_record(store: Store, entity: Entity, body: Any, *, principal: Principal,
                  office: str) -> dict[str, Any]:
    """Create a row (POST); returns the stored row."""
    with store.writing() as conn:
        return _create(store, conn, entity, body, principal=principal, office=office, key=None)


def update_record(store: Store, entity: Entity, key: str, body: Any, *,
                  principal: Principal, office: str,
                  if_match: str | None) -> tuple[dict[str, Any], bool]:
    """Update a row (PATCH); with no `If-Match` a missing row is created (an upsert).

    Returns the stored row and whether it was created.
    """
    now = utcnow()
    with store.writing() as conn:
        before = store.get(conn, entity, key)
        if before is None:
            if if_match is not None:
                raise not_found(entity.logical, key)
            return _create(store, conn, entity, body, principal=principal, office=office,
                           key=key), True
        if if_match not in (None, "*") and if_match != etag(before):
            raise ODataError(412, STALE_ETAG,
                             "The version of the existing record doesn't match the "
                             "RowVersion property provided.")
        values = read_payload(store, conn, entity, body, creating=False)
        rules.apply(store, conn, rules.Change(entity, before, values,
                                              user_id=principal.user_id, now=now),
                    office=office)
        _check_alternate_keys(store, conn, entity, values, current=key)
        return store.update(conn, entity, key, values, user_id=principal.user_id, now=now), False


def _create(store: Store, conn: Connection, entity: Entity, body: Any, *,
            principal: Principal, office: str, key: str | None) -> dict[str, Any]:
    now = utcnow()
    values = read_payload(store, conn, entity, body, creating=True)
    if key is not None:
        values[entity.key] = key
    if values.get(entity.key) and store.exists(conn, entity.logical, values[entity.key]):
        raise ODataError(409, DUPLICATE, "Cannot insert duplicate key.")
    rules.apply(store, conn, rules.Change(entity, None, values, user_id=principal.user_id,
                                          now=now), office=office)
    _check_alternate_keys(store, conn, entity, values, current=None)
    try:
        return store.insert(conn, entity, values, user_id=principal.user_id, now=now)
    except IntegrityError:
        raise ODataError(409, DUPLICATE, "Cannot insert duplicate key.") from None


def delete_record(store: Store, entity: Entity, key: str) -> None:
    with store.writing() as conn:
        if store.get(conn, entity, key) is None:
            raise not_found(entity.logical, key)
        store.delete(conn, entity, key)


def _check_alternate_keys(store: Store, conn: Connection, entity: Entity,
                          values: Mapping[str, Any], *, current: str | None) -> None:
    for name in entity.alternate_keys:
        if values.get(name) is None:
            continue
        other = store.find(conn, entity, name, values[name])
        if other is not None and other[entity.key] != current:
            raise ODataError(409, DUPLICATE,
                             "A record with matching key values already exists.")


def read_payload(store: Store, conn: Connection, entity: Entity, body: Any, *,
                 creating: bool) -> dict[str, Any]:
    """The column values a create or update body sets, checked and converted."""
    if not isinstance(body, dict):
        raise ODataError(400, BAD_PAYLOAD, "The request body must be a JSON object.")
    columns = entity.all_columns()
    values: dict[str, Any] = {}
    for name, raw in body.items():
        if name.endswith("@odata.bind"):
            _bind(store, conn, entity, name.removesuffix("@odata.bind"), raw, values)
        elif "@" in name:
            continue  # other instance annotations (e.g. @odata.type) carry no value
        elif name in columns:
            column = columns[name]
            if column.read_only and not (creating and name == entity.key):
                raise ODataError(400, BAD_PROPERTY,
                                 f"The property '{name}' of {entity.logical} cannot be set.")
            values[name] = convert(entity, column, raw)
        else:
            raise bad_property(name, entity.edm_type)
    return values


def _bind(store: Store, conn: Connection, entity: Entity, navprop: str, raw: Any,
          values: dict[str, Any]) -> None:
    found = entity.navprop(navprop)
    if found is None or found[0].read_only:
        raise bad_property(navprop, entity.edm_type)
    lookup, target = found
    polymorphic = len(lookup.targets) > 1
    if raw is None:
        values[lookup.attribute] = None
        if polymorphic:
            values[polymorphic_type_column(lookup.attribute)] = None
        return
    match = _BIND.match(raw) if isinstance(raw, str) else None
    if match is None or BY_SET.get(match["set"]) is not BY_LOGICAL[target]:
        raise ODataError(400, BAD_PAYLOAD,
                         f"The value of '{navprop}@odata.bind' must be "
                         f"'/{BY_LOGICAL[target].set_name}(<guid>)'.")
    key = match["key"].lower()
    if not store.exists(conn, target, key):
        raise ODataError(400, NOT_FOUND, f"{target} With Id = {key} Does Not Exist")
    values[lookup.attribute] = key
    if polymorphic:
        values[polymorphic_type_column(lookup.attribute)] = target


def convert(entity: Entity, column: Column, raw: Any) -> Any:
    """A JSON value as the store keeps it, or a Dataverse-like error."""
    if raw is None:
        return None

    def cannot() -> ODataError:
        return ODataError(400, BAD_PAYLOAD,
                          f"Cannot convert the literal '{raw}' to the expected type "
                          f"'{column.kind.edm}' of property '{column.name}'.")

    kind = column.kind
    if kind in (Kind.STRING, Kind.MEMO):
        if not isinstance(raw, str):
            raise cannot()
        if column.max_length is not None and len(raw) > column.max_length:
            raise ODataError(400, TOO_LONG,
                             f"A validation error occurred. The length of the "
                             f"'{column.name}' attribute of the '{entity.logical}' entity "
                             f"exceeded the maximum allowed length of '{column.max_length}'.")
        return raw
    if kind in (Kind.INT, Kind.CHOICE):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise cannot()
        if column.choices is not None and raw not in column.choices:
            raise ODataError(400, OPTION_OUT_OF_RANGE,
                             f"A validation error occurred. The value {raw} of "
                             f"'{column.name}' on record of type '{entity.logical}' is "
                             "outside the valid range.")
        return raw
    if kind == Kind.BOOL:
        if not isinstance(raw, bool):
            raise cannot()
        return raw
    if kind == Kind.GUID:
        if not isinstance(raw, str) or not _GUID.match(raw):
            raise cannot()
        return str(uuid.UUID(raw))
    if not isinstance(raw, str):
        raise cannot()
    try:
        if kind == Kind.DATE:
            return date.fromisoformat(raw[:10])
        return parse_datetime(raw)
    except ValueError:
        raise cannot() from None
