"""The console in a real browser (Debian's Chromium driven by Playwright) against a real
gateway, RabbitMQ and a Primero sandbox: an operator watches a partner's queue grow while
its system is down and drain when it is back, suspends and resumes delivery to it, sees a
broker outage said as such, and re-drives a dead letter with the button; an IM officer
previews a mapping and gets file:line for a broken record; an auditor finds the re-drive
in the trail and reads the reports.

Every page is photographed at 1280 and 375 pixels wide (artifacts/console/, git-ignored),
checked for a page wider than a phone, and checked by axe-core (run in the page) for
serious or critical accessibility violations. One browser for the whole module. With
CASEBRIDGE_DOCS_IMG=1 the pictures of docs/console.md (docs/img/) are taken again too."""

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from gateway import ROOT
from gateway.console import overview
from gateway.console.users import create_user
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import DeadLetter, Referral, StatusEvent, new_id
from servers import LiveServer, TcpProxy
from stack import SandboxSpec, Stack, wait_for

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "a long fictional passphrase"
ARTIFACTS = ROOT / "artifacts" / "console"
WIDTHS = ((1280, 800), (375, 740))
DOCS_IMG = ROOT / "docs" / "img"
# The pictures docs/console.md shows: the window (not the whole page) at 1280 px, and the
# overview on a phone.
DOCS_PAGES = {"overview-partner-down", "overview-broker-down", "partners", "partner-new-key",
              "referrals", "referral", "overdue", "mappings", "reports", "deliveries",
              "dead-letters-one", "audit", "disclosures", "agreements", "subject-requests"}
RECEIVER, SENDER = "primero-cbx", "caseworker-app"
SECONDS = 1000  # Playwright counts milliseconds


def chromium() -> Path:
    """Debian's Chromium, installed by scripts/browser.sh when missing (`make test` runs it
    first): a machine without it fails here rather than passing without a browser."""
    if not CHROMIUM.exists():
        done = subprocess.run([str(ROOT / "scripts" / "browser.sh")], capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(f"no browser: {CHROMIUM} is missing and scripts/browser.sh could not "
                        f"install it ({done.stderr.strip()[-300:] or done.returncode})")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True)
        yield launched
        launched.close()


class Look:
    """Photograph a page at each width, and check it there: axe-core's serious and critical
    findings, and a page wider than the window (a phone would have to scroll sideways)."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.problems: list[str] = []
        self.pages: list[str] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, name: str) -> None:
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            if os.environ.get("CASEBRIDGE_DOCS_IMG") and (
                    (name in DOCS_PAGES and width == 1280)
                    or (name == "overview-partner-down" and width == 375)):
                suffix = "" if width == 1280 else "-phone"
                page.screenshot(path=str(DOCS_IMG / f"console-{name}{suffix}.png"))
            found = self.axe.run(page, options={"resultTypes": ["violations"]})
            for violation in found.response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [n["target"] for n in violation["nodes"][:3]]
                    self.problems.append(f"{name} at {width}px: {violation['id']} "
                                         f"({violation['impact']}) {targets}")
            overflow = page.evaluate("document.documentElement.scrollWidth")
            if overflow > width + 1:
                self.problems.append(f"{name} at {width}px: the page is {overflow}px wide")
        page.set_viewport_size({"width": WIDTHS[0][0], "height": WIDTHS[0][1]})
        self.pages.append(name)

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="module")
def look() -> Look:
    return Look()


def log_in(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{base}/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def through(proxy: TcpProxy, amqp_url: str) -> str:
    """The broker's URL, reached through `proxy`."""
    parts = urlsplit(amqp_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2
                                     else host))


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[TcpProxy]:
    """The broker behind a relay the test can cut; set up before the stack, so that it is
    there until the stack has stopped."""
    broker = urlsplit(amqp_url)
    relay = TcpProxy((broker.hostname or "127.0.0.1", broker.port or 5672)).start()
    yield relay
    relay.stop()


