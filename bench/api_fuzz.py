"""The partner API against its own OpenAPI document, at length: schemathesis' every phase and
every check, many examples, on SQLite and PostgreSQL.

What is run
    For each database a fresh store is migrated and the gateway started on 127.0.0.1 with
    the partners the contract examples name, each pair under a data-sharing agreement, and
    the operations API on: the harness of tests/contract_fuzz.py, which `make test` runs
    briefly (tests/integration/api/test_openapi_contract.py). schemathesis then runs every
    phase (the contract examples, boundary values, fuzzing, and the stateful phase following
    links from referrals it created to their events and withdrawals) with every check, and
    `--examples` examples per operation and phase. Any failure is printed with the curl
    that reproduces it, and the run exits 1.

What is reported, and the baseline
    Operations tested, scenarios per phase, requests sent, failures, seconds, requests a
    second; and the answers by status class, which show how deep the run went (2xx: past
    every check of the gateway). The baseline is the same HTTP client schemathesis sends
    with (requests) calling `GET /v1/noop` of the same server, one request at a time as
    schemathesis does, `--baseline` times. The last line, `ratio: X`, is the SQLite run's
    requests a second / the baseline's: the share of the bare HTTP ceiling the fuzzing
    reaches (what is left is generating, checking, and the gateway's own work).

    .venv/bin/python bench/api_fuzz.py                      # 100 examples, both databases
    .venv/bin/python bench/api_fuzz.py --quick              # smoke run: 5 examples, SQLite
    .venv/bin/python bench/api_fuzz.py --examples 500 --databases postgresql --seed 7
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The harness is the test suite's (tests/contract_fuzz.py, with its servers and agreements).
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402

from common import (  # noqa: E402
    DATABASES,
    BenchError,
    arguments,
    machine_lines,
    postgresql_failure,
    postgresql_line,
    run_to_the_end,
    store_database,
    table,
)
from gateway.protection.crypto import new_key_line  # noqa: E402

os.environ.setdefault("CASEBRIDGE_KEYS", new_key_line("bench"))

from gateway.logs import configure_logging  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store.db import upgrade  # noqa: E402

harness: Any = importlib.import_module("contract_fuzz")


def parse_args(argv: list[str] | None) -> Any:
    parser = arguments(__doc__, quick="smoke run: 5 examples, SQLite only")
    parser.add_argument("--examples", type=int, default=100,
                        help="examples per operation and phase (default 100)")
    parser.add_argument("--seed", type=int, default=20261207, help="generation seed")
    parser.add_argument("--baseline", type=int, default=2000,
                        help="GET /v1/noop requests of the baseline (default 2000)")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help="comma-separated: sqlite,postgresql (default both)")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.baseline, args.databases = 5, 300, "sqlite"
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases: choose among {', '.join(DATABASES)}")
    if args.examples < 1 or args.baseline < 1:
        parser.error("--examples and --baseline must be positive")
    return args


def baseline(url: str, count: int) -> float:
    """Requests a second of `GET /v1/noop`, one at a time over one kept-alive connection."""
    with requests.Session() as client:
        client.get(f"{url}/v1/noop").raise_for_status()
        started = time.perf_counter()
        for _ in range(count):
            if client.get(f"{url}/v1/noop").status_code != 200:
                raise BenchError("the no-op baseline did not answer 200")
        return count / (time.perf_counter() - started)


def fuzz_database(database: str, args: Any) -> tuple[Any, float]:
    """The run on one database, and the baseline's requests a second on the same server."""
    with tempfile.TemporaryDirectory() as folder, store_database(database, Path(folder)) as url:
        upgrade(url)
        settings = Settings(database_url=url, log_level="warning",
                            agreements_dir=Path(folder) / "agreements")
        with harness.gateway_under_test(settings, Path(folder)) as target:
            outcome = harness.run(target, max_examples=args.examples, seed=args.seed)
            return outcome, baseline(target.url, args.baseline)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The gateway runs in this process: its request log would drown the figures.
    configure_logging(level="warning", json=True, stream=io.StringIO())
    for line in machine_lines(f"schemathesis {version('schemathesis')}, "
                              f"hypothesis {version('hypothesis')}"):
        print(line)
    if "postgresql" in args.databases:
        print(postgresql_line())
    print(f"parameters: {args.examples} examples per operation and phase, seed {args.seed}, "
          f"every check, baseline {args.baseline} x GET /v1/noop\n", flush=True)
    results = {}
    for database in args.databases:
        outcome, noop = fuzz_database(database, args)
        results[database] = (outcome, noop)
        rate = outcome.requests / outcome.seconds if outcome.seconds else 0.0
        phases = ", ".join(f"{phase} {n}" for phase, n in sorted(outcome.scenarios.items()))
        statuses = Counter(f"{status // 100}xx" for status in outcome.statuses)
        print(f"{database}: {len(outcome.operations)} operations; scenarios: {phases}")
        for row in table("requests  seconds  requests/s  noop/s  failures  answers", [
                f"{outcome.requests:8d}  {outcome.seconds:7.1f}  {rate:10.1f}  {noop:6.0f}  "
                f"{len(outcome.failures):8d}  "
                + " ".join(f"{k} {v}" for k, v in sorted(statuses.items()))]):
            print(row)
        print(flush=True)
        for found in outcome.failures:
            print(f"FAILURE {found}\n", file=sys.stderr)
        for error in outcome.errors:
            print(f"ERROR {error}\n", file=sys.stderr)
    failed = sum(len(o.failures) + len(o.errors) for o, _ in results.values())
    if failed:
        raise BenchError(f"{failed} failures or errors (above): the API and its OpenAPI "
                         "document disagree")
    first = results.get("sqlite") or next(iter(results.values()))
    outcome, noop = first
    print("ratio = fuzzing requests/s / no-op requests/s"
          f" ({'sqlite' if 'sqlite' in results else args.databases[0]})")
    print(f"ratio: {outcome.requests / outcome.seconds / noop:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_to_the_end(
        lambda: main(), interrupted="the gateway stopped, the databases dropped",
        failures={psycopg.OperationalError: postgresql_failure}))
