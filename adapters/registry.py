"""Which adapter speaks to which partner system, built from the partner's connection."""

import importlib
from typing import Any

from adapters.base import PartnerAdapter

ADAPTERS = {
    "progres": "adapters.progres.adapter:ProgresAdapter",
    "primero": "adapters.primero.adapter:PrimeroAdapter",
    "ndelius": "adapters.ndelius.adapter:NdeliusAdapter",
}


class UnknownSystem(LookupError):
    pass


def build_adapter(system: str, connection: dict[str, Any]) -> PartnerAdapter:
    """An adapter for `system` from a connection `{"base_url": …, "credentials": {…}}`."""
    if system not in ADAPTERS:
        raise UnknownSystem(system)
    module_name, class_name = ADAPTERS[system].split(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    adapter: PartnerAdapter = adapter_class(connection["base_url"],
                                            **connection.get("credentials", {}))
    return adapter
