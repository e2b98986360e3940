"""Code lists: find them, check them against the contract's code list, and look codes up.

A code list maps native codes to canonical codes for inbound use and back for outbound
use. An entry marked `only: inbound` or `only: outbound` is used in one direction, which
is how a file says "several native codes stand for one canonical code, and this is meant".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.mapping.model import CodeList
from gateway.mapping.parse import parse_code_list_file
from gateway.mapping.schema import SchemaView
from gateway.yamlpos import Problems


class CodeListFolder:
    """The shared code lists of one system (`mappings/<system>/codes/*.yaml`), read once each."""

    def __init__(self, folder: Path, display: Callable[[Path], str], view: SchemaView) -> None:
        self.folder = folder
        self.display = display
        self.view = view
        self._loaded: dict[str, tuple[CodeList | None, Problems]] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.yaml"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.yaml")) if self.folder.is_dir() else []

    def load(self, name: str) -> tuple[CodeList | None, Problems]:
        """The code list `name` (None if there is no such file) and the problems of its file."""
        if name not in self._loaded:
            path = self.path(name)
            problems = Problems(self.display(path))
            codes = parse_code_list_file(path, problems.file, problems) if path.is_file() \
                else None
            if codes is not None:
                check_code_list(codes, self.view, problems)
            self._loaded[name] = (codes, problems)
        return self._loaded[name]


def check_code_list(codes: CodeList, view: SchemaView, problems: Problems) -> None:
    """Report duplicate codes, codes that do not round-trip, and gaps against the contract."""
    inbound: dict[Any, Any] = {}
    outbound: dict[Any, Any] = {}
    for entry in codes.entries:
        if entry.inbound:
            key = _key(entry.native)
            if key in inbound:
                first = inbound[key]
                problems.add(entry.pos, "duplicate-code",
                             f"native code '{entry.native}' is listed twice (first at line "
                             f"{first.pos.line}); mark one 'only: outbound' if that is meant")
            else:
                inbound[key] = entry
        if entry.outbound:
            key = _key(entry.canonical)
            if key in outbound:
                first = outbound[key]
                message = (
                    f"canonical code '{entry.canonical}' already maps back to '{first.native}' "
                    f"(line {first.pos.line}); it cannot also map to '{entry.native}'"
                    if entry.only == "outbound" else
                    f"native code '{entry.native}' maps to '{entry.canonical}', which maps back "
                    f"to '{first.native}' (line {first.pos.line}); mark it 'only: inbound' if "
                    "that is meant")
                problems.add(entry.pos, "round-trip", message)
            else:
                outbound[key] = entry
    if codes.contract is None:
        return
    where = codes.contract_pos or codes.pos
    field = view.root(codes.contract)
    values = field.enum() if field is not None else None
    if values is None:
        problems.add(where, "unknown-contract",
                     f"'{codes.contract}' is not a canonical code list (e.g. codes/sex)")
        return
    check_against_enum(codes, values, codes.contract, problems, where)


def check_against_enum(codes: CodeList, values: list[Any], contract: str, problems: Problems,
                       where: Any) -> None:
    """Canonical codes must be codes of the contract, and each contract code mapped or unmapped."""
    known = {_key(v) for v in values}
    for entry in codes.entries:
        if _key(entry.canonical) not in known:
            problems.add(entry.pos, "unknown-code",
                         f"'{entry.canonical}' is not a code of {contract}")
    mapped = {_key(e.canonical) for e in codes.entries if e.outbound}
    unmapped = {_key(code) for code, _ in codes.unmapped}
    for code, pos in codes.unmapped:
        if _key(code) not in known:
            problems.add(pos, "unknown-code", f"'{code}' is not a code of {contract}")
        elif _key(code) in mapped:
            problems.add(pos, "bad-value", f"'{code}' is listed as unmapped but is mapped")
    missing = [str(v) for v in values if _key(v) not in mapped | unmapped]
    if missing:
        problems.add(where, "code-list-incomplete",
                     f"code list '{codes.name}' misses codes of {contract}: "
                     f"{', '.join(missing)} (map them, or list them under 'unmapped')")


def _key(value: Any) -> tuple[str, Any]:
    """Compare codes by type and value, so that `true` and `1` stay different codes."""
    return (type(value).__name__, value)
