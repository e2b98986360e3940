"""nDelius sandbox: a probation provider's case system, with case-transfer NSIs.

Modelled on shared/reference/progres-ndelius.md §3–§7: people by CRN with their offender
manager; providers → PDUs → LDUs → teams → staff; Case Transfer and Temporary Move NSIs
(codes invented, see `codes`) with a transfer form and action list; contacts, some raised
as alerts on a practitioner's list (`contacts`); HMPPS Auth style tokens; HMPPS error
bodies; a domain-event feed. `app.create_app` builds it.
"""
