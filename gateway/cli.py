"""The `casebridge` command line.

Every process the gateway runs starts here, so importing this module stays cheap: the
command groups that live in other modules (`mappings`, `users` …) are imported only when
one of their commands runs, and each command imports what it needs when it is called.
"""

import importlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer import _click
from typer.core import TyperGroup

from gateway import ROOT

if TYPE_CHECKING:
    from gateway.settings import Settings
    from gateway.store.models import Partner


@dataclass(frozen=True)
class SubApp:
    """A command group kept in its own module: where it is, and its one-line help (the
    root's --help lists it without importing it; a test checks the two helps agree)."""

    module: str
    attribute: str
    help: str

    def load(self) -> typer.Typer:
        typer_app: typer.Typer = getattr(importlib.import_module(self.module), self.attribute)
        return typer_app


SUB_APPS = {
    "mappings": SubApp("gateway.mapping.cli", "mapping_app",
                       "Mapping files: check them, run their examples, preview one record."),
    "agreements": SubApp("gateway.protection.agreements_cli", "agreements_app",
                         "Data-sharing agreements: list them, check them."),
    "deadlines": SubApp("gateway.deadlines.cli", "deadlines_app",
                        "Deadline policies and working-day calendars: check them."),
    "directory": SubApp("gateway.directory.cli", "directory_app",
                        "The service directory: check it, search it, HSDS in and out."),
    "keys": SubApp("gateway.protection.keys_cli", "keys_app",
                   "Encryption keys: add one, see which keys the stored data needs, "
                   "re-encrypt."),
    "audit": SubApp("gateway.protection.audit_cli", "audit_app",
                    "The audit trail: verify its hash chain, export it for an auditor."),
    "users": SubApp("gateway.console.users_cli", "users_app",
                    "Console users: who may log in to /console, with which role."),
    "report": SubApp("gateway.reports.cli", "report_app",
                     "Reports over the referrals: aggregates, never a person."),
    "subject": SubApp("gateway.protection.subject_cli", "subject_app",
                      "Data-subject requests: find a person's referrals, export them for the "
                      "person, restrict or erase them."),
}


class _Commands(MutableMapping[str, _click.Command]):
    """The root's commands, the groups of SUB_APPS among them: a group's module is imported
    the first time its name is looked up. While the root's help is being written a group
    not yet imported stands in as its name and help alone."""

    def __init__(self, commands: MutableMapping[str, _click.Command]) -> None:
        self._loaded = commands
        self.listing = False

    def __getitem__(self, name: str) -> _click.Command:
        if name in self._loaded or name not in SUB_APPS:
            return self._loaded[name]
        sub_app = SUB_APPS[name]
        if self.listing:
            return TyperGroup(name=name, help=sub_app.help)
        group = typer.main.get_group(sub_app.load())
        group.name = name
        self._loaded[name] = group
        return group

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from (name for name in self._loaded if name not in SUB_APPS)
        yield from SUB_APPS

    def __len__(self) -> int:
        return len(set(self._loaded) | set(SUB_APPS))


class _Root(TyperGroup):
    """The `casebridge` group: its commands are a _Commands."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = self.lazy = _Commands(self.commands)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self.lazy.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.lazy.listing = False


app = typer.Typer(help="CaseBridge: referrals and transfers between case-management systems.",
                  no_args_is_help=True, cls=_Root)
db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
partners_app = typer.Typer(help="Partner systems and their API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(partners_app, name="partners")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the partner API (OpenAPI at /docs and /openapi.json)."""
    import uvicorn

    settings = _process_settings()
    uvicorn.run("gateway.api.app:create_app", factory=True, host=host or settings.host,
                port=port or settings.port, workers=workers, log_config=None,
                log_level=settings.log_level, access_log=False)


