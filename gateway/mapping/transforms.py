"""The fixed set of named transforms a rule may apply. A mapping file can name them, never add one.

Each transform checks its arguments when the file is loaded and is then built once into a
plain function `f(value, scope, root)`. When a value cannot be transformed it raises
TransformFailed with a reason that never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.dates import age_in_years, today
from gateway.mapping.paths import PathSyntaxError, compile_getter, parse_path

Apply = Callable[[Any, Any, Any], Any]
"""A built transform: `apply(value, scope, root)`; None means "no value"."""

STRING, NUMBER, INTEGER, BOOLEAN, ARRAY = "string", "number", "integer", "boolean", "array"


class ArgError(ValueError):
    """The arguments given to a transform in a mapping file are wrong."""


class TransformFailed(ValueError):
    """A value could not be transformed; the message never holds the value."""


@dataclass(frozen=True)
class Spec:
    """What a transform takes and gives, and how it is checked and built."""

    name: str
    summary: str
    accepts: frozenset[str] | None
    output: str | None
    elementwise: bool
    lossless: bool
    parse: Callable[[Any], dict[str, Any]]
    build: Callable[[dict[str, Any]], Apply]


def _no_args(arg: Any) -> dict[str, Any]:
    if arg is not None:
        raise ArgError("takes no arguments")
    return {}


def _mapping(arg: Any, allowed: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if arg is None:
        return {}
    if not isinstance(arg, dict):
        raise ArgError(f"takes a mapping with {', '.join(allowed)}")
    for key, value in arg.items():
        if key not in allowed:
            raise ArgError(f"has no argument '{key}' (it takes {', '.join(allowed)})")
        if not isinstance(value, allowed[key]) or isinstance(value, bool) != (
                allowed[key] is bool):
            raise ArgError(f"argument '{key}' has the wrong type")
    return dict(arg)


# --- dates -----------------------------------------------------------------------------------

_TOKENS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_TOKEN_RE = re.compile("|".join(_TOKENS))


def _strftime_pattern(fmt: str) -> str:
    """Turn `DD/MM/YYYY` into `%d/%m/%Y`; only those tokens and non-letters (and T, Z) allowed."""
    out, last = [], 0
    for found in _TOKEN_RE.finditer(fmt):
        out.append(_literal(fmt, fmt[last:found.start()]))
        out.append(_TOKENS[found.group()])
        last = found.end()
    out.append(_literal(fmt, fmt[last:]))
    if last == 0:
        raise ArgError(f"format '{fmt}' has none of YYYY, MM, DD, HH, mm, ss")
    return "".join(out)


def _literal(fmt: str, text: str) -> str:
    for char in text:
        if char.isalpha() and char not in "TZ":
            raise ArgError(f"format '{fmt}' has an unknown letter '{char}' "
                           "(use YYYY, MM, DD, HH, mm, ss)")
    return text.replace("%", "%%")


def _date_format(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArgError(f"'{name}' must be a date format such as YYYY-MM-DD or iso")
    return "iso" if value == "iso" else _strftime_pattern(value)


def _parser(pattern: str) -> Callable[[str], datetime]:
    if pattern == "iso":
        return datetime.fromisoformat
    return lambda text: datetime.strptime(text, pattern)


def _formatter(pattern: str) -> Callable[[datetime], str]:
    if pattern == "iso":
        return lambda moment: moment.isoformat().replace("+00:00", "Z")
    if pattern == "%Y-%m-%d":
        # The usual YYYY-MM-DD, several times faster than strftime and the same text: from
        # year 1000 on (strftime writes year 999 as 999, isoformat as 0999).
        return lambda moment: moment.date().isoformat() if moment.year >= 1000 \
            else moment.strftime(pattern)
    return lambda moment: moment.strftime(pattern)


def iso_date_renderer(pattern: str) -> Callable[[str], str]:
    """An ISO date or time, written in a strftime pattern, in one call (ValueError if bad)."""
    parse, render = datetime.fromisoformat, _formatter(pattern)
    return lambda text: render(parse(text))


def _parse_date_args(arg: Any) -> dict[str, Any]:
    args = _mapping(arg, {"from": str, "to": str})
    return {"from": _date_format(args.get("from", "iso"), "from"),
            "to": _date_format(args.get("to", "YYYY-MM-DD"), "to"),
            "from_text": args.get("from", "iso"), "to_text": args.get("to", "YYYY-MM-DD")}


def _build_date(args: dict[str, Any]) -> Apply:
    parse, render = _parser(args["from"]), _formatter(args["to"])

    def convert(value: Any, scope: Any, root: Any) -> Any:
        if not isinstance(value, str):
            raise TransformFailed("date: the value is not text")
        try:
            return render(parse(value))
        except ValueError:
            raise TransformFailed(f"date: the value is not a date in {args['from_text']} "
                                  "format") from None

    return convert


def _parse_age_args(arg: Any) -> dict[str, Any]:
    args = _mapping(arg, {"from": str, "at": str})
    at = args.get("at")
    if at is not None and at != "today":
        try:
            parse_path(at)
        except PathSyntaxError as error:
            raise ArgError(f"'at' must be 'today' or a field path: {error}") from None
    return {"from": _date_format(args.get("from", "iso"), "from"), "at": at}


def _build_age(args: dict[str, Any]) -> Apply:
    parse = _parser(args["from"])
    at = args["at"]
    at_getter = compile_getter(parse_path(at)) if at not in (None, "today") else None

    def age(value: Any, scope: Any, root: Any) -> Any:
        if not isinstance(value, str):
            raise TransformFailed("age: the date of birth is not text")
        try:
            born = parse(value).date()
        except ValueError:
            raise TransformFailed("age: the date of birth is not a date") from None
        if at_getter is None:
            return age_in_years(born, as_of=today())
        moment = at_getter(scope, root)
        if not isinstance(moment, str):
            return None
        try:
            return age_in_years(born, as_of=datetime.fromisoformat(moment).date())
        except ValueError:
            raise TransformFailed("age: the 'at' field is not an ISO date") from None

    return age


# --- text -------------------------------------------------------------------------------------

def _parse_case(arg: Any) -> dict[str, Any]:
    if arg not in ("upper", "lower", "title"):
        raise ArgError("takes upper, lower or title")
    return {"case": arg}


def _build_case(args: dict[str, Any]) -> Apply:
    method = {"upper": str.upper, "lower": str.lower, "title": str.title}[args["case"]]
    return _text_only("case", lambda value: method(value))


def _text_only(name: str, function: Callable[[str], Any]) -> Apply:
    def apply(value: Any, scope: Any, root: Any) -> Any:
        if not isinstance(value, str):
            raise TransformFailed(f"{name}: the value is not text")
        return function(value)

    return apply


def _parse_join(arg: Any) -> dict[str, Any]:
    if arg is None:
        return {"separator": " "}
    if not isinstance(arg, str):
        raise ArgError("takes the separator text, e.g. join: ', '")
    return {"separator": arg}


def _build_join(args: dict[str, Any]) -> Apply:
    separator = args["separator"]

    def join(value: Any, scope: Any, root: Any) -> Any:
        if not isinstance(value, list):
            return value
        parts = []
        for item in value:
            if item is not None:
                text = str(item).strip()
                if text:
                    parts.append(text)
        return separator.join(parts) if parts else None

    return join


SPLIT_PARTS = ("first", "last", "middle", "rest", "but_last", "all")


def _parse_split(arg: Any) -> dict[str, Any]:
    args = _mapping(arg, {"separator": str, "part": str})
    if "part" not in args or args["part"] not in SPLIT_PARTS:
        raise ArgError(f"needs 'part': one of {', '.join(SPLIT_PARTS)}")
    return {"separator": args.get("separator"), "part": args["part"]}


def _build_split(args: dict[str, Any]) -> Apply:
    separator, part = args["separator"], args["part"]
    pick: Callable[[list[str]], Any] = {
        "first": lambda p: p[0],
        "last": lambda p: p[-1] if len(p) > 1 else None,
        "middle": lambda p: " ".join(p[1:-1]) or None,
        "rest": lambda p: " ".join(p[1:]) or None,
        "but_last": lambda p: " ".join(p[:-1]) if len(p) > 1 else p[0],
        "all": lambda p: p,
    }[part]

    def split(value: str) -> Any:
        parts = [p for p in value.split(separator) if p.strip()] if separator else value.split()
        return pick([p.strip() for p in parts]) if parts else None

    return _text_only("split", split)


# --- numbers, lists, types -------------------------------------------------------------------

def _parse_less_than(arg: Any) -> dict[str, Any]:
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise ArgError("takes a number, e.g. less_than: 18")
    return {"limit": arg}


def _build_less_than(args: dict[str, Any]) -> Apply:
    limit = args["limit"]

    def less_than(value: Any, scope: Any, root: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TransformFailed("less_than: the value is not a number")
        return value < limit

    return less_than


def _first(value: Any, scope: Any, root: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            if item is not None and item != "":
                return item
        return None
    return value


def _as_list(value: Any, scope: Any, root: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _to_text(value: Any, scope: Any, root: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _to_number(value: Any, scope: Any, root: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise TransformFailed("to_number: the value is not a number") from None
    return int(number) if number.is_integer() else number


def _parse_pluck(arg: Any) -> dict[str, Any]:
    if not isinstance(arg, str):
        raise ArgError("takes the field path to read in each item, e.g. pluck: code")
    try:
        parse_path(arg)
    except PathSyntaxError as error:
        raise ArgError(f"takes a field path: {error}") from None
    return {"path": arg}


def _build_pluck(args: dict[str, Any]) -> Apply:
    read = compile_getter(parse_path(args["path"]))

    def pluck(value: Any, scope: Any, root: Any) -> Any:
        if not isinstance(value, list):
            raise TransformFailed("pluck: the value is not a list")
        found = [read(item, root) for item in value if isinstance(item, dict)]
        return [v for v in found if v is not None and v != ""] or None

    return pluck


def _fixed(function: Apply) -> Callable[[dict[str, Any]], Apply]:
    return lambda args: function


SPECS: dict[str, Spec] = {spec.name: spec for spec in [
    Spec("trim", "removes spaces at both ends", frozenset({STRING}), STRING, True, False,
         _no_args, lambda args: _text_only("trim", str.strip)),
    Spec("case", "upper, lower or title case", frozenset({STRING}), STRING, True, False,
         _parse_case, _build_case),
    Spec("date", "reads a date in one format and writes it in another", frozenset({STRING}),
         STRING, True, True, _parse_date_args, _build_date),
    Spec("age", "age in whole years from a date of birth", frozenset({STRING}), INTEGER,
         False, False, _parse_age_args, _build_age),
    Spec("join", "joins several values into one text", frozenset({ARRAY}), STRING, False,
         False, _parse_join, _build_join),
    Spec("split", "takes part of a text (e.g. the first or last name)", frozenset({STRING}),
         STRING, True, False, _parse_split, _build_split),
    Spec("less_than", "true when the number is below the limit", frozenset({NUMBER, INTEGER}),
         BOOLEAN, False, False, _parse_less_than, _build_less_than),
    Spec("first", "the first value of a list that has one", None, None, False, False,
         _no_args, _fixed(_first)),
    Spec("as_list", "puts a single value in a list", None, ARRAY, False, False,
         _no_args, _fixed(_as_list)),
    Spec("pluck", "the value of one field in each item of a list of objects",
         frozenset({ARRAY}), ARRAY, False, False, _parse_pluck, _build_pluck),
    Spec("to_text", "writes a number or true/false as text", None, STRING, True, False,
         _no_args, _fixed(_to_text)),
    Spec("to_number", "reads a number written as text", frozenset({STRING, NUMBER, INTEGER}),
         NUMBER, True, False, _no_args, _fixed(_to_number)),
]}


def build(name: str, args: dict[str, Any]) -> Apply:
    """The function of transform `name`, applied item by item to lists where it makes sense."""
    spec = SPECS[name]
    apply = spec.build(args)
    if not spec.elementwise:
        return apply

    def each_item(value: Any, scope: Any, root: Any) -> Any:
        if type(value) is list:
            return [apply(v, scope, root) for v in value]
        return apply(value, scope, root)

    return each_item