def test_operators_see_queues_partners_and_outages_and_im_officers_preview_mappings(
    proxy, make_stack, make_referral, amqp_url, browser, look, monkeypatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setattr(overview, "REFRESH_SECONDS", 2)  # the page refreshes every 2 s
    stack: Stack = make_stack(
        [SandboxSpec(RECEIVER, "primero")], [SENDER], amqp_url=through(proxy, amqp_url),
        retry_delays=[1, 5, 30], circuit_failures=2, circuit_seconds=4,
        console_secure_cookie=False)
    with unit_of_work(stack.sessions) as session:
        for name, role in (("olga", "operator"), ("imre", "im_officer"), ("aude", "auditor")):
            create_user(session=session, username=name, role=role, password=PASSWORD)
    base = stack.servers["gateway"].url

    def submit() -> str:
        return stack.submit(SENDER, make_referral(SENDER, RECEIVER))

    def states(ids: list[str]) -> dict[str, int]:
        return stack.statuses(ids)

    login = browser.new_context().new_page()
    login.goto(f"{base}/console/login")
    look(login, "login")
    login.context.close()

    page = log_in(browser, base, "olga")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # The keyboard: the first Tab offers to skip the navigation, the next ones walk it.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the page")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Overview")).to_be_focused()
    card = page.locator(f"#glance-{RECEIVER}")
    waiting = page.locator(f'[id="queue-deliver.{RECEIVER}"] .waiting')
    first = submit()
    wait_for(lambda: states([first]) == {"delivered": 1}, what="the first delivery")
    expect(card.locator(".badge").first).to_have_text("running", timeout=10 * SECONDS)

    # The partner's system goes down: the circuit opens and its queue grows.
    stack.stop_sandbox(RECEIVER)
    tripping = submit()
    expect(card.locator(".badge").first).to_have_text("circuit open", timeout=30 * SECONDS)
    queued = [submit() for _ in range(3)]
    expect(waiting).to_have_text(re.compile(r"^[3-9]$"), timeout=20 * SECONDS)
    assert states(queued) == {"submitted": 3}
    look(page, "overview-partner-down")
    # Back: the next try closes the circuit, the queue drains, everything is delivered.
    stack.start_sandbox(RECEIVER)
    wait_for(lambda: states([tripping, *queued]) == {"delivered": 4}, timeout=60,
             what="the queue drained into the sandbox")
    expect(waiting).to_have_text("0", timeout=10 * SECONDS)
    expect(card.locator(".badge").first).to_have_text("running", timeout=10 * SECONDS)
    look(page, "overview")

    # Suspended by the operator: a referral waits in the queue until resumed.
    page.get_by_role("link", name="Partners").click()
    page.get_by_role("button", name=f"Suspend delivery to {RECEIVER}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{RECEIVER}: Delivery suspended")
    held = submit()
    page.get_by_role("link", name="Overview").click()
    expect(card.locator(".badge").first).to_have_text("suspended")
    expect(waiting).to_have_text("1", timeout=20 * SECONDS)
    assert states([held]) == {"submitted": 1}
    page.get_by_role("link", name="Partners").click()
    look(page, "partners")
    page.get_by_role("button", name=f"Resume delivery to {RECEIVER}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{RECEIVER}: Delivery resumed")
    wait_for(lambda: states([held]) == {"delivered": 1}, what="the held referral delivered")
    section = page.locator(f"#partner-{RECEIVER}")
    section.get_by_label("the current key stops working").check()
    section.get_by_role("button", name=f"New API key for {RECEIVER}").click()
    expect(page.get_by_label("API key")).to_have_value(re.compile(r"^cbk_"))
    look(page, "partner-new-key")

    # The broker goes away and comes back: the overview says so each time.
    page.get_by_role("link", name="Overview").click()
    proxy.stop()
    expect(page.locator("#broker-down")).to_contain_text("The broker cannot be reached",
                                                         timeout=15 * SECONDS)
    look(page, "overview-broker-down")
    proxy.start()
    expect(page.locator("#broker-up")).to_be_visible(timeout=15 * SECONDS)

    for link, name in (("Deliveries", "deliveries"), ("Dead letters", "dead-letters"),
                       ("Referrals", "referrals"), ("Overdue", "overdue"),
                       ("Reports", "reports")):
        page.get_by_role("link", name=link, exact=True).click()
        look(page, name)
    page.get_by_role("link", name="Referrals", exact=True).click()
    page.get_by_label("Receiver").select_option(RECEIVER)
    page.get_by_role("button", name="Show").click()
    page.locator(f'a[href="/console/referrals/{held}"]').click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    look(page, "referral")
    page.context.close()

    # An IM officer previews a mapping: a broken record names the file and the line.
    page = log_in(browser, base, "imre")
    page.get_by_role("link", name="Mappings").click()
    page.get_by_label("Mapping").select_option(
        label="primero/referral-status (native → canonical)")
    page.get_by_role("textbox", name=re.compile(r"^Record")).fill(
        '{"referral": {"status": "teleported"}}')
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"primero/referral-status\.yaml:\d+: rule 'status'"))
    look(page, "mappings")
    page.goto(f"{base}/console/referrals/{held}/content")
    look(page, "referral-content")
    page.context.close()

    page = log_in(browser, base, "aude")
    look(page, "audit")
    page.get_by_role("link", name="Verify the chain").click()
    look(page, "audit-verify")
    for link, name in (("Disclosures", "disclosures"), ("Agreements", "agreements"),
                       ("Data-subject requests", "subject-requests")):
        page.get_by_role("link", name=link, exact=True).click()
        look(page, name)
    page.context.close()
    look.check()


