"""The deadline book: the policies and calendars in force in a running gateway.

Both folders are kept through `CheckedFiles`: a file is reread when it changes, a changed
file that fails its check is refused (logged once per version as `deadline_policy_refused`
or `calendar_refused`, with its `file:line:column: rule: message` problems) and the last
good version of it stays in force. A policy is checked against the calendars in force, and
checked again when the calendar it names changes, appears or goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.checked_files import CheckedFiles, Refusal
from gateway.contracts import Contracts
from gateway.deadlines.calendars import BUILTIN, Calendar, builtin_calendar, check_calendar_file
from gateway.deadlines.policies import Policy, Rule, check_policy_file
from gateway.settings import Settings


class DeadlineBook:
    """The deadline policies of `deadlines_dir` and the calendars of `calendars_dir`."""

    def __init__(self, *, deadlines_dir: Path, calendars_dir: Path, contracts: Contracts) -> None:
        self.deadlines_dir, self.calendars_dir = deadlines_dir, calendars_dir
        self.contracts = contracts
        self._builtin = {calendar_id: builtin_calendar(calendar_id) for calendar_id in BUILTIN}
        # The calendar each policy file named when last checked: its companion file.
        self._named: dict[Path, str] = {}
        self._calendars: CheckedFiles[Calendar] = CheckedFiles(
            calendars_dir, "*.yaml", _check_calendar, kind="calendar")
        self._policies: CheckedFiles[Policy] = CheckedFiles(
            deadlines_dir, "*.yaml", self._check_policy, kind="deadline_policy",
            companions=self._companions)

    @classmethod
    def from_settings(cls, settings: Settings, contracts: Contracts | None = None
                      ) -> DeadlineBook:
        """The book of the configured folders."""
        return cls(deadlines_dir=settings.deadlines_dir, calendars_dir=settings.calendars_dir,
                   contracts=contracts or Contracts(settings.contracts_dir))

    def refresh(self) -> list[str]:
        """Look for changed files (calendars first); return the files put in force just now."""
        return self._calendars.refresh() + self._policies.refresh()

    def calendars(self) -> Mapping[str, Calendar]:
        """The built-in calendars and those of the calendar files in force, by id."""
        return {**self._builtin, **self._calendars.in_force()}

    def policies(self) -> list[Policy]:
        """The policies in force whose calendar is in force too, by id."""
        calendars = self.calendars()
        return sorted((p for p in self._policies.in_force().values() if p.calendar in calendars),
                      key=lambda p: p.id)

    def rule(self, policy_id: str, state: str, name: str) -> Rule | None:
        """The rule a stored deadline came from, if its policy is still in force."""
        policy = next((p for p in self.policies() if p.id == policy_id), None)
        if policy is None:
            return None
        return next((r for r in policy.rules if r.state == state and r.name == name), None)

    @property
    def refusals(self) -> list[Refusal]:
        """The file versions refused, calendars' first, oldest first."""
        return [*self._calendars.refusals, *self._policies.refusals]

    def _check_policy(self, path: Path) -> tuple[Policy | None, list[str]]:
        policy, problems = check_policy_file(path, calendar_ids=set(self.calendars()),
                                             contracts=self.contracts)
        if policy is not None:
            self._named[path] = policy.calendar
        else:
            self._named.pop(path, None)
        return policy, [str(p) for p in problems]

    def _companions(self, path: Path) -> list[Path]:
        """The file of the calendar the policy names; for a policy that names none yet (or
        was refused), the folder itself, whose change says a calendar came or went."""
        named = self._named.get(path)
        if named is None:
            return [self.calendars_dir]
        return [self.calendars_dir / f"{named}.yaml"]


def _check_calendar(path: Path) -> tuple[Calendar | None, list[str]]:
    calendar, problems = check_calendar_file(path)
    return calendar, [str(p) for p in problems]
