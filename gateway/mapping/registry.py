"""The mappings in force in a running gateway, reloaded when their files change.

A changed file is checked before it replaces anything: a file that fails its check is
refused, the last good version stays in force, and the refusal is logged and kept in
`refusals` for the console. A broken file can never stop the gateway or half-apply.

Parsing and checking a mapping is slow (a tenth of a second a file), and one process may
hold several registries of the same files (the API's, the FHIR face's, the proGres DTP
intake's; a test run, hundreds): what one registry checked, another takes as it is, as
long as every file the check read still holds the same bytes against the same contracts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.checked_files import CheckedFiles
from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.check import check_mapping_file
from gateway.mapping.codes import CodeListFolder
from gateway.mapping.compile import CompiledMapping, compile_mapping
from gateway.mapping.parse import mapping_identity
from gateway.mapping.schema import SchemaView


@dataclass(frozen=True)
class Refusal:
    """A mapping file version that was not put in force, and why (problems hold no values)."""

    system: str
    name: str
    file: str
    content_hash: str
    problems: tuple[str, ...]
    at: datetime


class MappingRegistry:
    """Every mapping under `root` (`<system>/<name>.yaml`), compiled, by (system, name);
    with `system`, only that system's."""

    def __init__(self, root: Path, contracts: Contracts, *, max_refusals: int = 200,
                 system: str | None = None) -> None:
        self.root = root
        self.contracts = contracts
        self._view = SchemaView(contracts)
        self._schemas = _digest(json.dumps(contracts.schemas, sort_keys=True).encode())
        # Code lists read once per refresh and shared by the mappings of one system.
        self._folders: dict[Path, CodeListFolder] = {}
        # What each system folder holds, read once per refresh before any of its files is.
        self._contents: dict[Path, str] = {}
        self._files = CheckedFiles(root, f"{system or '*'}/*.yaml", self._check, kind="mapping",
                                   name=_identity, companions=_code_lists,
                                   max_refusals=max_refusals)

    @property
    def refusals(self) -> list[Refusal]:
        """The file versions refused, oldest first."""
        return [Refusal(*mapping_identity(r.path), r.file, r.content_hash, r.problems, r.at)
                for r in self._files.refusals]

    def get(self, system: str, name: str) -> CompiledMapping:
        """The compiled mapping in force; MappingError when there is none."""
        compiled = self._files.in_force().get(f"{system}/{name}")
        if compiled is None:
            raise MappingError(f"no mapping {system}/{name} is in force", rule="registry",
                               mapping=f"{system}/{name}")
        return compiled

    def loaded(self) -> list[CompiledMapping]:
        """Every mapping in force."""
        return list(self._files.in_force().values())

    def refresh(self) -> list[str]:
        """Look for new, changed and removed files; return the files put in force just now."""
        self._folders, self._contents = {}, {}
        return self._files.refresh()

    def _check(self, path: Path) -> tuple[CompiledMapping | None, list[str]]:
        folder = path.parent
        if folder not in self._contents:
            self._contents[folder] = _folder_digest(folder)
        place, contents = (path.resolve(), Path.cwd(), self._schemas), self._contents[folder]
        with _checked_lock:
            kept = _checked.get(place)
            if kept is not None and kept[0] == contents:
                return kept[1]
        checked = check_mapping_file(path, self._view, folders=self._folders)
        result: tuple[CompiledMapping | None, list[str]] = (
            (compile_mapping(checked), []) if checked.ok
            else (None, [str(p) for p in checked.problems]))
        reverse = checked.mapping.reverse if checked.mapping is not None else None
        # Kept only if what was read is what the key says: not when a file changed during
        # the check, nor when the reverse file lies outside the folder.
        if ((reverse is None or (folder / reverse).resolve().parent == folder.resolve())
                and _folder_digest(folder) == contents):
            with _checked_lock:
                _checked[place] = (contents, result)  # the latest only: edits do not pile up
        return result


# (file, working folder (it shows in problems), contracts) -> (its folder's bytes, result).
_checked: dict[tuple[Path, Path, str],
               tuple[str, tuple[CompiledMapping | None, list[str]]]] = {}
_checked_lock = threading.Lock()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder_digest(folder: Path) -> str:
    """The names and bytes of the mappings of a system folder and of its code lists: all a
    check of one of its mappings reads (its own file, code lists, its reverse file)."""
    digest = hashlib.sha256()
    for file in sorted([*folder.glob("*.yaml"), *(folder / "codes").glob("*.yaml")]):
        try:
            data = file.read_bytes()
        except OSError:
            continue
        digest.update(f"{file.relative_to(folder)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def _identity(path: Path) -> str:
    return "/".join(mapping_identity(path))


def _code_lists(path: Path) -> list[Path]:
    """The shared code lists beside a mapping: a change to one may change the mapping."""
    return sorted((path.parent / "codes").glob("*.yaml"))