@app.command()
def sandbox(
    name: Annotated[str, typer.Argument(help="progres, primero or ndelius")],
    port: Annotated[int, typer.Option(help="Port to listen on")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    database: Annotated[Path | None, typer.Option(
        help="SQLite file of the sandbox (default var/sandbox-NAME-PORT.db)")] = None,
    seed_data: Annotated[bool, typer.Option(help="Seed fictional demo people and cases")] = True,
    latency_ms: Annotated[int, typer.Option(help="Added to every answer")] = 0,
    failure_rate: Annotated[float, typer.Option(help="Share of requests answered 500")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Share of connections cut mid-answer")] = 0.0,
    lost_response_rate: Annotated[float, typer.Option(
        help="Share of requests that take effect but whose answer is cut off")] = 0.0,
    throttle_rate: Annotated[float, typer.Option(help="Share of requests answered 429")] = 0.0,
    retry_after: Annotated[int, typer.Option(help="Retry-After seconds on a 429")] = 1,
    option: Annotated[list[str] | None, typer.Option(
        help="key=value for the sandbox, e.g. instance=cpims-uga or provider=N03")] = None,
) -> None:
    """Run a stand-in partner system (a real HTTP server with its own store)."""
    import uvicorn

    from gateway.logs import configure_logging
    from sandboxes import SANDBOXES
    from sandboxes.faults import Faults

    if name not in SANDBOXES:
        raise typer.BadParameter(f"choose one of {', '.join(SANDBOXES)}", param_hint="NAME")
    module = importlib.import_module(SANDBOXES[name])
    faults = Faults(latency_ms=latency_ms, failure_rate=failure_rate, drop_rate=drop_rate,
                    lost_response_rate=lost_response_rate, throttle_rate=throttle_rate,
                    retry_after=retry_after)
    settings = _settings()  # a stand-in partner system: it needs no gateway key
    configure_logging(level=settings.log_level, json=settings.log_json)
    path = database or ROOT / "var" / f"sandbox-{name}-{port}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    sandbox_app = module.create_app(database=path, seed=seed_data, faults=faults,
                                    **_key_values(option, "--option"))
    uvicorn.run(sandbox_app, host=host, port=port, log_config=None, access_log=False,
                log_level=settings.log_level)


@app.command()
def relay() -> None:
    """Publish the outbox to RabbitMQ (with confirms) until stopped."""
    from gateway.delivery.relay import run_relay
    from gateway.store.db import make_engine, make_sessionmaker

    settings = _process_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    _until_signal(lambda stop: run_relay(settings=settings, sessions=sessions, stop=stop))


@app.command()
def worker() -> None:
    """Deliver referrals and status changes to partner systems until stopped."""
    from gateway.contracts import Contracts
    from gateway.delivery.consumer import run_worker
    from gateway.mapping.translator import MappingTranslator
    from gateway.store.db import make_engine, make_sessionmaker

    settings = _process_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    translator = MappingTranslator(settings.mappings_dir, contracts=contracts)
    _until_signal(lambda stop: run_worker(settings=settings, sessions=sessions,
                                          contracts=contracts, translator=translator, stop=stop))


@app.command()
def poll(
    once: Annotated[bool, typer.Option(help="Poll every partner once, then stop")] = False,
) -> None:
    """Bring in what partner systems raised or changed, every CASEBRIDGE_POLL_INTERVAL s."""
    from gateway.contracts import Contracts
    from gateway.delivery.poller import Poller, run_poller
    from gateway.directory.registry import DirectoryRegistry
    from gateway.mapping.translator import MappingTranslator
    from gateway.protection.agreements import AgreementRegistry
    from gateway.store.db import make_engine, make_sessionmaker

    settings = _process_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    poller = Poller(sessions=sessions, contracts=contracts,
                    agreements=AgreementRegistry(settings.agreements_dir, contracts),
                    translator=MappingTranslator(settings.mappings_dir, contracts=contracts),
                    directory=DirectoryRegistry(settings.directory_dir, contracts,
                                                calendars_dir=settings.calendars_dir))
    if once:
        for partner_id in poller.partner_ids():
            result = poller.poll(partner_id)
            typer.echo(f"{partner_id}: {len(result.submitted)} new, "
                       f"{result.status_events} status changes, {result.refused} refused")
        return
    _until_signal(lambda stop: run_poller(poller=poller, interval=settings.poll_interval,
                                          stop=stop))


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option(help="Tick once now, print what it did, then stop")
                    ] = False,
) -> None:
    """Keep deadlines every CASEBRIDGE_SCHEDULER_INTERVAL s: start, meet and pause them as
    referrals move, raise, escalate and clear overdue alerts (one leader at a time)."""
    from gateway.contracts import Contracts
    from gateway.deadlines.book import DeadlineBook
    from gateway.deadlines.keeper import tick
    from gateway.deadlines.scheduler import run_scheduler
    from gateway.protection.agreements import AgreementRegistry
    from gateway.store.db import make_engine, make_sessionmaker
    from gateway.store.models import utcnow

    settings = _process_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    book = DeadlineBook.from_settings(settings, contracts)
    agreements = AgreementRegistry(settings.agreements_dir, contracts)
    if once:
        report = tick(sessions, book, utcnow(), agreements=agreements)
        typer.echo(f"{report.applied} status events applied: {report.started} deadlines "
                   f"started, {report.finished} met or ended; overdue flags: {report.raised} "
                   f"raised, {report.escalated} escalated, {report.cleared} cleared")
        if report.failed:
            typer.echo(f"{report.failed} referrals could not be kept (see the log)", err=True)
            raise typer.Exit(1)
        return
    _until_signal(lambda stop: run_scheduler(settings=settings, sessions=sessions, book=book,
                                             agreements=agreements, stop=stop))


