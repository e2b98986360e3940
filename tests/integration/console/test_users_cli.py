"""`casebridge users …` on a real store: add, list, set a password, disable, enable."""

import uuid

import pytest
from typer.testing import CliRunner

from gateway.console.users import LoginRefused, authenticate_user
from gateway.console.users_cli import users_app
from gateway.settings import get_settings
from gateway.store.models import ConsoleUser


@pytest.fixture
def users_cli(settings):
    def invoke(*args: str, input: str | None = None):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(users_app, list(args), input=input, env={
                "CASEBRIDGE_DATABASE_URL": settings.database_url})
        finally:
            get_settings.cache_clear()

    return invoke


def test_users_are_added_listed_changed_and_disabled_from_the_command_line(
    users_cli, sessions, real_password_hashing
) -> None:
    name = f"cli.{uuid.uuid4().hex[:6]}"
    added = users_cli("add", name, "--role", "auditor",
                      input="first fictional passphrase\nfirst fictional passphrase\n")
    assert added.exit_code == 0, added.output
    assert "first fictional passphrase" not in added.output  # the prompt hides it
    assert f"{name}: added as auditor" in added.output
    with sessions() as session:
        stored = session.get(ConsoleUser, name)
        assert stored.role == "auditor" and stored.active
        assert stored.password_hash.startswith("scrypt$n=32768,r=8,p=1$")
        assert "first fictional" not in stored.password_hash
        authenticate_user(session=session, username=name, password="first fictional passphrase")

    mismatch = users_cli("set-password", name, input="one passphrase here\nanother one here\n")
    assert mismatch.exit_code != 0
    changed = users_cli("set-password", name, "--password-stdin",
                        input="second fictional passphrase\n")
    assert changed.exit_code == 0, changed.output
    with sessions() as session:
        with pytest.raises(LoginRefused):
            authenticate_user(session=session, username=name,
                              password="first fictional passphrase")
        authenticate_user(session=session, username=name, password="second fictional passphrase")

    listed = users_cli("list")
    assert f"{name}\tauditor\tactive" in listed.output
    assert users_cli("disable", name).exit_code == 0
    assert f"{name}\tauditor\tdisabled" in users_cli("list").output
    with sessions() as session, pytest.raises(LoginRefused) as refused:
        authenticate_user(session=session, username=name, password="second fictional passphrase")
    assert refused.value.reason == "disabled"
    assert users_cli("enable", name).exit_code == 0
    assert f"{name}\tauditor\tactive" in users_cli("list").output


def test_the_command_line_refuses_bad_users(users_cli) -> None:
    name = f"cli.{uuid.uuid4().hex[:6]}"
    short = users_cli("add", name, "--role", "operator", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    role = users_cli("add", name, "--role", "admin", "--password-stdin",
                     input="a good long passphrase\n")
    assert role.exit_code == 2 and "admin" in role.output
    bad_name = users_cli("add", "Has Spaces", "--role", "operator", "--password-stdin",
                         input="a good long passphrase\n")
    assert bad_name.exit_code == 1 and "lower-case letters" in bad_name.output
    assert users_cli("add", name, "--role", "operator", "--password-stdin",
                     input="a good long passphrase\n").exit_code == 0
    again = users_cli("add", name, "--role", "operator", "--password-stdin",
                      input="a good long passphrase\n")
    assert again.exit_code == 1 and "exists already" in again.output
    assert users_cli("disable", "nobody-at-all").exit_code == 1
