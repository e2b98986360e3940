"""Reference data of the nDelius sandbox: NSI types, statuses, outcomes and the small code sets.

The two transfer NSIs went live in 2022 but their codes are not in public code
(shared/reference/progres-ndelius.md §3.3 and §8). Every type, sub-type, status, outcome,
contact-type and reason code below marked GUESS is invented for the sandbox, in the shape
of the real ones (`APR01`, `AP01`, `INPROG`, `COMP`); the real `INPROG` and `COMP` are reused.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "description": self.description}


def _table(*codes: Code) -> dict[str, Code]:
    return {c.code: c for c in codes}


# --- NSI types and sub-types (GUESS: §3.3 suggests TRF01 / TMV01) ---------------------------
CASE_TRANSFER = "TRF01"
TEMPORARY_MOVE = "TMV01"
NSI_TYPES = _table(Code(CASE_TRANSFER, "Case Transfer"), Code(TEMPORARY_MOVE, "Temporary Move"))
TRANSFER_TYPES = frozenset(NSI_TYPES)

NSI_SUB_TYPES: dict[str, dict[str, Code]] = {  # GUESS
    CASE_TRANSFER: _table(Code("TRF01A", "Inter-provider transfer"),
                          Code("TRF01B", "Transfer between PDUs of one provider")),
    TEMPORARY_MOVE: _table(Code("TMV01A", "Temporary accommodation"),
                           Code("TMV01B", "Work or education"),
                           Code("TMV01C", "Family or compassionate")),
}

# --- NSI statuses (GUESS, after §5.3 and the brief; INPROG and COMP are real codes) ----------
REQUESTED = "REQ"
AWAITING_ALLOCATION = "AWAL"
ACCEPTED = "ACC"
CHALLENGED = "CHAL"
RETURNED = "RET"
IN_PROGRESS = "INPROG"
COMPLETED = "COMP"
WITHDRAWN = "WDN"
NOT_DELIVERED = "NDEL"

NSI_STATUSES = _table(
    Code(REQUESTED, "Requested - sent to receiving area"),
    Code(AWAITING_ALLOCATION, "Received - awaiting allocation"),
    Code(ACCEPTED, "Accepted by receiving area"),
    Code(CHALLENGED, "Challenged by receiving area"),
    Code(RETURNED, "Rejected - returned to sending area"),
    Code(IN_PROGRESS, "In progress"),
    Code(COMPLETED, "Completed"),
    Code(WITHDRAWN, "Withdrawn by sending area"),
    Code(NOT_DELIVERED, "Not delivered to receiving area"),
)
INITIAL_STATUS = REQUESTED
TERMINAL_STATUSES = frozenset({COMPLETED, RETURNED, WITHDRAWN})
OUTCOME_REQUIRED = frozenset({COMPLETED, RETURNED, WITHDRAWN, CHALLENGED})

# The sandbox's own NSI status workflow: which status may follow which. A challenge is
# raised only on a case transfer (a temporary move leaves the case with the sender).
# Delius closes every NSI as COMP, whatever became of it: a transfer the receiving area turns
# down may be closed COMP with a rejection outcome instead of going RET, so COMP may follow a
# status before acceptance — with a rejection outcome only (see REJECTION_OUTCOMES).
NEXT_STATUSES: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({AWAITING_ALLOCATION, ACCEPTED, RETURNED, WITHDRAWN, NOT_DELIVERED,
                          COMPLETED}),
    NOT_DELIVERED: frozenset({REQUESTED, WITHDRAWN}),
    AWAITING_ALLOCATION: frozenset({ACCEPTED, RETURNED, WITHDRAWN, COMPLETED}),
    ACCEPTED: frozenset({IN_PROGRESS, COMPLETED, CHALLENGED, WITHDRAWN}),
    CHALLENGED: frozenset({ACCEPTED, WITHDRAWN}),
    IN_PROGRESS: frozenset({COMPLETED, WITHDRAWN}),
    COMPLETED: frozenset(),
    RETURNED: frozenset(),
    WITHDRAWN: frozenset(),
}
CASE_TRANSFER_ONLY = frozenset({CHALLENGED})

# A contact is written for every status change (r_nsi_status.contact_type_id). GUESS codes.
STATUS_CONTACT_TYPES = {
    REQUESTED: Code("CTRQ", "Case transfer/temporary move requested"),
    AWAITING_ALLOCATION: Code("CTAW", "Transfer received - awaiting allocation"),
    ACCEPTED: Code("CTAC", "Transfer accepted"),
    CHALLENGED: Code("CTCH", "Transfer challenged"),
    RETURNED: Code("CTRT", "Transfer returned"),
    IN_PROGRESS: Code("CTIP", "Temporary move/transfer in progress"),
    COMPLETED: Code("CTCO", "Transfer/temporary move completed"),
    WITHDRAWN: Code("CTWD", "Transfer withdrawn"),
    NOT_DELIVERED: Code("CTND", "Transfer not delivered"),
}
# Real contact types written when the offender manager changes (§4).
ETOM = Code("ETOM", "Offender Manager Transfer")
ROC = Code("ROC", "Responsible Officer Change")
# Contacts an integration writes about a deadline of a transfer (GUESS codes). Like any
# Delius contact type (r_contact_type.contact_alert_flag) a type says whether a contact of
# it may be an alert: one on the manager's alert list until it is cleared.
DEADLINE_OVERDUE = Code("CBDO", "Transfer deadline overdue (CaseBridge)")
DEADLINE_ESCALATED = Code("CBDE", "Transfer deadline overdue - escalated (CaseBridge)")
DEADLINE_CLEARED = Code("CBDC", "Transfer deadline no longer overdue (CaseBridge)")
CONTACT_TYPES = _table(*STATUS_CONTACT_TYPES.values(), ETOM, ROC, DEADLINE_OVERDUE,
                       DEADLINE_ESCALATED, DEADLINE_CLEARED)
ALERT_CONTACT_TYPES = frozenset({DEADLINE_OVERDUE.code, DEADLINE_ESCALATED.code})

# --- NSI outcomes (GUESS) --------------------------------------------------------------------
NSI_OUTCOMES = _table(
    Code("TRFC", "Transferred"),
    Code("TMVE", "Temporary move ended"),
    Code("RJADDR", "Returned - proposed address not suitable"),
    Code("RJINFO", "Returned - insufficient information"),
    Code("RJAREA", "Returned - address not in receiving area"),
    Code("CHRISK", "Challenged - risk not manageable at this stage"),
    Code("CHINFO", "Challenged - risk information missing"),
    Code("WDSEND", "Withdrawn by sending area"),
    Code("WDMOVE", "Person on probation did not move"),
)
# The outcome, not the closing status, says what became of a transfer: COMP with TRFC (or
# TMVE) is a transfer done, COMP with a rejection outcome one turned down (GUESS, in the way
# Delius closes NSIs of every type as COMP with an outcome).
SUCCESS_OUTCOMES = {CASE_TRANSFER: "TRFC", TEMPORARY_MOVE: "TMVE"}
REJECTION_OUTCOMES = frozenset({"RJADDR", "RJINFO", "RJAREA"})
# Which outcomes fit which closing status.
OUTCOMES_FOR_STATUS: dict[str, frozenset[str]] = {
    COMPLETED: frozenset(SUCCESS_OUTCOMES.values()) | REJECTION_OUTCOMES,
    RETURNED: REJECTION_OUTCOMES,
    CHALLENGED: frozenset({"CHRISK", "CHINFO"}),
    WITHDRAWN: frozenset({"WDSEND", "WDMOVE"}),
}

# --- Transfer form code sets (GUESS) ---------------------------------------------------------
TRANSFER_REASONS = _table(
    Code("REL", "Change of address"),
    Code("APR", "Approved premises placement"),
    Code("FAM", "Family reasons"),
    Code("EMP", "Employment or education"),
    Code("RSK", "Risk management"),
)
SENTENCE_TYPES = _table(
    Code("CO", "Community order"),
    Code("SSO", "Suspended sentence order"),
    Code("LIC", "Licence"),
    Code("PSS", "Post-sentence supervision"),
)
ACTION_OWNERS = frozenset({"SENDING", "RECEIVING"})

# --- Person code sets ------------------------------------------------------------------------
GENDERS = _table(Code("M", "Male"), Code("F", "Female"), Code("N", "Not specified"),
                 Code("U", "Unknown"))
ROSH_LEVELS = _table(Code("L", "Low"), Code("M", "Medium"), Code("H", "High"),
                     Code("VH", "Very High"))
MAPPA_CATEGORIES = _table(Code("1", "Category 1 - registered sexual offender"),
                          Code("2", "Category 2 - violent offender"),
                          Code("3", "Category 3 - other dangerous offender"),
                          Code("4", "Category 4 - terrorism or terrorism-connected"))
MAPPA_LEVELS = _table(Code("1", "Level 1 - ordinary agency management"),
                      Code("2", "Level 2 - multi-agency management"),
                      Code("3", "Level 3 - multi-agency management, senior oversight"))
# OM ALLOCATION REASON: IN1 is the real default; the others are GUESS.
ALLOCATION_REASONS = _table(Code("IN1", "Initial allocation"),
                            Code("RA1", "Re-allocation within provider"),
                            Code("TRF", "Case transfer"))

# --- Domain event types ----------------------------------------------------------------------
# The probation-case.nsi.* names are SANDBOX-ONLY extensions: no NSI domain event exists in
# public code (§6.4). probation-case.engagement.created and OFFENDER_MANAGER_CHANGED are real.
NSI_CREATED = "probation-case.nsi.created"
NSI_STATUS_CHANGED = "probation-case.nsi.status-changed"
NSI_MANAGER_CHANGED = "probation-case.nsi.manager-changed"
ENGAGEMENT_CREATED = "probation-case.engagement.created"
OFFENDER_MANAGER_CHANGED = "OFFENDER_MANAGER_CHANGED"
EVENT_TYPES = frozenset({NSI_CREATED, NSI_STATUS_CHANGED, NSI_MANAGER_CHANGED,
                         ENGAGEMENT_CREATED, OFFENDER_MANAGER_CHANGED})

# --- Roles (HMPPS Auth style) ----------------------------------------------------------------
ROLE_READ = "ROLE_PROBATION_API__CASE_TRANSFER__RO"
ROLE_WRITE = "ROLE_PROBATION_API__CASE_TRANSFER__RW"


def reference_data() -> dict[str, object]:
    """Every code set, and the NSI status workflow, as the sandbox's reference data."""
    def listed(table: dict[str, Code]) -> list[dict[str, str]]:
        return [c.as_dict() for c in table.values()]

    return {
        "nsiTypes": listed(NSI_TYPES),
        "nsiSubTypes": {t: listed(subs) for t, subs in NSI_SUB_TYPES.items()},
        "nsiStatuses": listed(NSI_STATUSES),
        "nsiStatusTransitions": {s: sorted(n) for s, n in NEXT_STATUSES.items()},
        "nsiOutcomes": listed(NSI_OUTCOMES),
        "nsiOutcomesByStatus": {s: sorted(o) for s, o in OUTCOMES_FOR_STATUS.items()},
        "transferReasons": listed(TRANSFER_REASONS),
        "sentenceTypes": listed(SENTENCE_TYPES),
        "genders": listed(GENDERS),
        "roshLevels": listed(ROSH_LEVELS),
        "mappaCategories": listed(MAPPA_CATEGORIES),
        "mappaLevels": listed(MAPPA_LEVELS),
        "allocationReasons": listed(ALLOCATION_REASONS),
        "contactTypes": [{**c.as_dict(), "alertAllowed": c.code in ALERT_CONTACT_TYPES}
                         for c in CONTACT_TYPES.values()],
        "eventTypes": sorted(EVENT_TYPES),
    }