@app.command()
def demo(
    check: Annotated[bool, typer.Option(
        help="Tell the stories unattended, then stop: exit 0 only if each ended as expected "
             "in every system involved")] = False,
    story: Annotated[list[int] | None, typer.Option(help="Only this story (repeatable)")
                     ] = None,
    keep_data: Annotated[bool, typer.Option(help="Keep the stores of the last demo")] = False,
    port_base: Annotated[int, typer.Option(help="Ports from this one upward (7 in all)",
                                           min=1, max=65529)] = 8000,
    quiet: Annotated[bool, typer.Option(help="Only one line a story and the summary")] = False,
    database_url: Annotated[str | None, typer.Option(
        help="A store of your own (PostgreSQL) instead of var/demo.db; never emptied")] = None,
    gateways: Annotated[int, typer.Option(help="Gateway API processes", min=1)] = 1,
    workers: Annotated[int, typer.Option(help="Delivery worker processes", min=1)] = 1,
) -> None:
    """The gateway with five sandbox partner systems, and the stories between them."""
    from gateway.demo.run import run_demo
    from gateway.demo.stories import STORIES

    unknown = sorted(set(story or []) - {s.number for s in STORIES})
    if unknown:
        raise typer.BadParameter(f"no story {unknown[0]}: choose 1 to {len(STORIES)}",
                                 param_hint="--story")
    raise typer.Exit(run_demo(check=check, only=story or [], keep_data=keep_data,
                              port_base=port_base, quiet=quiet, database_url=database_url,
                              gateways=gateways, workers=workers))


@app.command("dead-letters")
def dead_letters_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason")] = None,
    partner: Annotated[str | None, typer.Option(help="Only this partner")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include re-driven ones")] = False,
) -> None:
    """List dead letters: id, when, partner, type, reason, attempts, detail, and below each
    what the partner's system answered (its status, error code and message)."""
    from gateway.delivery import dead_letters
    from gateway.store.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(_settings().database_url))
    with sessions() as session:
        letters = dead_letters.find(session=session, reason=reason, partner=partner,
                                    include_redriven=all_)
        for letter in letters:
            redriven = f" (re-driven by {letter.redriven_by})" if letter.redriven_at else ""
            typer.echo(f"{letter.id}\t{letter.dead_at:%Y-%m-%d %H:%M:%S}\t{letter.partner_id}\t"
                       f"{letter.direction}/{letter.message_type}\t{letter.reason}\t"
                       f"{letter.attempts}\t{letter.detail}{redriven}")
            said = dead_letters.partner_said(letter)
            if said:  # to the operator's terminal only: it may quote the record
                typer.echo(f"\tpartner said: {said}")
    if not letters:
        typer.echo("no dead letters", err=True)


