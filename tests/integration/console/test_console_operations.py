"""The console's operations pages on a real gateway, RabbitMQ and store (SQLite and
PostgreSQL): the overview (with the broker, without it, without the database), the referral
list's filters and cursor paging, the overdue page, partners (suspend, resume, a new API
key), the mapping preview, and the reports' CSV."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from console_testkit import csrf_of
from history import History, seed_history
from sqlalchemy import select

from gateway.console import referrals as referral_pages
from gateway.console.sessions import COOKIE
from gateway.delivery.circuit import Breaker, record_failure, record_success, standing
from gateway.partners import register_partner
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry, ConsoleUser, Partner
from servers import LiveServer

SEPTEMBER_2033 = datetime(2033, 9, 1, tzinfo=UTC)  # a month (and its neighbours) of this
# module alone in the shared store: a history reaches a second into the month before
ROW = re.compile(r'<a class="id" href="/console/referrals/([0-9a-f-]{36})">')


@pytest.fixture(scope="module")
def history(sessions) -> History:
    with unit_of_work(sessions) as session:
        return seed_history(session, SEPTEMBER_2033)


def listed(client: httpx.Client, **params: str) -> tuple[list[str], httpx.Response]:
    answer = client.get("/console/referrals", params=params)
    return ROW.findall(answer.text), answer


# -- referrals ------------------------------------------------------------------------

def test_the_referral_list_filters_and_pages_by_cursor_newest_first(
        login, users, history, monkeypatch) -> None:
    monkeypatch.setattr(referral_pages, "PAGE_SIZE", 3)
    client = login(users.operator)
    ids = history.ids
    month = {"from": "2033-09-01", "to": "2033-09-30"}
    # receiver B: r1..r6 in June, newest first, three a page
    first, page = listed(client, receiver=history.b, **month)
    assert first == [ids["r6"], ids["r5"], ids["r4"]]
    assert "newer" not in page.text
    after = re.search(r'href="\?([^"]*after=[^"]+)" rel="next"', page.text).group(1)
    second, page = listed(client, **dict(httpx.QueryParams(after.replace("&amp;", "&"))))
    assert second == [ids["r3"], ids["r2"], ids["r1"]]
    before = re.search(r'href="\?([^"]*before=[^"]+)" rel="prev"', page.text).group(1)
    back, _ = listed(client, **dict(httpx.QueryParams(before.replace("&amp;", "&"))))
    assert back == first
    # every filter narrows, each on its own index
    assert listed(client, sender=history.a, kind="transfer")[0] == [ids["t2"], ids["t1"]]
    assert listed(client, receiver=history.b, service="legal_aid")[0] == [ids["r3"], ids["r2"]]
    assert listed(client, receiver=history.b, state="rejected")[0] == [ids["r4"]]
    assert listed(client, sender=history.a, overdue="yes")[0] == [ids["r5"], ids["before"]]
    assert listed(client, sender=history.a, **{"from": "2033-09-09", "to": "2033-09-09"}
                  )[0] == [ids["t2"]]
    assert listed(client, id=ids["t1"])[0] == [ids["t1"]]
    # what cannot be read is said, never a 500
    bad_day = listed(client, **{"from": "June"})[1]
    assert bad_day.status_code == 400 and "from: a day as YYYY-MM-DD" in bad_day.text
    damaged = listed(client, after="not-a-cursor")[1]
    assert damaged.status_code == 400 and "page link is damaged" in damaged.text


def test_the_overdue_page_lists_what_is_late_by_receiver_oldest_first(
        login, users, history) -> None:
    page = login(users.im_officer).get("/console/overdue", params={"partner": history.b})
    assert page.status_code == 200
    assert ROW.findall(page.text) == [history.ids["before"], history.ids["r5"]]
    assert f'<h2 id="overdue-{history.b}">{history.b} <span class="badge bad">2 overdue' \
        in page.text
    assert history.c not in page.text  # t2's flag went down when it was accepted


# -- overview -------------------------------------------------------------------------

def test_the_overview_shows_queues_deliveries_and_overdue_per_partner(
        login, users, history, failed_referral) -> None:
    client = login(users.operator)
    page = client.get("/console/overview")
    assert page.status_code == 200
    assert 'id="broker-up"' in page.text and 'data-refresh="/console/overview/live"' in page.text
    assert '<script src="/console/static/refresh.js" defer></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    card = section(page.text, f"glance-{failed_referral.receiver}")
    assert f'id="queue-deliver.{failed_referral.receiver}"' in card
    assert re.search(r'last day</th><td class="num">0</td><td class="num">1</td>', card)
    receiver_b = section(page.text, f"glance-{history.b}")
    assert "2 overdue" in receiver_b and "waiting" in receiver_b
    live = client.get("/console/overview/live")
    assert live.status_code == 200 and "<html" not in live.text
    assert f"glance-{history.b}" in live.text


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start:html.index("</section>", start)]


def test_the_overview_says_the_broker_or_the_database_cannot_be_reached(
        settings, users, login, console) -> None:
    unreachable = settings.model_copy(update={
        "amqp_url": "amqp://guest:guest@127.0.0.1:1/%2F", "console_secure_cookie": False})
    with LiveServer(unreachable) as gateway:
        cookie = login(users.operator).cookies[COOKIE]
        answer = httpx.get(f"{gateway.url}/console/overview", cookies={COOKIE: cookie})
    assert answer.status_code == 200
    assert "The broker cannot be reached" in answer.text
    assert 'class="num waiting"><span class="muted">?</span>' in answer.text

    no_database = settings.model_copy(update={
        "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/nothing",
        "console_secure_cookie": False})
    with LiveServer(no_database) as gateway:
        cookies = gateway.server.config.app.state.console_cookies
        token, _ = cookies.issue(ConsoleUser(username=users.operator, password_hash="x",
                                             role="operator", active=True))
        for path in ("/console/overview", "/console/overview/live"):
            answer = httpx.get(f"{gateway.url}{path}", cookies={COOKIE: token})
            assert answer.status_code == 503, path
            assert "The database cannot be reached" in answer.text
        assert httpx.get(f"{gateway.url}/console/overview").status_code == 303  # no cookie


# -- partners -------------------------------------------------------------------------

def test_an_operator_suspends_resumes_and_rotates_a_key_each_audited(
        login, users, sessions, console) -> None:
    partner_id = f"progres-{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions) as session:
        _, old_key = register_partner(session=session, partner_id=partner_id,
                                      name="Test proGres", system="progres")
    client = login(users.operator)
    token = csrf_of(client.get("/console/partners"))
    suspended = client.post(f"/console/partners/{partner_id}/suspend", data={"csrf": token})
    assert suspended.status_code == 303
    page = client.get(suspended.headers["location"])
    assert f"{partner_id}: Delivery suspended" in page.text
    assert f"Resume delivery to {partner_id}" in page.text
    with sessions() as session:
        assert standing(session, partner_id).paused == "suspended"
    client.post(f"/console/partners/{partner_id}/resume", data={"csrf": token})
    with sessions() as session:
        assert standing(session, partner_id).paused is None

    unconfirmed = client.post(f"/console/partners/{partner_id}/rotate-key",
                              data={"csrf": token})
    assert unconfirmed.status_code == 422
    assert httpx.get(f"{console.url}/v1/referrals", headers={
        "Authorization": f"Bearer {old_key}"}).status_code == 200
    rotated = client.post(f"/console/partners/{partner_id}/rotate-key",
                          data={"csrf": token, "confirm": "yes"})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new_key = re.search(r'id="new-key" readonly value="(cbk_[^"]+)"', rotated.text).group(1)
    assert "shown this once" in rotated.text
    for key, status in ((old_key, 401), (new_key, 200)):
        answer = httpx.get(f"{console.url}/v1/referrals",
                           headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == status
    assert new_key not in client.get("/console/partners").text

    with sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.partner_id == partner_id,
                                                           AuditEntry.action.like("partner.%"))
                                  .order_by(AuditEntry.seq)).all()
    assert [(e.action, e.actor) for e in entries] == [
        ("partner.suspend", f"user:{users.operator}"),
        ("partner.resume", f"user:{users.operator}"),
        ("partner.rotate_key", f"user:{users.operator}")]
    assert all(new_key not in str(e.detail) and old_key not in str(e.detail) for e in entries)
    # an auditor may not act on partners
    auditor = login(users.auditor)
    refused = auditor.post(f"/console/partners/{partner_id}/suspend",
                           data={"csrf": csrf_of(auditor.get("/console/audit"))})
    assert refused.status_code == 403


def test_a_partners_circuit_opens_after_failures_in_a_row_and_closes_on_success(
        sessions) -> None:
    partner_id = f"primero-{uuid.uuid4().hex[:8]}"
    breaker = Breaker(failures=3, seconds=60)
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id=partner_id, name="Test", system="primero")
    for _ in range(2):
        with unit_of_work(sessions) as session:
            record_failure(session, partner_id, breaker)
    with sessions() as session:
        assert standing(session, partner_id).paused is None
        assert standing(session, partner_id).failing
    with unit_of_work(sessions) as session:
        record_failure(session, partner_id, breaker)
    with sessions() as session:
        assert standing(session, partner_id).paused == "circuit open"
        opened = session.get(Partner, partner_id).circuit_open_until
        assert 55 < (opened - datetime.now(UTC)).total_seconds() <= 60
    with unit_of_work(sessions) as session:
        record_success(session, partner_id)
    with sessions() as session:
        assert standing(session, partner_id) == standing(session, partner_id).__class__(
            None, False)
    off = Breaker(failures=0, seconds=60)  # the default: no circuit, however many failures
    for _ in range(20):
        with unit_of_work(sessions) as session:
            record_failure(session, partner_id, off)
    with sessions() as session:
        assert standing(session, partner_id).paused is None
        assert standing(session, partner_id).failing


# -- mappings -------------------------------------------------------------------------

def test_an_im_officer_previews_a_record_and_sees_file_line_for_a_broken_one(
        login, users) -> None:
    client = login(users.im_officer)
    token = csrf_of(client.get("/console/mappings"))
    mapping = "primero/referral-status:inbound"
    good = client.post("/console/mappings/preview", data={
        "csrf": token, "mapping": mapping,
        "record": '{"referral": {"status": "accepted", "responded_at": "2033-09-04T08:15:00Z"}}'})
    assert good.status_code == 200
    result = good.text.split('id="preview-result"', 1)[1]
    assert "&#34;status&#34;: &#34;accepted&#34;" in result
    assert re.search(r"<code>/status</code></td><td>line \d+", result)
    broken = client.post("/console/mappings/preview", data={
        "csrf": token, "mapping": mapping, "record": '{"referral": {"status": "teleported"}}'})
    assert broken.status_code == 422
    problem = broken.text.split('id="preview-problems"', 1)[1]
    assert re.search(r"primero/referral-status\.yaml:\d+: rule", problem)
    assert "teleported" in problem  # an unlisted code is named, to fix the list
    not_json = client.post("/console/mappings/preview", data={
        "csrf": token, "mapping": mapping, "record": '{"referral": \n  {"status": }}'})
    assert "not JSON: Expecting value at line 2, column 14" in not_json.text
    assert login(users.operator).get("/console/mappings").status_code == 403


# -- reports --------------------------------------------------------------------------

def test_the_reports_page_offers_its_csv_and_the_old_address_leads_there(
        login, users, history) -> None:
    client = login(users.auditor)
    moved = client.get("/console/turnaround", params={"from": "2033-09-01"})
    assert moved.status_code == 303
    assert moved.headers["location"] == "/console/reports?from=2033-09-01"
    page = client.get("/console/reports", params={"from": "2033-09-01", "to": "2033-09-30"})
    link = re.search(r'href="(/console/reports/turnaround\.csv\?[^"]+)" download', page.text)
    answer = client.get(link.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="turnaround-2033-09-01-2033-09-30.csv"' in \
        answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:2] == ["sender", "receiver"]
    assert [history.a, history.b] in [row[:2] for row in rows]
