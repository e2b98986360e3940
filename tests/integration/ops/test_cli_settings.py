"""A bad setting stops a command with one line naming its variable, never a traceback."""

from typing import Any

import pytest


@pytest.mark.parametrize(("command", "variable", "value"), [
    (["worker"], "worker_concurrency", "0"),
    (["relay"], "worker_prefetch", "ten"),
    (["db", "upgrade"], "relay_interval", "soon"),
])
def test_a_bad_setting_is_one_line_naming_its_variable(
        cli: Any, command: list[str], variable: str, value: str) -> None:
    result = cli(*command, **{variable: value})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: settings: CASEBRIDGE_{variable.upper()}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
