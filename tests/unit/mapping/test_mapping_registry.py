"""A running gateway reloads changed mapping files, refuses broken ones, keeps the last good."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mapping_testkit import ROOT, line_of
from structlog.testing import capture_logs

from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping import registry as checked_mappings
from gateway.mapping.registry import MappingRegistry
from gateway.mapping.translator import MappingTranslator

SHIPPED = ROOT / "mappings" / "primero"


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """A copy of the shipped Primero mappings that a test may change."""
    shutil.copytree(SHIPPED, tmp_path / "primero")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    """Change a file and move its modification time on, as an editor saving it would."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_every_shipped_mapping_is_put_in_force(mappings: Path, contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    assert len(registry.refresh()) == 6
    names = {(m.system, m.name) for m in registry.loaded()}
    assert names == {("primero", "case-to-referral"), ("primero", "referral-to-case"),
                     ("primero", "referral-status"), ("primero", "case-to-transfer"),
                     ("primero", "transfer-to-case"), ("primero", "transfer-status")}
    assert registry.get("primero", "referral-status").content_hash.startswith("sha256:")
    assert registry.refresh() == [] and registry.refusals == []


def test_a_changed_good_file_is_picked_up_with_a_new_hash(mappings: Path,
                                                         contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    before = registry.get("primero", "referral-status")
    edit(mappings / "primero" / "referral-status.yaml",
         "      - {native: revoked, canonical: withdrawn}",
         "      - {native: revoked, canonical: withdrawn}\n"
         "      - {native: cancelled, canonical: withdrawn, only: inbound}")
    [changed] = registry.refresh()
    assert changed.endswith("primero/referral-status.yaml")
    after = registry.get("primero", "referral-status")
    assert after.content_hash != before.content_hash
    assert after.inbound({"referral": {"status": "cancelled"}})["status"] == "withdrawn"


def test_a_changed_code_list_changes_the_hash_of_the_mappings_using_it(
        mappings: Path, contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    inbound_hash = registry.get("primero", "case-to-referral").content_hash
    status_hash = registry.get("primero", "referral-status").content_hash
    edit(mappings / "primero" / "codes" / "sex.yaml", "  - {native: male, canonical: male}",
         "  - {native: male, canonical: male}\n  - {native: m, canonical: male, only: inbound}")
    registry.refresh()
    assert registry.get("primero", "case-to-referral").content_hash != inbound_hash
    assert registry.get("primero", "referral-status").content_hash == status_hash


def test_a_broken_change_is_refused_logged_and_the_last_good_stays(
        mappings: Path, contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    good = registry.get("primero", "referral-status")
    with capture_logs() as logs:
        edit(mappings / "primero" / "referral-status.yaml", "      code: transition-status\n",
             "      code: transition-statuses\n")
        assert registry.refresh() == []
    assert registry.get("primero", "referral-status") is good
    assert good.inbound({"referral": {"status": "done"}})["status"] == "completed"
    [refusal] = registry.refusals
    assert (refusal.system, refusal.name) == ("primero", "referral-status")
    assert refusal.file.endswith("primero/referral-status.yaml") and len(refusal.problems) == 1
    line = line_of((mappings / "primero" / "referral-status.yaml").read_text(),
                   "transition-statuses")
    assert f"referral-status.yaml:{line}:7: unknown-code-list: there is no code list " in (
        refusal.problems[0])
    [event] = [e for e in logs if e["event"] == "mapping_refused"]
    assert event["log_level"] == "warning" and event["problem_count"] == 1
    assert event["file"].endswith("primero/referral-status.yaml")
    assert event["in_force"] == good.content_hash


def test_a_refusal_is_recorded_once_and_a_fixed_file_is_taken(mappings: Path,
                                                              contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    path = mappings / "primero" / "referral-status.yaml"
    edit(path, "contract: status-event", "contract: status-events")
    registry.refresh()
    edit(path, "description:", "description:")  # saved again, still broken
    registry.refresh()
    assert len(registry.refusals) == 1
    edit(path, "contract: status-events", "contract: status-event")
    registry.refresh()
    assert len(registry.refusals) == 1
    status = registry.get("primero", "referral-status")
    assert status.inbound({"referral": {"status": "accepted"}}) == {
        "status": "accepted", "source_status": "accepted"}


def test_a_yaml_error_at_start_up_refuses_only_that_file(mappings: Path,
                                                         contracts: Contracts) -> None:
    (mappings / "primero" / "referral-status.yaml").write_text("inbound: [rules\n")
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    assert {m.name for m in registry.loaded()} == {
        "case-to-referral", "referral-to-case", "case-to-transfer", "transfer-to-case",
        "transfer-status"}
    assert [r.problems[0].split(": ")[1] for r in registry.refusals] == ["yaml-syntax"]
    with pytest.raises(MappingError, match="no mapping primero/referral-status is in force"):
        registry.get("primero", "referral-status")


def test_a_removed_file_leaves_force(mappings: Path, contracts: Contracts) -> None:
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    (mappings / "primero" / "referral-status.yaml").unlink()
    registry.refresh()
    with pytest.raises(MappingError):
        registry.get("primero", "referral-status")


def test_the_translator_picks_the_mapping_by_system_contract_and_direction(
        mappings: Path, contracts: Contracts) -> None:
    now = [0.0]
    translator = MappingTranslator(mappings, contracts=contracts, refresh_seconds=5,
                                   clock=lambda: now[0])
    event = translator.status_in("primero", "referral", {"referral": {"status": "in_progress"}})
    assert event == {"status": "delivered", "source_status": "in_progress"}
    assert translator.status_out("primero", "referral", {"status": "completed"}) == {
        "status": "done"}
    example = translator.registry.get("primero", "case-to-referral").mapping.blocks[
        "inbound"].examples[0]
    canonical, content_hash = translator.inbound("primero", "referral", example.input)
    assert canonical == example.output
    assert content_hash == translator.registry.get("primero", "case-to-referral").content_hash
    native, _ = translator.outbound("primero", "referral", canonical)
    assert native["case"]["name_first"] == "Amani"
    with pytest.raises(MappingError, match="no outbound mapping of progres"):
        translator.outbound("progres", "referral", canonical)

    edit(mappings / "primero" / "referral-status.yaml", "{native: done, canonical: completed}",
         "{native: done, canonical: completed}\n      - {native: closed, canonical: completed,"
         " only: inbound}")
    closed = {"referral": {"status": "closed"}}
    with pytest.raises(MappingError, match="code list 'transition-status'"):
        translator.status_in("primero", "referral", closed)  # the file was not looked at yet
    now[0] = 10.0
    assert translator.status_in("primero", "referral", closed)["status"] == "completed"


def test_a_partner_on_another_channel_is_translated_with_that_channels_files_only(
        tmp_path: Path, contracts: Contracts) -> None:
    shutil.copytree(ROOT / "mappings" / "progres", tmp_path / "progres")
    translator = MappingTranslator(tmp_path, contracts=contracts)
    main = translator.mapping_for("progres", "referral", "referral", "inbound")
    dtp = translator.mapping_for("progres", "referral", "referral", "inbound", channel="dtp")
    assert (main.name, main.channel) == ("interop-referral-to-referral", None)
    assert (dtp.name, dtp.channel) == ("dtp-intervention-to-referral", "dtp")
    assert translator.mapping_for("progres", "referral", "status-event", "outbound",
                                  channel="dtp").name == "dtp-referral-feedback"
    with pytest.raises(MappingError, match=r"no inbound mapping of progres \(channel dtp\) for "
                                           r"referral \(transfer\)"):
        edit(tmp_path / "progres" / "dtp-intervention-to-referral.in.yaml",
             "channel: dtp", "channel: dtp-old")
        translator.registry.refresh()
        translator.mapping_for("progres", "transfer", "referral", "inbound", channel="dtp")


def test_a_channel_is_a_short_name(mappings: Path, contracts: Contracts) -> None:
    path = mappings / "primero" / "referral-status.yaml"
    edit(path, "contract: status-event", "contract: status-event\nchannel: Second Channel")
    registry = MappingRegistry(mappings, contracts)
    registry.refresh()
    [refusal] = registry.refusals
    assert any("bad-value: a channel is a short name" in p for p in refusal.problems)


@pytest.fixture
def one_mapping(tmp_path: Path) -> Path:
    """The shipped Primero status mapping alone, with its system's code lists."""
    (tmp_path / "primero").mkdir()
    shutil.copy(SHIPPED / "referral-status.yaml", tmp_path / "primero")
    shutil.copytree(SHIPPED / "codes", tmp_path / "primero" / "codes")
    return tmp_path


def test_a_second_registry_of_the_same_files_takes_what_the_first_checked(
        one_mapping: Path, contracts: Contracts) -> None:
    first = MappingRegistry(one_mapping, contracts)
    first.refresh()
    second = MappingRegistry(one_mapping, Contracts(ROOT / "contracts"))
    assert len(second.refresh()) == 1 and second.refusals == []
    assert second.get("primero", "referral-status") is first.get("primero", "referral-status")


def test_a_second_registry_checks_again_what_changed_since_the_first_checked_it(
        one_mapping: Path, contracts: Contracts) -> None:
    first = MappingRegistry(one_mapping, contracts)
    first.refresh()
    edit(one_mapping / "primero" / "codes" / "rejection-reason.yaml",
         "  - {native: duplicate, canonical: duplicate}",
         "  - {native: duplicate, canonical: duplicate}\n"
         "  - {native: twice, canonical: duplicate, only: inbound}")
    second = MappingRegistry(one_mapping, contracts)
    second.refresh()
    assert (second.get("primero", "referral-status").content_hash
            != first.get("primero", "referral-status").content_hash)
    edit(one_mapping / "primero" / "referral-status.yaml", "      code: transition-status\n",
         "      code: transition-statuses\n")
    third = MappingRegistry(one_mapping, contracts)
    third.refresh()
    assert [(r.name, len(r.problems)) for r in third.refusals] == [("referral-status", 1)]
    assert first.get("primero", "referral-status").inbound(
        {"referral": {"status": "done"}})["status"] == "completed"
    # What a process keeps is the latest check of each file: edits do not pile up.
    mapping_file = (one_mapping / "primero" / "referral-status.yaml").resolve()
    assert sum(place[0] == mapping_file for place in checked_mappings._checked) == 1


def test_a_registry_on_other_contracts_checks_the_same_files_again(
        one_mapping: Path, contracts: Contracts) -> None:
    first = MappingRegistry(one_mapping, contracts)
    first.refresh()
    other = Contracts(ROOT / "contracts")
    other.schemas["status-event"] = {**other.schemas["status-event"], "description": "other"}
    second = MappingRegistry(one_mapping, other)
    second.refresh()
    assert second.get("primero", "referral-status") is not first.get("primero", "referral-status")
