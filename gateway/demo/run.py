"""`casebridge demo`: prepare the store, start and supervise every process, tell the stories."""

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import tick
from gateway.demo.setup import (
    CASEWORKER_KEY,
    OPERATOR_KEY,
    ROLES,
    SANDBOXES,
    Ports,
    ensure_key,
    fresh,
    password,
    prepare,
)
from gateway.demo.stories import STORIES, Demo, StoryFailed
from gateway.demo.supervisor import ChildDied, Stopped, Supervisor, raise_on_signals
from gateway.logs import configure_logging
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import PartnerCursor


def child_env(folder: Path, database_url: str, ports: Ports) -> dict[str, str]:
    """The environment of every child: one store, short intervals, demo-only keys."""
    return {**os.environ,
            "CASEBRIDGE_DATABASE_URL": database_url,
            "CASEBRIDGE_HOST": "127.0.0.1",
            "CASEBRIDGE_PORT": str(ports.gateway),
            "CASEBRIDGE_SCHEDULER_PORT": str(ports.scheduler),
            "CASEBRIDGE_POLL_INTERVAL": "1",
            "CASEBRIDGE_RETRY_DELAYS": "[1, 2, 4]",
            "CASEBRIDGE_SCHEDULER_INTERVAL": "2",
            "CASEBRIDGE_OPERATOR_KEY": OPERATOR_KEY,
            "CASEBRIDGE_KEY_FILE": str(folder / "demo.keys"),
            "CASEBRIDGE_CONSOLE_SECURE_COOKIE": "false",
            "CASEBRIDGE_LOG_JSON": "false"}


def start_all(supervisor: Supervisor, folder: Path, ports: Ports, *, gateways: int,
              workers: int) -> None:
    for sandbox in SANDBOXES:
        args = ["sandbox", sandbox.system, "--port", str(ports.sandbox(sandbox.partner_id)),
                "--database", str(folder / f"demo-{sandbox.partner_id}.db")]
        if sandbox.option:
            args += ["--option", sandbox.option]
        supervisor.start(sandbox.partner_id, *args)
    supervisor.start("gateway", "serve", "--workers", str(gateways))
    supervisor.start("relay", "relay")
    for n in range(1, workers + 1):
        supervisor.start("worker" if workers == 1 else f"worker-{n}", "worker")
    supervisor.start("poller", "poll")
    supervisor.start("scheduler", "scheduler")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def run_demo(*, check: bool, only: list[int], keep_data: bool, port_base: int,
             quiet: bool, database_url: str | None = None, gateways: int = 1,
             workers: int = 1) -> int:
    """Run the demo; the exit code: 0 when every story chosen ended as expected."""
    folder = Path(os.environ.get("CASEBRIDGE_DEMO_DIR") or ROOT / "var")
    folder.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite:///{folder / 'demo.db'}"
    ports = Ports(port_base)
    narrate: Callable[[str], None] = (lambda _line: None) if quiet else typer.echo
    env = child_env(folder, database_url, ports)
    if not keep_data:
        fresh(folder)
    ensure_key(folder / "demo.keys")
    os.environ["CASEBRIDGE_KEY_FILE"] = env["CASEBRIDGE_KEY_FILE"]
    narrate(f"Preparing the store ({database_url}) …")
    prepare(database_url, ports)
    supervisor = Supervisor(folder, env)
    log = (folder / "demo-stories.log").open("a")  # the stories' own log lines (keeper ticks)
    configure_logging(level="info", json=False, stream=log)
    engine = make_engine(database_url)
    raise_on_signals()
    try:
        narrate("Starting five sandboxes, the gateway, relay, worker, poller and scheduler …")
        start_all(supervisor, folder, ports, gateways=gateways, workers=workers)
        sessions = make_sessionmaker(engine)
        demo = Demo(ports=ports, sessions=sessions, say=narrate, alive=supervisor.check,
                    keeper=keeper(sessions))
        urls = [ports.url(ports.gateway) + "/healthz"] + [
            ports.url(ports.sandbox(s.partner_id)) for s in SANDBOXES]
        demo.wait("every process to answer", lambda: all(answers(u) for u in urls),
                  timeout=90)
        demo.wait("the poller's first look at every sandbox", lambda: polled(demo), timeout=60)
        ok = tell(demo, only, check=check)
        if check:
            return 0 if ok else 1
        running(ports, folder)
        while True:
            supervisor.check()
            time.sleep(0.5)
    except ChildDied as died:
        typer.echo(f"demo: {died}; stopping everything")
        return 1
    except StoryFailed as failed:
        typer.echo(f"demo: the demo could not start: {failed}")
        return 1
    except (Stopped, KeyboardInterrupt):
        return 0
    finally:
        narrate("\nStopping every process …")
        supervisor.stop()
        engine.dispose()
        log.close()


def keeper(sessions: sessionmaker[Session]) -> Callable[[datetime], Any]:
    """A tick of the deadline keeper at a chosen instant, with the policies in force."""
    settings = Settings()
    contracts = Contracts(settings.contracts_dir)
    book = DeadlineBook.from_settings(settings, contracts)
    agreements = AgreementRegistry(settings.agreements_dir, contracts)
    return lambda now: tick(sessions, book, now, agreements=agreements)


def polled(demo: Demo) -> bool:
    with demo.sessions() as session:
        seen = set(session.scalars(select(PartnerCursor.partner_id)))
    return all(s.partner_id in seen for s in SANDBOXES)


def tell(demo: Demo, only: list[int], *, check: bool) -> bool:
    """Run the stories chosen; print one line a story and a summary. True if all ended well."""
    lines: list[str] = []
    timings: list[str] = []
    failed = 0
    skipped = 0
    for story in STORIES:
        if only and story.number not in only:
            continue
        head = f"story {story.number}: {story.title}"
        if story.run is None:
            skipped += 1
            lines.append(f"{head} skipped: {story.skipped}")
            continue
        demo.say(f"\n== {head}")
        start = time.monotonic()
        try:
            outcome = story.run(demo)
        except StoryFailed as differed:
            failed += 1
            lines.append(f"{head} FAILED: {differed}")
            demo.say(f"  ✗ {differed}")
        else:
            lines.append(f"{head} ok")
            demo.say(f"  = {outcome}")
        finally:
            demo.close()
        timings.append(f"story {story.number}: {time.monotonic() - start:.1f} s")
    typer.echo("")
    for line in lines:
        typer.echo(line)
    ran = len(lines) - skipped
    typer.echo(f"{ran - failed} of {ran} stories ok" + (f", {skipped} skipped" if skipped else "")
          + f" ({', '.join(timings)})")
    return failed == 0


def running(ports: Ports, folder: Path) -> None:
    gateway = ports.url(ports.gateway)
    logins = ", ".join(f"{role} / {password(role)}" for role in ROLES)
    typer.echo(f"""
CaseBridge is running:
  Console:           {gateway}/console   (demo logins: {logins})
  Gateway API docs:  {gateway}/docs
  Caseworker app key {CASEWORKER_KEY}; operator API key {OPERATOR_KEY}""")
    for sandbox in SANDBOXES:
        typer.echo(f"  {sandbox.name}: {ports.url(ports.sandbox(sandbox.partner_id))}")
    typer.echo(f"  Logs: {folder}/demo-*.log\nPress Ctrl-C to stop.")
