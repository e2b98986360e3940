"""Files IM officers edit, kept in force in a running gateway and reread when they change.

Mappings and agreements use it now; deadline policies and the service directory are meant to.
Give `CheckedFiles` a folder, a glob and a `check(path) -> (value | None, problems)`
function. On each `refresh()` it looks at the files (a stat each, cheap enough for every
request) and checks only those whose fingerprint changed. A file that passes its check is
put in force; a file that fails it is refused: the last good version of that file stays in
force, the refusal is logged and kept in `refusals` with its `file:line:column` problems,
once per version. A removed file leaves force. A broken file can never stop the gateway or
half-apply, and readers in other threads always see one whole set of values.

    files = CheckedFiles(root, "*.yaml", check_policy, kind="policy")
    files.refresh()
    files.in_force()     # {"name": value, …}, as of the last refresh
    files.refusals       # [Refusal(path, file, content_hash, problems, at), …]
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import structlog

from gateway.yamlpos import display_path

log = structlog.get_logger()


class Versioned(Protocol):
    """What a checked value says of the file version it was read from."""

    @property
    def content_hash(self) -> str: ...


V = TypeVar("V", bound=Versioned)
Check = Callable[[Path], tuple[V | None, Sequence[str]]]
Fingerprint = tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True)
class Refusal:
    """A version of a file that was not put in force, and why (problems hold no values)."""

    path: Path
    file: str
    content_hash: str
    problems: tuple[str, ...]
    at: datetime


@dataclass
class _Slot(Generic[V]):
    """One file: what is in force from it, and what was last seen of it on disk."""

    value: V | None = None
    fingerprint: Fingerprint = ()
    refused: tuple[str, tuple[str, ...]] | None = None  # (content hash, problems)


def file_stem(path: Path) -> str:
    """A file's name without `.yaml`: the default name of what it holds."""
    return path.stem


@dataclass
class CheckedFiles(Generic[V]):
    """The checked files under `root` matching `pattern`, the last good version of each in force.

    `name(path)` names what a file holds (two files may not hold the same name: the one in
    force first keeps it); `companions(path)` lists other files whose change calls for a new
    check of this one (e.g. the code lists beside a mapping). `kind` prefixes the log events:
    `<kind>_loaded`, `<kind>_refused`, `<kind>_removed`, `<kind>_check_crashed`.
    """

    root: Path
    pattern: str
    check: Check[V]
    kind: str
    name: Callable[[Path], str] = file_stem
    companions: Callable[[Path], Iterable[Path]] = lambda _: ()
    max_refusals: int = 200
    refusals: list[Refusal] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._slots: dict[Path, _Slot[V]] = {}
        self._lock = threading.Lock()
        # Replaced whole after each refresh, so readers in other threads never see it change.
        self._in_force: dict[str, V] = {}

    def in_force(self) -> Mapping[str, V]:
        """What is in force, by name, as of the last refresh."""
        return self._in_force

    def refresh(self) -> list[str]:
        """Look for new, changed and removed files; return the files put in force just now."""
        with self._lock:
            paths = sorted(p for p in self.root.glob(self.pattern) if p.is_file())
            for gone in set(self._slots) - set(paths):
                if self._slots.pop(gone).value is not None:
                    log.info(f"{self.kind}_removed", file=display_path(gone),
                             **{self.kind: self.name(gone)})
            changed = []
            for path in paths:
                slot = self._slots.setdefault(path, _Slot())
                fingerprint = self._fingerprint(path)
                if not fingerprint or fingerprint == slot.fingerprint:
                    continue
                slot.fingerprint = fingerprint
                if self._load(path, slot):
                    changed.append(display_path(path))
            self._in_force = {self.name(path): slot.value for path, slot in self._slots.items()
                              if slot.value is not None}
            return changed

    def _load(self, path: Path, slot: _Slot[V]) -> bool:
        name = self.name(path)
        try:
            value, problems = self.check(path)
        except Exception as error:  # a checker bug must not stop the gateway: refuse the file
            log.exception(f"{self.kind}_check_crashed", file=display_path(path),
                          error=type(error).__name__)
            value, problems = None, [f"{display_path(path)}:1:1: crashed: the check crashed "
                                     f"({type(error).__name__})"]
        if value is None:
            self._refuse(path, slot, tuple(problems) or ("the file cannot be read",))
            return False
        if slot.value is not None and value.content_hash == slot.value.content_hash:
            slot.refused = None
            return False
        if any(other is not slot and other.value is not None and self.name(p) == name
               for p, other in self._slots.items()):
            self._refuse(path, slot, (f"another file is already {name}",))
            return False
        slot.value, slot.refused = value, None
        log.info(f"{self.kind}_loaded", file=display_path(path), **{self.kind: name},
                 content_hash=value.content_hash)
        return True

    def _refuse(self, path: Path, slot: _Slot[V], problems: tuple[str, ...]) -> None:
        content_hash = _hash_of(path)
        if (content_hash, problems) == slot.refused:
            return
        slot.refused = (content_hash, problems)
        file = display_path(path)
        log.warning(f"{self.kind}_refused", file=file, **{self.kind: self.name(path)},
                    problems=list(problems), problem_count=len(problems),
                    content_hash=content_hash or None,
                    in_force=slot.value.content_hash if slot.value is not None else None)
        self.refusals.append(Refusal(path, file, content_hash, problems, datetime.now(UTC)))
        del self.refusals[:-self.max_refusals]

    def _fingerprint(self, path: Path) -> Fingerprint:
        """What a stat says of the file and its companions; empty when the file is gone.

        The inode and change time are in it so that a file replaced whole is seen even when
        its size and modification time, whose clock may be coarse, happen to be unchanged.
        """
        stamps = []
        for index, file in enumerate([path, *self.companions(path)]):
            try:
                stat = file.stat()
            except OSError:
                if index == 0:
                    return ()
                continue
            stamps.append((file.name, stat.st_mtime_ns, stat.st_size, stat.st_ino,
                           stat.st_ctime_ns))
        return tuple(stamps)


def _hash_of(path: Path) -> str:
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
