"""The service directory in force in a running gateway, reread when its files change.

The files of `directory/` are kept in force by `CheckedFiles`, as mappings and agreements
are: a changed file is checked before it replaces anything, a file that fails its check is
refused and its last good version stays in force. The files in force are merged into one
`Directory` (kept until a file changes); `view(session)` adds the availability the
organisations themselves gave through the API, where it is newer than their file's.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.checked_files import CheckedFiles, Refusal
from gateway.contracts import Contracts
from gateway.deadlines.calendars import Calendar, load_calendars
from gateway.directory.availability import availability_updates
from gateway.directory.files import CODE_LISTS, check_directory_file
from gateway.directory.model import Directory, Operation
from gateway.store.group_commit import once_per_group


def code_lists(contracts: Contracts) -> dict[str, frozenset[str]]:
    """The code lists a directory file is checked against."""
    return {name: frozenset(contracts.codes(name)) for name in CODE_LISTS}


class DirectoryRegistry:
    """Every directory file under `root` (`<id>.yaml`), checked, merged, in force."""

    def __init__(self, root: Path, contracts: Contracts, *, calendars_dir: Path | None = None,
                 max_refusals: int = 200) -> None:
        self.root = root
        self.calendars: Mapping[str, Calendar] = load_calendars(calendars_dir)[0]
        self.codes = code_lists(contracts)
        calendar_ids: Collection[str] = frozenset(self.calendars)
        self._files = CheckedFiles(
            root, "*.yaml", lambda path: _checked(path, self.codes, calendar_ids),
            kind="directory", max_refusals=max_refusals)
        self._lock = threading.Lock()
        self._merged: tuple[tuple[str, ...], Directory] | None = None

    @property
    def refusals(self) -> list[Refusal]:
        """The file versions refused, oldest first."""
        return self._files.refusals

    def files(self) -> Directory:
        """The directory as its files say (after looking for changed files)."""
        self._files.refresh()
        operations = list(self._files.in_force().values())
        key = tuple(sorted(o.content_hash for o in operations))
        with self._lock:
            if self._merged is None or self._merged[0] != key:
                self._merged = (key, Directory.merge(operations))
            return self._merged[1]

    def view(self, session: Session, *, partner: str | None = None) -> Directory:
        """The directory with the organisations' own availability updates applied; for
        a check of one `partner`'s services, without reading them when it has none."""
        files = once_per_group(session, self, self.files)
        if partner is not None and not files.organizations_of(partner):
            return files
        return files.with_availability(availability_updates(session))


def _checked(path: Path, codes: Mapping[str, Collection[str]],
             calendar_ids: Collection[str]) -> tuple[Operation | None, list[str]]:
    operation, problems = check_directory_file(path, codes=codes, calendar_ids=calendar_ids)
    return operation, [str(p) for p in problems]
