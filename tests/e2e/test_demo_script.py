"""`make demo` runs `casebridge demo`: every story ends as expected in every system involved,
read back from the sandboxes' own APIs, with two gateways and two workers on PostgreSQL
(each referral reaches proGres once). A process that dies is named and the demo stops the
rest, leaving none behind; SIGTERM and SIGKILL likewise: tests/integration/demo/
test_supervisor.py."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from gateway import ROOT
from servers import fresh_store


def port_block(size: int = 7) -> int:
    """The first of `size` consecutive free ports (the demo takes them from --port-base up)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + size):
                taken = socket.socket()
                sockets.append(taken)
                taken.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for taken in sockets:
                taken.close()
    raise RuntimeError("no block of free ports")


def demo(folder: Path, amqp_url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CASEBRIDGE_DEMO_DIR": str(folder), "CASEBRIDGE_AMQP_URL": amqp_url}
    return subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import app; app()", "demo",
         "--port-base", str(port_block()), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def children_of(folder: Path) -> list[int]:
    """Processes still running with this demo's key file in their environment."""
    marker = f"CASEBRIDGE_KEY_FILE={folder / 'demo.keys'}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def running(process: subprocess.Popen[str]) -> str:
    """Read the demo's output until it says it is running."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(seen)
    raise AssertionError("the demo ended before running: " + "".join(seen)[-3000:])


def test_every_story_ends_as_expected_with_two_gateways_and_two_workers_on_postgresql(
        tmp_path, amqp_url, pg_url) -> None:
    """`casebridge demo --check`, every story, run as scale-out runs: two gateway processes
    and two workers on one PostgreSQL and one RabbitMQ. Each story counts its referral at
    the receiver, through the receiver's own API: exactly one (proGres in stories 1, 2 and
    5, Primero Uganda in 3, nDelius N03 in 4)."""
    with fresh_store(pg_url, tmp_path) as url:
        process = demo(tmp_path, amqp_url, "--check", "--quiet", "--database-url", url,
                       "--gateways", "2", "--workers", "2")
        output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-5000:]
    lines = output.splitlines()
    for number in range(1, 7):
        assert any(line.startswith(f"story {number}: ") and line.endswith(" ok")
                   for line in lines), output[-5000:]
    assert lines[-1].startswith("6 of 6 stories ok")
    assert children_of(tmp_path) == []
