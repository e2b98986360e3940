"""Delivery's entry to the mappings: pick the mapping for a system, kind and direction, run it.

Implements `gateway.delivery.translate.Translator` over a MappingRegistry that looks for
changed files at most every `refresh_seconds`, so an edited mapping takes effect without a
restart (and a broken edit is refused, the last good one staying in force).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.compile import CompiledMapping
from gateway.mapping.model import Direction
from gateway.mapping.registry import MappingRegistry

RECORD_CONTRACT = "referral"
STATUS_CONTRACT = "status-event"


class MappingTranslator:
    """Translate records and statuses with the mappings of each partner system (or of one
    `system`, for a process that speaks only that one: the FHIR face)."""

    def __init__(self, mappings_dir: Path, *, contracts: Contracts, refresh_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, system: str | None = None
                 ) -> None:
        self.registry = MappingRegistry(mappings_dir, contracts, system=system)
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self.registry.refresh()
        self._refreshed = clock()

    def mapping_for(self, system: str, kind: str, contract: str, direction: Direction, *,
                    channel: str | None = None) -> CompiledMapping:
        """The mapping of `system` (on `channel`) for `contract` and `direction`; one named
        for `kind` wins."""
        if self._clock() - self._refreshed >= self.refresh_seconds:
            self.registry.refresh()
            self._refreshed = self._clock()
        candidates = [m for m in self.registry.loaded() if m.system == system
                      and m.channel == channel and m.contract == contract
                      and direction in m.directions]
        named = [m for m in candidates if kind in m.name]
        chosen = named or candidates
        if len(chosen) != 1:
            what = "no" if not chosen else "more than one"
            on = f" (channel {channel})" if channel else ""
            raise MappingError(
                f"{what} {direction} mapping of {system}{on} for {contract} ({kind}) is in force",
                rule="registry", mapping=f"{system}/{contract}",
                candidates=[m.file for m in chosen])
        return chosen[0]

    def outbound(self, system: str, kind: str, canonical: dict[str, Any], *,
                 channel: str | None = None) -> tuple[dict[str, Any], str]:
        """The native record for a canonical referral or transfer, and the mapping's hash."""
        mapping = self.mapping_for(system, kind, RECORD_CONTRACT, "outbound", channel=channel)
        return mapping.outbound(canonical), mapping.content_hash

    def inbound(self, system: str, kind: str, native: dict[str, Any], *,
                channel: str | None = None) -> tuple[dict[str, Any], str]:
        """The canonical referral or transfer for a native record, and the mapping's hash."""
        mapping = self.mapping_for(system, kind, RECORD_CONTRACT, "inbound", channel=channel)
        return mapping.inbound(native), mapping.content_hash

    def status_out(self, system: str, kind: str, event: dict[str, Any], *,
                   channel: str | None = None) -> dict[str, Any]:
        """The native status record for a canonical status event."""
        return self.mapping_for(system, kind, STATUS_CONTRACT, "outbound",
                                channel=channel).outbound(event)

    def status_in(self, system: str, kind: str, native: dict[str, Any], *,
                  channel: str | None = None) -> dict[str, Any]:
        """The canonical status event for a native status change."""
        return self.mapping_for(system, kind, STATUS_CONTRACT, "inbound",
                                channel=channel).inbound(native)
