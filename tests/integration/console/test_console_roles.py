"""The operations console over a real server: login, sessions, and what each role may see.

Runs on SQLite and PostgreSQL. The referral about the fictional child is written straight
into the store, so the console is tested on its own.
"""

import base64
import io
import json
import re
import time
from datetime import timedelta

import httpx
from console_testkit import PASSWORD, csrf_of
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from fictional import find_personal
from gateway.console.sessions import COOKIE, SessionCookies
from gateway.console.users import disable_user, set_password
from gateway.logs import configure_logging
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry, ConsoleUser, DeadLetter, OutboxMessage, Referral

PERSON = {"Zawadi", "Fictionalson", "2014-03-09"}
NAV = re.compile(r'<nav aria-label="Console pages">(.*?)</nav>', re.S)


def audit_entries(sessions, **where) -> list[AuditEntry]:
    with sessions() as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        for column, value in where.items():
            query = query.where(getattr(AuditEntry, column) == value)
        return list(session.scalars(query))


def nav_links(page: httpx.Response) -> set[str]:
    found = NAV.search(page.text)
    return set(re.findall(r'href="([^"]+)"', found.group(1))) if found else set()


# -- logging in -----------------------------------------------------------------------

def test_a_right_password_opens_a_session_and_wrong_ones_are_refused_and_audited(
    console, users, sessions
) -> None:
    with httpx.Client(base_url=console.url) as client:
        wrong = client.post("/console/login", data={"username": users.operator,
                                                    "password": "not-the-password"})
        assert wrong.status_code == 401
        assert "Wrong username or password" in wrong.text
        assert COOKIE not in client.cookies
        unknown = client.post("/console/login", data={"username": "nobody-here",
                                                      "password": PASSWORD})
        assert unknown.status_code == 401
        assert "nobody-here" not in unknown.text
        assert client.get("/console/deliveries").status_code == 303

        right = client.post("/console/login", data={"username": users.operator,
                                                    "password": PASSWORD})
        assert right.status_code == 303 and right.headers["location"] == "/console/"
        cookie = right.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie
        for flag in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"):
            assert flag in cookie
        assert "Secure" not in cookie  # turned off for http://127.0.0.1
        first = client.get("/console/", follow_redirects=True)
        assert first.status_code == 200 and first.url.path == "/console/overview"
        assert users.operator in first.text
        assert first.headers["X-Correlation-ID"]

    logins = audit_entries(sessions, action="console.login")
    mine = [e for e in logins if e.actor == f"user:{users.operator}"]
    assert [e.detail["ok"] for e in mine[-2:]] == [False, True]
    assert mine[-2].detail == {"ok": False, "reason": "wrong_password", "failures": 1}
    assert any(e.actor == "user:?" and e.detail == {"ok": False, "reason": "unknown_user",
                                                    "failures": 1} for e in logins)
    kept = json.dumps([[e.actor, e.detail] for e in logins])
    assert "not-the-password" not in kept and PASSWORD not in kept and "nobody-here" not in kept


def test_the_session_cookie_is_secure_unless_turned_off(gateway, users) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        answer = client.post("/console/login", data={"username": users.auditor,
                                                     "password": PASSWORD})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]
    assert "HttpOnly" in answer.headers["set-cookie"]


