"""The generated fast paths give exactly what the rules' closures give, errors included.

`assemble.py` writes the usual case of every rule inline and leaves everything else to
the rule's closure. Here every shipped mapping is compiled twice — with the fast paths and
without (`inline=False`: every rule by its closure) — and both run on every example input
of the file, each field of it in turn removed or replaced by values of other types and
shapes. The outputs must be equal; an error must be the same error, message and details.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mapping_testkit import ROOT

from gateway.errors import MappingError
from gateway.mapping.check import check_mapping_file
from gateway.mapping.compile import CompiledMapping, compile_mapping
from gateway.mapping.schema import SchemaView

FILES = sorted(p for p in (ROOT / "mappings").glob("*/*.yaml"))

# Values of every JSON type and of the shapes the rules look for: codes, dates, text with
# spaces, empty ones, lists of codes and of objects.
ODD_VALUES: list[Any] = [
    None, "", "  ", 0, 1, -3, 2.5, True, False, "x", "  padded text  ", "female", "1_day",
    "2025-03-03", "2025-03-03T10:00:00Z", "2025-13-45", "not a date", "12", [], [None],
    [""], ["x"], ["female", "male"], [1], [{"a": 1}], {}, {"a": "b"},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field and list item of a value, parents before children."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _changed(record: Any, path: tuple[Any, ...], value: Any, *, remove: bool) -> Any:
    out = copy.deepcopy(record)
    holder = out
    for step in path[:-1]:
        holder = holder[step]
    if remove:
        del holder[path[-1]]
    else:
        holder[path[-1]] = copy.deepcopy(value)
    return out


def _variants(record: Any) -> Iterator[Any]:
    yield record
    yield {}
    for path in _paths(record):
        yield _changed(record, path, None, remove=True)
        for value in ODD_VALUES:
            yield _changed(record, path, value, remove=False)


def _outcome(compiled: CompiledMapping, direction: str, record: Any) -> Any:
    try:
        return ("output", compiled.run(direction, record))  # type: ignore[arg-type]
    except MappingError as error:
        return ("error", str(error), error.extensions)
    except Exception as error:  # noqa: BLE001 - an unexpected failure must match too
        return ("crash", type(error).__name__, str(error))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_fast_paths_agree_with_the_closures(path: Path, view: SchemaView) -> None:
    checked = check_mapping_file(path, view)
    assert checked.ok, checked.problems
    fast, reference = compile_mapping(checked), compile_mapping(checked, inline=False)
    runs = 0
    for direction, block in checked.mapping.blocks.items():  # type: ignore[union-attr]
        for example in block.examples:
            for record in _variants(example.input):
                expected = _outcome(reference, direction, record)
                assert _outcome(fast, direction, copy.deepcopy(record)) == expected, (
                    f"{path.name} {direction} {example.name!r}: {record!r}")
                runs += 1
    assert runs > 0 or not any(b.examples for b in checked.mapping.blocks.values())  # type: ignore[union-attr]
