"""The generic registry of checked files: last good in force, refusals, fingerprints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.checked_files import CheckedFiles


@dataclass(frozen=True)
class Setting:
    """What a test file holds when its check passes."""

    text: str
    content_hash: str


class Checker:
    """Passes a file whose first line is `good …`; counts the files it was asked to check."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def __call__(self, path: Path) -> tuple[Setting | None, Sequence[str]]:
        self.checked.append(path.name)
        raw = path.read_bytes()
        if raw.startswith(b"crash"):
            raise RuntimeError("a bug in the check")
        if not raw.startswith(b"good"):
            return None, [f"{path.name}:1:1: bad-value: the first word must be good"]
        return Setting(raw.decode(), "sha256:" + hashlib.sha256(raw).hexdigest()), []


def save(path: Path, text: str) -> None:
    """Write the file and move its modification time on, as an editor saving it would."""
    existed = path.exists()
    path.write_text(text)
    if existed:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def checker() -> Checker:
    return Checker()


@pytest.fixture
def files(tmp_path: Path, checker: Checker) -> CheckedFiles[Setting]:
    return CheckedFiles(tmp_path, "*.yaml", checker, kind="setting",
                        companions=lambda path: [path.parent / "shared.txt"])


def texts(files: CheckedFiles[Setting]) -> dict[str, str]:
    return {name: value.text for name, value in files.in_force().items()}


def test_good_files_are_put_in_force_by_name(tmp_path: Path,
                                             files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "good a")
    save(tmp_path / "b.yaml", "good b")
    (tmp_path / "notes.txt").write_text("not matched by the pattern")
    assert [Path(f).name for f in files.refresh()] == ["a.yaml", "b.yaml"]
    assert texts(files) == {"a": "good a", "b": "good b"}
    assert files.refusals == []


def test_a_refused_change_keeps_the_last_good_version_and_is_recorded_once(
        tmp_path: Path, files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "good a")
    files.refresh()
    good = files.in_force()["a"]
    with capture_logs() as logs:
        save(tmp_path / "a.yaml", "bad a")
        assert files.refresh() == []
        save(tmp_path / "a.yaml", "bad a")  # saved again, unchanged: not a new refusal
        files.refresh()
    assert files.in_force()["a"] is good
    [refusal] = files.refusals
    assert refusal.path == tmp_path / "a.yaml" and refusal.file.endswith("a.yaml")
    assert refusal.problems == ("a.yaml:1:1: bad-value: the first word must be good",)
    assert refusal.content_hash == "sha256:" + hashlib.sha256(b"bad a").hexdigest()
    [event] = [e for e in logs if e["event"] == "setting_refused"]
    assert event["log_level"] == "warning" and event["setting"] == "a"
    assert event["in_force"] == good.content_hash and event["problem_count"] == 1


def test_a_file_refused_at_first_is_not_in_force_and_a_fixed_file_is_taken(
        tmp_path: Path, files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "bad a")
    files.refresh()
    assert texts(files) == {}
    save(tmp_path / "a.yaml", "good again")
    [changed] = files.refresh()
    assert changed.endswith("a.yaml") and texts(files) == {"a": "good again"}
    assert len(files.refusals) == 1


def test_a_deleted_file_leaves_force(tmp_path: Path, files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "good a")
    save(tmp_path / "b.yaml", "good b")
    files.refresh()
    (tmp_path / "a.yaml").unlink()
    with capture_logs() as logs:
        files.refresh()
    assert texts(files) == {"b": "good b"}
    assert [e["setting"] for e in logs if e["event"] == "setting_removed"] == ["a"]


def test_only_a_changed_fingerprint_calls_for_a_new_check(
        tmp_path: Path, files: CheckedFiles[Setting], checker: Checker) -> None:
    save(tmp_path / "a.yaml", "good a")
    save(tmp_path / "b.yaml", "good b")
    files.refresh()
    files.refresh()
    assert checker.checked == ["a.yaml", "b.yaml"]
    save(tmp_path / "b.yaml", "good b, edited")
    files.refresh()
    assert checker.checked[2:] == ["b.yaml"]
    save(tmp_path / "shared.txt", "a companion changed")
    files.refresh()
    assert sorted(checker.checked[3:]) == ["a.yaml", "b.yaml"]


def test_a_same_version_saved_again_is_not_put_in_force_again(
        tmp_path: Path, files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "good a")
    files.refresh()
    save(tmp_path / "a.yaml", "good a")
    assert files.refresh() == []


def test_a_check_that_crashes_refuses_the_file(tmp_path: Path,
                                               files: CheckedFiles[Setting]) -> None:
    save(tmp_path / "a.yaml", "crash")
    files.refresh()
    assert texts(files) == {}
    [refusal] = files.refusals
    assert refusal.problems[0].endswith("a.yaml:1:1: crashed: the check crashed (RuntimeError)")


def test_two_files_may_not_hold_the_same_name(tmp_path: Path, checker: Checker) -> None:
    files = CheckedFiles(tmp_path, "*.yaml", checker, kind="setting",
                         name=lambda path: path.stem.split(".")[0])
    save(tmp_path / "a.in.yaml", "good first")
    save(tmp_path / "a.yaml", "good second")
    files.refresh()
    assert texts(files) == {"a": "good first"}
    assert [r.problems for r in files.refusals] == [("another file is already a",)]


def test_old_refusals_are_dropped_past_the_limit(tmp_path: Path, checker: Checker) -> None:
    files = CheckedFiles(tmp_path, "*.yaml", checker, kind="setting", max_refusals=2)
    for index in range(3):
        save(tmp_path / "a.yaml", f"bad {index}")
        files.refresh()
    assert [r.content_hash for r in files.refusals] == [
        "sha256:" + hashlib.sha256(f"bad {i}".encode()).hexdigest() for i in (1, 2)]
