"""The console's reports page: turnaround (table and inline SVG chart) and the timeline on a
referral's page, with its overdue flag marked; on SQLite and PostgreSQL."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from history import History, seed_history
from sqlalchemy import select

from fictional import find_personal
from gateway.store.db import unit_of_work
from gateway.store.models import DeadlineEvent, Delivery, StatusEvent, TrackedDeadline

MAY_2031 = datetime(2031, 5, 1, tzinfo=UTC)  # a month of this module alone in the shared store
PERSON = {"Zawadi", "Fictionalson", "2014-03-09"}
BAR = re.compile(r'<rect class="(median|p90)" x="310" y="\d+" width="(\d+)"')


@pytest.fixture(scope="module")
def history(sessions) -> History:
    with unit_of_work(sessions) as session:
        return seed_history(session, MAY_2031)


def test_every_role_sees_the_turnaround_chart_and_table(login, users, history) -> None:
    for role in ("operator", "im_officer", "auditor"):
        answer = login(getattr(users, role)).get("/console/reports", params={
            "from": "2031-05-01", "to": "2031-05-31", "group": "partner_pair"})
        assert answer.status_code == 200, role
        assert 'href="/console/reports" aria-current="page"' in answer.text
    html = answer.text
    # three charts, two groups each; the longest p90 bar is the longest of its chart
    charts = re.findall(r'<figure class="chart" id="chart-(\w+)">(.*?)</figure>', html, re.S)
    assert [name for name, _ in charts] == ["acknowledge", "accept", "complete"]
    acknowledge = BAR.findall(charts[0][1])
    # A→B: median 9 h, p90 30 h; A→C: median 36 h, p90 48 h (the scale: 420 px)
    assert acknowledge == [("p90", "262"), ("median", "79"), ("p90", "420"),
                           ("median", "315")]
    assert f"{history.a} → {history.b}" in charts[0][1]
    assert "9.0 h / 30.0 h" in charts[0][1] and "36.0 h / 48.0 h" in charts[0][1]
    table = html.split("<h3>Figures</h3>", 1)[1]
    assert "<th>sender</th>" in table.replace(' rowspan="2"', "")
    assert "57.1 %" in table  # the total row
    assert '<td class="num overdue">1</td>' in table  # r5, overdue now


def test_groups_are_chosen_with_checkboxes_and_bad_dates_are_explained(login, users,
                                                                      history) -> None:
    client = login(users.operator)
    both = client.get("/console/reports", params=[
        ("from", "2031-05-01"), ("to", "2031-05-31"), ("group", "area"),
        ("group", "service_type")])
    assert both.status_code == 200
    assert re.search(r'value="area" checked', both.text)
    assert re.search(r'value="service_type" checked', both.text)
    assert "(not recorded)" in both.text and "(no unit)" in both.text
    refused = client.get("/console/reports", params={"from": "2031-05-31",
                                                        "to": "2031-05-01"})
    assert refused.status_code == 400
    assert "to: must be on or after from (2031-05-31)" in refused.text
    empty = client.get("/console/reports", params={"from": "1999-01-01", "to": "1999-01-31"})
    assert "No referral was submitted in this period." in empty.text


def test_the_referral_page_shows_the_timeline_with_its_overdue_flag(
        login, users, failed_referral, sessions) -> None:
    with unit_of_work(sessions) as session:
        # a minute after everything the referral went through so far
        start = timedelta(minutes=1) + max(
            *session.scalars(select(StatusEvent.occurred_at).where(
                StatusEvent.referral_id == failed_referral.id)),
            *session.scalars(select(Delivery.started_at).where(
                Delivery.referral_id == failed_referral.id)))
        row = TrackedDeadline(
            referral_id=failed_referral.id, state="submitted", name="deliver",
            policy_id="test-policy", calendar_id="gb-eng", started_at=start,
            due_at=start + timedelta(hours=1), escalate_at=None, next_alert_at=None,
            raised_at=start + timedelta(hours=1), paused_seconds=0)
        session.add(row)
        session.flush()
        session.add_all([
            DeadlineEvent(referral_id=failed_referral.id, deadline_id=row.id, event="started",
                          at=start),
            DeadlineEvent(referral_id=failed_referral.id, deadline_id=row.id, event="raised",
                          at=start + timedelta(hours=1))])
    page = login(users.operator).get(f"/console/referrals/{failed_referral.id}")
    assert page.status_code == 200
    timeline = page.text.split("<h2>Timeline</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr(?: class=\"([\w-]+)\")?><td class=\"nowrap\">[^<]*</td><td>(\w+)",
                      timeline)
    assert [what for _, what in rows] == ["status", "status", "delivery", "deadline",
                                          "deadline"]
    assert rows[-1] == ("flag-raised", "deadline")
    assert '<span class="badge bad">overdue</span>' in timeline
    assert "progres answered 400 (InvalidOptionSet)" in timeline  # the delivery's detail
    facts = page.text.split("</dl>", 1)[0]
    assert '<span class="badge bad">overdue: deliver</span>' in facts
    assert not find_personal(page.text, PERSON)