def test_a_form_sent_from_another_site_is_refused(console, users) -> None:
    answer = httpx.post(f"{console.url}/console/login",
                        data={"username": users.operator, "password": PASSWORD},
                        headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 403
    assert COOKIE not in answer.headers.get("set-cookie", "")


# -- roles ----------------------------------------------------------------------------

def test_each_role_opens_exactly_its_pages(console, login, users, failed_referral) -> None:
    rid = failed_referral.id
    operations = {"/console/overview", "/console/deliveries", "/console/dead-letters",
                  "/console/referrals", "/console/overdue", "/console/partners"}
    pages = {
        **dict.fromkeys(operations, {"operator", "im_officer"}),
        "/console/overview/live": {"operator", "im_officer"},
        f"/console/referrals/{rid}": {"operator", "im_officer"},
        f"/console/referrals/{rid}/content": {"im_officer"},
        "/console/mappings": {"im_officer"},
        "/console/pathways": {"operator", "im_officer"},
        "/console/audit": {"auditor"},
        "/console/audit/verify": {"auditor"},
        "/console/audit/export": {"auditor"},
        "/console/disclosures": {"auditor"},
        "/console/agreements": {"im_officer", "auditor"},
        "/console/subject-requests": {"auditor"},
        "/console/reports": {"operator", "im_officer", "auditor"},
        "/console/reports/turnaround.csv": {"operator", "im_officer", "auditor"},
    }
    nav = {"operator": operations | {"/console/reports", "/console/pathways"},
           "im_officer": operations | {"/console/mappings", "/console/agreements",
                                       "/console/reports", "/console/pathways"},
           "auditor": {"/console/audit", "/console/disclosures", "/console/agreements",
                       "/console/subject-requests", "/console/reports"}}
    for role in ("operator", "im_officer", "auditor"):
        client = login(getattr(users, role))
        for path, roles in pages.items():
            answer = client.get(path)
            expected = 200 if role in roles else 403
            assert answer.status_code == expected, (role, path, answer.status_code)
            assert answer.headers["X-Correlation-ID"]
            if answer.headers["content-type"].startswith("text/html") and \
                    not path.endswith("/live"):
                assert nav_links(answer) == nav[role], (role, path)
        token = csrf_of(client.get("/console/audit" if role == "auditor"
                                   else "/console/deliveries"))
        redrive = client.post("/console/dead-letters/redrive",
                              data={"csrf": token, "ids": str(failed_referral.dead_letter_id)})
        assert redrive.status_code == (403 if role == "auditor" else 303), role
        if role == "operator":
            assert "redriven=" in redrive.headers["location"]
    # without a session every page sends to the login page, remembering where to go back
    for path in pages:
        answer = httpx.get(f"{console.url}{path}")
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=/console/")


def test_an_operator_never_sees_the_person_though_the_referral_is_stored(
    login, users, failed_referral, sessions
) -> None:
    with sessions() as session:
        assert session.get(Referral, failed_referral.id).content["subject"]["given_name"] \
            == "Zawadi"
    client = login(users.operator)
    seen = []
    for path in ("/console/deliveries", "/console/dead-letters?all=true", "/console/referrals",
                 f"/console/referrals?id={failed_referral.id}",
                 f"/console/referrals?receiver={failed_referral.receiver}&state=failed",
                 "/console/overview", "/console/overdue", "/console/partners",
                 f"/console/referrals/{failed_referral.id}"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        seen.append(answer.text)
        assert not find_personal(answer.text, PERSON), path
    everything = "\n".join(seen)
    # what an operator needs is there: ids, partners, state, envelope, the error
    for needed in (failed_referral.id, failed_referral.receiver, failed_referral.correlation_id,
                   "partner_refused", "InvalidOptionSet", "failed"):
        assert needed in everything
    assert f"/console/referrals/{failed_referral.id}/content" not in everything


def test_an_im_officer_sees_the_content_and_each_view_is_audited(
    login, users, failed_referral, sessions
) -> None:
    client = login(users.im_officer)
    envelope = client.get(f"/console/referrals/{failed_referral.id}")
    assert not find_personal(envelope.text, PERSON)
    assert f"/console/referrals/{failed_referral.id}/content" in envelope.text
    assert not audit_entries(sessions, action="console.view", referral_id=failed_referral.id)

    captured = io.StringIO()
    configure_logging(level="debug", json=True, stream=captured)
    try:
        content = client.get(f"/console/referrals/{failed_referral.id}/content")
    finally:
        configure_logging(level="info", json=True)
    assert content.status_code == 200
    assert {"Zawadi", "Fictionalson", "2014-03-09"} <= find_personal(content.text, PERSON)
    assert content.headers["Cache-Control"] == "no-store"
    assert "/reason" in content.text  # what the need-to-know filter withheld
    assert not find_personal(captured.getvalue(), PERSON)

    [view] = audit_entries(sessions, action="console.view", referral_id=failed_referral.id)
    assert view.actor == f"user:{users.im_officer}"
    assert view.correlation_id == failed_referral.correlation_id
    assert not find_personal(json.dumps(view.detail), PERSON)
    mappings = client.get("/console/mappings")
    assert "primero/referral-status" in mappings.text


def test_the_auditor_sees_verifies_and_exports_the_trail(
    login, users, failed_referral, sessions
) -> None:
    login(users.im_officer).get(f"/console/referrals/{failed_referral.id}/content")
    auditor = login(users.auditor)
    trail = auditor.get("/console/audit", params={"referral": failed_referral.id})
    assert trail.status_code == 200
    assert "console.view" in trail.text and f"user:{users.im_officer}" in trail.text
    assert not find_personal(trail.text, PERSON)
    only_logins = auditor.get("/console/audit", params={"action": "console.login"})
    assert "console.view" not in only_logins.text.split("<tbody>", 1)[-1]

    verified = auditor.get("/console/audit/verify")
    assert verified.status_code == 200 and "Intact." in verified.text

    export = auditor.get("/console/audit/export", params={"referral": failed_referral.id})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in export.headers["content-disposition"]
    records = [json.loads(line) for line in export.text.splitlines()]
    assert [r["action"] for r in records] == ["console.view"]
    assert records[0]["actor"] == f"user:{users.im_officer}"
    assert {"seq", "at", "hash", "prev_hash", "detail"} <= set(records[0])
    assert not find_personal(export.text, PERSON)


# -- re-drive -------------------------------------------------------------------------

def test_redrive_through_the_console_redrives_in_the_users_name_and_is_audited(
    login, users, failed_referral, sessions
) -> None:
    operator = login(users.operator)
    listing = operator.get("/console/dead-letters", params={"partner": failed_referral.receiver})
    assert f'value="{failed_referral.dead_letter_id}"' in listing.text
    stale = operator.post("/console/dead-letters/redrive",
                          data={"csrf": "forged", "ids": str(failed_referral.dead_letter_id)})
    assert stale.status_code == 403
    with sessions() as session:
        assert session.get(DeadLetter, failed_referral.dead_letter_id).redriven_at is None

    done = operator.post("/console/dead-letters/redrive", data={
        "csrf": csrf_of(listing), "ids": str(failed_referral.dead_letter_id),
        "partner": failed_referral.receiver}, follow_redirects=True)
    assert done.status_code == 200
    assert f"Re-driven: {failed_referral.dead_letter_id}" in done.text
    again = operator.get("/console/dead-letters", params={"all": "true",
                                                          "partner": failed_referral.receiver})
    assert f"by user:{users.operator}" in again.text

    with sessions() as session:
        letter = session.get(DeadLetter, failed_referral.dead_letter_id)
        assert letter.redriven_by == f"user:{users.operator}" and letter.redriven_at
        assert session.get(Referral, failed_referral.id).status == "submitted"
        assert session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.referral_id == failed_referral.id,
            OutboxMessage.routing_key == f"deliver.{failed_referral.receiver}"))
    [entry] = audit_entries(sessions, action="redrive", referral_id=failed_referral.id)
    assert entry.actor == f"user:{users.operator}"
    assert entry.detail["dead_letter"] == failed_referral.dead_letter_id

    twice = operator.post("/console/dead-letters/redrive", data={
        "csrf": csrf_of(listing), "ids": str(failed_referral.dead_letter_id)},
        follow_redirects=True)
    assert "Nothing was re-driven" in twice.text
    assert len(audit_entries(sessions, action="redrive", referral_id=failed_referral.id)) == 1


