"""CaseBridge: the hub carrying referrals, transfers and their status between partner systems."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