@pytest.fixture
def console_store(tmp_path: Path) -> tuple[str, str, int]:
    """A store with an operator, an auditor and one dead letter of a failed referral."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    upgrade(url)
    engine = make_engine(url)
    suffix = uuid.uuid4().hex[:8]
    sender, receiver = f"primero-{suffix}", f"progres-{suffix}"
    referral_id = new_id()
    with unit_of_work(make_sessionmaker(engine)) as session:
        create_user(session=session, username="olga", role="operator", password=PASSWORD)
        create_user(session=session, username="aude", role="auditor", password=PASSWORD)
        for partner, system in ((sender, "primero"), (receiver, "progres")):
            register_partner(session=session, partner_id=partner, name=system, system=system)
        session.flush()
        referral = Referral(id=referral_id, kind="referral", sender_id=sender,
                            receiver_id=receiver, status="failed",
                            correlation_id=f"corr-{suffix}", request_hash="0" * 64,
                            content={"subject": {"given_name": "Zawadi",
                                                 "birth_date": "2014-03-09"}})
        submitted = StatusEvent(id=new_id(), referral=referral, seq=1, to_state="submitted",
                                actor="sender", actor_partner_id=sender, content={})
        session.add_all([referral, submitted, StatusEvent(
            id=new_id(), referral=referral, seq=2, from_state="submitted", to_state="failed",
            actor="gateway", content={})])
        session.flush()
        letter = DeadLetter(
            message_id=new_id(), referral_id=referral_id, partner_id=receiver,
            message_type="deliver", routing_key=f"deliver.{receiver}",
            reason="partner_refused", detail="progres answered 400 (InvalidOptionSet)",
            attempts=1, envelope={"type": "deliver", "referral_id": referral_id,
                                  "status_event_id": submitted.id, "target": receiver,
                                  "sender": sender, "receiver": receiver})
        session.add(letter)
        session.flush()
        letter_id = letter.id
    engine.dispose()
    return url, referral_id, letter_id


@pytest.fixture
def console(console_store: tuple[str, str, int], tmp_path: Path) -> Iterator[str]:
    settings = Settings(database_url=console_store[0], agreements_dir=tmp_path / "agreements",
                        console_secure_cookie=False)  # http://127.0.0.1
    with LiveServer(settings) as server:
        yield server.url


def test_an_operator_redrives_with_the_button_and_the_auditor_sees_it(
    console: str, console_store: tuple[str, str, int], browser, look
) -> None:
    from playwright.sync_api import expect

    _, referral_id, letter_id = console_store
    page = log_in(browser, console, "olga")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.get_by_role("link", name="Dead letters").click()
    row = page.locator(f"#dead-letter-{letter_id}")
    expect(row).to_contain_text("partner_refused")
    expect(row).to_contain_text("InvalidOptionSet")
    expect(page.locator("body")).not_to_contain_text("Zawadi")
    look(page, "dead-letters-one")
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Re-drive selected").click()
    expect(page.get_by_role("status")).to_contain_text(f"Re-driven: {letter_id}")

    page.get_by_label("include re-driven").check()
    page.get_by_role("button", name="Show").click()
    row = page.locator(f"#dead-letter-{letter_id}")
    expect(row).to_contain_text("re-driven")
    expect(row).to_contain_text("by user:olga")
    expect(row.get_by_role("checkbox")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    page.get_by_label("Username").fill("aude")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console pages").get_by_role("link")
           ).to_have_text(["Audit trail", "Disclosures", "Agreements", "Data-subject requests",
                           "Reports"])
    page.get_by_label("Action").select_option("redrive")
    page.get_by_role("button", name="Show").click()
    entry = page.locator("table.trail tbody tr").first
    expect(entry).to_contain_text("redrive")
    expect(entry).to_contain_text("user:olga")
    expect(entry).to_contain_text(referral_id)
    expect(entry).to_contain_text(f'"dead_letter": {letter_id}')

    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Turnaround")).to_be_visible()
    expect(page.get_by_role("img", name="Time to acknowledge per group")).to_be_visible()
    expect(page.locator("table.turnaround tfoot")).to_contain_text("all, each counted once")
    page.context.close()
    look.check()
