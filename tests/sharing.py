"""Data-sharing agreements for tests: written as files, as an IM officer would."""

import json
import uuid
from pathlib import Path
from typing import Any

from gateway.contracts import Contracts
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings

CATEGORIES = ["identity", "contact", "demographics", "protection", "incident", "health",
              "legal", "risk", "case-notes"]


def write_agreement(folder: Path, agreement_id: str, parties: list[str], **fields: Any
                    ) -> Path:
    """A data-sharing agreement file; by default both purposes and every category."""
    document: dict[str, Any] = {
        "id": agreement_id, "title": f"Test agreement {agreement_id}", "parties": parties,
        "purposes": ["referral", "transfer"],
        "data_categories": {"referral": CATEGORIES, "transfer": CATEGORIES},
        "retention_days": 365, **fields}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{agreement_id}.yaml"
    draft = path.with_suffix(".draft")
    draft.write_text(json.dumps(document, indent=2))  # JSON is YAML
    draft.replace(path)  # a running gateway never reads half a file
    return path


def agreed(settings: Settings, *parties: str) -> AgreementRegistry:
    """The agreements in `settings.agreements_dir`, after adding one between `parties`."""
    write_agreement(settings.agreements_dir, f"test-{uuid.uuid4().hex[:12]}", list(parties))
    return AgreementRegistry(settings.agreements_dir, Contracts(settings.contracts_dir))
