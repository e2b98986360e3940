"""The mappings in force in a running gateway, reloaded when their files change.

A changed file is checked before it replaces anything: a file that fails its check is
refused, the last good version stays in force, and the refusal is logged and kept in
`refusals` for the console. A broken file can never stop the gateway or half-apply.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.check import Checked, check_mapping_file, display_path
from gateway.mapping.codes import CodeListFolder
from gateway.mapping.compile import CompiledMapping, compile_mapping
from gateway.mapping.parse import mapping_identity
from gateway.mapping.schema import SchemaView

log = structlog.get_logger()

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Refusal:
    """A mapping file version that was not put in force, and why (problems hold no values)."""

    system: str
    name: str
    file: str
    content_hash: str
    problems: tuple[str, ...]
    at: datetime


@dataclass
class _Slot:
    """One mapping file: what is in force, and what was last seen on disk."""

    path: Path
    compiled: CompiledMapping | None = None
    fingerprint: Fingerprint = ()
    refused_hash: str | None = None


@dataclass
class MappingRegistry:
    """Every mapping under `root` (`<system>/<name>.yaml`), compiled, by (system, name)."""

    root: Path
    contracts: Contracts
    refusals: list[Refusal] = field(default_factory=list)
    max_refusals: int = 200

    def __post_init__(self) -> None:
        self._view = SchemaView(self.contracts)
        self._slots: dict[Path, _Slot] = {}
        self._lock = threading.Lock()
        # Replaced whole after each refresh, so readers in other threads never see it change.
        self._in_force: dict[tuple[str, str], CompiledMapping] = {}

    def get(self, system: str, name: str) -> CompiledMapping:
        """The compiled mapping in force; MappingError when there is none."""
        compiled = self._in_force.get((system, name))
        if compiled is None:
            raise MappingError(f"no mapping {system}/{name} is in force", rule="registry",
                               mapping=f"{system}/{name}")
        return compiled

    def loaded(self) -> list[CompiledMapping]:
        """Every mapping in force."""
        return list(self._in_force.values())

    def refresh(self) -> list[str]:
        """Look for new, changed and removed files; return the files put in force just now."""
        with self._lock:
            paths = sorted(p for p in self.root.glob("*/*.yaml") if p.is_file())
            for gone in set(self._slots) - set(paths):
                slot = self._slots.pop(gone)
                if slot.compiled is not None:
                    log.info("mapping_removed", file=display_path(gone),
                             mapping=f"{slot.compiled.system}/{slot.compiled.name}")
            folders: dict[Path, CodeListFolder] = {}
            changed = []
            for path in paths:
                slot = self._slots.setdefault(path, _Slot(path))
                fingerprint = _fingerprint(path)
                if fingerprint == slot.fingerprint:
                    continue
                slot.fingerprint = fingerprint
                if self._load(slot, folders):
                    changed.append(display_path(path))
            self._in_force = {(c.system, c.name): c for s in self._slots.values()
                              if (c := s.compiled) is not None}
            return changed

    def _load(self, slot: _Slot, folders: dict[Path, CodeListFolder]) -> bool:
        system, name = mapping_identity(slot.path)
        try:
            checked = check_mapping_file(slot.path, self._view, folders=folders)
        except Exception as error:  # a checker bug must not stop the gateway: refuse the file
            log.exception("mapping_check_crashed", file=display_path(slot.path),
                          error=type(error).__name__)
            checked = Checked(slot.path, display_path(slot.path), None)
            crashed = f"the check crashed ({type(error).__name__})"
            self._refuse(slot, checked, system, name, (crashed,))
            return False
        if slot.compiled is not None and checked.content_hash == slot.compiled.content_hash:
            return False
        if not checked.ok:
            problems = tuple(str(p) for p in checked.problems) or ("the file cannot be read",)
            self._refuse(slot, checked, system, name, problems)
            return False
        compiled = compile_mapping(checked)
        if any(other is not slot and other.compiled is not None
               and (other.compiled.system, other.compiled.name) == (system, name)
               for other in self._slots.values()):
            self._refuse(slot, checked, system, name, (f"another file is already {system}/{name}",))
            return False
        slot.compiled, slot.refused_hash = compiled, None
        log.info("mapping_loaded", file=checked.file, mapping=f"{system}/{name}",
                 content_hash=compiled.content_hash)
        return True

    def _refuse(self, slot: _Slot, checked: Checked, system: str, name: str,
                problems: tuple[str, ...]) -> None:
        if checked.content_hash and checked.content_hash == slot.refused_hash:
            return
        slot.refused_hash = checked.content_hash or None
        in_force = slot.compiled.content_hash if slot.compiled is not None else None
        log.warning("mapping_refused", file=checked.file, mapping=f"{system}/{name}",
                    problem_count=len(problems), content_hash=checked.content_hash or None,
                    in_force=in_force)
        self.refusals.append(Refusal(system, name, checked.file, checked.content_hash,
                                     problems, datetime.now(UTC)))
        del self.refusals[:-self.max_refusals]


def _fingerprint(path: Path) -> Fingerprint:
    """Size and modification time of the file and of every code list beside it."""
    files = [path, *sorted((path.parent / "codes").glob("*.yaml"))]
    stamps = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        stamps.append((file.name, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)
