"""The compiled validator (jsonschema-rs) only confirms what the interpreted one (jsonschema)
would: `Contracts.validate` answers "no errors" from the compiled one, so it must never
accept a document the interpreted validator refuses. Checked on every example with each
of its values in turn replaced by values that break a type, a format, a length or a code."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import ROOT
from gateway.contracts import Contracts

EXAMPLES = sorted((ROOT / "contracts" / "examples").glob("*/*.json"))
BREAKERS: list[Any] = ["", "x", "2026-02-30", "2026-01-01T25:00:00Z", "not an email",
                       "a" * 5000, -1, 1.5, 10**20, True, None, [], {}]
GONE = object()  # the field removed


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return Contracts(ROOT / "contracts")


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _with(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if value is GONE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_compiled_validator_accepts_only_what_jsonschema_accepts(
        contracts: Contracts, path: Path) -> None:
    name = path.parent.name
    document = json.loads(path.read_text(encoding="utf-8"))
    compiled, interpreted = contracts._compiled[name], contracts._validators[name]
    variants = [document] + [_with(document, p, v) for p in _paths(document)
                             for v in [*BREAKERS, GONE]]
    looser = [v for v in variants
              if compiled.is_valid(v) and next(interpreted.iter_errors(v), None) is not None]
    assert not looser, f"{len(looser)} of {len(variants)} variants accepted by jsonschema-rs only"
    assert (contracts.validate(name, document) == []) is path.name.startswith("valid-")
