"""Guessing a console password over real HTTP: slowed, then locked out from the guessing
computer only, each step audited, shown to the user and to the auditor, lifted from the
command line. Client addresses come through X-Forwarded-For, which uvicorn trusts from
127.0.0.1 as from a proxy on the host."""

import time

import httpx
from console_testkit import PASSWORD
from sqlalchemy import select

from gateway.store.models import AuditEntry
from servers import LiveServer

GUESSER, OWNER = "10.0.0.66", "10.0.0.5"


def attempt(client: httpx.Client, username: str, password: str, address: str
            ) -> httpx.Response:
    return client.post("/console/login", data={"username": username, "password": password},
                       headers={"X-Forwarded-For": address})


def test_guessing_is_slowed_then_locked_from_that_computer_only_and_everyone_sees_it(
    settings, users, sessions, login, cli
) -> None:
    strict = settings.model_copy(update={
        "console_secure_cookie": False, "console_login_free_failures": 1,
        "console_login_lockout_failures": 3})
    with LiveServer(strict) as server, httpx.Client(base_url=server.url) as client:
        first = attempt(client, users.operator, "guess-1", GUESSER)
        assert first.status_code == 401 and "Wait" not in first.text
        second = attempt(client, users.operator, "guess-2", GUESSER)
        assert second.status_code == 401 and "Wait 2 seconds before the next try" in second.text
        # Too soon: refused before the password is even checked, the right one too.
        early = attempt(client, users.operator, PASSWORD, GUESSER)
        assert early.status_code == 429 and early.headers["Retry-After"] in {"1", "2"}
        assert "casebridge_console" not in early.headers.get("set-cookie", "")
        time.sleep(int(early.headers["Retry-After"]))
        third = attempt(client, users.operator, "guess-3", GUESSER)
        assert third.status_code == 401 and "locked for 15 minutes" in third.text
        locked = attempt(client, users.operator, PASSWORD, GUESSER)
        assert locked.status_code == 429 and "is locked here until" in locked.text
        assert int(locked.headers["Retry-After"]) > 800
        # The user, from her own computer, logs in as usual.
        own = attempt(client, users.operator, PASSWORD, OWNER)
        assert own.status_code == 303

    with sessions() as session:
        trail = [(e.action, e.actor, e.detail) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.actor == f"user:{users.operator}")
            .order_by(AuditEntry.seq))][-7:]
    assert [(action, detail.get("reason")) for action, _, detail in trail] == [
        ("console.login", "wrong_password"), ("console.login", "wrong_password"),
        ("console.login", "held"), ("console.login", "wrong_password"),
        ("console.lockout", None), ("console.login", "held"), ("console.login", None)]
    assert [detail.get("failures") for _, _, detail in trail[:4]] == [1, 2, None, 3]
    assert trail[4][2]["scope"] == "user_address" and trail[4][2]["address"] == GUESSER
    assert PASSWORD not in repr(trail) and "guess-" not in repr(trail)

    audit_page = login(users.auditor).get("/console/audit")
    assert "Console login lockouts in force" in audit_page.text
    assert users.operator in audit_page.text and GUESSER in audit_page.text

    listed = cli("users", "lockouts", database_url=settings.database_url)
    assert f"user_address\t{users.operator}\t{GUESSER}\t3\t" in listed.output
    lifted = cli("users", "unlock", users.operator, database_url=settings.database_url)
    assert lifted.exit_code == 0 and "1 record of failed logins forgotten" in lifted.output
    cli("users", "unlock", "--address", GUESSER, database_url=settings.database_url)
    assert "no lockouts in force" in cli("users", "lockouts",
                                         database_url=settings.database_url).output
