"""`casebridge users …`: console users and their roles."""

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from gateway.console import throttle, users
from gateway.protection import audit
from gateway.settings import get_settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import utcnow

users_app = typer.Typer(help="Console users: who may log in to /console, with which role.",
                        no_args_is_help=True)

PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input (one line) instead of "
    "asking for it")]


@contextmanager
def _store(change: str | None = None, username: str = "") -> Iterator[Session]:
    """A transaction; with `change`, an audit entry of it commits in the same one."""
    engine = make_engine(get_settings().database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session
            if change is not None:
                audit.record(session, actor=f"user:{getpass.getuser()}@cli",
                             action="console.user", detail={"change": change,
                                                            "user": username})
    except users.UserProblem as problem:
        typer.echo(problem.detail, err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name, e.g. j.doe")],
    role: Annotated[users.Role, typer.Option(help="What the user may see and do")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a console user (the password is asked for twice, never shown)."""
    password = _password(password_stdin)
    with _store("add", username) as session:
        users.create_user(session=session, username=username, role=role, password=password)
    typer.echo(f"{username}: added as {role.value}")


@users_app.command("list")
def list_() -> None:
    """List console users: name, role, active or disabled, created."""
    with _store() as session:
        found = users.list_users(session=session)
        for user in found:
            state = "active" if user.active else "disabled"
            typer.echo(f"{user.username}\t{user.role}\t{state}\t{user.created_at:%Y-%m-%d}")
    if not found:
        typer.echo("no console users", err=True)


@users_app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Stop a user from logging in; their open sessions end at their next request."""
    with _store("disable", username) as session:
        users.disable_user(session=session, username=username)
    typer.echo(f"{username}: disabled")


@users_app.command("enable")
def enable(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Let a disabled user log in again."""
    with _store("enable", username) as session:
        users.enable_user(session=session, username=username)
    typer.echo(f"{username}: enabled")


@users_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="Login name")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Give a user a new password; every session opened with the old one ends."""
    password = _password(password_stdin)
    with _store("set-password", username) as session:
        users.set_password(session=session, username=username, password=password)
    typer.echo(f"{username}: password changed")


@users_app.command("lockouts")
def lockouts() -> None:
    """List the console login lockouts in force: scope, user, address, failures, until."""
    with _store() as session:
        found = throttle.in_force(session, now=utcnow())
        for row in found:
            typer.echo(f"{row.scope}\t{row.username or '?'}\t{row.address}\t{row.failures}\t"
                       f"{row.locked_until:%Y-%m-%d %H:%M:%S} UTC")
    if not found:
        typer.echo("no lockouts in force", err=True)


@users_app.command("unlock")
def unlock(
    username: Annotated[str | None, typer.Argument(help="Login name: its failed logins from "
                                                        "every address are forgotten")] = None,
    address: Annotated[str | None, typer.Option(help="A client address: its failed logins "
                                                     "are forgotten")] = None,
) -> None:
    """Lift a login lockout (or the growing wait) before it ends by itself."""
    if not username and not address:
        raise typer.BadParameter("give a username, or --address", param_hint="USERNAME")
    with _store("unlock", username or "") as session:
        lifted = throttle.unlock(session, username=username, address=address)
    typer.echo(f"{lifted} record{'s' if lifted != 1 else ''} of failed logins forgotten")
