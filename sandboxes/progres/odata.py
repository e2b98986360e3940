"""The OData query options the sandbox understands, turned into SQLAlchemy expressions.

`$select`, `$filter` (eq ne gt ge lt le, and or not, parentheses, contains / startswith /
endswith, literals: 'string', integers, true/false/null, GUIDs, dates, date-times),
`$orderby` (one property, asc/desc), `$top`, `$count` and the opaque `$skiptoken` of
`@odata.nextLink`. `$skip` is refused, as in Dataverse.
"""

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, not_, or_, true

from sandboxes.progres.errors import BAD_PROPERTY, ODataError, bad_property
from sandboxes.progres.schema import Entity, Kind

MAX_PAGE_SIZE = 5000

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),])
""", re.VERBOSE)

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}
_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken"}


def syntax_error(text: str, position: int) -> ODataError:
    return ODataError(400, BAD_PROPERTY,
                      f"Syntax error at position {position} in '{text}'.")


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, bool, null, guid, date, datetime
    value: Any


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise syntax_error(text, position)
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup, match.group(), position))
        position = match.end()
    return tokens


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time literal as a naive UTC datetime (how the store keeps them)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class FilterCompiler:
    """Recursive descent over a `$filter` expression, building a SQL condition."""

    def __init__(self, text: str, entity: Entity, table: Table) -> None:
        self.text = text
        self.entity = entity
        self.table = table
        self.props = entity.properties()
        self.tokens = tokenize(text)
        self.index = 0

    def compile(self) -> ColumnElement[bool]:
        condition = self._or()
        if self.index != len(self.tokens):
            raise syntax_error(self.text, self.tokens[self.index][2])
        return condition

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise syntax_error(self.text, len(self.text))
        self.index += 1
        return token

    def _expect(self, value: str) -> None:
        kind, text, position = self._next()
        if text != value:
            raise syntax_error(self.text, position)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "name" and token[1] == word:
            self.index += 1
            return True
        return False

    def _or(self) -> ColumnElement[bool]:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def _and(self) -> ColumnElement[bool]:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def _unary(self) -> ColumnElement[bool]:
        if self._keyword("not"):
            return not_(self._unary())
        token = self._peek()
        if token is not None and token[1] == "(":
            self.index += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._predicate()

    def _predicate(self) -> ColumnElement[bool]:
        kind, name, position = self._next()
        if kind != "name":
            raise syntax_error(self.text, position)
        if name in _FUNCTIONS:
            return self._function(name)
        prop_kind = self._property(name)
        op_kind, op, op_position = self._next()
        if op_kind != "name" or op not in _COMPARISONS:
            raise syntax_error(self.text, op_position)
        literal = self._literal()
        return self._comparison(name, prop_kind, op, literal)

    def _property(self, name: str) -> Kind:
        prop_kind = self.props.get(name)
        if prop_kind is None:
            raise bad_property(name, self.entity.edm_type)
        return prop_kind

    def _literal(self) -> Literal:
        kind, text, position = self._next()
        if kind == "string":
            return Literal("string", text[1:-1].replace("''", "'"))
        if kind == "number":
            return Literal("number", float(text) if "." in text else int(text))
        if kind == "guid":
            return Literal("guid", text.lower())
        if kind == "date":
            return Literal("date", date.fromisoformat(text))
        if kind == "datetime":
            return Literal("datetime", parse_datetime(text))
        if kind == "name" and text in ("true", "false"):
            return Literal("bool", text == "true")
        if kind == "name" and text == "null":
            return Literal("null", None)
        raise syntax_error(self.text, position)

    def _function(self, name: str) -> ColumnElement[bool]:
        self._expect("(")
        _, prop, position = self._next()
        prop_kind = self._property(prop)
        self._expect(",")
        literal = self._literal()
        self._expect(")")
        if prop_kind not in (Kind.STRING, Kind.MEMO) or literal.kind != "string":
            raise ODataError(400, BAD_PROPERTY,
                             f"The function '{name}' needs a text property and a text value.")
        column = self.table.c[prop]
        if name == "contains":
            return column.contains(literal.value, autoescape=True)
        if name == "startswith":
            return column.startswith(literal.value, autoescape=True)
        return column.endswith(literal.value, autoescape=True)

    def _comparison(self, name: str, prop_kind: Kind, op: str,
                    literal: Literal) -> ColumnElement[bool]:
        column = self.table.c[name]
        if literal.kind == "null":
            if op == "eq":
                return column.is_(None)
            if op == "ne":
                return column.is_not(None)
            raise syntax_error(self.text, 0)
        value = coerce_literal(prop_kind, literal, op)
        comparisons: dict[str, ColumnElement[bool]] = {
            "eq": column == value, "ne": column != value, "gt": column > value,
            "ge": column >= value, "lt": column < value, "le": column <= value,
        }
        return comparisons[op]


_OPERATOR_KIND = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
                  "lt": "LessThan", "le": "LessThanOrEqual"}


def coerce_literal(prop_kind: Kind, literal: Literal, op: str) -> Any:
    """The literal as the store keeps values of this property, or a type error."""
    accepted: dict[Kind, tuple[str, ...]] = {
        Kind.GUID: ("guid", "string"), Kind.STRING: ("string",), Kind.MEMO: ("string",),
        Kind.INT: ("number",), Kind.CHOICE: ("number",), Kind.BOOL: ("bool",),
        Kind.DATE: ("date", "datetime"), Kind.DATETIME: ("datetime", "date"),
    }
    if literal.kind not in accepted[prop_kind] or (
            literal.kind == "number" and isinstance(literal.value, float)):
        literal_edm = {"string": "Edm.String", "number": "Edm.Int32", "bool": "Edm.Boolean",
                       "guid": "Edm.Guid", "date": "Edm.Date",
                       "datetime": "Edm.DateTimeOffset"}[literal.kind]
        raise ODataError(400, BAD_PROPERTY,
                         "A binary operator with incompatible types was detected. Found operand "
                         f"types '{prop_kind.edm}' and '{literal_edm}' for operator kind "
                         f"'{_OPERATOR_KIND[op]}'.")
    if prop_kind == Kind.GUID:
        return str(literal.value).lower()
    if prop_kind == Kind.DATE and isinstance(literal.value, datetime):
        return literal.value.date()
    if prop_kind == Kind.DATETIME and not isinstance(literal.value, datetime):
        return datetime(literal.value.year, literal.value.month, literal.value.day)
    return literal.value


@dataclass(frozen=True)
class OrderBy:
    name: str
    descending: bool


@dataclass(frozen=True)
class Query:
    select: tuple[str, ...] | None
    where: ColumnElement[bool]
    orderby: OrderBy | None
    top: int | None
    count: bool
    after: tuple[bool, Any, int] | None
    """The position after which a page starts: (value is null, value, row sequence)."""


def parse_query(params: Mapping[str, str], entity: Entity, table: Table) -> Query:
    """Read the query options of a collection request."""
    for name in params:
        if name == "$skip":
            raise ODataError(400, BAD_PROPERTY,
                             "The query parameter $skip is not supported. Use the "
                             "odata.maxpagesize preference and @odata.nextLink to page.")
        if name.startswith("$") and name not in _OPTIONS:
            raise ODataError(400, BAD_PROPERTY,
                             f"The query parameter {name} is not supported by this sandbox.")
        if name in ("fetchXml", "savedQuery", "userQuery"):
            raise ODataError(400, BAD_PROPERTY,
                             f"The query parameter {name} is not supported by this sandbox.")
    select = parse_select(params.get("$select"), entity)
    where: ColumnElement[bool] = true()
    if params.get("$filter"):
        where = FilterCompiler(params["$filter"], entity, table).compile()
    orderby = parse_orderby(params.get("$orderby"), entity)
    top = None
    if "$top" in params:
        if not params["$top"].isdigit() or int(params["$top"]) < 1:
            raise ODataError(400, BAD_PROPERTY,
                             f"Invalid value '{params['$top']}' for $top query option.")
        top = min(int(params["$top"]), MAX_PAGE_SIZE)
    count = params.get("$count", "false").lower() == "true"
    after = decode_skiptoken(params["$skiptoken"]) if "$skiptoken" in params else None
    return Query(select=select, where=where, orderby=orderby, top=top, count=count, after=after)


def parse_select(text: str | None, entity: Entity) -> tuple[str, ...] | None:
    if not text:
        return None
    names = tuple(part.strip() for part in text.split(","))
    props = entity.properties()
    for name in names:
        if name not in props:
            raise bad_property(name, entity.edm_type)
    return names


def parse_orderby(text: str | None, entity: Entity) -> OrderBy | None:
    if not text:
        return None
    if "," in text:
        raise ODataError(400, BAD_PROPERTY, "This sandbox orders by one property only.")
    parts = text.split()
    if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
        raise syntax_error(text, 0)
    if parts[0] not in entity.properties():
        raise bad_property(parts[0], entity.edm_type)
    return OrderBy(parts[0], len(parts) == 2 and parts[1] == "desc")


def encode_skiptoken(is_null: bool, value: Any, seq: int) -> str:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    raw = json.dumps([is_null, value, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str) -> tuple[bool, Any, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        is_null, value, seq = json.loads(raw)
        if not isinstance(is_null, bool) or not isinstance(seq, int):
            raise ValueError(token)
    except (ValueError, TypeError) as e:
        raise ODataError(400, BAD_PROPERTY, "The $skiptoken is not valid.") from e
    return is_null, value, seq


def restore_value(kind: Kind, value: Any) -> Any:
    """A skip-token value back in the store's type."""
    if value is None:
        return None
    if kind == Kind.DATETIME:
        return datetime.fromisoformat(value)
    if kind == Kind.DATE:
        return date.fromisoformat(value)
    return value


def after_condition(table: Table, seq_column: str, orderby: OrderBy | None,
                    kind: Kind | None, after: tuple[bool, Any, int]) -> ColumnElement[bool]:
    """Rows that sort after the skip-token position.

    Order: ascending puts nulls first, descending puts them last; ties by row sequence.
    """
    is_null, raw_value, seq = after
    seq_col = table.c[seq_column]
    if orderby is None or kind is None:
        return seq_col > seq
    column = table.c[orderby.name]
    value = restore_value(kind, raw_value)
    if not orderby.descending:
        if is_null:
            return or_(column.is_not(None), and_(column.is_(None), seq_col > seq))
        return and_(column.is_not(None),
                    or_(column > value, and_(column == value, seq_col > seq)))
    if is_null:
        return and_(column.is_(None), seq_col > seq)
    return or_(column.is_(None), column < value, and_(column == value, seq_col > seq))

