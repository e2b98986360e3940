"""What the benchmarks share: their arguments, a measured run and its figures, the machine
lines printed first, result tables, and running to the end (exit 1 on a failure, 130 when
interrupted, with every process stopped and every database dropped on the way out).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

DATABASES = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get("CASEBRIDGE_BENCH_PG_ADMIN",
                              "postgresql://postgres@127.0.0.1:5432/postgres")


class BenchError(RuntimeError):
    """The bench could not run, or what it measured went wrong: exit 1."""


# Timed runs of a question (after one warm-up); the median is kept.
REPEATS = 5


def median_seconds(run: Callable[[], object]) -> tuple[float, object]:
    """The median seconds of REPEATS runs of `run` after one warm-up, and its last answer."""
    run()  # warm-up: the pages the question needs are read once before it is timed
    times: list[float] = []
    answer: object = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def percentile_ms(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of `values` (seconds), in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


@dataclass
class Run:
    """The outcome of one measured workload."""

    label: str
    count: int
    seconds: float
    latencies: list[float]  # seconds, one per successful request, message or referral
    errors: int = 0
    samples: list[str] = field(default_factory=list)  # what the first failures said

    @property
    def throughput(self) -> float:
        """Requests, messages or referrals per second."""
        return self.count / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        return percentile_ms(self.latencies, p)


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user and system) process `pid` has spent, from /proc; None without it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def arguments(doc: str | None, *, quick: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the bench's docstring, with `--quick`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def require_counts(parser: argparse.ArgumentParser, args: argparse.Namespace,
                   positive: Sequence[str]) -> None:
    """Stop with a usage error unless each of `positive` is at least 1 and --warmup at least 0."""
    if min(getattr(args, name) for name in positive) < 1 or args.warmup < 0:
        names = [f"--{name}" for name in positive]
        parser.error(f"{', '.join(names[:-1])} and {names[-1]} must be positive, "
                     "--warmup not negative")


def machine_lines(versions: str = "") -> list[str]:
    """The machine, its load before the run, the Python (and `versions` of what is measured)
    and the date: what a reader needs to compare two runs."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()
    lines = [
        f"machine: nproc {usable}, {platform.machine()}, {platform.system()} "
        f"{platform.release()}, {date.today().isoformat()}",
        f"load:    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min averages before the "
        "run; other work on the machine skews the numbers)",
        f"python:  {platform.python_implementation()} {platform.python_version()}"
        + (f", {versions}" if versions else ""),
    ]
    if usable and load[0] > usable / 2:
        lines.append(f"WARNING: the machine is busy before the run (load {load[0]:.2f} on "
                     f"{usable} CPUs): throughputs and the ratio will be skewed")
    return lines


def postgresql_line() -> str:
    """The version and host of the PostgreSQL server the bench makes its databases on."""
    with psycopg.connect(PG_ADMIN_URL) as admin:
        row = admin.execute("SHOW server_version").fetchone()
    return f"postgresql server: {row[0] if row else '?'} ({make_url(PG_ADMIN_URL).host})"


def postgresql_failure(error: Exception) -> str:
    """What to say when the PostgreSQL server cannot be used."""
    return f"PostgreSQL at {make_url(PG_ADMIN_URL).host}: {error}"


@contextmanager
def store_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty store: a SQLite file in `folder` (gone with it), or a fresh
    database on the PostgreSQL server of PG_ADMIN_URL, dropped (even if in use) at the end."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'casebridge.db'}"
        return
    name = f"casebridge_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table(head: str, rows: Iterable[str]) -> list[str]:
    """A result table: its head, a rule as wide, and its rows."""
    return [head, "-" * len(head), *rows]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a child process's log, to show why it failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C (asyncio.run cancels its task on SIGINT), so processes are
    stopped, virtual hosts deleted and databases dropped."""
    os.kill(os.getpid(), signal.SIGINT)


def run_to_the_end(body: Callable[[], int], *, interrupted: str,
                   failures: Mapping[type[Exception], Callable[[Exception], str]]) -> int:
    """Run the bench; its exit status: 1 when it failed (BenchError, or one of `failures`,
    each said its own way), 130 when interrupted (`interrupted` says what was cleaned up)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return body()
    except BenchError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except tuple(failures) as error:
        said = next(say for kind, say in failures.items() if isinstance(error, kind))
        print(f"\nFAILED: {said(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130
