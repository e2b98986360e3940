"""Fixtures for the mapping engine's unit tests: write mapping files, check and compile them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from mapping_testkit import ROOT, SEX_CODES

from gateway.contracts import Contracts
from gateway.mapping.check import Checked, check_mapping_file
from gateway.mapping.compile import CompiledMapping, compile_mapping
from gateway.mapping.schema import SchemaView


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return Contracts(ROOT / "contracts")


@pytest.fixture(scope="session")
def view(contracts: Contracts) -> SchemaView:
    return SchemaView(contracts)


WriteMapping = Callable[..., Path]


@pytest.fixture
def write_mapping(tmp_path: Path) -> WriteMapping:
    """Write a mapping file (and code lists) under tmp_path/<system>/; return its path."""

    def write(text: str, name: str = "case-to-referral.in.yaml", *, system: str = "demo",
              codes: dict[str, str] | None = None) -> Path:
        folder = tmp_path / system
        (folder / "codes").mkdir(parents=True, exist_ok=True)
        for code_name, code_text in ({"sex": SEX_CODES} if codes is None else codes).items():
            (folder / "codes" / f"{code_name}.yaml").write_text(textwrap.dedent(code_text))
        path = folder / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def check(view: SchemaView) -> Callable[[Path], Checked]:
    return lambda path: check_mapping_file(path, view)


@pytest.fixture
def compiled(view: SchemaView) -> Callable[[Path], CompiledMapping]:
    def make(path: Path) -> CompiledMapping:
        checked = check_mapping_file(path, view)
        assert checked.ok, "\n".join(map(str, checked.problems))
        return compile_mapping(checked)

    return make
