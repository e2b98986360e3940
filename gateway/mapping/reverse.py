"""Reversible rules: a native field marked `reversible` must come back unchanged after going
inbound and then outbound (or the other way round).

The check here is static: the rule loses nothing (one field, lossless transforms only) and
the mapping going the other way has a rule between the same two fields, with the same code
list. The property-based tests then run the round trip on generated records.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mapping.model import Block, Direction, Rule
from gateway.mapping.transforms import SPECS
from gateway.yamlpos import Problems


@dataclass(frozen=True)
class Pair:
    """A rule seen as a link between one native field and one canonical field."""

    native: str
    canonical: str
    rule: Rule


def pairs(block: Block) -> dict[tuple[str, str], Pair]:
    """Every single-field rule of a block, keyed by (native path, canonical path)."""
    found: dict[tuple[str, str], Pair] = {}
    _collect(block.rules, block.direction, "", "", found)
    return found


def _collect(rules: list[Rule], direction: Direction, native: str, canonical: str,
             found: dict[tuple[str, str], Pair]) -> None:
    inbound = direction == "inbound"
    for rule in rules:
        target = _join(native if not inbound else canonical, rule.to.text)
        if rule.each is not None:
            source = _join(canonical if not inbound else native, rule.each.text,
                           rule.each.from_root)
            inner_native, inner_canonical = (source, target) if inbound else (target, source)
            _collect(rule.rules, direction, inner_native + "[]", inner_canonical + "[]", found)
            continue
        if len(rule.sources) != 1 or rule.several_sources:
            continue
        path = rule.sources[0]
        source = _join(canonical if not inbound else native, path.text, path.from_root)
        key = (source, target) if inbound else (target, source)
        found.setdefault(key, Pair(key[0], key[1], rule))


def _join(prefix: str, text: str, from_root: bool = False) -> str:
    if from_root:
        return text[2:]
    return f"{prefix}.{text}" if prefix else text


def check_reversible(block: Block, back: Block | None, problems: Problems,
                     back_name: str) -> None:
    """Report reversible rules that lose information or that the way back does not undo."""
    mine = pairs(block)
    theirs = pairs(back) if back is not None else {}
    for (native, canonical), pair in mine.items():
        rule = pair.rule
        if not rule.reversible:
            continue
        lossy = [t.name for t in rule.transforms if not SPECS[t.name].lossless]
        if lossy:
            problems.add(rule.at("reversible"), "reversible",
                         f"{rule.to} cannot be reversible: {', '.join(lossy)} loses information")
        if back is None:
            problems.add(rule.at("reversible"), "reversible",
                         f"{rule.to} is marked reversible but there is no mapping going back: "
                         "add 'reverse: <file>' or the other direction to this file")
            continue
        partner = theirs.get((native, canonical))
        if partner is None:
            problems.add(rule.at("reversible"), "reversible",
                         f"{rule.to} is marked reversible but {back_name} has no rule between "
                         f"{native} and {canonical}")
        elif partner.rule.code != rule.code:
            problems.add(rule.at("reversible"), "round-trip",
                         f"{rule.to} uses code list {rule.code or '(none)'} but the way back "
                         f"({back_name} line {partner.rule.pos.line}) uses "
                         f"{partner.rule.code or '(none)'}")
    for rule in _reversible_without_pair(block.rules):
        problems.add(rule.at("reversible"), "reversible",
                     f"{rule.to} cannot be reversible: it must read exactly one field")


def _reversible_without_pair(rules: list[Rule]) -> list[Rule]:
    found = []
    for rule in rules:
        if rule.reversible and (rule.each is not None or rule.has_value
                                or len(rule.sources) != 1 or rule.several_sources):
            found.append(rule)
        found.extend(_reversible_without_pair(rule.rules))
    return found
