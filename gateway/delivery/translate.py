"""The seam between delivery and the mapping engine: canonical ⇄ native, records and statuses.

`channel` names which of a system's ways of exchanging records the native side speaks
(proGres: its Dataverse Web API, or `interop`, the messages of UNHCR's integration layer);
None is the system's main channel.
"""

from typing import Any, Protocol


class Translator(Protocol):
    """Translate with a partner system's mapping files; raises MappingError naming the rule."""

    def outbound(self, system: str, kind: str, canonical: dict[str, Any], *,
                 channel: str | None = None) -> tuple[dict[str, Any], str]:
        """The native record for a canonical referral or transfer, and the mapping's hash."""
        ...

    def status_out(self, system: str, kind: str, event: dict[str, Any], *,
                   channel: str | None = None) -> dict[str, Any]:
        """The native status record for a canonical status event."""
        ...

    def inbound(self, system: str, kind: str, native: dict[str, Any], *,
                channel: str | None = None) -> tuple[dict[str, Any], str]:
        """The canonical referral or transfer for a native record, and the mapping's hash."""
        ...

    def status_in(self, system: str, kind: str, native: dict[str, Any], *,
                  channel: str | None = None) -> dict[str, Any]:
        """The canonical status event for a native status change."""
        ...
