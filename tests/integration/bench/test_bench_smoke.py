"""The benchmarks still run, and agree with their peers, after the code they measure changes."""

import subprocess
import sys

from gateway import ROOT


def test_mapping_benchmark_runs_and_its_three_peers_agree() -> None:
    run = subprocess.run([sys.executable, "bench/mapping.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("ratio: ")


def test_overdue_scan_benchmark_runs_on_both_databases_and_finds_the_same_rows() -> None:
    run = subprocess.run([sys.executable, "bench/overdue.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1].startswith("ratio: ")
    found = {line.split(":")[0]: line.split("overdue found ")[1].split(",")[0]
             for line in lines if "scan_s: " in line and "count_s: " in line}
    assert set(found) == {"sqlite", "postgresql"}
    assert found["sqlite"] == found["postgresql"] != "0", found


def test_console_list_benchmark_runs_every_filter_on_both_databases() -> None:
    run = subprocess.run([sys.executable, "bench/console_referrals.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1].startswith("ratio: ")
    pages = [line.split() for line in lines if line.startswith("  ") and
             not line.lstrip().startswith("filter")]
    # ten filters on each database, each finding referrals, the same on both
    assert len(pages) == 20 and all(int(page[-1]) > 0 for page in pages), pages
    assert [page[-1] for page in pages[:10]] == [page[-1] for page in pages[10:]], pages
