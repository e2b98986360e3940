"""Check a mapping file (and the code lists it uses) and report every problem at once.

`check_mapping_file` is what both `casebridge mappings check` and the running gateway's
registry call: a file with any problem is never compiled, so it never runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.mapping.checkrules import RuleChecker
from gateway.mapping.codes import CodeListFolder, check_code_list
from gateway.mapping.model import DIRECTIONS, Block, CodeList, Direction, MappingFile, Rule
from gateway.mapping.parse import parse_mapping_file
from gateway.mapping.reverse import check_reversible
from gateway.mapping.schema import Field, SchemaView
from gateway.yamlpos import Problem, Problems, display_path


@dataclass
class Checked:
    """The outcome of checking one mapping file."""

    path: Path
    file: str
    mapping: MappingFile | None
    code_lists: dict[str, CodeList] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    content_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.mapping is not None and not self.problems


def content_hash(raw: bytes, code_lists: Iterable[CodeList]) -> str:
    """sha256 of the mapping file's bytes and of each code list it uses (by name)."""
    digest = hashlib.sha256(raw)
    for codes in sorted(code_lists, key=lambda c: c.name):
        if codes.file != "":
            digest.update(b"\0" + codes.name.encode() + b"\0" + codes.raw)
    return "sha256:" + digest.hexdigest()


def check_mapping_file(path: Path, view: SchemaView, *,
                       folders: dict[Path, CodeListFolder] | None = None) -> Checked:
    """Parse and check the mapping at `path`; `folders` shares code lists between files."""
    display = display_path(path)
    problems = Problems(display)
    mapping = parse_mapping_file(path, display, problems)
    checked = Checked(path=path, file=display, mapping=mapping)
    if mapping is None:
        checked.problems = list(problems)
        return checked
    folders = folders if folders is not None else {}
    codes_dir = path.parent / "codes"
    if codes_dir not in folders:
        folders[codes_dir] = CodeListFolder(codes_dir, display_path, view)
    folder = folders[codes_dir]
    for name, codes in mapping.codes.items():
        check_code_list(codes, view, problems)
        if folder.path(name).is_file():
            problems.add(codes.pos, "duplicate-code",
                         f"code list '{name}' is also defined in codes/{name}.yaml; rename one")
    root = _contract(mapping, view, problems)
    _check_reverse_target(mapping, problems)
    other_problems: list[Problem] = []

    def code_list(name: str) -> CodeList | None:
        if name in mapping.codes:
            return mapping.codes[name]
        shared, shared_problems = folder.load(name)
        other_problems.extend(shared_problems)
        return shared

    used: set[str] = set()
    for direction, block in mapping.blocks.items():
        checker = RuleChecker(view=view, root=root, contract=mapping.contract or "",
                              direction=direction, code_list=code_list, problems=problems)
        checker.check_block(block)
        used |= checker.used_codes
        back, back_name = _way_back(mapping, direction, path, view)
        check_reversible(block, back, problems, back_name)
        if not block.examples:
            problems.add(block.pos, "no-examples",
                         f"the {direction} rules have no examples; add at least one")
    lists = [c for n in sorted(used) if (c := code_list(n)) is not None]
    checked.code_lists = {c.name: c for c in lists}
    checked.problems = sorted(set(problems) | set(other_problems))
    checked.warnings = fallback_warnings(mapping, checked.file, code_list)
    checked.content_hash = content_hash(mapping.raw, [c for c in lists
                                                      if c.name not in mapping.codes])
    return checked


def fallback_warnings(mapping: MappingFile, file: str,
                      code_list: Callable[[str], CodeList | None]) -> list[Problem]:
    """Every place an unlisted code or a missing value is answered for the partner: said aloud.

    None of these is an error, but each decides something the partner's record did not say,
    so `mappings check` lists them all for the IM officer to review.
    """
    warnings = Problems(file)

    def walk(rules: list[Rule], direction: Direction) -> None:
        for rule in rules:
            walk(rule.rules, direction)
            source = " and ".join(str(s) for s in rule.sources)
            codes = code_list(rule.code) if rule.code else None
            fallback = codes.fallbacks.get(direction) if codes else None
            if rule.unknown == "fallback" and codes is not None and fallback is not None:
                warnings.add(rule.at("unknown"), "fallback",
                             f"{rule.to}: an {direction} code not in code list '{codes.name}' "
                             f"{fallback.describe()} ({fallback.why})")
            if rule.has_default:
                warnings.add(rule.at("default"), "default",
                             f"{rule.to}: when {source} is missing, '{rule.default}' is used")

    for direction, block in mapping.blocks.items():
        walk(block.rules, direction)
    return list(warnings)


def _contract(mapping: MappingFile, view: SchemaView, problems: Problems) -> Field | None:
    if mapping.contract is None:
        return None
    root = view.root(mapping.contract)
    if root is None or mapping.contract.startswith("codes/"):
        names = [n for n in view.contracts.schemas if not n.startswith("codes/")]
        problems.add(mapping.contract_pos, "unknown-contract",
                     f"'{mapping.contract}' is not a canonical contract "
                     f"(one of {', '.join(sorted(names))})")
        return None
    return root


def _way_back(mapping: MappingFile, direction: str, path: Path,
              view: SchemaView) -> tuple[Block | None, str]:
    """The block going the other way: in this file, or in the file named by `reverse`."""
    other = next(d for d in DIRECTIONS if d != direction)
    if other in mapping.blocks:
        return mapping.blocks[other], f"the {other} rules"
    if mapping.reverse is None:
        return None, ""
    reverse_path = path.parent / mapping.reverse
    scratch = Problems(display_path(reverse_path))
    reverse = parse_mapping_file(reverse_path, scratch.file, scratch) \
        if reverse_path.is_file() else None
    if reverse is None or other not in reverse.blocks:
        return None, mapping.reverse
    return reverse.blocks[other], mapping.reverse


def _check_reverse_target(mapping: MappingFile, problems: Problems) -> None:
    """Report a `reverse` naming a file that does not exist or does not go the other way."""
    if mapping.reverse is None or mapping.reverse_pos is None:
        return
    target = mapping.path.parent / mapping.reverse
    if not target.is_file():
        problems.add(mapping.reverse_pos, "bad-value",
                     f"'reverse' names {mapping.reverse}, which is not a file here")


def unreadable(path: Path, message: str) -> Checked:
    """A Checked for a file that could not be found at all."""
    display = display_path(path)
    return Checked(path=path, file=display, mapping=None,
                   problems=[Problem(display, 1, 1, "unreadable", message)])


