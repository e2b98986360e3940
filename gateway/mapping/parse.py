"""Turn the YAML of a mapping file or code list into the model, reporting every shape problem.

Only the shape is checked here (known keys, right kinds of values, paths that parse,
transform arguments); what the rules mean against the contracts is `check.py`'s job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gateway.mapping.model import (
    CONDITION_OPS,
    DIRECTIONS,
    UNKNOWN_POLICIES,
    Block,
    CodeEntry,
    CodeList,
    Condition,
    Direction,
    Example,
    Fallback,
    MappingFile,
    Rule,
    Transform,
)
from gateway.mapping.paths import FieldPath, PathSyntaxError, parse_path
from gateway.mapping.transforms import SPECS, ArgError
from gateway.yamlpos import Node, Pos, Problems, node_pos, plain, read_yaml, suggest

FILE_KEYS = ("description", "contract", "channel", "native", "reverse", "codes", "inbound",
             "outbound")
BLOCK_KEYS = ("rules", "examples")
RULE_KEYS = ("to", "from", "value", "default", "required", "when", "transform", "code",
             "unknown", "reversible", "each", "where", "rules")
EXAMPLE_KEYS = ("name", "input", "output", "error")
CODE_LIST_KEYS = ("description", "contract", "codes", "unmapped", "fallback")
FALLBACK_KEYS = ("inbound", "outbound", "why")
# Unknown-code policies of earlier versions, which hid unlisted codes behind a default.
SILENT_POLICIES = {"default": "a rule's default", "drop": "nothing"}
ENTRY_KEYS = ("native", "canonical", "only", "label")
CHANNEL = re.compile(r"[a-z][a-z0-9-]{0,29}")


def mapping_identity(path: Path) -> tuple[str, str]:
    """(system, name) of a mapping file: `primero/status.yaml` → ("primero", "status").

    A `.in` or `.out` before `.yaml` only says the direction and is not part of the name.
    """
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    for suffix in (".in", ".out"):
        name = name.removesuffix(suffix)
    return path.parent.name, name


def parse_mapping_file(path: Path, display: str, problems: Problems) -> MappingFile | None:
    """The mapping file at `path`, or None when it cannot be read as one at all."""
    raw, tree = read_yaml(path, problems)
    if tree is None:
        if not problems:
            problems.add(Pos(1, 1), "bad-value", "the file is empty")
        return None
    if not isinstance(tree, CommentedMap):
        problems.add(node_pos(tree, Pos(1, 1)), "bad-value", "a mapping file must be a mapping")
        return None
    system, name = mapping_identity(path)
    mapping = MappingFile(path=path, file=display, system=system, name=name, raw=raw)
    top = Node(tree, problems, "a mapping file")
    top.check_keys(FILE_KEYS, ("contract",))
    mapping.contract = top.text("contract")
    if "contract" in top:
        mapping.contract_pos = top.value_pos("contract")
    top.text("description")
    top.text("native")
    if "channel" in top:
        mapping.channel = top.text("channel")
        if mapping.channel is not None and not CHANNEL.fullmatch(mapping.channel):
            problems.add(top.value_pos("channel"), "bad-value",
                         "a channel is a short name: lower-case letters, digits and dashes")
    if "reverse" in top:
        mapping.reverse = top.text("reverse")
        mapping.reverse_pos = top.value_pos("reverse")
    if "codes" in top:
        codes = top.child("codes", "local code lists by name")
        for key in codes.data if codes else ():
            node = codes.child(str(key), f"code list '{key}'") if codes else None
            if node is not None:
                mapping.codes[str(key)] = _code_list(node, str(key), display, raw)
    present = [d for d in DIRECTIONS if d in top]
    if not present:
        problems.add(top.pos, "missing-key", "a mapping file needs 'inbound' or 'outbound'")
    for direction in present:
        block = top.child(direction, f"the {direction} rules and examples")
        if block is not None:
            mapping.blocks[direction] = _block(block, direction)
    expected = {".in": "inbound", ".out": "outbound"}.get(Path(path.stem).suffix)
    if expected and set(mapping.blocks) - {expected}:
        problems.add(top.pos, "bad-value",
                     f"a file named *{Path(path.stem).suffix}.yaml holds only '{expected}'")
    return mapping


def parse_code_list_file(path: Path, display: str, problems: Problems) -> CodeList | None:
    """The code list at `path` (its name is the file name), or None when unreadable."""
    raw, tree = read_yaml(path, problems)
    if not isinstance(tree, CommentedMap):
        if tree is not None or not problems:
            problems.add(node_pos(tree, Pos(1, 1)), "bad-value", "a code list must be a mapping")
        return None
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    return _code_list(Node(tree, problems, "a code list"), name, display, raw)


def _code_list(node: Node, name: str, file: str, raw: bytes) -> CodeList:
    node.check_keys(CODE_LIST_KEYS, ("codes",))
    node.text("description")
    codes = CodeList(name=name, file=file, pos=node.pos, entries=[], raw=raw)
    if "contract" in node:
        codes.contract = node.text("contract")
        codes.contract_pos = node.value_pos("contract")
    for pos, item in node.items("codes") if "codes" in node else []:
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value", "each code is a mapping with native and canonical")
            continue
        entry = Node(item, node.problems, "a code")
        entry.check_keys(ENTRY_KEYS, ("native", "canonical"))
        only = entry.get("only")
        if only is not None and only not in DIRECTIONS:
            node.problems.add(entry.value_pos("only"), "bad-value",
                              "'only' is inbound or outbound")
            only = None
        native, canonical = plain(entry.get("native")), plain(entry.get("canonical"))
        for key, value in (("native", native), ("canonical", canonical)):
            if key in entry and (value is None or isinstance(value, dict | list)):
                node.problems.add(entry.value_pos(key), "bad-value", f"'{key}' must be one code")
        if "native" in entry and "canonical" in entry:
            codes.entries.append(CodeEntry(native, canonical, only, entry.pos))
    if "unmapped" in node:
        for pos, item in node.items("unmapped"):
            if isinstance(item, str):
                codes.unmapped.append((str(item), pos))
            else:
                node.problems.add(pos, "bad-value", "'unmapped' lists canonical codes")
    fallback = node.child("fallback", "a code list's fallback") if "fallback" in node else None
    if fallback is not None:
        _fallbacks(fallback, codes)
    return codes


def _fallbacks(node: Node, codes: CodeList) -> None:
    """`fallback: {inbound?, outbound?, why}`: an explicit, explained answer for unknown codes."""
    node.check_keys(FALLBACK_KEYS, ("why",))
    why = node.text("why")
    if "inbound" not in node and "outbound" not in node:
        node.problems.add(node.pos, "missing-key",
                          "a fallback names what an unknown code becomes 'inbound', "
                          "'outbound' or both")
    for direction in DIRECTIONS:
        if direction not in node:
            continue
        value = plain(node.get(direction))
        if value is None or isinstance(value, dict | list):
            node.problems.add(node.value_pos(direction), "bad-value",
                              f"the {direction} fallback is one code, or 'drop'")
            continue
        reason = " ".join((why or "").split())
        codes.fallbacks[direction] = Fallback(value, reason, node.value_pos(direction))


def _block(node: Node, direction: Direction) -> Block:
    node.check_keys(BLOCK_KEYS, ("rules",))
    rules = _rules(node, "rules") if "rules" in node else []
    examples: list[Example] = []
    for pos, item in node.items("examples") if "examples" in node else []:
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value", "an example is a mapping with name, input, output")
            continue
        example = Node(item, node.problems, "an example")
        example.check_keys(EXAMPLE_KEYS, ("name", "input"))
        if ("output" in example) == ("error" in example):
            node.problems.add(example.pos, "missing-key",
                              "an example needs either 'output' or 'error' (the failing field)")
        examples.append(Example(name=str(example.get("name", f"example {len(examples) + 1}")),
                                pos=example.pos, input=plain(example.get("input")),
                                output=plain(example.get("output")),
                                error=example.text("error") if "error" in example else None))
    return Block(direction=direction, pos=node.pos, rules=rules, examples=examples)


def _rules(node: Node, key: str) -> list[Rule]:
    rules = []
    for pos, item in node.items(key):
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value",
                              "a rule is a mapping with 'to' and 'from' or 'value'")
            continue
        rule = _rule(Node(item, node.problems, "a rule"))
        if rule is not None:
            rules.append(rule)
    return rules


def _path(node: Node, key: str, value: Any = None, pos: Pos | None = None) -> FieldPath | None:
    text = node.get(key) if value is None else value
    where = pos or node.value_pos(key)
    if not isinstance(text, str) or not text:
        node.problems.add(where, "bad-path", f"'{key}' must be a field path such as subject.sex")
        return None
    try:
        return parse_path(str(text))
    except PathSyntaxError as error:
        node.problems.add(where, "bad-path", f"'{text}' is not a field path: {error}")
        return None


def _rule(node: Node) -> Rule | None:
    node.check_keys(RULE_KEYS, ("to",))
    problems = node.problems
    to = _path(node, "to") if "to" in node else None
    if to is None:
        return None
    rule = Rule(pos=node.pos, to=to, key_pos={str(k): node.key_pos(str(k)) for k in node.data})
    kinds = [k for k in ("from", "value", "each") if k in node]
    if len(kinds) != 1:
        problems.add(node.pos, "missing-key" if not kinds else "bad-value",
                     "a rule takes exactly one of 'from', 'value' or 'each'")
    if "from" in node:
        rule.sources, rule.several_sources = _sources(node)
    if "value" in node:
        rule.has_value, rule.value = True, plain(node.get("value"))
    if "default" in node:
        rule.has_default, rule.default = True, plain(node.get("default"))
    for flag in ("required", "reversible"):
        if flag in node:
            value = node.get(flag)
            if not isinstance(value, bool):
                problems.add(node.value_pos(flag), "bad-value", f"'{flag}' is true or false")
            setattr(rule, flag, value is True)
    if "when" in node:
        rule.when = _conditions(node, "when")
    if "transform" in node:
        rule.transforms = _transforms(node)
    if "code" in node:
        rule.code = node.text("code")
    if "unknown" in node:
        unknown = node.get("unknown")
        if isinstance(unknown, str) and unknown in SILENT_POLICIES:
            problems.add(node.value_pos("unknown"), "silent-default",
                         f"'unknown: {unknown}' would turn a code nobody listed into "
                         f"{SILENT_POLICIES[unknown]} without a word: use 'unknown: error', or "
                         f"declare a 'fallback' (with 'why') in code list "
                         f"'{node.get('code')}' and write 'unknown: fallback'")
        elif unknown not in UNKNOWN_POLICIES:
            problems.add(node.value_pos("unknown"), "bad-value",
                         f"'unknown' is one of {', '.join(UNKNOWN_POLICIES)}")
        else:
            rule.unknown = str(unknown)
    if "each" in node:
        rule.each = _path(node, "each")
        rule.rules = _rules(node, "rules") if "rules" in node else []
        if "rules" not in node:
            problems.add(node.pos, "missing-key", "a rule with 'each' needs 'rules' for each item")
        if "where" in node:
            rule.where = _conditions(node, "where")
    _combinations(node, rule)
    return rule


def _combinations(node: Node, rule: Rule) -> None:
    problems = node.problems
    for key, needs in (("rules", "each"), ("where", "each")):
        if key in node and needs not in node:
            problems.add(node.key_pos(key), "bad-value", f"'{key}' goes with '{needs}'")
    for key in ("transform", "code", "default"):
        if key in node and "from" not in node:
            problems.add(node.key_pos(key), "bad-value", f"'{key}' goes with 'from'")
    if rule.code and rule.unknown is None and "unknown" not in node:
        problems.add(node.key_pos("code"), "missing-key",
                     "a code list lookup must say what to do with an unknown code: "
                     "unknown: error, fallback or keep")
    if "unknown" in node and "code" not in node:
        problems.add(node.key_pos("unknown"), "bad-value", "'unknown' goes with 'code'")


def _sources(node: Node) -> tuple[tuple[FieldPath, ...], bool]:
    value = node.get("from")
    if isinstance(value, CommentedSeq):
        paths = []
        for pos, item in node.items("from"):
            path = _path(node, "from", item, pos)
            if path is not None:
                paths.append(path)
        if not paths:
            node.problems.add(node.value_pos("from"), "bad-path", "'from' lists no field")
        return tuple(paths), True
    path = _path(node, "from")
    return ((path,) if path else ()), False


def _conditions(node: Node, key: str) -> tuple[Condition, ...]:
    value = node.get(key)
    items = ([(p, i) for p, i in node.items(key)] if isinstance(value, CommentedSeq)
             else [(node.value_pos(key), value)])
    conditions = []
    for pos, item in items:
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value",
                              f"'{key}' is a mapping like {{path: case.sex, equals: male}}")
            continue
        condition = Node(item, node.problems, f"a '{key}' condition")
        condition.check_keys(("path", *CONDITION_OPS), ("path",))
        ops = [op for op in CONDITION_OPS if op in condition]
        path = _path(condition, "path") if "path" in condition else None
        if len(ops) != 1:
            node.problems.add(condition.pos, "bad-value",
                              f"a condition takes one of {', '.join(CONDITION_OPS)}")
            continue
        operand = plain(condition.get(ops[0]))
        if ops[0] in ("in", "not_in") and not isinstance(operand, list):
            node.problems.add(condition.value_pos(ops[0]), "bad-value",
                              f"'{ops[0]}' takes a list of values")
            continue
        if ops[0] == "present" and not isinstance(operand, bool):
            node.problems.add(condition.value_pos("present"), "bad-value",
                              "'present' is true or false")
            continue
        if path is not None:
            conditions.append(Condition(path, ops[0], operand, condition.pos))
    return tuple(conditions)


def _transforms(node: Node) -> tuple[Transform, ...]:
    value = node.get("transform")
    items = (node.items("transform") if isinstance(value, CommentedSeq)
             else [(node.value_pos("transform"), value)])
    transforms = []
    for pos, item in items:
        where = node_pos(item, pos)
        if isinstance(item, str):
            name, arg = str(item), None
        elif isinstance(item, CommentedMap) and len(item) == 1:
            name, arg = str(next(iter(item))), plain(next(iter(item.values())))
        else:
            node.problems.add(where, "bad-transform",
                              "a transform is a name (trim) or a name with arguments (case: upper)")
            continue
        if name not in SPECS:
            node.problems.add(where, "bad-transform",
                              f"'{name}' is not a transform{suggest(name, SPECS)}; "
                              f"the transforms are {', '.join(SPECS)}")
            continue
        try:
            transforms.append(Transform(name, SPECS[name].parse(arg), where))
        except ArgError as error:
            node.problems.add(where, "bad-transform", f"{name}: {error}")
    return tuple(transforms)
