"""Where an accepted referral's CPU goes: intake's server profiled while it takes referrals.

The gateway is started as `intake.py` starts it (uvicorn in its own process, a fresh store,
two partners, an agreement), warmed up, and then sampled by py-spy (`--gil`: only the
thread holding the interpreter, so the shares are of CPU, not of waiting) while the
client submits referrals. Each sample is put in the first stage its stack names (the
order below matters: the validation inside the consent gate counts as validation), and
the shares are printed with the CPU milliseconds per referral they stand for.

    .venv/bin/python bench/profile.py                       # 1500 referrals on SQLite
    .venv/bin/python bench/profile.py --database postgresql --requests 3000

py-spy reads the server's memory: it needs ptrace rights over its own child processes
(the default on most Linux systems; in a container, `--cap-add SYS_PTRACE`).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import intake

import common
from sharing import allow

SAMPLE_RATE = 250  # per second
# (stage, a pattern of a frame in the sample's stack); the first that matches takes it.
STAGES = [
    ("JSON Schema validation", r"Contracts\.validate|schema_errors"),
    ("audit entry (hash chain, head row)", r"record \(.*protection/audit"),
    ("commit", r"Session\.commit"),
    ("store writes: referral, event, outbox, digests", r"Session\.flush|_autoflush|insert_now|"
                                                        r"digests_of|outbox_message"),
    ("consent gate, need-to-know filter, agreement", r"admit \(|disclosed \("),
    ("service directory check (files, availability)", r"DirectoryRegistry\.view|check_referral"),
    ("authentication (API key lookup)", r"get_partner|authenticate \("),
    ("the rest of submit_referral (idempotency check, receiver, objects)", r"submit_referral"),
    ("body read and JSON limits", r"json_document|read_json|parse_json"),
    ("response: model and JSON", r"serialize_response|ReferralOut"),
    ("HTTP stack: uvicorn, Starlette, FastAPI, thread pool", r"."),
]


def stages(raw: Path) -> tuple[Counter[str], int]:
    """Samples per stage in py-spy's raw (collapsed) output, and their total."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames, samples = stack.split(";"), int(number)
        total += samples
        stage = next((name for name, pattern in STAGES
                      if any(re.search(pattern, frame) for frame in frames)), STAGES[-1][0])
        counts[stage] += samples
    return counts, total


def profile(args: argparse.Namespace, folder: Path) -> tuple[Counter[str], int, float]:
    """Run the server under py-spy; (samples per stage, all samples, referrals/s)."""
    spy = Path(sys.executable).parent / "py-spy"
    raw = folder / "intake.raw"
    with common.store_database(args.database, folder) as url:
        api_key = intake.prepare_store(url)
        with intake.gateway_server(url, folder / "gateway.log") as (base_url, pid):
            intake.load(base_url, api_key, intake.referral_calls(100), args.concurrency,
                        "warm-up")
            recorder = subprocess.Popen(
                [str(spy), "record", "--gil", "--nonblocking", "--format", "raw", "--rate",
                 str(SAMPLE_RATE), "--output", str(raw), "--pid", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # py-spy attaches
            run = intake.load(base_url, api_key, intake.referral_calls(args.requests),
                              args.concurrency, "intake")
            recorder.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            _, errors = recorder.communicate(timeout=60)
        if not raw.exists():
            raise common.BenchError("py-spy recorded nothing: " + errors.decode()[-500:])
    counts, total = stages(raw)
    return counts, total, run.throughput


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__, quick="smoke run: 300 referrals")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", choices=common.DATABASES, default="sqlite")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 300

    def body() -> int:
        for line in common.machine_lines():
            print(line)
        with tempfile.TemporaryDirectory(prefix="casebridge-profile-") as folder:
            allow(Path(folder) / "agreements", intake.SENDER, intake.RECEIVER)
            counts, total, rate = profile(args, Path(folder))
        cpu_ms = total / SAMPLE_RATE * 1000 / args.requests
        print(f"\n{args.requests} referrals on {args.database} at {rate:.1f}/s; the server "
              f"held the interpreter {total / SAMPLE_RATE:.1f} s: {cpu_ms:.2f} ms per referral\n")
        for line in common.table(f"{'share':>6} {'ms/ref':>7}  stage", (
                f"{100 * counts[name] / total:>5.1f}% {cpu_ms * counts[name] / total:>7.2f}  "
                f"{name}" for name, _ in STAGES)):
            print(line)
        return 0

    return common.run_to_the_end(body, interrupted="server stopped, database dropped",
                                 failures={})


if __name__ == "__main__":
    sys.exit(main())
