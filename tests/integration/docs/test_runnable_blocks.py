"""Every shell block of README.md and docs/ marked `<!-- runnable -->` runs as shown.

A block is marked when it needs nothing but the repository and an empty store: no running
gateway, no partner system. Each runs in bash from the repository's root, on a fresh SQLite
store with a key of its own, and must exit 0.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from gateway import ROOT

MARKED = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(page.relative_to(ROOT), block) for page in PAGES
          for block in MARKED.findall(page.read_text(encoding="utf-8"))]


def test_some_blocks_are_marked() -> None:
    assert len(BLOCKS) >= 5


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh store and key, as after `casebridge keys new` and `casebridge db upgrade`."""
    folder = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "CASEBRIDGE_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
           "CASEBRIDGE_KEY_FILE": str(folder / "keys")}
    for setup in (["keys", "new", "--id", "docs"], ["db", "upgrade"]):
        subprocess.run([ROOT / ".venv/bin/casebridge", *setup], env=env, cwd=ROOT,
                       check=True, capture_output=True)
    return env


@pytest.mark.parametrize(("page", "block"), BLOCKS,
                         ids=[f"{page}:{n}" for n, (page, _) in enumerate(BLOCKS)])
def test_a_marked_block_runs_as_shown(page: Path, block: str, env: dict[str, str]) -> None:
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{page}:\n{block}\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
