"""docs/mapping-language.md documents every part of the language and every problem reported."""

from __future__ import annotations

import re

import pytest
from mapping_testkit import ROOT

from gateway.mapping.model import CONDITION_OPS, UNKNOWN_POLICIES
from gateway.mapping.parse import (
    BLOCK_KEYS,
    CODE_LIST_KEYS,
    ENTRY_KEYS,
    EXAMPLE_KEYS,
    FILE_KEYS,
    RULE_KEYS,
)
from gateway.mapping.transforms import SPECS, SPLIT_PARTS

DOC = (ROOT / "docs" / "mapping-language.md").read_text()
PROBLEM_RULES = re.findall(r'"([a-z]+(?:-[a-z]+)+|reversible|unreadable)"',
                           "".join(p.read_text() for p in (ROOT / "gateway/mapping").glob("*.py")
                                   if p.name != "cli.py"))
WORDS = sorted({*FILE_KEYS, *BLOCK_KEYS, *RULE_KEYS, *EXAMPLE_KEYS, *CODE_LIST_KEYS,
                *ENTRY_KEYS, *CONDITION_OPS, *UNKNOWN_POLICIES, *SPECS, *SPLIT_PARTS})


@pytest.mark.parametrize("word", WORDS)
def test_every_key_transform_and_option_is_documented(word: str) -> None:
    assert f"`{word}" in DOC


@pytest.mark.parametrize("rule", sorted({r for r in PROBLEM_RULES
                                         if r not in ("x-labels", "status-event")}))
def test_every_problem_the_check_reports_is_explained(rule: str) -> None:
    assert f"| `{rule}` |" in DOC
