"""What every benchmark needs so that its referrals may leave: a key and an agreement.

The gateway encrypts personal data and refuses to start without a key, and nothing leaves
without a data-sharing agreement between sender and receiver. A benchmark gets a fresh
key for its run and an agreement between its own partners, through the environment its
child processes inherit.
"""

import json
import os
from pathlib import Path

from gateway.protection.crypto import new_key_line

CATEGORIES = ["identity", "contact", "demographics", "protection", "incident", "health",
              "legal", "risk", "case-notes"]


def allow(folder: Path, sender: str, receiver: str) -> None:
    """A run key (unless one is configured) and an agreement between the two partners."""
    os.environ.setdefault("CASEBRIDGE_KEYS", new_key_line("bench"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.yaml").write_text(json.dumps({
        "id": "bench", "parties": [sender, receiver], "purposes": ["referral", "transfer"],
        "data_categories": {"referral": CATEGORIES, "transfer": CATEGORIES},
        "retention_days": 30}))
    os.environ["CASEBRIDGE_AGREEMENTS_DIR"] = str(folder)