@app.command()
def redrive(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids")] = None,
    reason: Annotated[str | None, typer.Option(help="Every dead letter with this reason")] = None,
    partner: Annotated[str | None, typer.Option(help="Every dead letter of this partner")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Who re-drives (kept on the dead letter and in the audit trail; default: "
        "your login name)")] = None,
) -> None:
    """Send dead letters through delivery again, one by one or in bulk by filter."""
    import getpass

    from gateway.contracts import Contracts
    from gateway.delivery import dead_letters
    from gateway.store.db import make_engine, make_sessionmaker, unit_of_work

    if not ids and not reason and not partner:
        raise typer.BadParameter("name dead letter ids, or filter by --reason or --partner")
    settings = _settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with unit_of_work(sessions) as session:
        letters = dead_letters.find(session=session, ids=ids or [], reason=reason,
                                    partner=partner)
        done = dead_letters.redrive(session=session, contracts=Contracts(settings.contracts_dir),
                                    letters=letters,
                                    actor=actor or f"user:{getpass.getuser()}@cli")
    typer.echo(f"re-driven: {len(done)} {' '.join(map(str, done))}".rstrip())
    if any(letter.direction == "inbound" for letter in letters if letter.id in done):
        typer.echo("inbound changes are taken again by the poller on its next round")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option(help="Only list what is due")] = False,
    every: Annotated[float | None, typer.Option(
        help="Keep running, purging every this many seconds (instead of a cron job)")] = None,
) -> None:
    """Purge closed referrals past their agreement's retention period (audited)."""
    from gateway.protection.retention import purge as run_purge
    from gateway.store.db import make_engine, make_sessionmaker

    settings = _process_settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))

    def once() -> None:
        report = run_purge(sessions, dry_run=dry_run)
        if dry_run:
            typer.echo(f"due for purging: {len(report.due)} {' '.join(report.due)}".rstrip())
        else:
            typer.echo(f"purged: {len(report.purged)} referrals")

    if every is None:
        once()
        return

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            once()
            stop.wait(max(0.0, every - (time.monotonic() - started)))

    _until_signal(loop)


def _key_values(items: list[str] | None, hint: str) -> dict[str, Any]:
    """`key=value` options as a dict; values that read as JSON (numbers, true) are typed."""
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{item}' is not key=value", param_hint=hint)
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def _settings() -> "Settings":
    """The settings; a bad value is one line on stderr naming its variable (exit 2)."""
    from gateway.protection.keys_cli import cli_errors
    from gateway.settings import get_settings

    with cli_errors():
        return get_settings()


def _process_settings() -> "Settings":
    """The settings of a long-running process, its logging set up and its key ring in use.

    Without an encryption key the process does not start: one line says why (exit 2).
    """
    from gateway.logs import ensure_logging
    from gateway.protection.crypto import Keyring, use_keyring
    from gateway.protection.keys_cli import cli_errors

    settings = _settings()
    # ensure_: a test running commands in-process keeps the logging it set up.
    ensure_logging(level=settings.log_level, json=settings.log_json)
    with cli_errors():
        use_keyring(Keyring.from_settings(settings))
    return settings


