"""Which adapter speaks to which partner system, built from the partner's connection."""

import importlib
import json
import threading
from typing import Any

from adapters.base import PartnerAdapter

# `<system>` for a system's main channel, `<system>/<channel>` for another of its channels.
ADAPTERS = {
    "progres": "adapters.progres.adapter:ProgresAdapter",
    "progres/dtp": "adapters.progres.dtp:ProgresDtpAdapter",
    "primero": "adapters.primero.adapter:PrimeroAdapter",
    "ndelius": "adapters.ndelius.adapter:NdeliusAdapter",
}


class UnknownSystem(LookupError):
    pass


def build_adapter(system: str, connection: dict[str, Any]) -> PartnerAdapter:
    """An adapter for `system` from a connection `{"base_url": …, "credentials": {…}}`,
    on the channel the connection names (`"channel": …`; none: the system's main one)."""
    channel = connection.get("channel")
    name = f"{system}/{channel}" if channel else system
    if name not in ADAPTERS:
        raise UnknownSystem(name)
    module_name, class_name = ADAPTERS[name].split(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    adapter: PartnerAdapter = adapter_class(connection["base_url"],
                                            **connection.get("credentials", {}))
    return adapter


class AdapterPool:
    """One adapter per partner connection, built on first use and kept for reuse."""

    def __init__(self) -> None:
        self._adapters: dict[tuple[str, str], PartnerAdapter] = {}
        self._lock = threading.Lock()  # a worker's threads share one adapter per partner

    def for_partner(self, partner_id: str, system: str,
                    connection: dict[str, Any] | None) -> PartnerAdapter | None:
        """The partner's adapter, or None for a partner that calls the API itself."""
        if not connection:
            return None
        key = (partner_id, json.dumps(connection, sort_keys=True))
        with self._lock:
            if key not in self._adapters:
                self._adapters[key] = build_adapter(system, connection)
            return self._adapters[key]
