"""The mappings in force in a running gateway, reloaded when their files change.

A changed file is checked before it replaces anything: a file that fails its check is
refused, the last good version stays in force, and the refusal is logged and kept in
`refusals` for the console. A broken file can never stop the gateway or half-apply.
"""

from __future__ import annotations

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
        # Code lists read once per refresh and shared by the mappings of one system.
        self._folders: dict[Path, CodeListFolder] = {}
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
        self._folders = {}
        return self._files.refresh()

    def _check(self, path: Path) -> tuple[CompiledMapping | None, list[str]]:
        checked = check_mapping_file(path, self._view, folders=self._folders)
        if not checked.ok:
            return None, [str(p) for p in checked.problems]
        return compile_mapping(checked), []


def _identity(path: Path) -> str:
    return "/".join(mapping_identity(path))


def _code_lists(path: Path) -> list[Path]:
    """The shared code lists beside a mapping: a change to one may change the mapping."""
    return sorted((path.parent / "codes").glob("*.yaml"))
