"""Start, watch and stop the demo's processes: none is left behind.

Each child runs in a session of its own (so a Ctrl-C in the terminal reaches the
supervisor only, which then stops them in order), logs to var/demo-NAME.log and is
stopped with SIGTERM, then SIGKILL after a grace period. On Linux each child is also told
to end (SIGTERM) when the supervisor itself dies, even by SIGKILL, so that none is orphaned.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux; else nothing)."""
    # Not Linux: Ctrl-C, SIGTERM and a dying child still stop every child.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildDied(RuntimeError):
    """A supervised process ended by itself."""

    def __init__(self, name: str, code: int, log: Path) -> None:
        super().__init__(f"{name} stopped by itself (exit code {code}); see {log}")
        self.name = name


class Stopped(BaseException):
    """SIGTERM (or SIGINT) reached the supervisor."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Supervisor:
    logs: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Child:
        """Run `casebridge ARGS…` as a child named `name`."""
        log = self.logs / f"demo-{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", "from gateway.cli import app; app()", *args],
                env=self.env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_end_with_parent)  # safe: the demo runs no other threads
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise `ChildDied` naming the first child that has ended."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise ChildDied(child.name, code, child.log)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every child still running (the last started first), then SIGKILL."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()


def raise_on_signals() -> None:
    """SIGTERM and SIGINT end the demo through `Stopped`, so that `finally` stops all."""
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