def _until_signal(run: Callable[[threading.Event], None]) -> None:
    """Run a loop that stops cleanly on SIGTERM or Ctrl-C."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(stop)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations to CASEBRIDGE_DATABASE_URL."""
    from gateway.store.db import upgrade

    upgrade(_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@partners_app.command("add")
def partners_add(
    partner_id: Annotated[str, typer.Argument(help="Short id, e.g. primero-ssd")],
    name: Annotated[str, typer.Option(help="Display name")],
    system: Annotated[str, typer.Option(help="progres, primero, ndelius, fhir or other")],
    api_key: Annotated[str | None, typer.Option(
        help="Use this key instead of a generated one (at least 24 characters)")] = None,
    country: Annotated[str | None, typer.Option(
        help="Country of operation, ISO three letters (ETH, GBR): deadline policies "
        "narrowed by countries match it")] = None,
) -> None:
    """Register a partner system and print its API key (shown once, stored hashed)."""
    from gateway.partners import register_partner
    from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
    from gateway.store.models import Partner

    if api_key is not None and len(api_key) < 24:
        raise typer.BadParameter("an API key needs at least 24 characters", param_hint="--api-key")
    if country is not None and not re.fullmatch(r"[A-Z]{3}", country):
        raise typer.BadParameter("a three-letter ISO 3166-1 code in capitals, e.g. ETH",
                                 param_hint="--country")
    sessions = make_sessionmaker(make_engine(_settings().database_url))
    with unit_of_work(sessions) as session:
        if session.get(Partner, partner_id) is not None:
            typer.echo(f"partner {partner_id} exists already", err=True)
            raise typer.Exit(1)
        _, key = register_partner(session=session, partner_id=partner_id, name=name,
                                  system=system, api_key=api_key, country=country)
    typer.echo(key)


@partners_app.command("connect")
def partners_connect(
    partner_id: Annotated[str, typer.Argument(help="A registered partner id")],
    base_url: Annotated[str | None, typer.Option(help="Base URL of the partner's own system")
                        ] = None,
    credential: Annotated[list[str] | None, typer.Option(
        help="key=value given to the adapter, e.g. client_id=…; repeat for each")] = None,
    disconnect: Annotated[bool, typer.Option(
        help="Remove the connection: the partner then calls the API itself")] = False,
    channel: Annotated[str | None, typer.Option(
        help="Another channel of the system than its main one, e.g. dtp for proGres's "
             "messages through UNHCR's integration layer")] = None,
) -> None:
    """Tell the gateway how to reach a partner's own system through its adapter."""
    if not disconnect and not base_url:
        raise typer.BadParameter("give --base-url, or --disconnect", param_hint="--base-url")
    credentials = _key_values(credential, "--credential")
    connection = {"base_url": base_url, "credentials": credentials,
                  **({"channel": channel} if channel else {})}
    with _changing_partner(partner_id) as partner:
        if channel and not disconnect:
            from adapters.registry import ADAPTERS

            if f"{partner.system}/{channel}" not in ADAPTERS:
                raise typer.BadParameter(f"{partner.system} has no channel '{channel}'",
                                         param_hint="--channel")
        partner.connection = None if disconnect else connection
    typer.echo(f"{partner_id}: " + ("disconnected" if disconnect else f"connected to {base_url}"))


@partners_app.command("credentials")
def partners_credentials(
    partner_id: Annotated[str, typer.Argument(help="A registered partner id")],
) -> None:
    """Issue OAuth2 client credentials (client id = partner id); the secret is shown once.

    The partner then asks POST /oauth/token for access tokens. Issuing again replaces
    the secret, so this is also how to revoke a leaked one.
    """
    from gateway.partners import issue_client_secret

    with _changing_partner(partner_id) as partner:
        secret = issue_client_secret(partner)
    typer.echo(f"client_id: {partner_id}\nclient_secret: {secret}")


@partners_app.command("limit")
def partners_limit(
    partner_id: Annotated[str, typer.Argument(help="A registered partner id")],
    per_second: Annotated[float | None, typer.Option(
        min=0.001, help="Requests a second the partner may make (in each API process)")] = None,
    burst: Annotated[int | None, typer.Option(
        min=1, help="Requests it may make at once above that rate")] = None,
    default: Annotated[bool, typer.Option(
        help="Go back to the gateway's defaults (CASEBRIDGE_PARTNER_RATE_*)")] = False,
) -> None:
    """Set a partner's own rate limit on the API; running API processes apply it at once."""
    if not default and per_second is None and burst is None:
        raise typer.BadParameter("give --per-second and/or --burst, or --default",
                                 param_hint="--per-second")
    with _changing_partner(partner_id) as partner:
        if default:
            partner.rate_per_second = partner.rate_burst = None
        if per_second is not None:
            partner.rate_per_second = per_second
        if burst is not None:
            partner.rate_burst = burst
        shown = (f"{partner.rate_per_second or 'default'} a second, "
                 f"bursts of {partner.rate_burst or 'default'}")
    typer.echo(f"{partner_id}: {shown}")


@contextmanager
def _changing_partner(partner_id: str) -> Iterator["Partner"]:
    """The registered partner, in a transaction that commits its changes; exit 1 if none."""
    from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
    from gateway.store.models import Partner

    sessions = make_sessionmaker(make_engine(_settings().database_url))
    with unit_of_work(sessions) as session:
        partner = session.get(Partner, partner_id)
        if partner is None:
            typer.echo(f"no partner {partner_id}", err=True)
            raise typer.Exit(1)
        yield partner


@partners_app.command("list")
def partners_list() -> None:
    """List the registered partner systems."""
    from sqlalchemy import select

    from gateway.store.db import make_engine, make_sessionmaker
    from gateway.store.models import Partner

    sessions = make_sessionmaker(make_engine(_settings().database_url))
    with sessions() as session:
        for partner in session.scalars(select(Partner).order_by(Partner.id)):
            state = "active" if partner.active else "inactive"
            reach = (partner.connection or {}).get("base_url", "API")
            typer.echo(f"{partner.id}\t{partner.system}\t{state}\t{reach}\t{partner.name}")
