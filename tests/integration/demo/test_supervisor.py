"""The demo's supervisor: a child that dies is named, SIGTERM reaches the demo as `Stopped`,
and stopping leaves no child running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway import ROOT
from gateway.demo.supervisor import ChildDied, Stopped, Supervisor, raise_on_signals
from servers import free_port


def answering(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_a_dying_child_is_named_and_stop_leaves_none_running(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ))
    ports = {"progres": free_port(), "primero": free_port()}
    try:
        children = [supervisor.start(name, "sandbox", name, "--port", str(port),
                                     "--database", str(tmp_path / f"{name}.db"))
                    for name, port in ports.items()]
        deadline = time.monotonic() + 60
        while not all(answering(f"http://127.0.0.1:{p}/") for p in ports.values()):
            supervisor.check()
            assert time.monotonic() < deadline, "the sandboxes did not start"
            time.sleep(0.2)
        supervisor.check()  # all alive: nothing raised

        children[1].process.send_signal(signal.SIGKILL)
        children[1].process.wait(timeout=10)
        with pytest.raises(ChildDied, match=r"^primero stopped by itself \(exit code -9\)"):
            supervisor.check()
    finally:
        supervisor.stop()
    assert all(child.process.poll() is not None for child in children)
    assert supervisor.children == []
    assert not answering(f"http://127.0.0.1:{ports['progres']}/")


def test_sigterm_and_sigint_reach_the_demo_as_stopped() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        raise_on_signals()
        for signum in before:
            with pytest.raises(Stopped):
                os.kill(os.getpid(), signum)
                time.sleep(1)  # the handler runs here at the latest
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_children_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """Even SIGKILL, which no handler sees, leaves no orphan: each child is told to end."""
    port = free_port()
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from gateway.demo.supervisor import Supervisor\n"
        f"child = Supervisor(Path({str(tmp_path)!r}), dict(os.environ)).start(\n"
        f"    'progres', 'sandbox', 'progres', '--port', '{port}',\n"
        f"    '--database', {str(tmp_path / 'progres.db')!r})\n"
        "print(child.process.pid, flush=True)\n"
        "time.sleep(600)\n")
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT)
    assert supervisor.stdout is not None
    child = int(supervisor.stdout.readline())
    deadline = time.monotonic() + 60
    while not answering(f"http://127.0.0.1:{port}/"):
        assert time.monotonic() < deadline, "the sandbox did not start"
        time.sleep(0.2)
    supervisor.kill()
    supervisor.wait(timeout=10)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{child}").exists() and b"Z" not in stat(child):
        assert time.monotonic() < deadline, "the child outlived its supervisor"
        time.sleep(0.2)


def stat(pid: int) -> bytes:
    """The process state field of /proc/PID/stat (Z: a zombie, already ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"
