"""The mapping benchmark still runs and agrees with its peers after mappings change."""

import subprocess
import sys

from gateway import ROOT


def test_mapping_benchmark_runs_and_its_three_peers_agree() -> None:
    run = subprocess.run([sys.executable, "bench/mapping.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("ratio: ")
