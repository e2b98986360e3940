"""What every benchmark sends, and what it needs so that its referrals may leave: a key
and an agreement.

The gateway encrypts personal data and refuses to start without a key, and nothing leaves
without a data-sharing agreement between sender and receiver. A benchmark gets a fresh
key for its run and an agreement between its own partners, through the environment its
child processes inherit.
"""

import json
import os
import uuid
from pathlib import Path
from typing import Any

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


def referral_document(sender: str, receiver: str) -> dict[str, Any]:
    """A valid canonical referral about a fictional child (the tests' `make_referral`)."""
    return {
        "kind": "referral",
        "sender": {"partner": sender, "unit": "CP unit Juba"},
        "receiver": {"partner": receiver},
        "external_reference": f"REF-{uuid.uuid4().hex[:8]}",
        "subject": {
            "identifiers": [{"system": "primero_case", "value": f"CP-{uuid.uuid4().hex[:6]}"}],
            "given_name": "Zawadi",
            "family_name": "Fictionalson",
            "birth_date": "2014-03-09",
            "sex": "female",
            "is_minor": True,
        },
        "case": {"reference": "CASE-0001", "module": "child_protection", "risk_level": "high"},
        "source_record": {"type": "bia", "reference": "BIA-2026-0042"},
        "reason": "Needs family tracing after separation at the border.",
        "consent": {
            "given_by": "caregiver",
            "form": "written",
            "date": "2026-11-01",
            "scope": {"purposes": ["referral"], "receivers": [receiver],
                      "data_categories": ["identity", "demographics", "protection"]},
            "child_assent": True,
            "bia_reference": "BIA-2026-0042",
        },
        "services": [{"type": "family_tracing_reunification", "urgency": "urgent"}],
    }
