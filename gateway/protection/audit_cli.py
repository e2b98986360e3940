"""`casebridge audit verify | export`: the auditor's tools for the hash-chained trail.

Neither command reads an encrypted value, so neither needs an encryption key: the key
ring is installed only when one is configured.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from gateway.errors import ConfigurationError
from gateway.protection import audit
from gateway.protection.keys_cli import cli_errors, open_store
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry, AuditHead

audit_app = typer.Typer(
    help="The audit trail: verify its hash chain, export it for an auditor.",
    no_args_is_help=True)

HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


@audit_app.command("verify")
def verify(
    expect_head: Annotated[str | None, typer.Option(
        metavar="SEQ:HASH",
        help="A head printed by an earlier verify and kept outside the database: fail "
             "unless the trail still holds that entry with that hash")] = None,
) -> None:
    """Recompute every hash of the trail; name each entry where the chain breaks."""
    anchor = _parse_head(expect_head) if expect_head is not None else None
    with cli_errors(), open_store(keys="if-configured") as (_, sessions), \
            sessions() as session:
        result = audit.verify(session)
        breaks = list(result.breaks)
        if anchor is not None:
            broken = _check_anchor(session, result, *anchor)
            if broken is not None:
                breaks.append(broken)
    for problem in breaks:
        typer.echo(f"entry {problem.seq}: {problem.problem}")
    if breaks:
        places = "1 place" if len(breaks) == 1 else f"{len(breaks)} places"
        typer.echo(f"{result.entries} entries, chain BROKEN in {places}")
        raise typer.Exit(1)
    typer.echo(f"{result.entries} entries, chain intact, head {result.head_seq} "
               f"{result.head_hash}")


def _parse_head(value: str) -> tuple[int, str]:
    match = HEAD.match(value.strip().lower())
    if match is None:
        raise typer.BadParameter("give SEQ:HASH as printed by `audit verify`, e.g. "
                                 f"42:{'0' * 64}", param_hint="--expect-head")
    return int(match[1]), match[2]


def _check_anchor(session: Session, result: audit.Verification, seq: int,
                  expected: str) -> audit.Break | None:
    """Whether the trail still holds the anchored entry, unchanged.

    The chain links every entry to the one before, so an anchored entry found unchanged
    vouches for the whole trail up to it; entries written since extend it.
    """
    if seq > result.head_seq:
        return audit.Break(seq, f"the anchored head {seq} {expected} is beyond the trail's "
                                f"end at entry {result.head_seq}: entries were removed")
    found = audit.GENESIS if seq == 0 else getattr(session.get(AuditEntry, seq), "hash", None)
    if found is None:
        return audit.Break(seq, f"the anchored head {seq} {expected} is not in the trail: "
                                "entries were removed")
    if found != expected:
        return audit.Break(seq, f"differs from the anchored head {seq} {expected}: the trail "
                                "was rewritten")
    return None


@audit_app.command("export")
def export(
    since: Annotated[str | None, typer.Option(
        metavar="ISO", help="Only entries at or after this time, e.g. 2026-11-01")] = None,
    until: Annotated[str | None, typer.Option(
        metavar="ISO", help="Only entries before this time")] = None,
    output: Annotated[Path | None, typer.Option(
        help="File to write (default: standard output)")] = None,
) -> None:
    """The trail as JSON lines, one entry a line, then a line with the head and the count."""
    start, end = _instant(since, "--since"), _instant(until, "--until")
    with cli_errors(), open_store(keys="if-configured") as (_, sessions), \
            sessions() as session:
        # The head is read first and only entries up to it are written, so the last line
        # names an entry the export holds; entries appended meanwhile wait for the next one.
        head = session.get(AuditHead, 1)
        if head is None:
            raise ConfigurationError("the store has no audit trail: run `casebridge db upgrade`")
        if output is None:
            count = _write(session, head, start, end, typer.echo)
        else:
            with output.open("w") as handle:
                count = _write(session, head, start, end,
                               lambda line: handle.write(line + "\n"))
        with unit_of_work(sessions) as writing:  # the export is on the record too
            audit.record(writing, actor=f"user:{getpass.getuser()}@cli", action="audit.export",
                         detail={"since": since, "until": until, "exported": count,
                                 "head": head.seq})
    if output is not None:
        typer.echo(f"{count} entries exported to {output}, head {head.seq} {head.hash}",
                   err=True)


def _write(session: Session, head: AuditHead, start: datetime | None, end: datetime | None,
           write: Callable[[str], object]) -> int:
    """Write the entries up to `head` and the closing line; the number of entries."""
    head_seq, head_hash, count = head.seq, head.hash, 0
    for entry in audit.entries(session, since=start, until=end):
        if entry.seq > head_seq:
            break
        write(json.dumps(audit.as_record(entry), ensure_ascii=False))
        count += 1
    write(json.dumps({"head": {"seq": head_seq, "hash": head_hash}, "exported": count}))
    return count


def _instant(value: str | None, hint: str) -> datetime | None:
    """An ISO 8601 date or time; one without a zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not an ISO 8601 date or time",
                                 param_hint=hint) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