# -- sessions -------------------------------------------------------------------------

def test_logout_ends_the_session(login, users) -> None:
    client = login(users.operator)
    page = client.get("/console/deliveries")
    assert page.status_code == 200
    out = client.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert COOKIE not in client.cookies
    assert client.get("/console/deliveries").status_code == 303


def test_a_tampered_cookie_is_refused(login, users, console) -> None:
    client = login(users.operator)
    token = client.cookies[COOKIE]
    payload, stamp, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["u"] = users.im_officer
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    # Flip a character in the middle: the last one of unpadded base64 carries spare bits,
    # so changing it may decode to the very same signature.
    middle = len(signature) // 2
    flipped = (signature[:middle] + ("A" if signature[middle] != "A" else "B")
               + signature[middle + 1:])
    foreign = URLSafeTimedSerializer(b"another secret", salt="casebridge.console.session.v1")
    for bad in (f"{forged_payload}.{stamp}.{signature}", f"{payload}.{stamp}.{flipped}",
                foreign.dumps(claims), "not-a-cookie"):
        with httpx.Client(base_url=console.url, cookies={COOKIE: bad}) as other:
            answer = other.get("/console/mappings")
            assert answer.status_code == 303, bad
            assert answer.headers["location"].startswith("/console/login")
    assert client.get("/console/deliveries").status_code == 200


def test_disabling_a_user_or_changing_the_password_ends_open_sessions(
    login, sessions, console
) -> None:
    from gateway.console.users import create_user

    name = f"temp.{time.monotonic_ns()}"
    with unit_of_work(sessions) as session:
        create_user(session=session, username=name, role="operator", password=PASSWORD)
    client = login(name)
    assert client.get("/console/deliveries").status_code == 200
    with unit_of_work(sessions) as session:
        set_password(session=session, username=name, password=PASSWORD + " renewed")
    assert client.get("/console/deliveries").status_code == 303
    client = login(name, PASSWORD + " renewed")
    with unit_of_work(sessions) as session:
        disable_user(session=session, username=name)
    assert client.get("/console/deliveries").status_code == 303
    with httpx.Client(base_url=console.url) as fresh:
        refused = fresh.post("/console/login", data={"username": name,
                                                     "password": PASSWORD + " renewed"})
    assert refused.status_code == 401
    with sessions() as session:
        assert session.get(ConsoleUser, name).active is False


def test_a_session_expires_after_its_lifetime(users, sessions) -> None:
    cookies = SessionCookies(lifetime=timedelta(seconds=1), secure=True)
    with sessions() as session:
        token, issued = cookies.issue(session.get(ConsoleUser, users.operator))
    assert cookies.read(token) == issued
    time.sleep(2.2)
    assert cookies.read(token) is None
