"""The console in a real browser (Debian's Chromium driven by Playwright): an operator
re-drives a dead letter with the button, an auditor finds the re-drive in the trail and
opens the turnaround chart."""

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import ROOT
from gateway.console.users import create_user
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import DeadLetter, Referral, StatusEvent, new_id
from servers import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "a long fictional passphrase"


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
    console: str, console_store: tuple[str, str, int]
) -> None:
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    _, referral_id, letter_id = console_store
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True)
        try:
            page = browser.new_context().new_page()
            page.goto(f"{console}/console/")
            page.get_by_label("Username").fill("olga")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()

            page.get_by_role("link", name="Dead letters").click()
            row = page.locator(f"#dead-letter-{letter_id}")
            expect(row).to_contain_text("partner_refused")
            expect(row).to_contain_text("InvalidOptionSet")
            expect(page.locator("body")).not_to_contain_text("Zawadi")
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
                   ).to_have_text(["Audit trail", "Disclosures", "Agreements",
                                   "Data-subject requests", "Turnaround"])
            page.get_by_label("Action").select_option("redrive")
            page.get_by_role("button", name="Show").click()
            entry = page.locator("table.trail tbody tr").first
            expect(entry).to_contain_text("redrive")
            expect(entry).to_contain_text("user:olga")
            expect(entry).to_contain_text(referral_id)
            expect(entry).to_contain_text(f'"dead_letter": {letter_id}')

            page.get_by_role("link", name="Turnaround").click()
            expect(page.get_by_role("heading", name="Turnaround")).to_be_visible()
            expect(page.get_by_role("img", name="Time to acknowledge per group")).to_be_visible()
            expect(page.locator("table.turnaround tfoot")).to_contain_text("all, each counted once")
        finally:
            browser.close()
