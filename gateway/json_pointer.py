"""JSON Pointers (RFC 6901): the one place that escapes `~` and `/` in their tokens."""

from collections.abc import Iterable


def escape(key: str) -> str:
    """One reference token: `~` as `~0`, then `/` as `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """The key a reference token stands for (`~1` first, so `~01` stays `~1`)."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer(parts: Iterable[str | int]) -> str:
    """The JSON Pointer of a path of keys and list indexes."""
    return "".join("/" + escape(str(p)) for p in parts)


def tokens(where: str) -> list[str]:
    """The keys (list indexes as text) of a JSON Pointer; none for the whole document ("")."""
    return [unescape(token) for token in where.split("/")[1:]] if where else []
